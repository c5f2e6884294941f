"""crop_features samples exactly as Model Garden's multilevel_crop_and_resize."""

import numpy as np
import pytest
import tensorflow as tf

from official.vision.ops import spatial_transform_ops

from object_detection_note.meta_architectures import second_stage

STRIDE = 8


def _model_garden(features, boxes, crop_size):
  crops = spatial_transform_ops.multilevel_crop_and_resize(
      {'0': features}, boxes / float(STRIDE), output_size=crop_size)
  return tf.reshape(crops, [-1, crop_size, crop_size, features.shape[-1]])


def _boxes(height, width, outside):
  """Random boxes plus the border cases: whole image, last pixel, points."""
  rng = np.random.RandomState(0)
  size = np.array([height, width, height, width], np.float32) * STRIDE
  corners = rng.uniform(0, 1, [2, 12, 4]).astype(np.float32) * size
  boxes = np.concatenate([np.minimum(corners[..., :2], corners[..., 2:]),
                          np.maximum(corners[..., :2], corners[..., 2:])], -1)
  boxes[:, 0] = size * [0, 0, 1, 1]
  boxes[:, 1] = size - [1, 1, 0, 0]
  boxes[:, 2] = [3, 4, 3, 4]
  boxes[:, 3] = 0
  if outside:
    boxes[:, 4] = [-10, -20, size[2] + 5, size[3] * 1.5]
  return tf.constant(boxes)


@pytest.mark.parametrize('outside', [False, True])
@pytest.mark.parametrize('crop_size', [1, 5])
def test_matches_model_garden_values_and_gradients(outside, crop_size):
  features = tf.random.stateless_normal([2, 6, 9, 3], seed=(0, 1))
  boxes = _boxes(6, 9, outside)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(features)
    expected = _model_garden(features, boxes, crop_size)
    crops = second_stage.crop_features(features, boxes, STRIDE, crop_size,
                                       1, 1)
    expected_loss = tf.reduce_sum(tf.sin(expected))
    loss = tf.reduce_sum(tf.sin(crops))
  assert crops.shape == (24, crop_size, crop_size, 3)
  np.testing.assert_allclose(crops, expected, atol=2e-5)
  np.testing.assert_allclose(tape.gradient(loss, features),
                             tape.gradient(expected_loss, features),
                             atol=1e-4)


def test_graph_and_xla_match_model_garden():
  features = tf.random.stateless_normal([2, 6, 9, 3], seed=(2, 3))
  boxes = _boxes(6, 9, outside=False)
  graph = tf.function(
      lambda f, b: second_stage.crop_features(f, b, STRIDE, 5, 1, 1))
  xla = tf.function(
      lambda f, b: second_stage.crop_features(f, b, STRIDE, 5, 1, 1),
      jit_compile=True)
  xla_reference = tf.function(lambda f, b: _model_garden(f, b, 5),
                              jit_compile=True)
  np.testing.assert_allclose(graph(features, boxes),
                             _model_garden(features, boxes, 5), atol=2e-5)
  np.testing.assert_allclose(xla(features, boxes),
                             xla_reference(features, boxes), atol=1e-6)


def test_max_pool_after_crop():
  features = tf.random.stateless_normal([1, 6, 6, 2], seed=(4, 5))
  boxes = tf.constant([[[0., 0., 48., 48.], [8., 8., 24., 40.]]])
  pooled = second_stage.crop_features(features, boxes, STRIDE, 6, 2, 2)
  crops = _model_garden(features, boxes, 6)
  np.testing.assert_allclose(
      pooled, tf.nn.max_pool2d(crops, 2, 2, padding='VALID'), atol=2e-5)
