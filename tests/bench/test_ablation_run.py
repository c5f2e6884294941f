"""Plan and run state of bench/run_ablation.py (no training)."""
import json
import os
import shutil
import sys
import types

from absl import app
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BENCH = os.path.join(REPO, 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import ablation_configs  # pylint: disable=g-import-not-at-top,wrong-import-position
import ablation_progress  # pylint: disable=g-import-not-at-top,wrong-import-position
import ablation_report  # pylint: disable=g-import-not-at-top,wrong-import-position
import ablation_schedule  # pylint: disable=g-import-not-at-top,wrong-import-position
import ablation_workers  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.config import config_util  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture
def in_repo(monkeypatch):
  monkeypatch.chdir(REPO)


def test_shipped_configs_share_source_and_budget(in_repo):
  plan = ablation_configs.Plan(list(ablation_configs.VARIANT_KEYS),
                               os.path.join('configs', 'ablation'),
                               os.path.join('runs', 'ablation'), '', 0)
  # Used as they are: no derived copies.
  assert plan.configs == {v: os.path.join('configs', 'ablation', v + '.config')
                          for v in ablation_configs.VARIANT_KEYS}
  assert plan.source_dir == os.path.join('runs', 'ablation', 'source')
  assert plan.iterations >= 4
  settings = plan.variant_settings()
  assert not settings['naive']['det_cls_a']
  assert not settings['naive']['rpn_cls_a']
  assert settings['det_a']['det_cls_a']
  assert not settings['det_a']['mask_mined_background']
  assert settings['det_az']['mask_mined_background']
  assert not settings['det_az']['rpn_cls_a']
  assert settings['det_az_rpn_a']['rpn_cls_a']
  assert settings['det_az_rpn_a']['distillation'] == 'no'
  assert settings['det_az_rpn_a_distill']['distillation'].startswith(
      'every T^t')
  assert settings['half_distill']['distillation'].startswith('T^0..T^')
  budget = plan.budget({'splits': {'seed': {'images': 24},
                                   'image_level': {'images': 405}}})
  assert budget['iterations'] == plan.iterations
  assert budget['initial_steps'] == -(-budget['initial_epochs'] * 24 //
                                      budget['batch_size'])
  assert budget['score_threshold'] == pytest.approx(0.9)


def test_derived_configs_for_smoke_runs(in_repo, tmp_path):
  runs = str(tmp_path / 'runs')
  plan = ablation_configs.Plan(['naive', 'half_distill'],
                               os.path.join('configs', 'ablation'), runs,
                               'note { iterations: 1 initial_epochs: 2 }', 20)
  assert plan.iterations == 1
  assert plan.source_dir == os.path.join(runs, 'source')
  for variant in ('naive', 'half_distill'):
    assert plan.configs[variant] == os.path.join(runs, 'configs',
                                                 variant + '.config')
    pipeline = config_util.read_pipeline_config(plan.configs[variant])
    assert pipeline.note.iterations == 1
    assert pipeline.note.initial_epochs == 2
    assert pipeline.note.source_detector.checkpoint_dir == plan.source_dir
    assert pipeline.note.source_detector.pipeline_config_path == os.path.join(
        runs, 'configs', 'source.config')
  source = config_util.read_pipeline_config(plan.source_config)
  assert source.train_config.num_steps == 20
  assert plan.source_steps == 20


def test_data_dir_moves_every_input_of_variants_and_source(in_repo, tmp_path):
  runs = str(tmp_path / 'runs')
  plan = ablation_configs.Plan(['naive', 'det_az_rpn_a_distill'],
                               os.path.join('configs', 'ablation'), runs, '', 0,
                               data_dir='data/synthetic_noisy/')
  assert plan.source_config == os.path.join(runs, 'configs', 'source.config')
  source = config_util.read_pipeline_config(plan.source_config)
  shipped = config_util.read_pipeline_config(
      os.path.join('configs', 'synthetic_source.config'))
  assert source.train_config.num_steps == shipped.train_config.num_steps
  readers = [source.train_input_reader] + list(source.eval_input_reader)
  for variant in ('naive', 'det_az_rpn_a_distill'):
    pipeline = config_util.read_pipeline_config(plan.configs[variant])
    assert plan.configs[variant].startswith(runs)
    assert pipeline.note.source_detector.checkpoint_dir == plan.source_dir
    readers += [pipeline.train_input_reader, pipeline.note.
                image_level_input_reader] + list(pipeline.eval_input_reader)
  for reader in readers:
    assert reader.label_map_path.startswith('data/synthetic_noisy/')
    for path in reader.tf_record_input_reader.input_path:
      assert path.startswith('data/synthetic_noisy/'), path
  assert {os.path.basename(r.label_map_path) for r in readers} == {
      'source_label_map.pbtxt', 'target_label_map.pbtxt'}


def test_data_dir_needs_configs_under_data_synthetic(in_repo, tmp_path):
  directory = _copy_configs(tmp_path, lambda text: text.replace(
      '"data/synthetic/', '"data/elsewhere/'))
  with pytest.raises(app.UsageError, match='det_a.config.*data_dir'):
    ablation_configs.Plan(['det_a'], directory, str(tmp_path / 'runs'), '', 0,
                          data_dir='data/synthetic_noisy')


def _copy_configs(tmp_path, edit):
  directory = tmp_path / 'configs'
  directory.mkdir()
  for variant in ('naive', 'det_a'):
    shutil.copy(os.path.join(REPO, 'configs', 'ablation', variant + '.config'),
                directory / (variant + '.config'))
  path = directory / 'det_a.config'
  text = path.read_text()
  path.write_text(edit(text))
  return str(directory)


def test_rejects_different_budgets(in_repo, tmp_path):
  directory = _copy_configs(tmp_path, lambda text: text.replace(
      'epochs_per_iteration: 8', 'epochs_per_iteration: 9'))
  with pytest.raises(app.UsageError, match='differ in budget'):
    ablation_configs.Plan(['naive', 'det_a'], directory, 'runs/ablation', '', 0)


def test_rejects_different_source_detectors(in_repo, tmp_path):
  directory = _copy_configs(tmp_path, lambda text: text.replace(
      'checkpoint_dir: "runs/ablation/source"',
      'checkpoint_dir: "runs/other/source"'))
  with pytest.raises(app.UsageError, match='same'):
    ablation_configs.Plan(['naive', 'det_a'], directory, 'runs/ablation', '', 0)


def _write(path, payload):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(payload, f)


def _finish(model_dir, t, map_, boxes=None):
  mining = None if t == 0 else {'mined_boxes': boxes, 'images_with_boxes': 5,
                                'precision': 0.9, 'recall': 0.1}
  _write(os.path.join(model_dir, 'iteration_%02d' % t, 'manifest.json'), {
      'iteration': t, 'num_steps': 100 + t, 'distillation': False,
      'mining': mining,
      'eval': {'DetectionBoxes_Precision/mAP': map_,
               'DetectionBoxes_Precision/mAP@.50IOU': 2 * map_}})


def test_run_state_from_run_directory(tmp_path):
  plan = types.SimpleNamespace(runs_dir=str(tmp_path), iterations=2)
  model_dir = os.path.join(str(tmp_path), '0', 'naive')
  state = ablation_schedule.run_state(plan, 0, 'naive')
  assert state['status'] == 'pending' and state['rows'] == []
  assert state['seconds'] is None
  _finish(model_dir, 0, 0.2)
  _finish(model_dir, 1, 0.25, boxes=40)
  _write(ablation_workers.timing_path(str(tmp_path), 0, 'naive'),
         {'seconds': 90.0, 'invocations': 2,
          'iteration_seconds': {'0': 50.0, '1': 40.0}})
  state = ablation_schedule.run_state(plan, 0, 'naive')
  assert state['status'] == 'partial'
  assert [r['mAP'] for r in state['rows']] == [0.2, 0.25]
  assert state['rows'][1]['mined_boxes'] == 40
  assert state['rows'][1]['mAP@0.5'] == 0.5
  assert state['seconds'] == 90.0 and state['invocations'] == 2
  _finish(model_dir, 2, 0.3, boxes=60)
  assert ablation_schedule.run_state(plan, 0, 'naive')['status'] == 'complete'
  failed = ablation_schedule.run_state(plan, 0, 'naive', error='exit code 1')
  assert failed['status'] == 'failed' and failed['error'] == 'exit code 1'


def _mined(model_dir, t, boxes, precision, warning=None):
  manifest = {'iteration': t, 'mined_boxes': boxes,
              'images_with_boxes': min(boxes, 5), 'precision': precision,
              'recall': 0.0 if precision is None else 0.05}
  if warning:
    manifest['warning'] = warning
  _write(os.path.join(model_dir, 'iteration_%02d' % t, 'mined',
                      'manifest.json'), manifest)


def test_progress_and_report_of_an_iteration_that_mines_nothing(
    tmp_path, capsys):
  """B^1 with 0 boxes (precision null): progress line, state and report."""
  plan = types.SimpleNamespace(runs_dir=str(tmp_path), iterations=1)
  runs = {}
  for seed, boxes in ((0, 0), (1, 30)):
    model_dir = os.path.join(str(tmp_path), str(seed), 'naive')
    timing = {'seconds': 0.0, 'iteration_seconds': {}}
    progress = ablation_progress.Progress(plan, model_dir, 'seed %d' % seed,
                                          0.0, timing)
    _finish(model_dir, 0, 0.2)
    _mined(model_dir, 1, boxes, None if not boxes else 0.9,
           warning='0 boxes mined at θb 0.9' if not boxes else None)
    _finish(model_dir, 1, 0.21, boxes=boxes)
    # The manifest of B^1 says precision null when nothing was mined.
    with open(os.path.join(model_dir, 'iteration_01', 'manifest.json')) as f:
      manifest = json.load(f)
    manifest['mining']['precision'] = None if not boxes else 0.9
    _write(os.path.join(model_dir, 'iteration_01', 'manifest.json'),
           manifest)
    progress.poll()
    runs[str(seed)] = ablation_schedule.run_state(plan, seed, 'naive')
  out = capsys.readouterr().out
  assert 'seed 0: B^1 mined: 0 boxes on 0 images, precision —' in out
  assert '0 boxes mined at θb 0.9' in out
  assert 'seed 1: B^1 mined: 30 boxes on 5 images, precision 0.900' in out
  assert 'seed 0: T^1 done' in out
  assert runs['0']['status'] == 'complete'
  assert runs['0']['rows'][1]['mined_precision'] is None
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import test_ablation_report  # pylint: disable=g-import-not-at-top
  results = test_ablation_report._results(  # pylint: disable=protected-access
      {'naive': runs}, [0, 1], variants=('naive',))
  results['budget']['iterations'] = 1
  output = str(tmp_path / 'results')
  ablation_report.write_results(results, output, 'zero')
  with open(os.path.join(output, 'zero.json')) as f:
    summary = json.load(f)['summary']['naive'][1]
  # The null precision is left out of mean ± std, the seed is still counted.
  assert summary['mined_precision']['values'] == [0.9]
  assert summary['mined_boxes']['values'] == [0, 30]
  assert os.path.exists(os.path.join(output, 'zero.md'))
  assert os.path.exists(os.path.join(output, 'zero.png'))


def test_control_runs_get_their_own_directory_and_override():
  assert ablation_configs.control_settings('none', 'runs/x', 'note {}') == (
      'runs/x', 'note {}')
  runs_dir, override = ablation_configs.control_settings('frozen_t0', 'runs/x/',
                                                         '')
  assert runs_dir == 'runs/x_frozen_t0'
  assert override == 'note { mining { control: FROZEN_T0 } }'
  runs_dir, override = ablation_configs.control_settings(
      'oracle', 'runs/x', 'note { iterations: 1 }')
  assert runs_dir == 'runs/x_oracle'
  # Merged into a variant config, the override sets the control and keeps
  # the rest of the override.
  pipeline = config_util.read_pipeline_config(
      os.path.join(REPO, 'configs', 'ablation_paper', 'naive.config'),
      override)
  assert pipeline.note.mining.control == pipeline.note.mining.ORACLE
  assert pipeline.note.iterations == 1


def test_paper_configs_name_their_data_dir(in_repo, tmp_path):
  """configs/ablation_paper/ name data/synthetic_paper already: used as is."""
  plan = ablation_configs.Plan(list(ablation_configs.VARIANT_KEYS),
                               os.path.join('configs', 'ablation_paper'),
                               str(tmp_path / 'runs'), '', 0,
                               data_dir='data/synthetic_paper')
  assert plan.iterations >= 6
  for variant in ablation_configs.VARIANT_KEYS:
    pipeline = plan.pipelines[variant]
    note = pipeline.note
    assert note.mining.score_threshold >= 0.8
    # Every T^t trains at least as many steps as T^0 (24 seed images: `make
    # data-paper`, 4 per target category).
    assert note.min_steps_per_iteration >= (
        note.initial_epochs * 24 / pipeline.train_config.batch_size)
    assert 'data/synthetic_paper/' in config_util.pipeline_to_text(pipeline)
    assert '"data/synthetic/' not in config_util.pipeline_to_text(pipeline)
  source = config_util.read_pipeline_config(plan.source_config)
  assert (source.train_input_reader.tf_record_input_reader.input_path[0]
          .startswith('data/synthetic_paper/'))
