"""The plan and ETA of an iterate run, and the per-stage measurements."""
import sys
import time

from object_detection_note.iterate import run_plan
from object_detection_note.iterate import stage_process
from object_detection_note.iterate import stage_stats


def _plan():
  return [run_plan.PlannedStage('source', None, 30),
          run_plan.PlannedStage('train', 0, 52),
          run_plan.PlannedStage('eval', 0, 100),
          run_plan.PlannedStage('mine', 1, 72),
          run_plan.PlannedStage('train', 1, 50, 86),
          run_plan.PlannedStage('eval', 1, 100)]


def test_plan_lines_name_stages_steps_and_images():
  lines = run_plan.plan_lines(_plan())
  assert lines[0] == 'plan: 6 stages still to run'
  assert lines[1].split() == ['S', 'train', '30', 'steps']
  assert lines[4].split() == ['B^1', 'mine', '72', 'images']
  assert lines[5].split()[:4] == ['T^1', 'train', '50-86', 'steps']
  assert 'depends on B^1' in lines[5]


def test_eta_from_measured_rates():
  tracker = run_plan.Tracker(_plan())
  assert 'ETA once' in tracker.status()
  tracker.finished('source', None, 300.0, 30)  # 10 s per step
  # Trainings timed (52 + 86 steps at 10 s); eval and mining not yet.
  seconds, untimed = tracker.eta_seconds()
  assert seconds == 1380.0 and untimed == ['eval', 'mine']
  assert tracker.status() == ('run: 1/6 stages done, ETA 23m00s + the '
                              'evaluation/mining stages (not timed yet)')
  tracker.finished('train', 0, 520.0, 52)
  tracker.finished('eval', 0, 200.0, 100)  # 2 s per image
  tracker.finished('mine', 1, 144.0, 72, mined_fraction=0.5)
  # T^1: 50 + 0.5 * 36 = 68 steps at 10 s; eval 100 images at 2 s.
  assert tracker.eta_seconds() == (880.0, [])
  assert tracker.status() == 'run: 4/6 stages done, ETA 14m40s'


def test_stats_record_and_read(tmp_path):
  model_dir = str(tmp_path)
  stage_stats.record(model_dir, 1, 'mine', 12.34, 3 << 30, stage_stats.CHILD)
  stage_stats.record(model_dir, 1, 'train', 5, 1 << 29, stage_stats.OWN)
  stats = stage_stats.read(model_dir, 1)
  assert stats['mine'] == {'wall_s': 12.3, 'peak_rss_bytes': 3 << 30,
                           'measured': 'child process'}
  assert set(stats) == {'mine', 'train'}
  assert stage_stats.format_bytes(3 << 30) == '3.00 GiB'
  assert stage_stats.format_bytes(1 << 29) == '512 MiB'


def test_measure_sees_memory_allocated_inside_the_block():
  with stage_stats.measure(sample_every_s=0.01) as measured:
    before = stage_stats.current_rss_bytes()
    block = bytearray(200 << 20)
    for i in range(0, len(block), 4096):
      block[i] = 1
    time.sleep(0.1)  # a few samples while the block is held
    del block
  assert measured.peak_rss_bytes >= before + (150 << 20)
  assert measured.wall_s > 0


def test_child_peak_is_the_childs_own():
  # This (pytest, TF) process is large: a child's ru_maxrss starts at its
  # resident memory, so the smaller children are measured from /proc.
  code = ('import time\n'
          'b = bytearray(%d << 20)\n'
          'for i in range(0, len(b), 4096): b[i] = 1\n'
          'time.sleep(0.6)\n')
  small = stage_process.run_child([sys.executable, '-c', code % 0])
  big = stage_process.run_child([sys.executable, '-c', code % 300])
  assert small.returncode == big.returncode == 0
  assert big.peak_rss_bytes >= small.peak_rss_bytes + (250 << 20)
  failed = stage_process.run_child([sys.executable, '-c',
                                    'import sys; sys.exit(3)'])
  assert failed.returncode == 3
