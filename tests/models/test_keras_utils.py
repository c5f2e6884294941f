"""Tests of the functional-model surgery helpers."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import keras_utils


def _two_branch_model():
  """input -> conv_a -> bn -> [conv_b, conv_c] -> add -> conv_d."""
  inputs = tf_keras.Input(shape=(None, None, 3))
  x = tf_keras.layers.Conv2D(4, 3, padding='same', name='conv_a')(inputs)
  x = tf_keras.layers.BatchNormalization(name='bn')(x)
  b = tf_keras.layers.Conv2D(4, 3, padding='same', name='conv_b')(x)
  c = tf_keras.layers.Conv2D(4, 1, name='conv_c')(x)
  y = tf_keras.layers.Add(name='add')([b, c])
  y = tf_keras.layers.Conv2D(5, 3, strides=2, padding='same', name='conv_d')(y)
  return tf_keras.Model(inputs, y)


def test_extract_submodel_shares_layers_and_matches_full_model():
  model = _two_branch_model()
  cut = model.get_layer('bn').output
  head = keras_utils.extract_submodel(model, cut, model.output, name='head')
  assert head.name == 'head'
  assert {l.name for l in head.layers} == {
      head.layers[0].name, 'conv_b', 'conv_c', 'add', 'conv_d'}
  assert head.get_layer('conv_b') is model.get_layer('conv_b')
  images = tf.random.uniform([2, 8, 8, 3], seed=1)
  stem = tf_keras.Model(model.input, cut)
  np.testing.assert_allclose(head(stem(images)).numpy(),
                             model(images).numpy(), rtol=1e-5, atol=1e-6)
  # Shared variables: a change in the original shows in the submodel.
  kernel = model.get_layer('conv_d').kernel
  kernel.assign(tf.zeros_like(kernel))
  bias = model.get_layer('conv_d').bias.numpy()
  out = head(tf.ones([1, 4, 4, 4])).numpy()
  np.testing.assert_allclose(out, np.broadcast_to(bias, out.shape))


def test_extract_submodel_rejects_other_inputs():
  model = _two_branch_model()
  with pytest.raises(ValueError, match='not reachable'):
    keras_utils.extract_submodel(model, model.get_layer('conv_b').output,
                                 model.output)


def test_ancestor_layers():
  model = _two_branch_model()
  names = {l.name for l in keras_utils.ancestor_layers(
      model.get_layer('add').output)}
  assert names == {model.layers[0].name, 'conv_a', 'bn', 'conv_b', 'conv_c',
                   'add'}


def test_freeze_batch_norm_counts_and_freezes():
  model = _two_branch_model()
  assert keras_utils.freeze_batch_norm(model) == 1
  assert not model.get_layer('bn').trainable
  assert all('bn/' not in v.name for v in model.trainable_variables)


def test_add_kernel_regularization_uses_slim_convention():
  model = _two_branch_model()
  regularizer = keras_utils.l2_kernel_regularizer(0.01)
  assert keras_utils.add_kernel_regularization(model.layers, regularizer) == 4
  kernels = [l.kernel for l in model.layers
             if isinstance(l, tf_keras.layers.Conv2D)]
  expected = sum(0.01 * tf.nn.l2_loss(k) for k in kernels)
  np.testing.assert_allclose(tf.add_n(model.losses).numpy(),
                             expected.numpy(), rtol=1e-5)
  assert keras_utils.l2_kernel_regularizer(0.0) is None
  assert keras_utils.add_kernel_regularization(model.layers, None) == 0
