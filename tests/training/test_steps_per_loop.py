"""Several training steps per tf.function call (steps_per_loop)."""
import os

import numpy as np
import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.config import config_util
from object_detection_note.training import train_loop


@pytest.mark.parametrize('step, steps_per_loop, every, expected', [
    (0, 3, [5], 3), (3, 3, [5], 2), (5, 3, [5], 2), (0, 10, [4, 6], 4),
    (4, 10, [4, 6], 2), (6, 100, [100], 1), (0, 1, [5], 1),
])
def test_calls_stop_where_the_host_must_act(step, steps_per_loop, every,
                                            expected):
  assert train_loop.steps_until_host(step, 7, steps_per_loop,
                                     every) == expected


def test_one_call_runs_n_steps_with_one_trace(tiny_data_dir, tmp_path):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  trainer = train_loop.Trainer(
      config_util.get_configs_from_pipeline_file(config),
      tf.distribute.get_strategy())
  iterator = iter(trainer.dataset())
  before = [v.numpy() for v in trainer.model.trainable_variables]
  losses = trainer.distributed_steps(iterator, tf.constant(3))
  assert int(trainer.global_step.numpy()) == 3
  assert int(trainer.optimizer.iterations.numpy()) == 3
  assert all(np.isfinite(float(v)) for v in losses.values())
  trainer.distributed_steps(iterator, tf.constant(2))
  assert int(trainer.global_step.numpy()) == 5
  assert trainer.distributed_steps.experimental_get_tracing_count() == 1
  after = [v.numpy() for v in trainer.model.trainable_variables]
  assert any(np.any(a != b) for a, b in zip(after, before))


def test_train_loop_with_steps_per_loop(tmp_path, tiny_data_dir):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  model_dir = str(tmp_path / 'model')
  result = train_loop.train_loop(config, model_dir, num_train_steps=7,
                                 checkpoint_every_n=5, steps_per_loop=3)
  # Calls of 3, 2 (to the checkpoint at 5) and 2 steps.
  assert result['step'] == 7
  assert [os.path.basename(p) for p in tf.train.get_checkpoint_state(
      model_dir).all_model_checkpoint_paths] == ['ckpt-5', 'ckpt-7']
  for step in (5, 7):
    tensors = utils.checkpoint_tensors(os.path.join(model_dir,
                                                    'ckpt-%d' % step))
    assert tensors['optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'] == step
    assert tensors['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == step
  scalars = utils.read_scalars(os.path.join(model_dir, 'train'))
  assert [s for s, _ in scalars['learning_rate']] == [5, 7]
