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

from absl import logging
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import ManifestFields as M
from object_detection_note.data.records import tfrecord_reader

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


def manifest_record_count(pattern):
  """Records in the files matching ``pattern``, from the dataset manifest.

  The converters' ``manifest.json`` (beside the shards) lists every shard of
  every split with its record count; the count is taken from it when the
  matching files are exactly some of those shards. Returns None otherwise.
  """
  directory = os.path.dirname(pattern)
  manifest = file_io.read_json(os.path.join(directory, DatasetFiles.manifest))
  if not manifest:
    return None
  counts = {shard[M.file]: shard[M.records]
            for split in manifest.get(M.splits, {}).values()
            for shard in split.get(M.shards, [])}
  names = [os.path.basename(f) for f in tf.io.gfile.glob(pattern)]
  if not names or any(n not in counts for n in names):
    return None
  return sum(counts[n] for n in names)


def count_records(pattern):
  """Number of records in the TFRecords matching ``pattern``.

  From the dataset manifest when there is one (no data is read); otherwise
  by reading the files.
  """
  from_manifest = manifest_record_count(pattern)
  if from_manifest is not None:
    return from_manifest
  files = sorted(tf.io.gfile.glob(pattern))
  logging.info('no manifest lists %s: counting its records by reading', pattern)
  return tfrecord_reader.count_records(files)
