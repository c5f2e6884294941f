"""The stall bench's busy loops and its old-vs-new merge comparison."""
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import stall_bench  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.data.writing import sorted_runs  # pylint: disable=g-import-not-at-top,wrong-import-position


def _running(pid):
  try:
    with open('/proc/%d/stat' % pid) as f:
      return f.read().split(')')[-1].split()[0] != 'Z'
  except FileNotFoundError:
    return False


def test_busy_loops_are_stopped_when_the_block_fails():
  with pytest.raises(RuntimeError, match='boom'):
    with stall_bench.busy_loops(2) as pids:
      assert len(pids) == 2 and all(_running(p) for p in pids)
      raise RuntimeError('boom')
  assert not any(_running(p) for p in pids)


def test_old_reader_merge_writes_the_same_shard(tmp_path):
  pairs = [[('%02d-%d' % (run, i), b'v%d%d' % (run, i)) for i in range(3)]
           for run in range(4)]
  shards = []
  for name, merge in (('new', sorted_runs.merge_runs),
                      ('old', stall_bench.merge_runs_tf_data)):
    shard = str(tmp_path / name)
    runs = [sorted_runs.run_path(shard, r) for r in range(4)]
    for path, run_pairs in zip(runs, pairs):
      sorted_runs.write_run(path, run_pairs)
    assert merge(runs, shard) == 12
    shards.append(open(shard, 'rb').read())
  assert shards[0] == shards[1]


def test_converter_run_on_its_test_inputs_and_report_rows(tmp_path):
  timing, out_dir = stall_bench._converter_run(  # pylint: disable=protected-access
      'openimages', str(tmp_path / 'openimages'), timeout=600)
  assert timing['status'] == 'ok'
  assert timing['children_cpu_s'] > 0 and timing['wall_s'] > 0
  assert stall_bench._same_shards(out_dir, out_dir)  # pylint: disable=protected-access
  results = {'command': 'python bench/stall_bench.py', 'date': 'd',
             'machine': {}, 'busy_loops': 2,
             'converters': {'openimages': {
                 'command': 'c', 'idle': timing, 'loaded': timing,
                 'loaded_over_idle_wall': 1.0,
                 'loaded_shards_identical_to_idle': True}}}
  text = stall_bench.markdown(results)
  assert '| openimages converter idle (ok) |' in text
  assert '| openimages converter loaded (ok) |' in text
  assert '- openimages converter: loaded / idle wall = 1.00' in text


def test_merge_case_runs_in_a_child_and_reports_a_stall(tmp_path):
  timing = stall_bench._merge_case(str(tmp_path), 'tfrecord_reader', 0,  # pylint: disable=protected-access
                                   timeout=300)
  assert timing['status'] == 'ok'
  assert timing['records'] == stall_bench.NUM_RUNS * stall_bench.RECORDS_PER_RUN
  # A merge that cannot finish in time (the old reader takes seconds over
  # 128 runs) is killed and reported, not waited on.
  stalled = stall_bench._merge_case(str(tmp_path), 'tf_data_per_run', 0,  # pylint: disable=protected-access
                                    timeout=0)
  assert stalled['status'].startswith('killed: not done after 0 s')
  row = stall_bench._row('merge', stalled)  # pylint: disable=protected-access
  assert row.startswith('| merge | > 0 | ? | ? | ? |')
