"""The tf.data input pipeline: shapes, boxes, flags, bad-record policy, gfile."""
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.core.fields import InputFields as I
from object_detection_note.data.input import inputs
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.protos import input_reader_pb2
from object_detection_note.protos import model_pb2
from object_detection_note.protos import train_pb2

_MODEL = """
faster_rcnn {
  num_classes: 3
  image_resizer { keep_aspect_ratio_resizer {
    min_dimension: 32 max_dimension: 48 pad_to_max_dimension: true } }
  feature_extractor { type: "faster_rcnn_tiny_keras" }
}
"""


def _record(source_id, boxes, classes, height=20, width=40, **kwargs):
  pixels = np.zeros((height, width, 3), np.uint8)
  pixels[:, : width // 2] = 255  # left half white: shows flips.
  return codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels, 'png'), source_id=source_id,
      height=height, width=width, image_format='png', boxes=boxes,
      classes=classes, **kwargs)


def _write(path, records):
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(codec.record_to_example(record).SerializeToString())


def _reader(pattern, max_boxes=4, label_map_path=''):
  reader = input_reader_pb2.InputReader()
  reader.tf_record_input_reader.input_path.append(pattern)
  reader.max_number_of_boxes = max_boxes
  reader.shuffle = False
  if label_map_path:
    reader.label_map_path = label_map_path
  return reader


def _model():
  return text_format.Parse(_MODEL, model_pb2.DetectionModel())


def _first_batch(path, records, batch_size=2, train_config=None,
                 is_training=False, **reader_kwargs):
  _write(path, records)
  dataset = inputs.build_dataset(_reader(path, **reader_kwargs), _model(),
                                 batch_size, is_training, train_config)
  return next(iter(dataset))


def test_batch_shapes_boxes_and_flags(tmp_path):
  records = [
      _record('seed-1', [[0.1, 0.2, 0.5, 0.6]], [2]),
      _record('mined-1', [[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.4]], [1, 3],
              is_mined=1, image_labels=[1, 3]),
  ]
  batch = _first_batch(str(tmp_path / 'a.tfrecord'), records)
  # 20x40 → keep aspect: scale min(32/20, 48/40) = 1.2 → 24x48, padded 48x48.
  assert batch[I.image].shape == (2, 48, 48, 3)
  np.testing.assert_array_equal(batch[I.true_image_shape], [[24, 48, 3]] * 2)
  np.testing.assert_array_equal(batch[I.original_image_spatial_shape],
                                [[20, 40]] * 2)
  assert batch[I.groundtruth_boxes].shape == (2, 4, 4)
  # y is rescaled by 24/48 because the padding lies below the image.
  np.testing.assert_allclose(batch[I.groundtruth_boxes][0, 0],
                             [0.05, 0.2, 0.25, 0.6], atol=1e-6)
  np.testing.assert_array_equal(batch[I.groundtruth_classes],
                                [[2, 0, 0, 0], [1, 3, 0, 0]])
  np.testing.assert_array_equal(batch[I.groundtruth_weights],
                                [[1, 0, 0, 0], [1, 1, 0, 0]])
  np.testing.assert_array_equal(batch[I.num_groundtruth_boxes], [1, 2])
  np.testing.assert_array_equal(batch[I.is_mined], [0.0, 1.0])
  np.testing.assert_array_equal(batch[I.image_level_labels],
                                [[0, 1, 0], [1, 0, 1]])
  assert [s.decode() for s in batch[I.source_id].numpy()] == [
      'seed-1', 'mined-1']
  # Padding is black, the image's left half white.
  assert float(batch[I.image][0, 40, 10, 0]) == 0.0
  assert float(batch[I.image][0, 10, 10, 0]) == pytest.approx(255.0)


def test_boxes_past_max_number_of_boxes_are_dropped(tmp_path):
  boxes = [[0.1 * i, 0.1, 0.1 * i + 0.05, 0.2] for i in range(6)]
  batch = _first_batch(str(tmp_path / 'a.tfrecord'),
                       [_record('many', boxes, [1] * 6)], batch_size=1,
                       max_boxes=4)
  np.testing.assert_array_equal(batch[I.num_groundtruth_boxes], [4])
  assert batch[I.groundtruth_boxes].shape == (1, 4, 4)


def test_random_horizontal_flip_moves_image_and_boxes_together(tmp_path):
  train_config = text_format.Parse(
      'data_augmentation_options { random_horizontal_flip {} }',
      train_pb2.TrainConfig())
  path = str(tmp_path / 'a.tfrecord')
  _write(path, [_record('r', [[0.1, 0.0, 0.5, 0.25]], [1])])
  tf.random.set_seed(3)
  dataset = inputs.build_dataset(_reader(path), _model(), 1, True,
                                 train_config)
  seen = set()
  for batch in dataset.take(16):
    left_white = float(batch[I.image][0, 5, 5, 0]) > 128
    xmin = float(batch[I.groundtruth_boxes][0, 0, 1])
    # Unflipped: white on the left and the box at x=0; flipped: both mirrored.
    assert (left_white and xmin == pytest.approx(0.0)) or (
        not left_white and xmin == pytest.approx(0.75))
    seen.add(left_white)
  assert seen == {True, False}


def test_hidden_boxes_never_reach_training(tmp_path):
  plain = _record('x', [[0.1, 0.1, 0.2, 0.2]], [1])
  with_hidden = _record('x', [[0.1, 0.1, 0.2, 0.2]], [1],
                        hidden_boxes=[[0.3, 0.3, 0.9, 0.9]], hidden_classes=[3])
  a = _first_batch(str(tmp_path / 'a.tfrecord'), [plain], batch_size=1)
  b = _first_batch(str(tmp_path / 'b.tfrecord'), [with_hidden], batch_size=1)
  assert set(a) == set(b)
  for key in a:
    np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


@pytest.mark.parametrize('boxes, classes, problem', [
    ([[0.6, 0.1, 0.2, 0.3]], [1], 'ymin > ymax'),
    ([[0.1, 0.5, 0.2, 0.3]], [1], 'xmin > xmax'),
    ([[0.1, 0.1, 1.5, 0.3]], [1], 'outside [0, 1]'),
    ([[float('nan'), 0.1, 0.2, 0.3]], [1], 'NaN'),
    ([[0.1, 0.1, 0.2, 0.3]], [7], 'not in the label map'),
])
def test_bad_record_stops_with_its_source_id(tmp_path, boxes, classes,
                                             problem):
  records = [_record('good', [[0.1, 0.1, 0.2, 0.2]], [1]),
             _record('broken-42', boxes, classes)]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _first_batch(str(tmp_path / 'a.tfrecord'), records)
  assert 'broken-42' in str(error.value)
  assert problem in str(error.value)


def test_undecodable_image_names_the_record(tmp_path):
  record = _record('garbled', [[0.1, 0.1, 0.2, 0.2]], [1])
  record.image_bytes = b'not an image at all'
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _first_batch(str(tmp_path / 'a.tfrecord'), [record], batch_size=1)
  assert 'garbled' in str(error.value)


def test_reads_from_ram_filesystem_with_label_map():
  label_map = 'ram://inputs_test/labels.pbtxt'
  with tf.io.gfile.GFile(label_map, 'w') as f:
    f.write('item { id: 1 name: "a" } item { id: 2 name: "b" }')
  _write('ram://inputs_test/x.tfrecord-00000-of-00001',
         [_record('ram', [[0.1, 0.1, 0.2, 0.2]], [2])])
  dataset = inputs.build_dataset(
      _reader('ram://inputs_test/x.tfrecord-*', label_map_path=label_map),
      _model(), 1, False)
  batch = next(iter(dataset))
  assert int(batch[I.groundtruth_classes][0, 0]) == 2


def test_missing_files_name_the_pattern():
  with pytest.raises(ValueError, match='no file matches'):
    inputs.build_dataset(_reader('/nonexistent/x-*'), _model(), 1, False)
