"""Tests of loading classification weights from local files."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.models import weights_io


def _model(prefix='', seed=0):
  tf.random.set_seed(seed)
  inputs = tf_keras.Input(shape=(None, None, 3))
  x = tf_keras.layers.Conv2D(
      4, 3, name=prefix + 'conv1',
      kernel_initializer=tf_keras.initializers.RandomNormal(seed=seed))(inputs)
  x = tf_keras.layers.BatchNormalization(
      name=prefix + 'bn1',
      beta_initializer=tf_keras.initializers.RandomNormal(seed=seed + 1))(x)
  x = tf_keras.layers.ReLU()(x)
  x = tf_keras.layers.Conv2D(
      6, 1, name=prefix + 'conv2',
      kernel_initializer=tf_keras.initializers.RandomNormal(seed=seed + 2))(x)
  return tf_keras.Model(inputs, x)


def _assert_same_weights(a, b):
  assert len(a.weights) == len(b.weights)
  for wa, wb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def _outputs(model):
  return model(tf.ones([1, 5, 5, 3]) * 0.5).numpy()


def test_h5_by_name(tmp_path):
  source, target = _model(seed=1), _model(seed=2)
  path = str(tmp_path / 'w.h5')
  source.save_weights(path)
  assert not np.allclose(_outputs(source), _outputs(target))
  weights_io.load_backbone_weights(target, path)
  _assert_same_weights(source, target)
  np.testing.assert_allclose(_outputs(source), _outputs(target))


def test_h5_with_other_names_loads_in_layer_order(tmp_path):
  source, target = _model('old_', seed=1), _model('new_', seed=2)
  path = str(tmp_path / 'w.hdf5')
  source.save_weights(path)
  weights_io.load_backbone_weights(target, path)
  _assert_same_weights(source, target)


@pytest.mark.filterwarnings('ignore:You are saving your model as an HDF5')
def test_whole_model_h5(tmp_path):
  source, target = _model(seed=1), _model(seed=2)
  path = str(tmp_path / 'model.h5')
  source.save(path)
  weights_io.load_backbone_weights(target, path)
  _assert_same_weights(source, target)


def test_h5_of_another_architecture_raises(tmp_path):
  inputs = tf_keras.Input(shape=(None, None, 3))
  other = tf_keras.Model(
      inputs, tf_keras.layers.Conv2D(4, 3, name='x')(inputs))
  path = str(tmp_path / 'other.h5')
  other.save_weights(path)
  with pytest.raises(ValueError, match='holds weights of 1 layers'):
    weights_io.load_backbone_weights(_model(), path)


def test_keras_v3_file(tmp_path):
  source, target = _model(seed=1), _model('renamed_', seed=2)
  path = str(tmp_path / 'model.keras')
  source.save(path)
  weights_io.load_backbone_weights(target, path)
  _assert_same_weights(source, target)


def test_tf_checkpoint_rooted_at_model(tmp_path):
  source, target = _model(seed=1), _model(seed=2)
  prefix = str(tmp_path / 'ckpt')
  source.save_weights(prefix)
  weights_io.load_backbone_weights(target, prefix)
  _assert_same_weights(source, target)


def test_tf_checkpoint_under_a_key(tmp_path):
  source, target = _model(seed=1), _model(seed=2)
  path = tf.train.Checkpoint(feature_extractor=source).save(
      str(tmp_path / 'ckpt'))
  weights_io.load_backbone_weights(target, path)
  _assert_same_weights(source, target)


def test_missing_files_raise(tmp_path):
  for name in ('missing.h5', 'missing.keras', 'missing_ckpt'):
    with pytest.raises(ValueError, match='missing'):
      weights_io.load_backbone_weights(_model(), str(tmp_path / name))
