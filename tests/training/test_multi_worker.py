"""Two-worker MultiWorkerMirroredStrategy training through model_main_tf2.

Two processes on 127.0.0.1, each with its TF_CONFIG, train the tiny config
into one shared --model_dir, as a user starts a multi-worker job. The tiny
dataset has one shard per split, fewer files than workers, so the input is
sharded by record. Checked: both exit 0; model_dir holds one checkpoint
series written by the chief, whose step counter and optimizer iterations
equal the number of steps (one synchronised update per step, not one per
worker); the non-chief's temporary directory is gone; the summaries and
pipeline.config are the chief's.
"""
import os

import numpy as np
import tensorflow as tf

import training_test_utils as utils
import worker_processes
from object_detection_note.config import config_util
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.data.input import inputs

_STEPS = 3


def _start_workers(config, model_dir, num_workers=2):
  return worker_processes.run_workers('object_detection_note.model_main_tf2', [
      '--pipeline_config_path=' + config, '--model_dir=' + model_dir,
      '--num_workers=%d' % num_workers, '--num_train_steps=%d' % _STEPS,
      '--checkpoint_every_n=2'], num_workers)


def test_two_workers_train_into_one_model_dir(tmp_path, tiny_data_dir):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  model_dir = str(tmp_path / 'model')
  results = _start_workers(config, model_dir)
  for index, (code, stderr) in enumerate(results):
    assert code == 0, 'worker %d:\n%s' % (index, stderr[-3000:])

  # One checkpoint series, the chief's: ckpt-2 (checkpoint_every_n) and the
  # final ckpt-3, each step one update of the synchronised model.
  state = tf.train.get_checkpoint_state(model_dir)
  assert list(state.all_model_checkpoint_paths) == [
      os.path.join(model_dir, 'ckpt-2'), os.path.join(model_dir, 'ckpt-3')]
  tensors = utils.checkpoint_tensors(os.path.join(model_dir, 'ckpt-3'))
  assert tensors['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == _STEPS
  assert tensors['optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'] == _STEPS
  weights = [v for k, v in tensors.items() if k.startswith('model/')]
  assert weights and all(np.all(np.isfinite(w)) for w in weights)

  # Only the chief's files remain: no temp_worker_* dir, no *_temp shards.
  leftovers = sorted(os.listdir(model_dir))
  assert not [n for n in leftovers if 'temp' in n], leftovers
  assert 'pipeline.config' in leftovers
  events = os.listdir(os.path.join(model_dir, 'train'))
  assert len(events) == 1, events
  steps = utils.read_scalars(os.path.join(model_dir, 'train'))[LossKeys.total]
  assert [s for s, _ in steps] == [2, 3]  # every checkpoint_every_n, last


class _Context:
  """The part of tf.distribute.InputContext that build_dataset reads."""

  def __init__(self, num_input_pipelines, input_pipeline_id):
    self.num_input_pipelines = num_input_pipelines
    self.input_pipeline_id = input_pipeline_id


def test_fewer_files_than_workers_shards_records(tmp_path, tiny_data_dir):
  """One file, two input pipelines: disjoint halves that cover every record."""
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=1)
  configs = config_util.get_configs_from_pipeline_file(config)
  reader = configs['train_input_config']
  reader.num_epochs = 1
  reader.shuffle = False
  files = tf.io.gfile.glob(reader.tf_record_input_reader.input_path[0])
  assert len(files) == 1
  ids = []
  for worker in range(2):
    dataset = inputs.build_dataset(reader, configs['model'], 1, True,
                                   configs['train_config'],
                                   _Context(2, worker))
    ids.append([bytes(b[InputFields.source_id].numpy()[0]) for b in dataset])
  total = sum(1 for _ in tf.data.TFRecordDataset(files))
  assert ids[0] and ids[1]
  assert not set(ids[0]) & set(ids[1])
  assert len(ids[0]) + len(ids[1]) == total
