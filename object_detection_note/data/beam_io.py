"""Deterministic, atomic sharded TFRecord output for Beam pipelines.

Beam's own ``WriteToTFRecord`` makes no promise about record order, so two
runs of the same pipeline can give different bytes. ``WriteSortedShards``
assigns each keyed record to a shard by a stable hash of its key, sorts every
shard by key and writes it under a temporary name that is renamed only when
the shard is complete. Same input ⇒ byte-identical shards, whatever the runner
or the number of workers; a killed job leaves no partial shard behind.

Shards are named like the OD API's tools: ``<prefix>-00000-of-00004``.
"""
import hashlib
import os

from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import SetupOptions
from apache_beam.options.pipeline_options import StandardOptions
import tensorflow as tf

from object_detection_note.core import file_io

# Beam's DirectRunner may try to download its Prism engine at run time; the
# in-process FnApiRunner (DirectRunner's own fallback) never downloads.
DEFAULT_LOCAL_RUNNER = 'FnApiRunner'


# Runners whose workers are other machines: they need the project shipped
# (``--setup_file``), which ``pipeline_options`` sets when the user did not.
REMOTE_RUNNERS = ('DataflowRunner', 'TestDataflowRunner')

# Runners Beam does not know by short name: short name → class path.
RUNNER_PATHS = {
    'DaskRunner': 'apache_beam.runners.dask.dask_runner.DaskRunner',
}


def pipeline_options(beam_argv) -> PipelineOptions:
  """Beam options from command-line leftovers; local runner by default.

  ``--runner=DaskRunner`` (``pip install '.[dask]'``) is accepted as a short
  name for Beam's Dask runner.
  """
  options = PipelineOptions(list(beam_argv))
  standard = options.view_as(StandardOptions)
  if not standard.runner:
    standard.runner = DEFAULT_LOCAL_RUNNER
  standard.runner = RUNNER_PATHS.get(standard.runner, standard.runner)
  setup = options.view_as(SetupOptions)
  if (standard.runner.split('.')[-1] in REMOTE_RUNNERS and
      not setup.setup_file and not setup.requirements_file):
    setup.setup_file = project_setup_file()
    if setup.setup_file:
      logging.info('shipping the project to %s workers with --setup_file=%s',
                   standard.runner, setup.setup_file)
    else:
      logging.warning(
          '%s workers need the object_detection_note package: pass '
          '--setup_file=<checkout>/setup.py, --requirements_file or '
          '--sdk_container_image (no setup.py beside this installation)',
          standard.runner)
  return options


def project_setup_file():
  """The project's setup.py (source checkout / editable install), or None."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  path = os.path.join(root, 'setup.py')
  return path if os.path.isfile(path) else None


def shard_path(prefix: str, index: int, num_shards: int) -> str:
  return '%s-%05d-of-%05d' % (prefix, index, num_shards)


def shard_pattern(prefix: str) -> str:
  """Glob matching every shard written for ``prefix``."""
  return prefix + '-?????-of-?????'


def stable_shard(key: str, num_shards: int) -> int:
  """Shard index of ``key``: a hash that does not change across processes."""
  digest = hashlib.md5(key.encode('utf8')).digest()
  return int.from_bytes(digest[:8], 'little') % num_shards


def write_tfrecord_atomically(path: str, serialized_records) -> int:
  """Writes records to ``path`` via a temporary file; returns the count."""
  tmp_path = file_io.temporary_path(path)
  count = 0
  with tf.io.TFRecordWriter(tmp_path) as writer:
    for record in serialized_records:
      writer.write(record)
      count += 1
  tf.io.gfile.rename(tmp_path, path, overwrite=True)
  return count


class _WriteShard(beam.DoFn):

  def __init__(self, prefix, num_shards):
    self._prefix = prefix
    self._num_shards = num_shards

  def process(self, element):
    index, keyed_records = element
    records = [value for _, value in sorted(keyed_records, key=lambda kv: kv[0])]
    path = shard_path(self._prefix, index, self._num_shards)
    count = write_tfrecord_atomically(path, records)
    yield path, count


class WriteSortedShards(beam.PTransform):
  """PCollection of ``(key: str, serialized: bytes)`` → shard files.

  Output PCollection: ``(shard_path, record_count)`` per shard. Every shard in
  ``range(num_shards)`` is written, empty ones included, so the shard set is
  complete and globbing it never mixes runs of different widths. Keys must be
  unique per record (e.g. the image ``source_id``).
  """

  def __init__(self, prefix: str, num_shards: int):
    super().__init__()
    if num_shards < 1:
      raise ValueError('num_shards must be >= 1, got %d' % num_shards)
    self._prefix = prefix
    self._num_shards = num_shards

  def expand(self, keyed_records):
    n = self._num_shards
    by_shard = (
        keyed_records
        | 'KeyByShard' >> beam.Map(lambda kv: (stable_shard(kv[0], n), kv)))
    empty = (
        keyed_records.pipeline
        | 'AllShards' >> beam.Create([(i, None) for i in range(n)]))
    return (
        (by_shard, empty)
        | 'Flatten' >> beam.Flatten()
        | 'GroupByShard' >> beam.GroupByKey()
        | 'DropPlaceholders' >> beam.MapTuple(
            lambda i, kvs: (i, [kv for kv in kvs if kv is not None]))
        | 'WriteShard' >> beam.ParDo(_WriteShard(self._prefix, n)))
