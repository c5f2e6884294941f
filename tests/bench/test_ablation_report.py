"""Aggregation, tables and plot of the ablation (bench/ablation_report.py)."""
import json
import math
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import ablation_report  # pylint: disable=g-import-not-at-top,wrong-import-position


def _row(t, map_, map50, boxes=None, precision=None, recall=None):
  return {'iteration': t, 'mAP': map_, 'mAP@0.5': map50,
          'mined_boxes': boxes, 'mined_images': boxes,
          'mined_precision': precision, 'mined_recall': recall,
          'distillation': False, 'num_steps': 10}


def _manifest():
  return {
      'parameters': {'seed': 0, 'seed_images_per_category': 4.0,
                     'scene_config': {'image_size': 128, 'min_objects': 1,
                                      'max_objects': 8}},
      'source_categories': [{'id': 1, 'name': 'red_disc'}],
      'target_categories': [{'id': 1, 'name': 'teal_hexagon'},
                            {'id': 2, 'name': 'pink_crescent'}],
      'splits': {
          'seed': {'images': 24, 'boxes': 111, 'hidden_boxes': 0,
                   'image_level_labels': 0},
          'image_level': {'images': 405, 'boxes': 0, 'hidden_boxes': 1530,
                          'image_level_labels': 635},
          'source_train': {'images': 417, 'boxes': 1574},
          'target_val': {'images': 119, 'boxes': 477},
      },
  }


def _results(runs, seeds, variants=('naive', 'det_az_rpn_a')):
  settings = {v: {'label': ablation_report.LABELS[v],
                  'config': 'configs/ablation/%s.config' % v,
                  'rpn_cls_a': v != 'naive', 'det_cls_a': v != 'naive',
                  'mask_mined_background': v != 'naive',
                  'distillation': 'no'} for v in variants}
  return {
      'schema_version': 1, 'created': '2026-12-01T20:30:00+00:00',
      'command': ['bench/run_ablation.py', '--seeds=0,1'],
      'machine': {'cpu_model': 'Test CPU', 'cpu_flags': ['avx2'],
                  'logical_cpus': 2, 'usable_cpus': 2, 'memory_gib': 8.0,
                  'os': 'Linux', 'python': '3.11', 'tensorflow': '2.20',
                  'tf_keras': '2.20', 'apache_beam': '2.77',
                  'onednn_opts': 'default (on)'},
      'load_avg_start': [1.0, 1.0, 1.0], 'load_avg_end': [2.0, 2.0, 2.0],
      'seeds': list(seeds), 'variants': list(variants),
      'variant_settings': settings,
      'budget': {'iterations': 2, 'initial_epochs': 100.0,
                 'initial_steps': 300, 'epochs_per_iteration': 8.0,
                 'batch_size': 8, 'learning_rate': 'adam',
                 'score_threshold': 0.9, 'mining_batch_size': 16,
                 'image_level_images': 405,
                 'source_config': 'configs/synthetic_source.config',
                 'source_steps': 1500},
      'dataset': ablation_report.dataset_parameters(_manifest()),
      'source': {'checkpoint_dir': 'runs/ablation/source', 'seconds': 120.0},
      'runs': runs,
      'total_seconds': 770.0, 'invocation_seconds': 700.0,
  }


def _two_seed_runs():
  """naive: 2 seeds, complete; det_az_rpn_a: seed 0 complete, seed 1 T^0."""
  return {
      'naive': {
          '0': {'status': 'complete', 'seconds': 200.0,
                'iteration_seconds': {'0': 80.0, '1': 60.0, '2': 60.0},
                'rows': [_row(0, 0.2, 0.5), _row(1, 0.1, 0.3, 60, 0.9, 0.05),
                         _row(2, 0.05, 0.2, 0, 0.0, 0.0)]},
          '1': {'status': 'complete', 'seconds': 220.0,
                'rows': [_row(0, 0.3, 0.7), _row(1, 0.2, 0.5, 100, 0.8, 0.07),
                         _row(2, 0.15, 0.4, 40, 0.5, 0.01)]},
      },
      'det_az_rpn_a': {
          '0': {'status': 'complete', 'seconds': 180.0,
                'rows': [_row(0, 0.25, 0.55), _row(1, 0.3, 0.6, 80, 0.95, 0.06),
                         _row(2, 0.35, 0.65, 120, 0.97, 0.08)]},
          '1': {'status': 'partial', 'seconds': 50.0,
                'rows': [_row(0, 0.27, 0.57)]},
      },
  }


def test_summarise_mean_std_over_seeds():
  summary = ablation_report.summarise(_two_seed_runs(), [0, 1])
  naive = {e['iteration']: e for e in summary['naive']}
  assert sorted(naive) == [0, 1, 2]
  assert naive[0]['n'] == 2 and naive[0]['seeds'] == 2
  assert naive[0]['mAP']['mean'] == pytest.approx(0.25)
  assert naive[0]['mAP']['std'] == pytest.approx(math.sqrt(0.005))
  assert naive[1]['mined_boxes']['mean'] == pytest.approx(80)
  assert naive[1]['mined_boxes']['std'] == pytest.approx(math.sqrt(800))
  assert naive[1]['mined_recall']['values'] == [0.05, 0.07]
  # T^0 has no mining.
  assert naive[0]['mined_boxes'] is None
  # Seed 0 mined nothing at t=2: its precision is undefined, not 0.
  assert naive[2]['mined_precision']['values'] == [0.5]
  assert naive[2]['mined_precision']['std'] is None
  assert naive[2]['mined_boxes']['values'] == [0, 40]


def test_summarise_partial_seed():
  summary = ablation_report.summarise(_two_seed_runs(), [0, 1])
  full = {e['iteration']: e for e in summary['det_az_rpn_a']}
  assert full[0]['n'] == 2
  assert full[0]['mAP']['mean'] == pytest.approx(0.26)
  assert full[1]['n'] == 1
  assert full[1]['mAP']['mean'] == pytest.approx(0.3)
  assert full[1]['mAP']['std'] is None
  # A seed not asked for is ignored; a seed asked for without runs counts as
  # missing.
  only_zero = ablation_report.summarise(_two_seed_runs(), [0])
  assert only_zero['naive'][0]['mAP']['values'] == [0.2]
  with_missing = ablation_report.summarise(_two_seed_runs(), [0, 1, 7])
  assert with_missing['naive'][0]['n'] == 2
  assert with_missing['naive'][0]['seeds'] == 3
  assert ablation_report.summarise({'naive': {}}, [0]) == {'naive': []}


def test_dataset_parameters():
  dataset = ablation_report.dataset_parameters(_manifest())
  assert dataset['seed'] == 0
  assert dataset['image_size'] == 128
  assert dataset['objects_per_image'] == [1, 8]
  assert dataset['target_categories'] == ['teal_hexagon', 'pink_crescent']
  assert dataset['splits']['image_level']['hidden_boxes'] == 1530
  assert dataset['splits']['seed']['images'] == 24


def test_markdown_two_seeds():
  results = _results(_two_seed_runs(), [0, 1])
  results['summary'] = ablation_report.summarise(results['runs'], [0, 1])
  text = ablation_report.markdown(results)
  lines = text.splitlines()
  map_row = next(l for l in lines if l.startswith('| Naive | 0.2500'))
  assert map_row == ('| Naive | 0.2500 ± 0.0707 / 0.6000 ± 0.1414 | '
                     '0.1500 ± 0.0707 / 0.4000 ± 0.1414 | '
                     '0.1000 ± 0.0707 / 0.3000 ± 0.1414 |')
  partial_row = next(l for l in lines if l.startswith('| Det-AZ&RPN-A | 0.26'))
  assert partial_row == ('| Det-AZ&RPN-A | 0.2600 ± 0.0141 / 0.5600 ± 0.0141 '
                         '| 0.3000 / 0.6000 (n=1) | 0.3500 / 0.6500 (n=1) |')
  mined_row = next(l for l in lines if l.startswith('| Naive | 80'))
  assert mined_row == ('| Naive | 80 ± 28 / 0.850 ± 0.071 / 0.060 ± 0.014 | '
                       '20 ± 28 / 0.500 (n=1) / 0.005 ± 0.007 |')
  assert '| variant | T^0 | T^1 | T^2 |' in lines
  assert '| variant | B^1 | B^2 |' in lines
  assert ('| Det-AZ&RPN-A | 1 | 0m50s | — | 10 | partial: 1/3 iterations |'
          in lines)
  assert any(l.startswith('| Naive | 0 | 3m20s | T^0 1m20s, T^1 1m00s, T^2 '
                          '1m00s | 30 | complete |') for l in lines)
  assert 'Total wall time: 12m50s (S 2m00s, variants 10m50s), summed over invocations (the last one: 11m40s)' in text
  assert 'mean ± sample standard deviation' in text
  assert '`bench/run_ablation.py --seeds=0,1`' in text
  assert 'Target categories: teal_hexagon, pink_crescent.' in text
  assert ('image-level A 405 images (635 image-level labels, 1530 hidden '
          'boxes)') in text
  assert 'CPU: Test CPU, 2 logical CPUs' in text


def test_markdown_one_seed_pending_and_failed():
  runs = {'naive': {'0': {'status': 'failed', 'seconds': 30.0,
                          'error': 'exit code 1\nValueError: boom',
                          'rows': [_row(0, 0.2, 0.5)]}},
          'det_az_rpn_a': {'0': {'status': 'pending', 'rows': []}}}
  results = _results(runs, [0])
  results['summary'] = ablation_report.summarise(runs, [0])
  text = ablation_report.markdown(results)
  lines = text.splitlines()
  assert '| Naive | 0.2000 / 0.5000 | — | — |' in lines
  assert '| Det-AZ&RPN-A | — | — | — |' in lines
  assert '| Naive | — | — |' in lines
  assert any('failed after 1/3 iterations: ValueError: boom' in l
             for l in lines)
  assert any(l.endswith('| not run yet |') for l in lines)
  assert '±' not in text.split('## Variants')[1]
  assert 'one run per variant' in text


def test_write_results_files(tmp_path):
  results = _results(_two_seed_runs(), [0, 1])
  paths = ablation_report.write_results(results, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ['ablation.json', 'ablation.md',
                                          'ablation.png']
  with open(paths[0]) as f:
    saved = json.load(f)
  assert saved['summary']['naive'][0]['mAP']['mean'] == pytest.approx(0.25)
  assert saved['runs']['det_az_rpn_a']['1']['status'] == 'partial'
  with open(paths[2], 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  with open(paths[1]) as f:
    assert f.read() == ablation_report.markdown(saved)
  # Rewriting after another finished run replaces the files in place.
  results['runs']['det_az_rpn_a']['1']['rows'].append(_row(1, 0.5, 0.8, 10,
                                                           1.0, 0.01))
  ablation_report.write_results(results, str(tmp_path))
  with open(paths[0]) as f:
    saved = json.load(f)
  assert saved['summary']['det_az_rpn_a'][1]['n'] == 2
  assert sorted(os.listdir(tmp_path)) == ['ablation.json', 'ablation.md',
                                          'ablation.png']


def test_plot_one_line_per_variant():
  results = _results(_two_seed_runs(), [0, 1])
  results['summary'] = ablation_report.summarise(results['runs'], [0, 1])
  png = ablation_report.plot(results)
  assert png.startswith(b'\x89PNG')
  # Nothing finished yet: still a (blank) figure.
  empty = _results({'naive': {'0': {'rows': []}}}, [0], variants=('naive',))
  empty['summary'] = ablation_report.summarise(empty['runs'], [0])
  assert ablation_report.plot(empty).startswith(b'\x89PNG')


def test_undefined_precision_and_recall_show_a_dash():
  """0 boxes mined: precision (and a missing or NaN recall) print as '—'."""
  runs = {'naive': {
      '0': {'status': 'complete', 'rows': [
          _row(0, 0.2, 0.5), _row(1, 0.2, 0.5, 0, 0.0, 0.0),
          _row(2, 0.2, 0.5, 0, float('nan'), float('nan'))]},
      '1': {'status': 'complete', 'rows': [
          _row(0, 0.2, 0.5), _row(1, 0.2, 0.5, 0, 0.0, None),
          _row(2, 0.2, 0.5, 0, None, None)]}}}
  results = _results(runs, [0, 1], variants=('naive',))
  summary = ablation_report.summarise(runs, [0, 1])
  assert summary['naive'][1]['mined_precision'] is None
  assert summary['naive'][1]['mined_recall']['values'] == [0.0]
  assert summary['naive'][2]['mined_precision'] is None
  assert summary['naive'][2]['mined_recall'] is None
  results['summary'] = summary
  lines = ablation_report.markdown(results).splitlines()
  assert ('| Naive | 0 ± 0 / — / 0.000 (n=1) | 0 ± 0 / — / — |' in lines)
  assert not any('0.000 ± 0.000 / 0.000' in l for l in lines)


def test_write_results_under_another_name(tmp_path):
  results = _results(_two_seed_runs(), [0, 1])
  results['dataset']['data_dir'] = 'data/synthetic_noisy'
  results['via_make'] = True
  paths = ablation_report.write_results(results, str(tmp_path),
                                        'ablation_noisy')
  assert sorted(os.listdir(tmp_path)) == ['ablation_noisy.json',
                                          'ablation_noisy.md',
                                          'ablation_noisy.png']
  with open(paths[1]) as f:
    text = f.read()
  assert text.startswith('# NOTE-RCNN ablation (paper §4.3) on the synthetic '
                         'dataset `data/synthetic_noisy`\n')
  assert 'Made by `make ablation-noisy`: ' in text
  assert '- `data/synthetic_noisy` (`make data-noisy`, generator seed 0)' in text
  assert text.rstrip().endswith('![ablation_noisy](ablation_noisy.png)')
  with open(paths[0]) as f:
    assert json.load(f)['results_name'] == 'ablation_noisy'


def test_loop_health_columns_from_row_diagnostics():
  runs = _two_seed_runs()
  for seed, (new_precision, fail_cls, fail_a) in (
      ('0', (0.8, 0.1, 0.3)), ('1', (0.6, 0.3, 0.5))):
    runs['naive'][seed]['rows'][1]['diagnostics'] = {
        'new_box_precision': new_precision,
        'consensus_fail_det_cls': fail_cls,
        'consensus_fail_det_cls_a': fail_a, 'hidden_above_mean': 0.25,
        'background_hidden_target': None}
  results = _results(runs, [0, 1])
  results['summary'] = ablation_report.summarise(runs, [0, 1])
  naive = {e['iteration']: e for e in results['summary']['naive']}
  assert naive[1]['new_box_precision']['mean'] == pytest.approx(0.7)
  assert naive[1]['background_hidden_target'] is None
  assert naive[2]['consensus_fail_det_cls'] is None
  lines = ablation_report.markdown(results).splitlines()
  assert '## Loop health per iteration (mining diagnostics)' in lines
  assert ('| Naive | 0.700 ± 0.141 / 0.200 ± 0.141 / 0.400 ± 0.141 | '
          '— / — / — |' in lines)
  assert '| Naive | 0.250 ± 0.000 / — | — / — |' in lines


def test_no_loop_health_section_without_diagnostics():
  results = _results(_two_seed_runs(), [0, 1])
  results['summary'] = ablation_report.summarise(results['runs'], [0, 1])
  assert 'Loop health' not in ablation_report.markdown(results)
