"""Deterministic, atomic sharded TFRecord output for Beam pipelines.

Beam's own ``WriteToTFRecord`` makes no promise about record order, so two
runs of the same pipeline can give different bytes. ``WriteSortedShards``
assigns each keyed record to a shard by a stable hash of its key and writes
every shard sorted by key under a temporary name that is renamed only when
the shard is complete. No step holds a whole shard: each shard is built as
the streaming merge of sorted runs (``sorted_runs``), so a worker holds about
1/runs_per_shard of a shard. Same input ⇒ byte-identical shards, whatever the
runner or the number of workers; a killed job leaves no partial shard behind.

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
from object_detection_note.data.writing import sorted_runs

# Beam's DirectRunner may try to download its Prism engine at run time; the
# in-process FnApiRunner (DirectRunner's own fallback) never downloads.
DEFAULT_LOCAL_RUNNER = 'FnApiRunner'


# Runs (sorted temporary files) per shard: bounds a worker's memory to about
# 1/DEFAULT_RUNS_PER_SHARD of a shard.
DEFAULT_RUNS_PER_SHARD = 64

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
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))))
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


class _WriteRun(beam.DoFn):
  """``((shard_id, run), [(key, value)])`` → ``(shard_id, run file)``."""

  def __init__(self, path_of):
    self._path_of = path_of

  def process(self, element):
    (shard_id, run), keyed_values = element
    path = sorted_runs.run_path(self._path_of(shard_id), run)
    sorted_runs.write_run(path, keyed_values)
    yield shard_id, path


class _MergeRuns(beam.DoFn):
  """``(shard_id, [run file or None])`` → ``(shard_id, shard path, count)``."""

  def __init__(self, path_of):
    self._path_of = path_of

  def process(self, element):
    shard_id, runs = element
    path = self._path_of(shard_id)
    count = sorted_runs.merge_runs([r for r in runs if r is not None], path)
    yield shard_id, path, count


class WriteSortedShardsById(beam.PTransform):
  """PCollection of ``(shard_id, (key: str, value: bytes))`` → shard files.

  Every shard in ``shard_ids`` is written (empty ones too), to
  ``path_of(shard_id)``, atomically, with its values in ascending key order,
  in bounded memory: records are grouped into ``runs_per_shard`` runs per
  shard by a hash of the key, each run is sorted and written to a temporary
  run file, and the shard is the streaming merge of its runs
  (``sorted_runs``). Memory per worker ≈ shard size / runs_per_shard.

  Output PCollection: ``(shard_id, shard_path, record_count)`` per shard.
  Keys must be unique within a shard (``sorted_runs.DuplicateKeyError``).
  """

  def __init__(self, shard_ids, path_of, runs_per_shard=DEFAULT_RUNS_PER_SHARD):
    super().__init__()
    if runs_per_shard < 1:
      raise ValueError('runs_per_shard must be >= 1, got %d' % runs_per_shard)
    self._shard_ids = list(shard_ids)
    self._path_of = path_of
    self._runs = runs_per_shard

  def expand(self, keyed):
    runs = self._runs
    run_files = (
        keyed
        | 'KeyByRun' >> beam.MapTuple(
            lambda shard_id, kv: ((shard_id, sorted_runs.run_of(kv[0], runs)),
                                  kv))
        | 'GroupByRun' >> beam.GroupByKey()
        | 'WriteRuns' >> beam.ParDo(_WriteRun(self._path_of)))
    every_shard = (
        keyed.pipeline
        | 'AllShards' >> beam.Create([(i, None) for i in self._shard_ids]))
    return (
        (run_files, every_shard)
        | 'FlattenRuns' >> beam.Flatten()
        | 'GroupRunsByShard' >> beam.GroupByKey()
        | 'MergeRuns' >> beam.ParDo(_MergeRuns(self._path_of)))


class _ShardPath:
  """Picklable ``index → <prefix>-0000i-of-0000N``."""

  def __init__(self, prefix, num_shards):
    self._prefix = prefix
    self._num_shards = num_shards

  def __call__(self, index):
    return shard_path(self._prefix, index, self._num_shards)


class WriteSortedShards(beam.PTransform):
  """PCollection of ``(key: str, serialized: bytes)`` → shard files.

  Output PCollection: ``(shard_path, record_count)`` per shard. A record goes
  to shard ``stable_shard(key, num_shards)``; shards are written as by
  ``WriteSortedShardsById`` (sorted by key, atomically, in bounded memory).
  Every shard in ``range(num_shards)`` is written, empty ones included, so
  the shard set is complete and globbing it never mixes runs of different
  widths. Keys must be unique per record (e.g. the image ``source_id``).
  """

  def __init__(self, prefix: str, num_shards: int,
               runs_per_shard=DEFAULT_RUNS_PER_SHARD):
    super().__init__()
    if num_shards < 1:
      raise ValueError('num_shards must be >= 1, got %d' % num_shards)
    self._prefix = prefix
    self._num_shards = num_shards
    self._runs = runs_per_shard

  def expand(self, keyed_records):
    n = self._num_shards
    return (
        keyed_records
        | 'KeyByShard' >> beam.Map(lambda kv: (stable_shard(kv[0], n), kv))
        | 'Write' >> WriteSortedShardsById(range(n),
                                           _ShardPath(self._prefix, n),
                                           self._runs)
        | 'PathAndCount' >> beam.MapTuple(lambda _, path, count: (path,
                                                                  count)))
