"""Memory stays flat across iterations: the whole loop runs each stage as a
child process, and every iteration manifest records each stage's wall time
and peak resident memory (shown in report.md).

The same run with ``stage_processes=False`` (all stages in one process)
grows from iteration to iteration; ``run_three_iterations`` takes the mode so
that this can be checked by hand (see the README's "Stage times and memory").
"""
import os

import pytest

from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stage_stats
import iterate_runs

ITERATIONS = 2  # three iterations: T^0, T^1, T^2


def run_three_iterations(root, stage_processes):
  """One iterate run of ITERATIONS iterations; returns its model_dir."""
  ctx, _ = iterate_runs.run_iterate(root, iterate_runs.SMALL, ITERATIONS,
                                    stage_processes=stage_processes)
  return ctx.model_dir


def iteration_peaks(model_dir):
  """Highest stage peak (mine/train/eval) of every iteration."""
  peaks = []
  for t in range(ITERATIONS + 1):
    manifest = layout.read_json(os.path.join(
        layout.iteration_dir(model_dir, t), layout.MANIFEST))
    peaks.append(max(entry['peak_rss_bytes']
                     for stage, entry in manifest['stages'].items()
                     if stage != 'source'))
  return peaks


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  return run_three_iterations(tmp_path_factory.mktemp('memory'), True)


def test_last_iteration_peak_within_ten_percent_of_first(model_dir):
  peaks = iteration_peaks(model_dir)
  assert peaks[ITERATIONS] <= 1.10 * peaks[0], [
      stage_stats.format_bytes(p) for p in peaks]


def test_manifests_and_report_record_every_stage(model_dir):
  for t in range(ITERATIONS + 1):
    manifest = layout.read_json(os.path.join(
        layout.iteration_dir(model_dir, t), layout.MANIFEST))
    expected = {'train', 'eval'} | ({'mine'} if t else {'source'})
    assert set(manifest['stages']) == expected
    for entry in manifest['stages'].values():
      assert entry['measured'] == stage_stats.CHILD
      assert entry['wall_s'] > 0
      # A TF process: well above 100 MiB resident.
      assert entry['peak_rss_bytes'] > 100 << 20
  with open(os.path.join(model_dir, 'report.md')) as f:
    text = f.read()
  assert '## Stage times and memory' in text
  assert '| T^2 | — | ' in text and 'child process' in text
