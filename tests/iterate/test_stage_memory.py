"""Memory stays flat across iterations: the whole loop runs each stage as a
child process, and every iteration manifest records each stage's wall time
and peak resident memory (shown in report.md).

The same run with ``stage_processes=False`` (all stages in one process)
grows from iteration to iteration; ``run_three_iterations`` takes the mode so
that this can be checked by hand (see the README's "Stage times and memory").
"""
import os

import pytest

from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.iterate import driver
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stage_stats
from test_iterate_loop import _MODEL
from test_iterate_loop import _NOTE

ITERATIONS = 2  # three iterations: T^0, T^1, T^2


def run_three_iterations(root, stage_processes):
  """One iterate run of ITERATIONS iterations; returns its model_dir."""
  data = str(root / 'data')
  synthetic_dataset.create_dataset(
      data, seed=3, num_train_images=24, num_val_images=8,
      seed_images_per_category=1,
      config=synthetic_scenes.SceneConfig(image_size=64, max_objects=3))
  source = str(root / 'source.config')
  with open(source, 'w') as f:
    f.write(_MODEL % dict(num_classes=len(synthetic_scenes.SOURCE_NAMES),
                          num_steps=2, data=data, side='source',
                          train='source_train', val='source_val'))
  target = str(root / 'target.config')
  with open(target, 'w') as f:
    f.write(_MODEL % dict(num_classes=len(synthetic_scenes.TARGET_NAMES),
                          num_steps=1, data=data, side='target', train='seed',
                          val='target_val'))
    f.write(_NOTE.replace('iterations: 2\n', 'iterations: %d\n' % ITERATIONS)
            .replace('initial_epochs: 2', 'initial_epochs: 1')
            % dict(data=data, source=source))
  model_dir = str(root / 'run')
  ctx = driver.make_context(target, model_dir, checkpoint_every_n=100)
  driver.run(ctx, stage_processes=stage_processes)
  return model_dir


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
