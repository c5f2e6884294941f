"""Where an iterate run keeps its files, and the JSON records of finished stages.

  <model_dir>/
    run.json                      config path + hash + seed of the run (checked on resume)
    source/                       S: pipeline.config, checkpoints (unless given)
    iteration_00/                 T^0 (trained on B0, initialised from S)
      pipeline.config             the exact training config of this iteration
      train/                      checkpoints, TensorBoard
      eval/metrics.json           target-val metrics
      manifest.json               written last: the iteration is complete
    iteration_01/                 T^1
      mined/mined.tfrecord-*      B^1, mined with T^0 from all of A
      mined/mining_metrics.json
      mined/manifest.json         counts + checksums; mining is complete
      pipeline.config  train/  eval/  manifest.json
    report.md  report.json  report.png

A stage is complete when its marker file exists; markers are written
atomically after everything else of the stage, so a killed run redoes at most
the stage it was in, and never re-mines a finished iteration.
"""
import hashlib
import os

import tensorflow as tf

from object_detection_note.core import file_io

RUN_FILE = 'run.json'
MANIFEST = 'manifest.json'
PIPELINE = 'pipeline.config'
MINED_NAME = 'mined.tfrecord'
# In S's directory while the loop trains S there; removed with the manifest.
SOURCE_PENDING = 'source_training.json'


def iteration_dir(model_dir, t):
  return os.path.join(model_dir, 'iteration_%02d' % t)


def source_dir(model_dir):
  return os.path.join(model_dir, 'source')


def train_dir(model_dir, t):
  return os.path.join(iteration_dir(model_dir, t), 'train')


def eval_dir(model_dir, t):
  return os.path.join(iteration_dir(model_dir, t), 'eval')


def mined_dir(model_dir, t):
  return os.path.join(iteration_dir(model_dir, t), 'mined')


def mined_prefix(model_dir, t):
  return os.path.join(mined_dir(model_dir, t), MINED_NAME)


def pipeline_path(model_dir, t):
  return os.path.join(iteration_dir(model_dir, t), PIPELINE)


write_json = file_io.write_json_atomically
read_json = file_io.read_json


def file_sha256(path):
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    while True:
      chunk = f.read(1 << 20)
      if not chunk:
        break
      digest.update(chunk)
  return digest.hexdigest()


def text_sha256(text):
  return hashlib.sha256(text.encode('utf8')).hexdigest()


def count_records(pattern):
  """Number of records in the TFRecords matching ``pattern``."""
  files = sorted(tf.io.gfile.glob(pattern))
  return sum(1 for _ in tf.data.TFRecordDataset(files)) if files else 0
