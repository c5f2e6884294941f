"""Mining precision/recall against hidden boxes."""
import numpy as np
import pytest

from object_detection_note.mining import mining_metrics


def test_iou_matrix_values():
  ious = mining_metrics.iou_matrix([[0, 0, 1, 1]], [[0, 0, 1, 1],
                                                    [0, 0.5, 1, 1.5],
                                                    [2, 2, 3, 3]])
  np.testing.assert_allclose(ious, [[1.0, 1 / 3, 0.0]])


def test_true_positive_needs_same_class_iou_and_unused_hidden_box():
  hidden = [[0, 0, 0.5, 0.5]]
  hits = mining_metrics.match_true_positives(
      [[0, 0, 0.5, 0.5], [0.01, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]], [1, 1, 2],
      hidden, [1], mined_scores=[0.9, 0.95, 0.99])
  # The higher-scoring duplicate takes the hidden box; class 2 never matches.
  np.testing.assert_array_equal(hits, [False, True, False])
  hits = mining_metrics.match_true_positives([[0, 0, 0.2, 0.5]], [1], hidden,
                                             [1])
  np.testing.assert_array_equal(hits, [False])  # IoU 0.4 < 0.5


def test_stats_precision_recall_and_merge():
  a = mining_metrics.MiningStats()
  a.add_image([1, 2], np.array([True, False]), [1, 1, 2])
  b = mining_metrics.MiningStats()
  b.add_image([], np.array([], bool), [2])  # an image that yielded no box
  summary = a.merge(b).summary({1: 'x', 2: 'y'})
  assert summary['images'] == 2 and summary['images_with_boxes'] == 1
  assert summary['precision'] == pytest.approx(0.5)
  assert summary['recall'] == pytest.approx(0.25)
  assert summary['per_category']['x'] == {
      'id': 1, 'mined_boxes': 1, 'true_positives': 1, 'hidden_boxes': 2,
      'precision': 1.0, 'recall': 0.5}
  assert summary['per_category']['y']['hidden_boxes'] == 2


def test_threshold_sweep():
  points = mining_metrics.threshold_sweep_counts(
      [0.5, 0.8, 0.95, 0.99], [False, True, True, True], [0.0, 0.9, 0.99])
  assert [p['mined_boxes'] for p in points] == [4, 2, 0]
  assert points[0]['precision'] == pytest.approx(0.75)
  assert points[1]['precision'] == pytest.approx(1.0)
  assert points[2]["precision"] is None  # nothing mined: undefined
