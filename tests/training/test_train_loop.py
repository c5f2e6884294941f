"""The training loop: resume, non-finite stops, summaries, input end, XLA.

Most tests replace the detector by a one-layer stand-in (``_LinearDetector``)
so that they exercise the loop itself in a few seconds; the XLA test runs
the real tiny Faster R-CNN through ``Trainer``.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import training_test_utils as utils
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import Splits
from object_detection_note.training import train_loop

_LINEAR_KEYS = (LossKeys.rpn_objectness, LossKeys.box_classification,
                LossKeys.total)


class _LinearDetector(tf_keras.Model):
  """Stand-in detector: a dense layer on mean pixels, two losses.

  Has the inference methods ``Trainer`` calls to create variables.

  Deterministic (constant initialisers), so two runs on the same batches
  end with identical variables. With ``nan_at_call = k`` the
  rpn-objectness loss is NaN on the k-th call (the k-th train step).
  """

  def __init__(self, nan_at_call=0):
    super().__init__()
    self._nan_at_call = nan_at_call
    self.dense = tf_keras.layers.Dense(
        2, kernel_initializer=tf_keras.initializers.Constant(0.1))
    self.calls = tf.Variable(0, dtype=tf.int64, trainable=False)

  def preprocess(self, images):
    return images / 255.0, None

  def predict(self, images, true_image_shapes, training=False):
    del true_image_shapes, training
    return {'outputs': self.dense(tf.reduce_mean(images, axis=[1, 2]))}

  def postprocess(self, predictions, true_image_shapes):
    del true_image_shapes
    return predictions

  def compute_losses(self, batch, training=True):
    images, _ = self.preprocess(batch[InputFields.image])
    outputs = self.predict(images, None, training)['outputs']  # [B, 2]
    boxes = tf.cast(batch[InputFields.num_groundtruth_boxes], tf.float32)
    first = tf.reduce_mean(tf.square(outputs[:, 0] - boxes))
    second = tf.reduce_mean(tf.square(outputs[:, 1] + 1.0))
    calls = self.calls.assign_add(1)
    if self._nan_at_call:
      first = tf.where(calls == self._nan_at_call, float('nan'), first)
    return {LossKeys.rpn_objectness: first,
            LossKeys.box_classification: second,
            LossKeys.total: first + second}


@pytest.fixture
def linear_detector(monkeypatch):
  """Makes the loop build ``_LinearDetector``s; set ``.nan_at_call``."""
  settings = {'nan_at_call': 0}
  monkeypatch.setattr(
      model_builder, 'build',
      lambda *args, **kwargs: _LinearDetector(settings['nan_at_call']))
  return settings


def _full_batch_config(tmp_path, data_dir, **kwargs):
  """Every step sees the same batch: all source_train images, in order."""
  return utils.write_pipeline(
      tmp_path / 'pipeline.config', data_dir,
      batch_size=utils.num_images(data_dir, Splits.source_train),
      shuffle=False, flip=False, **kwargs)


def _ckpt(model_dir, step):
  return os.path.join(model_dir, 'ckpt-%d' % step)


def _value(tensors, suffix):
  (key,) = [k for k in tensors if k.endswith(suffix)]
  return tensors[key]


def test_resume_continues_step_and_optimizer_state(tmp_path, tiny_data_dir,
                                                   linear_detector):
  config = _full_batch_config(tmp_path, tiny_data_dir)
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  train_loop.train_loop(config, straight, num_train_steps=6,
                        checkpoint_every_n=3, log_every_n=1)

  first = train_loop.train_loop(config, resumed, num_train_steps=3,
                                checkpoint_every_n=3, log_every_n=1)
  assert first['step'] == 3
  assert tf.train.latest_checkpoint(resumed) == _ckpt(resumed, 3)
  second = train_loop.train_loop(config, resumed, num_train_steps=6,
                                 checkpoint_every_n=3, log_every_n=1)
  assert second['step'] == 6
  assert tf.train.latest_checkpoint(resumed) == _ckpt(resumed, 6)

  # The second run logged steps 4..6 only: it continued from step 3.
  steps = sorted(s for s, _ in utils.read_scalars(
      os.path.join(resumed, 'train'))[LossKeys.total])
  assert steps == [1, 2, 3, 4, 5, 6]

  at_3 = utils.checkpoint_tensors(_ckpt(resumed, 3))
  at_6 = utils.checkpoint_tensors(_ckpt(resumed, 6))
  assert _value(at_3, 'global_step/.ATTRIBUTES/VARIABLE_VALUE') == 3
  assert _value(at_6, 'global_step/.ATTRIBUTES/VARIABLE_VALUE') == 6
  assert _value(at_6, 'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE') == 6
  slots = [k for k in at_3 if k.startswith('optimizer/_variables/')]
  assert len(slots) == 4  # Adam m and v of the kernel and the bias.
  assert all(np.any(at_3[k] != 0) for k in slots)

  # 3 + 3 resumed steps == 6 straight steps: the model, the Adam slots and
  # the iteration count (bias correction) were all restored. (Not bitwise:
  # the training input may order a batch's images differently.)
  reference = utils.checkpoint_tensors(_ckpt(straight, 6))
  assert sorted(reference) == sorted(at_6)
  for key, value in reference.items():
    np.testing.assert_allclose(at_6[key], value, rtol=1e-5, atol=1e-7,
                               err_msg=key)

  # Already at 6: a rerun does nothing and writes no checkpoint.
  again = train_loop.train_loop(config, resumed, num_train_steps=6,
                                checkpoint_every_n=3)
  assert again == {'step': 6}
  assert tf.train.get_checkpoint_state(resumed).all_model_checkpoint_paths[
      -1] == _ckpt(resumed, 6)


def test_nan_loss_stops_at_its_step_without_checkpoint(tmp_path,
                                                       tiny_data_dir,
                                                       linear_detector):
  linear_detector['nan_at_call'] = 3
  config = _full_batch_config(tmp_path, tiny_data_dir)
  model_dir = str(tmp_path / 'model')
  with pytest.raises(train_loop.NonFiniteLossError) as error:
    train_loop.train_loop(config, model_dir, num_train_steps=6,
                          checkpoint_every_n=1)
  message = str(error.value)
  assert 'step 3' in message
  assert LossKeys.rpn_objectness in message
  assert LossKeys.total in message
  assert LossKeys.box_classification not in message  # It stayed finite.
  assert tf.train.latest_checkpoint(model_dir) == _ckpt(model_dir, 2)
  assert not tf.io.gfile.glob(_ckpt(model_dir, 3) + '*')
  for key, value in utils.checkpoint_tensors(_ckpt(model_dir, 2)).items():
    assert np.all(np.isfinite(value)), key


def test_nan_learning_rate_stops_before_its_checkpoint(tmp_path,
                                                       tiny_data_dir,
                                                       linear_detector):
  # Step 1's loss is finite (computed before the update), but its update
  # is NaN: nothing may be checkpointed.
  config = _full_batch_config(tmp_path, tiny_data_dir, learning_rate='nan')
  model_dir = str(tmp_path / 'model')
  with pytest.raises(train_loop.NonFiniteLossError,
                     match=r'step 1: .*variable.*learning rate'):
    train_loop.train_loop(config, model_dir, num_train_steps=4,
                          checkpoint_every_n=1)
  assert tf.train.latest_checkpoint(model_dir) is None


def test_check_finite_names_step_and_keys():
  train_loop.check_finite(4, {'a': 1.0, 'b': 0.0})
  with pytest.raises(train_loop.NonFiniteLossError,
                     match=r'step 7: non-finite loss in a, c \(a=nan, '
                     r'c=-inf\)'):
    train_loop.check_finite(7, {'a': float('nan'), 'b': 2.0,
                                'c': float('-inf')})


def test_summaries_every_loss_key_learning_rate_and_rate(tmp_path,
                                                         tiny_data_dir,
                                                         linear_detector):
  config = _full_batch_config(tmp_path, tiny_data_dir)
  model_dir = str(tmp_path / 'model')
  last = train_loop.train_loop(config, model_dir, num_train_steps=3,
                               checkpoint_every_n=10, log_every_n=2)
  scalars = utils.read_scalars(os.path.join(model_dir, 'train'))
  assert set(scalars) == set(_LINEAR_KEYS) | {'learning_rate',
                                              'steps_per_sec'}
  for tag, points in scalars.items():
    assert [s for s, _ in points] == [2, 3], tag  # Every 2nd and the last.
  for key in _LINEAR_KEYS:
    assert scalars[key][-1][1] == pytest.approx(last[key], rel=1e-6)
  assert [v for _, v in scalars['learning_rate']] == pytest.approx(
      [0.001, 0.001])
  assert all(v > 0 for _, v in scalars['steps_per_sec'])

  quiet = str(tmp_path / 'quiet')
  train_loop.train_loop(config, quiet, num_train_steps=1,
                        record_summaries=False)
  assert not tf.io.gfile.exists(os.path.join(quiet, 'train'))


def test_exhausted_input_still_saves_the_last_step(tmp_path, tiny_data_dir,
                                                   linear_detector):
  images = utils.num_images(tiny_data_dir, Splits.source_train)
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=4, num_epochs=1)
  model_dir = str(tmp_path / 'model')
  result = train_loop.train_loop(config, model_dir, num_train_steps=100,
                                 checkpoint_every_n=50)
  assert result['step'] == images // 4
  assert tf.train.latest_checkpoint(model_dir) == _ckpt(model_dir,
                                                        images // 4)


def test_trainer_drops_string_features_and_checks_replicas(tmp_path,
                                                           tiny_data_dir,
                                                           linear_detector):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  configs = config_util.get_configs_from_pipeline_file(config)
  trainer = train_loop.Trainer(configs, tf.distribute.get_strategy())
  spec = trainer.dataset().element_spec
  assert InputFields.source_id not in spec
  assert all(s.dtype != tf.string for s in spec.values())
  assert spec[InputFields.image].shape == (2, 64, 64, 3)


def test_jit_compiled_train_step_of_the_real_model(tmp_path, tiny_data_dir):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  configs = config_util.get_configs_from_pipeline_file(config)
  trainer = train_loop.Trainer(configs, tf.distribute.get_strategy(),
                               jit_compile=True)
  batch = next(iter(trainer.dataset()))
  losses = trainer.distributed_step(batch)
  assert {LossKeys.rpn_objectness, LossKeys.rpn_localization,
          LossKeys.box_classification, LossKeys.box_localization,
          LossKeys.total} <= set(losses)
  assert all(np.isfinite(float(v)) for v in losses.values())
  assert int(trainer.global_step.numpy()) == 1
  assert int(trainer.optimizer.iterations.numpy()) == 1
  # The step really is an XLA cluster: it compiled with jit_compile=True.
  graph = trainer.distributed_step.get_concrete_function(batch).graph
  functions = graph.as_graph_def().library.function
  assert any('_XlaMustCompile' in f.attr and f.attr['_XlaMustCompile'].b
             for f in functions)
