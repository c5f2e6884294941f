"""Round trip of DetectionRecord through tf.train.Example with OD API keys."""
import numpy as np
import tensorflow as tf

from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.records import tf_example_codec as codec


def _record():
  pixels = np.full((8, 10, 3), 100, np.uint8)
  return codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels, 'png'), source_id='img-1',
      height=8, width=10, image_format='png',
      boxes=[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], classes=[3, 1],
      class_texts=['c', 'a'], image_labels=[1, 3], image_label_texts=['a', 'c'],
      is_mined=1, box_scores=[0.995, 0.991],
      hidden_boxes=[[0.2, 0.2, 0.3, 0.3]], hidden_classes=[2],
      hidden_class_texts=['b'])


def test_round_trip_keeps_every_field():
  record = _record()
  decoded = codec.example_to_record(
      codec.record_to_example(record).SerializeToString())
  assert decoded.source_id == 'img-1'
  assert (decoded.height, decoded.width, decoded.image_format) == (8, 10, 'png')
  np.testing.assert_allclose(decoded.boxes, record.boxes)
  np.testing.assert_array_equal(decoded.classes, [3, 1])
  assert decoded.class_texts == ['c', 'a']
  np.testing.assert_array_equal(decoded.image_labels, [1, 3])
  assert decoded.image_label_texts == ['a', 'c']
  assert decoded.is_mined == 1
  np.testing.assert_allclose(decoded.box_scores, [0.995, 0.991])
  np.testing.assert_allclose(decoded.hidden_boxes, [[0.2, 0.2, 0.3, 0.3]])
  np.testing.assert_array_equal(decoded.hidden_classes, [2])
  assert decoded.hidden_class_texts == ['b']
  assert decoded.image_bytes == record.image_bytes


def test_uses_od_api_keys_with_coordinates_split_by_axis():
  example = codec.record_to_example(_record())
  feature = example.features.feature
  assert list(feature[F.object_bbox_ymin].float_list.value) == [
      np.float32(0.1), 0.0]
  assert list(feature[F.object_bbox_xmax].float_list.value) == [
      np.float32(0.6), 1.0]
  assert feature[F.source_id].bytes_list.value == [b'img-1']
  assert feature[F.is_mined].int64_list.value == [1]
  image = tf.io.decode_image(feature[F.image_encoded].bytes_list.value[0])
  assert image.shape == (8, 10, 3)


def test_record_without_optional_keys_decodes_to_empty_arrays():
  example = tf.train.Example()
  example.features.feature[F.image_encoded].bytes_list.value.append(b'x')
  example.features.feature[F.source_id].bytes_list.value.append(b'plain')
  decoded = codec.example_to_record(example.SerializeToString())
  assert decoded.boxes.shape == (0, 4)
  assert decoded.hidden_boxes.shape == (0, 4)
  assert decoded.is_mined == 0
  assert decoded.image_labels.size == 0


def test_ragged_box_columns_are_rejected():
  example = codec.record_to_example(_record())
  example.features.feature[F.object_bbox_ymin].float_list.value.append(0.3)
  try:
    codec.example_to_record(example.SerializeToString())
  except ValueError as error:
    assert 'different lengths' in str(error)
  else:
    raise AssertionError('ragged boxes were accepted')
