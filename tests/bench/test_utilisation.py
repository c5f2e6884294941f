"""FLOPs and fraction of peak per bench case, mining included."""
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import throughput_bench  # pylint: disable=g-import-not-at-top,wrong-import-position
import utilisation  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.config import config_util  # pylint: disable=g-import-not-at-top,wrong-import-position


def _results():
  return {
      'peak': {'float32': {'flops_per_s': 100e9, 'flops_per_cpu_s': 50e9,
                           'size': 2048}},
      'train': {'tiny/plain': {'compute_dtype': 'float32',
                               'flops_per_step': 4e9,
                               'achieved_flops_per_s': 20e9,
                               'achieved_flops_per_cpu_s': 10e9}},
      'mining': {
          'detector_only': {'compute_dtype': 'float32',
                            'flops_per_image': 1e9,
                            'achieved_flops_per_s': 30e9,
                            'achieved_flops_per_cpu_s': 25e9},
          'pipeline': [{'num_workers': 2, 'compute_dtype': 'float32',
                        'flops_per_image': 1e9,
                        'achieved_flops_per_s': 40e9}]},
      'eval': {'compute_dtype': 'bfloat16', 'flops_per_image': 1e9,
               'achieved_flops_per_s': 5e9},  # no bfloat16 peak measured
  }


def test_every_mining_case_gets_its_fraction_of_peak():
  results = _results()
  utilisation.add_utilisation(results)
  detector = results['mining']['detector_only']
  assert detector['fraction_of_peak'] == pytest.approx(0.3)
  assert detector['fraction_of_peak_cpu'] == pytest.approx(0.5)
  pipeline = results['mining']['pipeline'][0]
  assert pipeline['fraction_of_peak'] == pytest.approx(0.4)
  assert 'fraction_of_peak_cpu' not in pipeline  # no CPU time measured
  assert results['train']['tiny/plain']['fraction_of_peak'] == \
      pytest.approx(0.2)
  assert 'fraction_of_peak' not in results['eval']
  text = utilisation.markdown(results)
  assert '| mining detector only (per image) | float32 | 1.00 | 30.0 | 0.30 ' \
      '| 25.0 | 0.50 |' in text
  assert '| mining pipeline, 2 worker(s) (per image) | float32 | 1.00 | ' \
      '40.0 | 0.40 | — | — |' in text
  assert 'eval' not in text


def test_mining_flops_per_image_do_not_depend_on_the_batch(tmp_path):
  configs = config_util.get_configs_from_pipeline_file(
      throughput_bench.CONFIG)
  checkpoint = throughput_bench.write_random_checkpoint(configs, str(tmp_path))
  one, dtype = throughput_bench.mining_flops_per_image(configs, checkpoint, 1,
                                                       (96, 80, 3))
  two, _ = throughput_bench.mining_flops_per_image(configs, checkpoint, 2,
                                                   (96, 80, 3))
  assert dtype == 'float32'
  # The tiny extractor's convolutions at 128x128 dominate: tens of MFLOP.
  assert one > 1e7
  assert two == pytest.approx(one, rel=0.01)
