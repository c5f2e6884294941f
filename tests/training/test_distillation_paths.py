"""Distillation on every training path: trained with S, or a clear error.

A config whose ``note`` block asks for distillation makes ``train_loop``
(behind ``model_main_tf2`` and the iterate loop) restore S from
``note.source_detector`` and train det-cls-s; when S cannot be restored the
run stops before any step with an error naming the file and the field.
"""
import os
import subprocess
import sys

import pytest

import training_test_utils as utils
from object_detection_note.config import config_util
from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import Splits
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.training import train_loop

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _target_config(path, data_dir, source_detector):
  """Target-class config with distillation and the given source block."""
  text = utils.pipeline_text(
      data_dir, num_classes=len(synthetic_scenes.TARGET_NAMES), train_split=Splits.seed,
      eval_split=Splits.target_val, label_map=DatasetFiles.target_label_map)
  text += 'note {\n  distillation { weight: 1.0 }\n%s}\n' % source_detector
  with open(path, 'w') as f:
    f.write(text)
  return str(path)


@pytest.fixture(scope='module')
def source_run(tmp_path_factory, tiny_data_dir):
  """S trained for one step: (its config, its model_dir)."""
  root = tmp_path_factory.mktemp('source')
  config = utils.write_pipeline(root / 'source.config', tiny_data_dir)
  model_dir = str(root / 'model')
  train_loop.train_loop(config, model_dir, num_train_steps=1,
                        record_summaries=False)
  return config, model_dir


def test_trains_with_source_detector(tmp_path, tiny_data_dir, source_run):
  source_config, source_dir = source_run
  config = _target_config(
      tmp_path / 'target.config', tiny_data_dir,
      '  source_detector { pipeline_config_path: "%s" checkpoint_dir: "%s" }\n'
      % (source_config, source_dir))
  result = train_loop.train_loop(config, str(tmp_path / 'model'),
                                 num_train_steps=1, record_summaries=False)
  assert result['step'] == 1
  assert result[LossKeys.distillation] > 0.0


@pytest.mark.parametrize('source_block, field', [
    ('', 'note.source_detector is missing'),
    ('  source_detector { pipeline_config_path: "%(config)s" }\n',
     'note.source_detector.checkpoint_dir is empty'),
    ('  source_detector { pipeline_config_path: "%(config)s" '
     'checkpoint_dir: "%(empty)s" }\n',
     'note.source_detector.checkpoint_dir: no checkpoint'),
    ('  source_detector { checkpoint_dir: "%(ckpt)s" }\n',
     'note.source_detector.pipeline_config_path is empty'),
])
def test_impossible_distillation_is_an_error(tmp_path, tiny_data_dir,
                                             source_run, source_block, field):
  source_config, source_dir = source_run
  empty = tmp_path / 'no_checkpoint'
  empty.mkdir()
  config = _target_config(tmp_path / 'target.config', tiny_data_dir,
                          source_block % dict(config=source_config,
                                              empty=empty, ckpt=source_dir))
  model_dir = tmp_path / 'model'
  with pytest.raises(config_util.ConfigError) as error:
    train_loop.train_loop(config, str(model_dir), num_train_steps=1)
  assert str(error.value).startswith(config + ':')
  assert field in str(error.value)
  assert not model_dir.exists() or not list(model_dir.glob('ckpt-*'))


def test_model_main_tf2_refuses_distillation_without_source(tmp_path,
                                                            tiny_data_dir):
  config = _target_config(tmp_path / 'target.config', tiny_data_dir, '')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
             PYTHONPATH=_ROOT)
  run = subprocess.run(
      [sys.executable, '-m', 'object_detection_note.model_main_tf2',
       '--pipeline_config_path=' + config,
       '--model_dir=' + str(tmp_path / 'model'), '--num_train_steps=1'],
      env=env, capture_output=True, text=True, timeout=300)
  assert run.returncode != 0
  assert 'note.source_detector is missing' in run.stderr
  assert not (tmp_path / 'model').exists() or not list(
      (tmp_path / 'model').glob('ckpt-*'))
