"""Augmentation steps: pixel ranges, and boxes that follow the pixels."""
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.data.input import preprocessor
from object_detection_note.protos import preprocessor_pb2

_HEIGHT, _WIDTH = 40, 60
# One object: a white rectangle on black, its box, its class.
_BOX = np.array([[0.25, 0.5, 0.75, 0.8]], np.float32)


def _scene():
  image = np.zeros([_HEIGHT, _WIDTH, 3], np.float32)
  image[10:30, 30:48] = 255.0
  return (tf.constant(image), tf.constant(_BOX),
          tf.constant([7], tf.int32))


def _assert_box_on_object(image, boxes):
  """Every box covers white pixels only at its inside, black just outside."""
  image = image.numpy()
  height, width = image.shape[:2]
  for ymin, xmin, ymax, xmax in boxes.numpy():
    top, bottom = int(np.ceil(ymin * height)), int(np.floor(ymax * height))
    left, right = int(np.ceil(xmin * width)), int(np.floor(xmax * width))
    inside = image[top + 1:bottom - 1, left + 1:right - 1]
    assert inside.size and inside.min() > 200, (ymin, xmin, ymax, xmax)
    if bottom + 2 < height:
      assert image[bottom + 1:, left + 1:right - 1].max() < 50
    if right + 2 < width:
      assert image[top + 1:bottom - 1, right + 1:].max() < 50


def _step(text):
  return text_format.Parse(text, preprocessor_pb2.PreprocessingStep())


@pytest.mark.parametrize('text', [
    'random_horizontal_flip { probability: 1.0 }',
    'random_vertical_flip { probability: 1.0 }',
    'random_square_crop_by_scale { scale_min: 0.6 scale_max: 1.3 }',
    'random_scale_crop_and_pad_to_square { output_size: 32 scale_min: 0.5 '
    'scale_max: 2.0 }',
])
def test_geometric_steps_keep_boxes_on_the_object(text):
  tf.random.set_seed(3)
  kept = 0
  for _ in range(8):
    image, boxes, classes = preprocessor.augment(*_scene(), [_step(text)])
    assert boxes.shape[0] == classes.shape[0]
    assert np.all(classes.numpy() == 7)
    assert image.numpy().min() >= 0 and image.numpy().max() <= 255
    if boxes.shape[0]:
      kept += 1
      assert np.all(boxes.numpy() >= 0) and np.all(boxes.numpy() <= 1)
      _assert_box_on_object(image, boxes)
  assert kept > 0


def test_flip_probability_zero_is_identity():
  image, boxes, _ = _scene()
  out_image, out_boxes = preprocessor.random_horizontal_flip(image, boxes, 0.0)
  np.testing.assert_array_equal(out_image, image)
  np.testing.assert_array_equal(out_boxes, boxes)


def test_horizontal_flip_mirrors_boxes():
  image, boxes, _ = _scene()
  _, flipped = preprocessor.random_horizontal_flip(image, boxes, 1.0)
  np.testing.assert_allclose(flipped, [[0.25, 0.2, 0.75, 0.5]], atol=1e-6)


def test_square_crop_output_is_square_of_the_scaled_side():
  tf.random.set_seed(0)
  image, _, _ = preprocessor.random_square_crop_by_scale(
      *_scene(), max_border=8, scale_min=0.5, scale_max=0.5, num_scales=1)
  assert image.shape == (30, 30, 3)  # 0.5 * max(40, 60).


def test_scale_crop_and_pad_output_size_and_zero_padding():
  tf.random.set_seed(0)
  image, boxes, _ = preprocessor.random_scale_crop_and_pad_to_square(
      *_scene(), output_size=32, scale_min=0.5, scale_max=0.5)
  assert image.shape == (32, 32, 3)
  # Scaled to 11 x 16 (longer side 16): the rest of the square is padding.
  assert image.numpy()[11:].max() == 0 and image.numpy()[:, 16:].max() == 0
  np.testing.assert_allclose(boxes, [[0.25 * 11 / 32, 0.25, 0.75 * 11 / 32,
                                      0.4]], atol=1e-6)


def test_crop_window_drops_boxes_outside_and_pads():
  image, boxes, classes = _scene()
  out_image, out_boxes, out_classes = preprocessor.crop_window(
      image, boxes, classes, top=-5, left=-5, height=10, width=10)
  assert out_image.shape == (10, 10, 3)
  assert out_boxes.shape == (0, 4) and out_classes.shape == (0,)
  assert out_image.numpy()[:5].max() == 0


@pytest.mark.parametrize('text,check', [
    ('random_adjust_brightness { max_delta: 0.2 }',
     lambda before, after: np.abs(after - before).max() <= 0.2 * 255 + 1e-3),
    ('random_adjust_contrast { min_delta: 0.8 max_delta: 1.25 }', None),
    ('random_adjust_hue { max_delta: 0.02 }', None),
    ('random_adjust_saturation { min_delta: 0.8 max_delta: 1.25 }', None),
    ('random_rgb_to_gray { probability: 1.0 }',
     lambda before, after: np.allclose(after[..., 0], after[..., 2])),
])
def test_colour_steps_change_pixels_within_range_not_boxes(text, check):
  tf.random.set_seed(1)
  rng = np.random.default_rng(0)
  image = tf.constant(rng.uniform(0, 255, [8, 8, 3]), tf.float32)
  boxes = tf.constant(_BOX)
  classes = tf.constant([7], tf.int32)
  out_image, out_boxes, out_classes = preprocessor.augment(
      image, boxes, classes, [_step(text)])
  after = out_image.numpy()
  assert after.shape == (8, 8, 3)
  assert after.min() >= 0 and after.max() <= 255
  assert not np.allclose(after, image.numpy())
  np.testing.assert_array_equal(out_boxes, boxes)
  np.testing.assert_array_equal(out_classes, classes)
  if check is not None:
    assert check(image.numpy(), after)


def test_unimplemented_step_is_an_error():
  with pytest.raises(ValueError, match='normalize_image is not implemented'):
    preprocessor.augment(*_scene(), [_step('normalize_image {}')])
