"""Deterministic, atomic sharded output of WriteSortedShards."""
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import SetupOptions
from apache_beam.options.pipeline_options import StandardOptions
import pytest
import tensorflow as tf

from object_detection_note.data.writing import beam_io
from object_detection_note.data.writing import sorted_runs


def _run(prefix, keys, num_shards, direct_num_workers=1):
  options = beam_io.pipeline_options(
      ['--direct_num_workers=%d' % direct_num_workers])
  with beam.Pipeline(options=options) as pipeline:
    _ = (pipeline
         | beam.Create([(k, k.encode() * 3) for k in keys])
         | beam_io.WriteSortedShards(prefix, num_shards))


def _read_all(prefix):
  files = sorted(tf.io.gfile.glob(beam_io.shard_pattern(prefix)))
  return files, {f: list(tf.data.TFRecordDataset(f).as_numpy_iterator())
                 for f in files}


def test_every_shard_written_sorted_and_complete(tmp_path):
  prefix = str(tmp_path / 'seed.tfrecord')
  keys = ['k%03d' % i for i in range(40)]
  _run(prefix, reversed(keys), num_shards=3)
  files, contents = _read_all(prefix)
  assert [f.rsplit('/', 1)[1] for f in files] == [
      'seed.tfrecord-%05d-of-00003' % i for i in range(3)]
  records = [r for f in files for r in contents[f]]
  assert sorted(records) == sorted(k.encode() * 3 for k in keys)
  for f in files:
    assert contents[f] == sorted(contents[f])
  assert not tf.io.gfile.glob(prefix + '*.tmp-*')


def test_same_input_gives_identical_bytes(tmp_path):
  keys = ['img%d' % i for i in range(25)]
  _run(str(tmp_path / 'a'), keys, 4)
  _run(str(tmp_path / 'b'), list(reversed(keys)), 4, direct_num_workers=2)
  for i in range(4):
    a = tf.io.gfile.GFile(beam_io.shard_path(str(tmp_path / 'a'), i, 4),
                          'rb').read()
    b = tf.io.gfile.GFile(beam_io.shard_path(str(tmp_path / 'b'), i, 4),
                          'rb').read()
    assert a == b


def test_atomic_writer_works_on_ram_filesystem():
  path = 'ram://beam_io_test/out.tfrecord'
  assert beam_io.write_tfrecord_atomically(path, [b'a', b'b']) == 2
  assert list(tf.data.TFRecordDataset(path).as_numpy_iterator()) == [b'a', b'b']
  assert tf.io.gfile.glob('ram://beam_io_test/*') == [path]


def test_remote_runner_ships_the_project():
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  remote = beam_io.pipeline_options(['--runner=DataflowRunner'])
  assert remote.view_as(SetupOptions).setup_file == os.path.join(root,
                                                                  'setup.py')
  own = beam_io.pipeline_options(['--runner=DataflowRunner',
                                  '--requirements_file=req.txt'])
  assert own.view_as(SetupOptions).setup_file is None
  local = beam_io.pipeline_options([])
  assert local.view_as(SetupOptions).setup_file is None
  assert local.view_as(StandardOptions).runner == 'FnApiRunner'
  dask = beam_io.pipeline_options(['--runner=DaskRunner'])
  assert dask.view_as(StandardOptions).runner == (
      'apache_beam.runners.dask.dask_runner.DaskRunner')


def test_shards_are_merged_from_bounded_runs(tmp_path, monkeypatch):
  """No run holds more than about 1/runs of a shard; order is by key."""
  sizes = []
  write_run = sorted_runs.write_run

  def recording_write_run(path, keyed_values):
    keyed_values = list(keyed_values)
    sizes.append(len(keyed_values))
    return write_run(path, keyed_values)

  monkeypatch.setattr(sorted_runs, 'write_run', recording_write_run)
  prefix = str(tmp_path / 'mined.tfrecord')
  keys = ['img%04d' % i for i in range(400)]
  with beam.Pipeline(options=beam_io.pipeline_options([])) as pipeline:
    _ = (pipeline
         | beam.Create([(k, k.encode()) for k in reversed(keys)])
         | beam_io.WriteSortedShards(prefix, 2, runs_per_shard=8))
  files, contents = _read_all(prefix)
  assert len(sizes) == 16 and sum(sizes) == 400
  assert max(sizes) < 400 / 2 / 8 * 2  # ~25 per run, never a whole shard
  for f in files:
    assert contents[f] == sorted(contents[f]) and len(contents[f]) > 100
  assert sorted(r for f in files for r in contents[f]) == sorted(
      k.encode() for k in keys)
  assert not tf.io.gfile.glob(prefix + '*.tmp-*')


def test_duplicate_key_fails_naming_it(tmp_path):
  runs = [str(tmp_path / 'a'), str(tmp_path / 'b')]
  sorted_runs.write_run(runs[0], [('x', b'1'), ('y', b'2')])
  sorted_runs.write_run(runs[1], [('y', b'3')])
  with pytest.raises(sorted_runs.DuplicateKeyError, match="'y' appears twice"):
    sorted_runs.merge_runs(runs, str(tmp_path / 'shard'))
  assert not (tmp_path / 'shard').exists()
