"""Ratios and Markdown of the training-step benchmark (bench/report.py)."""
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import report  # pylint: disable=g-import-not-at-top,wrong-import-position


def _case(median_s, median_cpu_s):
  return {'median_s': median_s, 'median_cpu_s': median_cpu_s,
          'step_seconds': [median_s], 'first_step_s': 30.0,
          'peak_rss_mib': 3800.0, 'load_avg_before': [0.1, 0.2, 0.3],
          'load_avg_after': [1.0, 0.5, 0.4]}


def _results(train):
  return {
      'command': ['bench/run_bench.py'],
      'created': '2026-01-01T00:00:00+00:00',
      'machine': {'cpu_model': 'CPU', 'logical_cpus': 2, 'usable_cpus': 2,
                  'cpu_flags': ['avx2'], 'memory_gib': 23.5, 'os': 'Linux',
                  'python': '3.11', 'tensorflow': '2.20', 'tf_keras': '2.20',
                  'apache_beam': '2.77', 'onednn_opts': 'on',
                  'intra_op_threads': 0, 'inter_op_threads': 0},
      'load_avg_start': [0.1, 0.1, 0.1], 'load_avg_end': [1.0, 1.0, 1.0],
      'options': {'warmup': 1},
      'train': train,
  }


def test_ratios_pair_variants_of_the_same_setting():
  train = {'irv2_320/plain': _case(6.0, 12.0),
           'irv2_320/note': _case(6.6, 12.6),
           'irv2_320/distill': _case(7.8, 15.0),
           'tiny/plain': _case(0.05, 0.1)}
  ratios = report.ratios(train)
  assert set(ratios) == {'irv2_320'}  # tiny has no second variant.
  assert ratios['irv2_320']['note/plain']['wall'] == pytest.approx(1.1)
  assert ratios['irv2_320']['note/plain']['cpu'] == pytest.approx(1.05)
  assert ratios['irv2_320']['distill/plain']['wall'] == pytest.approx(1.3)
  assert ratios['irv2_320']['distill/note']['cpu'] == pytest.approx(
      15.0 / 12.6)


def test_failed_cases_are_left_out_of_ratios_and_shown_in_the_table():
  train = {'irv2_320/plain': _case(6.0, 12.0),
           'irv2_320/note': {'error': 'Traceback\nMemoryError: out of RAM'}}
  assert report.ratios(train) == {}
  text = report.markdown(_results(train))
  assert '| irv2_320/note | failed: MemoryError: out of RAM |' in text


def test_reference_comparison_uses_the_plain_320_case():
  train = {'irv2_320/plain': _case(5.7, 11.0)}
  reference = report.reference_comparison(train, usable_cpus=2)
  assert reference['plain_median_s'] == 5.7
  assert reference['ratio'] == pytest.approx(5.7 / 9.5)
  assert reference['cpu_bound_s'] == pytest.approx(5.5)
  assert report.reference_comparison({'tiny/plain': _case(0.1, 0.2)},
                                     usable_cpus=2) is None


def test_markdown_states_cores_used_and_medians():
  results = _results({'irv2_320/plain': _case(6.0, 12.0),
                      'irv2_320/note': _case(6.6, 12.6)})
  results['ratios'] = report.ratios(results['train'])
  text = report.markdown(results)
  assert '| irv2_320/plain | 6.00 | 12.00 | 2.0 |' in text
  assert '| irv2_320 | note/plain | 1.100 | 1.050 |' in text
