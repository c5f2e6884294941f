"""Side-by-side bench bookkeeping (bench/peer_compare.py), without a peer."""
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import peer_compare  # pylint: disable=g-import-not-at-top,wrong-import-position


def _project(wall, cpu):
  return {'median_s': wall, 'median_cpu_s': cpu,
          'num_trainable_variables': 294}


def _odapi(wall, cpu):
  return {'median_s': wall, 'median_cpu_s': cpu, 'trainable_variables': 498}


def test_rounds_ratios_and_summary():
  rounds = [
      peer_compare.round_record(1, ('project', 'odapi'), _project(8.0, 16.0),
                                _odapi(10.0, 20.0), [1.0, 1, 1], [1.5, 1, 1]),
      peer_compare.round_record(2, ('odapi', 'project'), _project(9.0, 15.0),
                                _odapi(10.0, 15.0), [1.2, 1, 1], [1.1, 1, 1]),
      peer_compare.round_record(3, ('project', 'odapi'),
                                {'error': 'exit code 1\nboom'},
                                _odapi(10.0, 15.0), [1.2, 1, 1], [1.1, 1, 1]),
  ]
  assert rounds[0]['wall_ratio'] == pytest.approx(0.8)
  assert rounds[0]['cpu_ratio'] == pytest.approx(0.8)
  assert 'wall_ratio' not in rounds[2]
  summary = peer_compare.summary(rounds)
  assert summary == {'rounds': 3, 'complete_rounds': 2,
                     'median_wall_ratio': pytest.approx(0.85),
                     'median_cpu_ratio': pytest.approx(0.9)}
  text = peer_compare.markdown({'irv2_320': {'rounds': rounds,
                                             'summary': summary}})
  assert '| irv2_320 | 1 | project | 8.00 (16.00) | 10.00 (20.00) | 0.80 | ' \
         '0.80 | 294 / 498 | 1.00 |' in text
  assert '| irv2_320 | median of 2 | | | | 0.85 | 0.90 | | |' in text
  assert 'project error: boom' in text
  assert peer_compare.markdown(None) == ''


def test_peer_environment_reads_peer_env(tmp_path):
  (tmp_path / 'bin').mkdir()
  (tmp_path / 'peer.env').write_text(
      'export PYTHONPATH=/v/stubs TF_USE_LEGACY_KERAS=1 '
      'PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python\n')
  env = peer_compare.peer_environment(str(tmp_path / 'bin' / 'python'))
  assert env['PYTHONPATH'] == '/v/stubs'
  assert env['TF_USE_LEGACY_KERAS'] == '1'
  with pytest.raises(ValueError, match='peer_setup.sh'):
    peer_compare.peer_environment(str(tmp_path / 'other' / 'bin' / 'python'))
