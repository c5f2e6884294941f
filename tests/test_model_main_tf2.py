"""model_main_tf2: train the tiny config, then evaluate its last checkpoint.

The binary's ``main`` runs in one subprocess (its absl flags are global and
other binaries define flags of the same names), called twice as a user
would: ``--num_train_steps=2``, then ``--checkpoint_dir --eval_timeout=0``.
Resuming is tested in ``tests/training/test_train_loop.py``.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from object_detection_note.core import quiet
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import Splits

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
_spec = importlib.util.spec_from_file_location(
    'model_main_test_utils',
    os.path.join(_ROOT, 'tests', 'training', 'training_test_utils.py'))
utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(utils)

# Calls model_main_tf2.main once per argv list, as separate runs would.
_DRIVER = r'''
import json
import sys

from absl import flags
from absl.testing import flagsaver

from object_detection_note import model_main_tf2

for argv in json.loads(sys.argv[1]):
  with flagsaver.flagsaver():
    model_main_tf2.main(flags.FLAGS(['model_main_tf2'] + argv))
'''

_LOSS_KEYS = {LossKeys.rpn_objectness, LossKeys.rpn_localization,
              LossKeys.box_classification, LossKeys.box_localization,
              LossKeys.total}


def test_train_then_evaluate(tmp_path):
  data_dir = utils.make_tiny_dataset(str(tmp_path / 'data'))
  config = utils.write_pipeline(tmp_path / 'pipeline.config', data_dir)
  model_dir = str(tmp_path / 'model')
  common = ['--pipeline_config_path=' + config, '--model_dir=' + model_dir]
  runs = [common + ['--num_train_steps=2', '--checkpoint_every_n=1'],
          common + ['--checkpoint_dir=' + model_dir, '--eval_timeout=0']]
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=_ROOT)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the binary is quiet by itself
  run = subprocess.run([sys.executable, '-c', _DRIVER, json.dumps(runs)],
                       env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  noise = [l for l in (run.stdout + run.stderr).splitlines()
           if quiet.is_noise(l)]
  assert not noise, noise

  # Training: a checkpoint per step (--checkpoint_every_n=1).
  assert tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths[
      :] == [os.path.join(model_dir, 'ckpt-%d' % i) for i in (1, 2)]
  tensors = utils.checkpoint_tensors(os.path.join(model_dir, 'ckpt-2'))
  assert tensors['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == 2
  assert tensors['optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'] == 2
  assert os.path.exists(os.path.join(model_dir, 'pipeline.config'))

  # TensorBoard: every loss key, the learning rate and steps/s, each step.
  scalars = utils.read_scalars(os.path.join(model_dir, 'train'))
  assert set(scalars) == _LOSS_KEYS | {'learning_rate', 'steps_per_sec'}
  for tag, points in scalars.items():
    assert sorted(s for s, _ in points) == [1, 2], tag
  assert [v for _, v in scalars['learning_rate']] == pytest.approx(
      [0.001] * 2)
  assert all(v > 0 for _, v in scalars['steps_per_sec'])
  assert all(v > 0 for _, v in scalars[LossKeys.total])

  # Evaluation of the latest checkpoint.
  with open(os.path.join(model_dir, 'eval', 'metrics.json')) as f:
    metrics = json.load(f)
  assert metrics['step'] == 2
  assert metrics['num_images'] == utils.num_images(data_dir,
                                                   Splits.source_val)
  for key in ('DetectionBoxes_Precision/mAP',
              'DetectionBoxes_Precision/mAP@.50IOU'):
    assert 0.0 <= metrics[key] <= 1.0
  eval_scalars = utils.read_scalars(os.path.join(model_dir, 'eval'))
  [(step, value)] = eval_scalars['DetectionBoxes_Precision/mAP']
  assert step == 2
  assert value == pytest.approx(metrics['DetectionBoxes_Precision/mAP'])
