"""The ablation runner's schedule: skip, run, resume, count failures
(bench/ablation_schedule.py with a fake worker process; no training)."""
import json
import os
import sys
import types

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BENCH = os.path.join(REPO, 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import ablation_schedule  # pylint: disable=g-import-not-at-top,wrong-import-position
import ablation_workers  # pylint: disable=g-import-not-at-top,wrong-import-position


def _finish(model_dir, t):
  path = os.path.join(model_dir, 'iteration_%02d' % t, 'manifest.json')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump({'iteration': t, 'num_steps': 10, 'distillation': False,
               'mining': None if t == 0 else {
                   'mined_boxes': 3, 'images_with_boxes': 2,
                   'precision': 0.5, 'recall': 0.1},
               'eval': {'DetectionBoxes_Precision/mAP': 0.1 * (t + 1),
                        'DetectionBoxes_Precision/mAP@.50IOU': 0.2}}, f)


def _flag(command, name):
  [value] = [a.split('=', 1)[1] for a in command if a.startswith(name + '=')]
  return value


def test_run_all_skips_complete_resumes_partial_and_counts_failures(
    tmp_path, monkeypatch, capsys):
  runs_dir = str(tmp_path / 'runs')
  plan = types.SimpleNamespace(
      runs_dir=runs_dir, iterations=1,
      configs={v: v + '.config' for v in ('naive', 'det_a', 'det_az')})
  _finish(os.path.join(runs_dir, '0', 'naive'), 0)
  _finish(os.path.join(runs_dir, '0', 'naive'), 1)  # complete
  _finish(os.path.join(runs_dir, '0', 'det_a'), 0)  # partial: resumes
  results = {'seeds': [0], 'variants': ['naive', 'det_a', 'det_az'],
             'runs': {v: {'0': ablation_schedule.run_state(plan, 0, v)}
                      for v in ('naive', 'det_a', 'det_az')}}
  started = []

  def fake_worker(command, log_path, on_poll, poll_seconds):
    """det_a finishes T^1; det_az fails at once."""
    assert poll_seconds == 0.5
    started.append(_flag(command, '--worker_config'))
    assert command[1] == ablation_workers.WORKER_SCRIPT
    assert _flag(command, '--worker') == 'variant'
    with open(log_path, 'a') as f:
      f.write('worker log of %s\n' % _flag(command, '--worker_model_dir'))
    if _flag(command, '--worker_config') == 'det_az.config':
      return 1
    _finish(_flag(command, '--worker_model_dir'), 1)
    on_poll()
    return 0
  monkeypatch.setattr(ablation_workers, 'run_subprocess', fake_worker)
  saves = []
  failures = ablation_schedule.run_all(plan, results, 0.0, 0.5,
                                       lambda: saves.append(1))
  assert failures == 1
  assert started == ['det_a.config', 'det_az.config']
  assert len(saves) == 2  # after every run that ran
  runs = results['runs']
  assert runs['naive']['0']['status'] == 'complete'
  assert runs['det_a']['0']['status'] == 'complete'
  assert runs['det_a']['0']['invocations'] == 1
  assert runs['det_a']['0']['iteration_seconds'].keys() == {'1'}
  assert runs['det_az']['0']['status'] == 'failed'
  assert runs['det_az']['0']['error'].startswith('exit code 1; end of ')
  assert 'worker log of' in runs['det_az']['0']['error']
  out = capsys.readouterr().out
  assert 'seed 0 Naive (1/3): complete, skipped' in out
  assert 'seed 0 Det-A (2/3): resuming after T^0' in out
  assert 'seed 0 Det-A (2/3): T^1 done' in out
  assert 'seed 0 Det-AZ (3/3): starting' in out
  assert 'seed 0 Det-AZ (3/3): FAILED (exit code 1; end of ' in out
