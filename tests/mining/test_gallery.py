"""The mining gallery: a bounded sample of the mined shards, mined boxes in
one colour, hidden boxes in another, written atomically."""
import io
import os

import numpy as np
from PIL import Image
import tensorflow as tf

from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.iterate import report
from object_detection_note.iterate import run_layout as layout
from object_detection_note.mining import gallery

_TILE = 96


def _record(source_id, hidden):
  pixels = np.full((48, 64, 3), 120, np.uint8)
  return codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels, 'png'), source_id=source_id,
      height=48, width=64, image_format='png',
      boxes=[[0.1, 0.1, 0.5, 0.5]], classes=[1], class_texts=['cat'],
      box_scores=[0.97], is_mined=1,
      hidden_boxes=[[0.5, 0.5, 0.9, 0.9]] if hidden else np.zeros((0, 4)),
      hidden_classes=[2] if hidden else [],
      hidden_class_texts=['dog'] if hidden else [])


def _write_shards(directory, shards):
  for index, records in enumerate(shards):
    path = os.path.join(directory, 'mined.tfrecord-%05d-of-%05d' % (
        index, len(shards)))
    with tf.io.TFRecordWriter(path) as writer:
      for record in records:
        writer.write(codec.serialize_record(record))
  return os.path.join(directory, 'mined.tfrecord-*-of-*')


def _count(pixels, colour):
  return int(np.all(pixels == np.array(colour, np.uint8), axis=2).sum())


def test_sample_is_bounded_and_visits_every_shard(tmp_path):
  pattern = _write_shards(str(tmp_path), [
      [_record('a%d' % i, False) for i in range(10)],
      [_record('b%d' % i, False) for i in range(10)],
      [_record('c%d' % i, False) for i in range(10)]])
  sample = gallery.sample_records(pattern, max_images=4)
  assert [r.source_id for r in sample] == ['a0', 'b0', 'c0', 'a1']


def test_gallery_draws_hidden_boxes_in_the_second_colour(tmp_path):
  pattern = _write_shards(str(tmp_path), [
      [_record('with-hidden', True)], [_record('without-hidden', False)]])
  path = gallery.write_gallery(pattern, str(tmp_path / 'mined'),
                               columns=2, tile_size=_TILE)
  assert path == str(tmp_path / 'mined' / gallery.GALLERY_NAME)
  assert os.listdir(tmp_path / 'mined') == [gallery.GALLERY_NAME]  # no temp
  with open(path, 'rb') as f:
    image = np.asarray(Image.open(io.BytesIO(f.read())).convert('RGB'))
  assert image.shape == (_TILE + gallery.LEGEND_HEIGHT, 2 * _TILE, 3)
  with_hidden, without_hidden = image[:_TILE, :_TILE], image[:_TILE, _TILE:]
  assert _count(with_hidden, gallery.HIDDEN_COLOUR) > 0
  assert _count(without_hidden, gallery.HIDDEN_COLOUR) == 0
  for tile in (with_hidden, without_hidden):
    assert _count(tile, gallery.MINED_COLOUR) > 0
  # The hidden box is where the record puts it: its outline's right edge
  # (x = 0.9 of the 96-pixel-wide tile) is drawn, the mined box's is not.
  column = with_hidden[:, int(0.9 * _TILE) - 1:int(0.9 * _TILE) + 1]
  assert _count(column, gallery.HIDDEN_COLOUR) > 0
  assert _count(column, gallery.MINED_COLOUR) == 0
  legend = image[_TILE:]
  assert _count(legend, gallery.HIDDEN_COLOUR) > 0
  assert _count(legend, gallery.MINED_COLOUR) > 0


def test_no_records_no_gallery(tmp_path):
  pattern = _write_shards(str(tmp_path), [[]])
  assert gallery.write_gallery(pattern, str(tmp_path / 'mined')) is None
  assert not (tmp_path / 'mined').exists()


def test_report_links_the_galleries_that_exist(tmp_path):
  model_dir = str(tmp_path)
  os.makedirs(layout.mined_dir(model_dir, 2))
  with open(os.path.join(layout.mined_dir(model_dir, 2),
                         gallery.GALLERY_NAME), 'wb') as f:
    f.write(b'png')
  text = report.gallery_links(model_dir, 2)
  relative = os.path.relpath(os.path.join(layout.mined_dir(model_dir, 2),
                                          gallery.GALLERY_NAME), model_dir)
  assert '- B^2: [%s](%s)' % (relative, relative) in text
  assert 'B^1' not in text
  assert report.gallery_links(str(tmp_path / 'none'), 2) == ''
