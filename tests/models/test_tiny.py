"""Tests of the tiny Faster R-CNN feature extractor."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import tiny


def _bn_variables(model, trainable=None):
  variables = model.trainable_variables if trainable else model.variables
  return [v for v in variables if '_bn/' in v.name]


@pytest.mark.parametrize('stride,height,width', [
    (8, 96, 128), (16, 96, 128), (8, 100, 60), (16, 100, 60)])
def test_first_stage_shape_follows_stride(stride, height, width):
  extractor = tiny.TinyFeatureExtractor(True, stride, depth=16)
  model = extractor.get_proposal_feature_extractor_model('first')
  features = model(tf.zeros([2, height, width, 3]))
  assert features.shape == (2, -(-height // stride), -(-width // stride), 16)
  assert extractor.proposal_feature_depth == 16
  assert model.name == 'first'


@pytest.mark.parametrize('crop', [7, 8, 14])
def test_box_classifier_shape(crop):
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=16)
  model = extractor.get_box_classifier_feature_extractor_model()
  features = model(tf.zeros([5, crop, crop, 16]))
  half = -(-crop // 2)
  assert features.shape == (5, half, half, 32)
  assert extractor.box_classifier_feature_depth == 32


def test_getters_build_once():
  extractor = tiny.TinyFeatureExtractor(True, 8)
  first, second = extractor.build_models()
  assert extractor.get_proposal_feature_extractor_model() is first
  assert extractor.get_box_classifier_feature_extractor_model() is second


def test_preprocess_maps_pixels_to_unit_range():
  extractor = tiny.TinyFeatureExtractor(False, 8)
  out = extractor.preprocess(tf.constant([[[[0.0, 127.5, 255.0]]]]))
  np.testing.assert_allclose(out.numpy(), [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)


def _weights(seed=None, global_seed=None):
  if global_seed is not None:
    tf.random.set_seed(global_seed)
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=8, seed=seed)
  first, second = extractor.build_models()
  return [w.numpy() for w in first.weights + second.weights]


@pytest.mark.parametrize('kwargs', [{'seed': 3}, {'global_seed': 3}])
def test_init_is_deterministic(kwargs):
  a, b = _weights(**kwargs), _weights(**kwargs)
  other = _weights(**{k: 4 for k in kwargs})
  for wa, wb in zip(a, b):
    np.testing.assert_array_equal(wa, wb)
  assert not np.array_equal(a[0], other[0])


def test_frozen_batch_norm_is_not_trained_nor_updated():
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=8,
                                        batch_norm_trainable=False)
  model = extractor.get_proposal_feature_extractor_model()
  assert _bn_variables(model, trainable=True) == []
  assert len(model.trainable_variables) == 4  # the four conv kernels
  before = [v.numpy() for v in _bn_variables(model)]
  images = tf.random.uniform([2, 32, 32, 3], 0, 255, seed=1)
  out_train = model(images, training=True)
  out_eval = model(images, training=False)
  for old, var in zip(before, _bn_variables(model)):
    np.testing.assert_array_equal(old, var.numpy())
  np.testing.assert_allclose(out_train.numpy(), out_eval.numpy(), atol=1e-6)


def test_trainable_batch_norm_updates_statistics_in_training():
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=8,
                                        batch_norm_trainable=True)
  model = extractor.get_proposal_feature_extractor_model()
  assert len(_bn_variables(model, trainable=True)) == 8  # gamma, beta x 4
  mean = [v for v in model.variables if 'stem1_bn/moving_mean' in v.name][0]
  before = mean.numpy()
  model(tf.random.uniform([2, 32, 32, 3], 0, 255, seed=1), training=True)
  assert not np.allclose(before, mean.numpy())


def test_weight_decay_adds_slim_l2_terms():
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=8, weight_decay=0.1)
  first, second = extractor.build_models()
  kernels = [v for v in first.trainable_variables if 'kernel' in v.name]
  expected = sum(0.1 * tf.nn.l2_loss(k) for k in kernels)
  assert len(first.losses) == len(kernels)
  np.testing.assert_allclose(tf.add_n(first.losses).numpy(),
                             expected.numpy(), rtol=1e-5)
  assert len(second.losses) == 2
  none = tiny.TinyFeatureExtractor(True, 8, depth=8).build_models()
  assert none[0].losses == [] and none[1].losses == []


def test_has_no_classification_backbone():
  extractor = tiny.TinyFeatureExtractor(True, 8)
  with pytest.raises(ValueError, match='no classification backbone'):
    extractor.load_classification_weights('/nonexistent.h5')


def test_trains_to_separate_coloured_squares():
  """A few steps of SGD make the features tell red from blue squares."""
  tf.random.set_seed(0)
  extractor = tiny.TinyFeatureExtractor(True, 8, depth=16,
                                        batch_norm_trainable=True)
  backbone = extractor.get_proposal_feature_extractor_model()
  head = tf_keras.layers.Dense(1)
  images = np.zeros([8, 32, 32, 3], np.float32)
  labels = np.zeros([8, 1], np.float32)
  for i in range(8):
    channel = 0 if i % 2 == 0 else 2
    y, x = 4 + 2 * i, 20 - 2 * i
    images[i, y:y + 8, x:x + 8, channel] = 255.0
    labels[i] = float(channel == 0)
  inputs = extractor.preprocess(tf.constant(images))
  optimizer = tf_keras.optimizers.SGD(0.05, momentum=0.9)

  def loss_fn():
    pooled = tf.reduce_mean(backbone(inputs, training=True), axis=[1, 2])
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels, head(pooled)))

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      loss = loss_fn()
    variables = backbone.trainable_variables + head.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

  first = float(loss_fn())
  for _ in range(30):
    train_step()
  assert float(loss_fn()) < 0.5 * first
