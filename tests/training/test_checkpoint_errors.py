"""Checkpoint read failures name the checkpoint and say what is wrong:
truncated files, or a model that does not match (variables and shapes), in
fine-tuning, evaluation, export and model_main_tf2's --checkpoint_dir mode.
"""
import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import exporter_lib_v2
from object_detection_note.checkpoints import checkpoint_errors
from object_detection_note.checkpoints import checkpoints

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


class _Tiny(tf.Module):

  def __init__(self, classes):
    super().__init__()
    self.kernel = tf.Variable(tf.ones([4, classes]))
    self.head = tf.Module()
    self.head.bias = tf.Variable(tf.zeros([classes]))


def _truncate(path, keep=10):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:keep])


def test_variable_keys_are_the_keys_tf_writes(tmp_path):
  root = tf.train.Checkpoint(model=_Tiny(3))
  prefix = root.save(str(tmp_path / 'ckpt'))
  stored = {k for k, _ in tf.train.list_variables(prefix)}
  keys = set(checkpoint_errors.variable_keys(root))
  assert keys == {'model/kernel/.ATTRIBUTES/VARIABLE_VALUE',
                  'model/head/bias/.ATTRIBUTES/VARIABLE_VALUE',
                  'save_counter/.ATTRIBUTES/VARIABLE_VALUE'}
  assert keys <= stored


def test_mismatch_names_variables_and_shapes(tmp_path):
  prefix = tf.train.Checkpoint(model=_Tiny(3)).save(str(tmp_path / 'ckpt'))
  with pytest.raises(checkpoint_errors.CheckpointError) as error:
    checkpoint_errors.restore(tf.train.Checkpoint(model=_Tiny(5)), prefix)
  message = str(error.value)
  assert prefix in message and 'does not match the model' in message
  assert 'model/head/bias model [5] vs checkpoint [3]' in message
  assert 'model/kernel model [4, 5] vs checkpoint [4, 3]' in message


def test_truncated_data_and_index_files_are_named(tmp_path):
  prefix = tf.train.Checkpoint(model=_Tiny(3)).save(str(tmp_path / 'ckpt'))
  data_file = prefix + '.data-00000-of-00001'
  _truncate(data_file)
  with pytest.raises(checkpoint_errors.CheckpointError) as error:
    checkpoint_errors.restore(tf.train.Checkpoint(model=_Tiny(3)), prefix)
  message = str(error.value)
  assert 'checkpoint %s is truncated or corrupt' % prefix in message
  assert '%s (10 bytes)' % data_file in message

  other = tf.train.Checkpoint(model=_Tiny(3)).write(str(tmp_path / 'other'))
  _truncate(other + '.index', keep=30)
  with pytest.raises(checkpoint_errors.CheckpointError,
                     match='%s is truncated or corrupt' % re.escape(other)):
    checkpoint_errors.restore(tf.train.Checkpoint(model=_Tiny(3)), other)
  with pytest.raises(checkpoint_errors.CheckpointError,
                     match='truncated or corrupt'):
    checkpoint_errors.read_step(other)


def _model(configs):
  model = model_builder.build(configs['model'], is_training=False,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  return model


@pytest.fixture(scope='module')
def saved_detector(tmp_path_factory, tiny_data_dir):
  """A tiny detector with 6 classes saved in the training layout."""
  work = tmp_path_factory.mktemp('ckpt_errors')
  configs = config_util.get_configs_from_pipeline_file(
      utils.write_pipeline(work / 'six.config', tiny_data_dir))
  checkpoint = tf.train.Checkpoint(
      model=_model(configs), global_step=tf.Variable(3, dtype=tf.int64))
  prefix = tf.train.CheckpointManager(checkpoint, str(work / 'train'),
                                      1).save()
  return work, prefix


def test_real_model_with_other_num_classes(saved_detector, tiny_data_dir,
                                           tmp_path):
  _, prefix = saved_detector
  three = utils.write_pipeline(tmp_path / 'three.config', tiny_data_dir,
                               num_classes=3,
                               label_map='target_label_map.pbtxt')
  configs = config_util.get_configs_from_pipeline_file(three)
  with pytest.raises(checkpoint_errors.CheckpointError) as error:
    eval_loop.restore_for_eval(configs, prefix)
  message = str(error.value)
  assert prefix in message and 'does not match the model' in message
  # Class logits: 3 + 1 outputs in the model, 6 + 1 in the checkpoint.
  assert re.search(r'model/\S+ model \[\d+, 4\] vs checkpoint \[\d+, 7\]',
                   message), message
  # Export names it too.
  with pytest.raises(exporter_lib_v2.ExportError, match='does not match'):
    exporter_lib_v2.export_inference_graph(
        'image_tensor', config_util.read_pipeline_config(three),
        os.path.dirname(prefix), str(tmp_path / 'exported'))


def test_truncated_checkpoint_in_eval_fine_tune_and_export(saved_detector,
                                                           tiny_data_dir,
                                                           tmp_path):
  work, prefix = saved_detector
  broken_dir = tmp_path / 'broken'
  broken_dir.mkdir()
  for name in os.listdir(os.path.dirname(prefix)):
    with open(os.path.join(os.path.dirname(prefix), name), 'rb') as f:
      (broken_dir / name).write_bytes(f.read())
  broken = str(broken_dir / os.path.basename(prefix))
  _truncate(broken + '.data-00000-of-00001', keep=1000)
  config = utils.write_pipeline(work / 'six.config', tiny_data_dir)
  configs = config_util.get_configs_from_pipeline_file(config)

  with pytest.raises(checkpoint_errors.CheckpointError,
                     match='checkpoint %s is truncated' % re.escape(broken)):
    eval_loop.restore_for_eval(configs, broken)
  with pytest.raises(checkpoint_errors.CheckpointError,
                     match='fine_tune_checkpoint %s is truncated' %
                     re.escape(broken)):
    checkpoints.restore_fine_tune(_model(configs), str(broken_dir), 'full')
  with pytest.raises(exporter_lib_v2.ExportError, match='truncated'):
    exporter_lib_v2.export_inference_graph(
        'image_tensor', config_util.read_pipeline_config(config),
        str(broken_dir), str(tmp_path / 'exported'))


# Runs model_main_tf2.main once per argv list; prints each exit message.
_DRIVER = r'''
import json
import sys

from absl import flags
from absl.testing import flagsaver

from object_detection_note import model_main_tf2

for argv in json.loads(sys.argv[1]):
  with flagsaver.flagsaver():
    try:
      model_main_tf2.main(flags.FLAGS(['model_main_tf2'] + argv))
      print('EXIT 0')
    except SystemExit as exit:
      print('EXIT', json.dumps(str(exit.code)))
'''


def test_model_main_checkpoint_dir_errors_exit_non_zero(tiny_data_dir,
                                                        tmp_path):
  config = utils.write_pipeline(tmp_path / 'six.config', tiny_data_dir)
  (tmp_path / 'empty').mkdir()
  common = ['--pipeline_config_path=' + config,
            '--model_dir=' + str(tmp_path / 'model')]
  runs = [common + ['--checkpoint_dir=' + str(tmp_path / 'typo')],
          common + ['--checkpoint_dir=' + str(tmp_path / 'empty'),
                    '--eval_timeout=1']]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
             PYTHONPATH=_ROOT)
  run = subprocess.run([sys.executable, '-c', _DRIVER, json.dumps(runs)],
                       env=env, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]
  exits = [json.loads(line[len('EXIT '):]) for line in run.stdout.splitlines()
           if line.startswith('EXIT ')]
  assert len(exits) == 2
  assert exits[0] == ('model_main_tf2: error: --checkpoint_dir %s: directory '
                      'not found' % (tmp_path / 'typo'))
  assert 'nothing was evaluated' in exits[1]
  assert '--eval_timeout=1 ' in exits[1]
  assert not (tmp_path / 'model' / 'eval' / 'metrics.json').exists()
