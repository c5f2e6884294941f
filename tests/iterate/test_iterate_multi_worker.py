"""iterate --stage=train on two workers, with distillation from S.

S is trained in-process (``--stage=source``); then two processes on
127.0.0.1, each with its TF_CONFIG, run ``python -m object_detection_note.
iterate ... --stage=train --iteration=0 --num_workers=2`` into one run
directory, as a multi-worker accelerator job would. Also: an iterate config
that asks for distillation without a source detector fails at its training
stage instead of training without S.
"""
import os

import pytest
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.core.fields import LossKeys
from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.iterate import driver
from object_detection_note.iterate import run_layout as layout
from iterate_runs import MODEL as _MODEL
from iterate_runs import NOTE as _NOTE
import worker_processes

def _write_configs(root, data, source_block=True):
  source = str(root / 'source.config')
  with open(source, 'w') as f:
    f.write(_MODEL % dict(num_classes=len(synthetic_scenes.SOURCE_NAMES),
                          num_steps=2, data=data, side='source',
                          train='source_train', val='source_val'))
  note = _NOTE % dict(data=data, source=source)
  if not source_block:
    note = '\n'.join(l for l in note.splitlines()
                     if 'source_detector' not in l) + '\n'
  target = str(root / 'target.config')
  with open(target, 'w') as f:
    f.write(_MODEL % dict(num_classes=len(synthetic_scenes.TARGET_NAMES),
                          num_steps=1, data=data, side='target', train='seed',
                          val='target_val'))
    f.write(note)
  return target


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  data = str(tmp_path_factory.mktemp('data'))
  synthetic_dataset.create_dataset(
      data, seed=3, num_train_images=24, num_val_images=8,
      seed_images_per_category=1,
      config=synthetic_scenes.SceneConfig(image_size=64, max_objects=3))
  return data


def _read_scalars(directory):
  scalars = {}
  for name in sorted(os.listdir(directory)):
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(directory, name)):
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append(event.step)
  return scalars


def test_train_stage_on_two_workers_distills(tmp_path, data_dir):
  target = _write_configs(tmp_path, data_dir)
  model_dir = str(tmp_path / 'run')
  driver.run_stage(driver.make_context(target, model_dir), 'source')
  results = worker_processes.run_workers('object_detection_note.iterate', [
      '--pipeline_config_path=' + target, '--model_dir=' + model_dir,
      '--stage=train', '--iteration=0', '--num_workers=2'])
  for index, (code, stderr) in enumerate(results):
    assert code == 0, 'worker %d:\n%s' % (index, stderr[-3000:])

  configs = config_util.get_configs_from_pipeline_file(
      layout.pipeline_path(model_dir, 0))
  assert configs['note'].HasField('distillation')
  steps = configs['train_config'].num_steps
  train_dir = layout.train_dir(model_dir, 0)
  checkpoint = tf.train.latest_checkpoint(train_dir)
  assert checkpoint == os.path.join(train_dir, 'ckpt-%d' % steps)
  reader = tf.train.load_checkpoint(checkpoint)
  assert reader.get_tensor('global_step/.ATTRIBUTES/VARIABLE_VALUE') == steps
  # det-cls-s was trained: its loss was logged at the last step.
  scalars = _read_scalars(os.path.join(train_dir, 'train'))
  assert scalars[LossKeys.distillation][-1] == steps
  assert not [n for n in os.listdir(train_dir) if 'temp' in n]


def test_distillation_without_source_fails_at_train_stage(tmp_path, data_dir):
  target = _write_configs(tmp_path, data_dir, source_block=False)
  ctx = driver.make_context(target, str(tmp_path / 'run'))
  with pytest.raises(config_util.ConfigError) as error:
    driver.run_stage(ctx, 'train', 0)
  assert 'note.source_detector is missing' in str(error.value)
  assert not tf.io.gfile.glob(os.path.join(layout.train_dir(ctx.model_dir, 0),
                                           'ckpt-*'))
