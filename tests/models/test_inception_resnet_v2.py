"""Tests of the Inception-ResNet-v2 Faster R-CNN feature extractor.

Each build of the network takes several seconds on CPU, so the checks are
grouped into two tests sharing one extractor.
"""


import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import inception_resnet_v2 as irv2
from object_detection_note.models import keras_utils


@pytest.fixture(scope='module')
def extractor():
  tf.random.set_seed(0)
  fe = irv2.InceptionResnetV2FeatureExtractor(
      is_training=True, first_stage_features_stride=16, weight_decay=1e-5)
  fe.build_models()
  return fe


def test_shapes_stride_frozen_batch_norm_and_stride_8(extractor):
  first, second = extractor.build_models()
  # First stage: SAME-aligned, exactly ceil(H/16) x ceil(W/16).
  assert first.output.name.startswith(irv2.FIRST_STAGE_OUTPUT)
  assert first(tf.zeros([1, 64, 80, 3])).shape == (1, 4, 5, 1088)
  assert first(tf.zeros([2, 33, 16, 3])).shape == (2, 3, 1, 1088)
  # Second stage on 17x17 crops, Keras (VALID) geometry.
  assert second(tf.zeros([3, 17, 17, 1088])).shape == (3, 8, 8, 1536)
  second_names = {l.name for l in second.layers}
  assert {'mixed_7a', 'block8_10_conv', 'conv_7b_ac'} <= second_names
  assert 'block17_20_ac' not in second_names
  # Frozen batch norm: nothing trainable, statistics untouched in training.
  for model in (first, second):
    assert model.trainable_variables
    assert not [v for v in model.trainable_variables
                if 'batch_normalization' in v.name or '_bn/' in v.name]
  moving = [v for v in first.variables if 'moving_mean' in v.name]
  before = [v.numpy() for v in moving]
  images = extractor.preprocess(tf.random.uniform([1, 32, 32, 3], 0, 255))
  out_train = first(images, training=True)
  for old, var in zip(before, moving):
    np.testing.assert_array_equal(old, var.numpy())
  np.testing.assert_allclose(out_train.numpy(),
                             first(images, training=False).numpy(), atol=1e-5)
  # Weight decay: one L2 term per convolution kernel, split over the stages.
  num_convs = sum(isinstance(l, tf_keras.layers.Conv2D)
                  for l in extractor.classification_backbone.layers)
  assert len(first.losses) + len(second.losses) == num_convs
  # Output stride 8: atrous block17, same second stage.
  fe8 = irv2.InceptionResnetV2FeatureExtractor(False, 8)
  assert fe8.get_proposal_feature_extractor_model()(
      tf.zeros([1, 64, 64, 3])).shape == (1, 8, 8, 1088)
  assert fe8.get_box_classifier_feature_extractor_model()(
      tf.zeros([1, 17, 17, 1088])).shape == (1, 8, 8, 1536)


def test_loads_keras_application_h5(extractor, tmp_path, absl_log):
  # Built after the extractor, so its auto-generated layer names are numbered
  # differently (conv2d_244... instead of conv2d...): loading falls back to
  # layer order, as Keras does for its own application weights.
  tf.random.set_seed(1)
  app = tf_keras.applications.InceptionResNetV2(
      include_top=False, weights=None, input_shape=(None, None, 3))
  path = str(tmp_path / 'inception_resnet_v2_notop.h5')
  app.save_weights(path)
  first, second = extractor.build_models()
  crops = tf.random.uniform([2, 17, 17, 1088], seed=2)
  reference = keras_utils.extract_submodel(
      app, app.get_layer(irv2.FIRST_STAGE_OUTPUT).output, app.output)
  assert not np.allclose(second(crops).numpy(), reference(crops).numpy())
  images = extractor.preprocess(tf.random.uniform([1, 32, 32, 3], 0, 255))
  first_before = first(images).numpy()

  extractor.load_classification_weights(path)
  assert 'in layer order' in absl_log.text

  backbone = extractor.classification_backbone
  assert len(backbone.weights) == len(app.weights)
  for loaded, saved in zip(backbone.weights, app.weights):
    np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
  np.testing.assert_allclose(second(crops).numpy(), reference(crops).numpy(),
                             rtol=1e-4, atol=1e-4)
  assert not np.allclose(first(images).numpy(), first_before)
