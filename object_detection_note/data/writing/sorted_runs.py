"""Sorted runs and their streaming merge: key-sorted shards in bounded memory.

A shard's records are split into runs (by a hash of the key), each run is
sorted and written to a temporary run file beside the shard, and the shard is
then written by a k-way merge of its runs that reads every run file as a
stream. Only one run is ever held in memory (while it is sorted), and the
merge holds one record per run, so memory per worker is about
``shard size / runs per shard``, not the shard size.

Run files are TFRecords of alternating key / value records named
``<shard path>.tmp-run-NNNNN``; they are written atomically and removed once
their shard is complete. The merged shard holds the values in ascending key
order: the same bytes as sorting the whole shard at once.

Run files are read with ``tfrecord_reader`` (a plain framing reader), not one
tf.data iterator per run: tearing down a tf.data iterator waits for its
background threads, which stalled the merge for minutes on a busy CPU.
"""
import hashlib
import heapq

import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.data.records import tfrecord_reader

RUN_SUFFIX = '.tmp-run-%05d'


class DuplicateKeyError(ValueError):
  """A key appears twice in one shard (keys must be unique, e.g. source_id)."""


def run_of(key: str, num_runs: int) -> int:
  """Run index of ``key``: a process-independent hash, salted so that it does
  not follow the shard assignment (``beam_io.stable_shard``)."""
  digest = hashlib.md5(b'run:' + key.encode('utf8')).digest()
  return int.from_bytes(digest[:8], 'little') % num_runs


def run_path(shard_path: str, run: int) -> str:
  return shard_path + RUN_SUFFIX % run


def write_run(path, keyed_values):
  """Sorts ``(key: str, value: bytes)`` pairs by key, writes them atomically.

  Returns:
    the number of pairs written.
  """
  pairs = sorted(keyed_values, key=lambda kv: kv[0])
  tmp_path = file_io.temporary_path(path)
  with tf.io.TFRecordWriter(tmp_path) as writer:
    for key, value in pairs:
      writer.write(key.encode('utf8'))
      writer.write(value)
  tf.io.gfile.rename(tmp_path, path, overwrite=True)
  return len(pairs)


def read_run(path):
  """Yields the ``(key, value)`` pairs of a run file, streaming.

  Raises:
    tfrecord_reader.TFRecordReadError: the run file is corrupt or truncated
      (names the file, byte offset and record).
    ValueError: the run file has an odd number of records.
  """
  records = tfrecord_reader.read_records(path)
  for key in records:
    value = next(records, None)
    if value is None:
      raise ValueError('%s: run file ends with a key and no value' % path)
    yield key.decode('utf8'), value


def merge_runs(run_paths, shard_path):
  """Writes the values of all runs, merged by key, to ``shard_path``.

  The shard is written atomically; the run files are removed afterwards.

  Returns:
    the number of records written.

  Raises:
    DuplicateKeyError: two records share a key.
  """
  run_paths = sorted(set(run_paths))
  merged = heapq.merge(*[read_run(p) for p in run_paths],
                       key=lambda kv: kv[0])
  tmp_path = file_io.temporary_path(shard_path)
  count = 0
  previous = None
  try:
    with tf.io.TFRecordWriter(tmp_path) as writer:
      for key, value in merged:
        if key == previous:
          raise DuplicateKeyError('%s: source_id %r appears twice (record '
                                  'keys must be unique)' % (shard_path, key))
        previous = key
        writer.write(value)
        count += 1
    tf.io.gfile.rename(tmp_path, shard_path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp_path):
      tf.io.gfile.remove(tmp_path)
  for path in run_paths:
    tf.io.gfile.remove(path)
  return count
