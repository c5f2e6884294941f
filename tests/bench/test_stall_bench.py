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
