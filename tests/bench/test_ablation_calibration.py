"""bench/ablation_calibration.py: B^1 sweep rows against the dataset."""
import os
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import ablation_calibration  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_rows_recall_is_over_hidden_instances_and_zero_boxes_is_undefined():
  metrics = {'threshold_sweep': [
      {'threshold': 0.8, 'mined_boxes': 50, 'true_positives': 44},
      {'threshold': 0.800000011920929, 'mined_boxes': 50,
       'true_positives': 44},
      {'threshold': 0.99, 'mined_boxes': 0, 'true_positives': 0}]}
  rows = ablation_calibration.calibration_rows(metrics, hidden=1000,
                                               labels=400)
  assert rows[0] == {'threshold': 0.8, 'boxes': 50, 'precision': 0.88,
                     'recall': 0.044, 'labels_mined': 0.125}
  assert len(rows) == 2  # 0.8 once, though float32 in the config
  assert rows[1]['precision'] is None and rows[1]['recall'] == 0.0
  dataset = {'splits': {'image_level': {'images': 300, 'hidden_boxes': 1000,
                                        'image_level_labels': 400},
                        'seed': {'images': 48}}}
  text = ablation_calibration.markdown({'naive': (0.2, rows)}, dataset, 'cmd')
  assert '| 0.8 | 50 | 0.880 | 0.044 | 0.12 |' in text
  assert '| 0.99 | 0 | — | 0.000 | 0.00 |' in text
  assert '2.50 per label' in text
