"""The faster convolution input gradient gives TF's gradients."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import keras_utils


def _model(seed):
  """Convolutions of every kind the helper meets in the extractors."""
  tf_keras.utils.set_random_seed(seed)
  inputs = tf_keras.Input(shape=(None, None, 3))
  x = tf_keras.layers.Conv2D(6, 3, strides=2, padding='same', name='s2')(inputs)
  x = tf_keras.layers.Conv2D(5, 1, name='pointwise')(x)
  x = tf_keras.layers.Conv2D(4, 3, padding='same', use_bias=False,
                             name='same3')(x)
  x = tf_keras.layers.Conv2D(4, (1, 3), padding='same', name='row')(x)
  x = tf_keras.layers.Conv2D(4, (5, 1), padding='same', name='col')(x)
  x = tf_keras.layers.Conv2D(3, 3, padding='valid', name='valid3')(x)
  x = tf_keras.layers.Conv2D(3, 2, padding='same', name='even')(x)
  x = tf_keras.layers.Conv2D(3, 3, padding='same', dilation_rate=2,
                             name='dilated')(x)
  return tf_keras.Model(inputs, x)


def _loss_and_gradients(model, images, jit_compile=False):
  @tf.function(jit_compile=jit_compile)
  def run(images):
    with tf.GradientTape() as tape:
      tape.watch(images)
      loss = tf.reduce_sum(tf.sin(model(images)))
    return loss, tape.gradient(loss, [images] + model.trainable_variables)
  return run(images)


@pytest.mark.parametrize('jit_compile', [False, True])
def test_gradients_match_tensorflow(jit_compile):
  images = tf.random.stateless_normal([2, 12, 10, 3], seed=(1, 2))
  reference = _model(seed=3)
  patched = _model(seed=3)
  assert keras_utils.use_convolution_input_gradients(patched.layers) == 8
  # Patching twice changes nothing more.
  assert keras_utils.use_convolution_input_gradients(patched.layers) == 0
  ref_loss, ref_grads = _loss_and_gradients(reference, images, jit_compile)
  loss, grads = _loss_and_gradients(patched, images, jit_compile)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  assert len(grads) == len(ref_grads) == 1 + 8 + 7  # images, kernels, biases
  for grad, ref_grad in zip(grads, ref_grads):
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_only_eligible_calls_use_the_custom_gradient():
  model = _model(seed=0)
  keras_utils.use_convolution_input_gradients(model.layers)
  graph = tf.function(model).get_concrete_function(
      tf.TensorSpec([1, 12, 12, 3])).graph
  custom = {op.name.split('/')[1] for op in graph.get_operations()
            if op.type == 'IdentityN'}
  assert custom == {'pointwise', 'same3', 'row', 'col'}


def test_eligibility_follows_layer_changes_after_build():
  model = _model(seed=0)
  keras_utils.use_convolution_input_gradients(model.layers)
  model.get_layer('valid3').padding = 'same'
  model.get_layer('pointwise').strides = (2, 2)
  graph = tf.function(model).get_concrete_function(
      tf.TensorSpec([1, 12, 12, 3])).graph
  custom = {op.name.split('/')[1] for op in graph.get_operations()
            if op.type == 'IdentityN'}
  assert custom == {'valid3', 'same3', 'row', 'col'}
