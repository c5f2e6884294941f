"""A picture of what a mining stage mined: ``mined/gallery.png``.

``write_gallery`` reads a bounded sample of the mined shards (at most
``max_images`` records, the first records of each shard in turn, so that
every shard is shown and nothing else is read) on the driver, after the
mining job: it works the same whatever Beam runner mined them. Each image
becomes one tile of a grid:

  * mined boxes (``image/object/bbox/*``) in ``MINED_COLOUR`` with their
    class name and score (``image/object/score``);
  * hidden boxes (``image/note/hidden/*``, the withheld ground truth, where
    the records carry them) in ``HIDDEN_COLOUR`` with their class name,
    drawn beneath the mined boxes;

and a legend strip under the grid says which colour is which. The PNG is
written under a temporary name and renamed into place.
"""
import io
import itertools
import math
import os

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.data.records import tf_example_codec
from object_detection_note.data.records import tfrecord_reader
from object_detection_note.evaluation import visualization

GALLERY_NAME = 'gallery.png'
MINED_COLOUR = (0, 230, 0)
HIDDEN_COLOUR = (255, 0, 255)
BACKGROUND = (40, 40, 40)
LEGEND_HEIGHT = 24


def _first_records(path, count):
  """The first ``count`` serialized records of a TFRecord file (CRCs checked,
  read with the plain framing reader: no tf.data iterator per shard)."""
  return list(itertools.islice(tfrecord_reader.read_records(path), count))


def sample_records(pattern, max_images=16):
  """Up to ``max_images`` records of the shards matching ``pattern``.

  Reads the first records of each shard in turn (round robin, shards in
  name order), never more than ``max_images`` records in all.

  Returns:
    list of ``tf_example_codec.DetectionRecord``.
  """
  shards = sorted(tf.io.gfile.glob(pattern))
  if not shards or max_images <= 0:
    return []
  per_shard = math.ceil(max_images / len(shards))
  by_shard = []
  for shard in shards:
    by_shard.append([tf_example_codec.example_to_record(serialized)
                     for serialized in _first_records(shard, per_shard)])
  sample = []
  for index in range(per_shard):
    for taken in by_shard:
      if index < len(taken) and len(sample) < max_images:
        sample.append(taken[index])
  return sample


def _fit(image, tile_size):
  """``image`` scaled to fit a ``tile_size`` square; (image, scale)."""
  scale = tile_size / float(max(image.size))
  size = (max(1, round(image.size[0] * scale)),
          max(1, round(image.size[1] * scale)))
  return image.resize(size, Image.BILINEAR), scale


def draw_tile(record, tile_size=192):
  """uint8 [tile_size, tile_size, 3]: the image, hidden and mined boxes."""
  image = Image.open(io.BytesIO(record.image_bytes)).convert('RGB')
  image, _ = _fit(image, tile_size)
  width, height = image.size
  scale = np.array([height, width, height, width], np.float32)
  pixels = np.asarray(image)
  if len(record.hidden_boxes):
    names = (list(record.hidden_class_texts) or
             [str(int(c)) for c in record.hidden_classes])
    pixels = np.asarray(visualization.draw_detections(
        pixels, record.hidden_boxes * scale, record.hidden_classes, names,
        np.ones(len(record.hidden_boxes)), colour=HIDDEN_COLOUR,
        show_scores=False))
  if len(record.boxes):
    names = (list(record.class_texts) or
             [str(int(c)) for c in record.classes])
    scores = (record.box_scores if len(record.box_scores) == len(record.boxes)
              else np.ones(len(record.boxes)))
    pixels = np.asarray(visualization.draw_detections(
        pixels, record.boxes * scale, record.classes, names, scores,
        colour=MINED_COLOUR, show_scores=len(record.box_scores) == len(
            record.boxes)))
  tile = np.zeros((tile_size, tile_size, 3), np.uint8)
  tile[:] = BACKGROUND
  tile[:height, :width] = pixels
  return tile


def _legend(width):
  strip = Image.new('RGB', (width, LEGEND_HEIGHT), BACKGROUND)
  draw = ImageDraw.Draw(strip)
  font = ImageFont.load_default()
  x = 6
  for colour, text in ((MINED_COLOUR, 'mined box: class score'),
                       (HIDDEN_COLOUR, 'hidden box (withheld ground truth)')):
    draw.rectangle([x, 6, x + 12, 18], outline=colour, width=2)
    draw.text((x + 18, 6), text, fill=(255, 255, 255), font=font)
    x += 24 + int(draw.textlength(text, font=font)) + 12
  return np.asarray(strip)


def gallery_image(records, columns=4, tile_size=192):
  """uint8 [rows * tile_size + LEGEND_HEIGHT, columns * tile_size, 3]."""
  rows = max(1, math.ceil(len(records) / columns))
  grid = np.zeros((rows * tile_size, columns * tile_size, 3), np.uint8)
  grid[:] = BACKGROUND
  for index, record in enumerate(records):
    row, column = divmod(index, columns)
    grid[row * tile_size:(row + 1) * tile_size,
         column * tile_size:(column + 1) * tile_size] = draw_tile(
             record, tile_size)
  return np.concatenate([grid, _legend(grid.shape[1])], axis=0)


def write_gallery(shard_pattern, output_dir, max_images=16, columns=4,
                  tile_size=192):
  """Writes ``<output_dir>/gallery.png`` from a sample of the mined shards.

  Returns:
    the PNG's path, or None when the shards hold no record (nothing
    written).
  """
  records = sample_records(shard_pattern, max_images)
  if not records:
    logging.info('no mined image to show: %s holds no record', shard_pattern)
    return None
  buffer = io.BytesIO()
  Image.fromarray(gallery_image(records, columns, tile_size)).save(
      buffer, format='png')
  path = os.path.join(output_dir, GALLERY_NAME)
  file_io.write_atomically(path, buffer.getvalue())
  logging.info('gallery of %d mined images: %s', len(records), path)
  return path
