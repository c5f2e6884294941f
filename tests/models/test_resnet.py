"""Tests of the ResNet-50/101 Faster R-CNN feature extractors."""


import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import keras_utils
from object_detection_note.models import resnet


@pytest.fixture(scope='module')
def extractor():
  tf.random.set_seed(0)
  fe = resnet.ResnetFeatureExtractor(is_training=True,
                                     first_stage_features_stride=16, depth=50)
  fe.build_models()
  return fe


def test_shapes_and_stride(extractor):
  first, second = extractor.build_models()
  features = first(tf.zeros([2, 64, 96, 3]), training=True)
  assert features.shape == (2, 4, 6, 1024)
  assert extractor.proposal_feature_depth == 1024
  crops = second(tf.zeros([3, 14, 14, 1024]), training=True)
  assert crops.shape == (3, 7, 7, 2048)
  assert extractor.box_classifier_feature_depth == 2048
  assert extractor.default_crop_size == 14
  names = {l.name for l in second.layers}
  assert 'conv5_block1_1_conv' in names and 'conv4_block6_out' not in names


def test_batch_norm_frozen(extractor):
  first, second = extractor.build_models()
  for model in (first, second):
    assert model.trainable_variables
    assert not [v for v in model.trainable_variables if '_bn/' in v.name]
  moving = [v for v in first.variables if 'moving_' in v.name]
  before = [v.numpy() for v in moving]
  first(tf.random.uniform([1, 32, 32, 3], 0, 255, seed=2), training=True)
  for old, var in zip(before, moving):
    np.testing.assert_array_equal(old, var.numpy())


def test_preprocessing_modes():
  pixel = tf.constant([[[[200.0, 100.0, 50.0]]]])
  caffe = resnet.ResnetFeatureExtractor(False, 16).preprocess(pixel)
  np.testing.assert_allclose(
      caffe.numpy().ravel(), [50.0 - 103.939, 100.0 - 116.779, 200.0 - 123.68],
      rtol=1e-5)
  od_api = resnet.ResnetFeatureExtractor(
      False, 16, preprocessing='od_api').preprocess(pixel)
  np.testing.assert_allclose(
      od_api.numpy().ravel(), [200.0 - 123.68, 100.0 - 116.779, 50.0 - 103.939],
      rtol=1e-5)


def test_loads_keras_application_h5_by_name(extractor, tmp_path, absl_log):
  tf.random.set_seed(1)
  app = tf_keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
  # Non-trivial batch-norm statistics, so that they are checked too.
  for layer in app.layers:
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      layer.moving_mean.assign(tf.random.uniform(layer.moving_mean.shape))
  path = str(tmp_path / 'resnet50_notop.h5')
  app.save_weights(path)
  reference = tf_keras.Model(app.input,
                             app.get_layer('conv4_block6_out').output)
  images = extractor.preprocess(
      tf.random.uniform([1, 48, 48, 3], 0, 255, seed=3))
  first, second = extractor.build_models()
  assert not np.allclose(first(images).numpy(), reference(images).numpy())
  extractor.load_classification_weights(path)
  assert 'by name' in absl_log.text
  np.testing.assert_allclose(first(images, training=True).numpy(),
                             reference(images).numpy(), rtol=1e-4, atol=1e-4)
  crops = tf.random.uniform([2, 14, 14, 1024], seed=4)
  reference_second = keras_utils.extract_submodel(
      app, app.get_layer('conv4_block6_out').output, app.output)
  np.testing.assert_allclose(second(crops).numpy(),
                             reference_second(crops).numpy(),
                             rtol=1e-4, atol=1e-4)
