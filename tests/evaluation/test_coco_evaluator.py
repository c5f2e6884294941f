"""Our COCO evaluator equals pycocotools COCOeval run directly."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools import coco
from pycocotools import cocoeval

from object_detection_note.evaluation import coco_evaluator

CATEGORIES = [{'id': 1, 'name': 'disc'}, {'id': 2, 'name': 'ring'},
              {'id': 3, 'name': 'star'}]


def _random_boxes(rng, n, size=200):
  ymin = rng.uniform(0, size * 0.7, n)
  xmin = rng.uniform(0, size * 0.7, n)
  h = rng.uniform(5, size * 0.3, n)
  w = rng.uniform(5, size * 0.3, n)
  return np.stack([ymin, xmin, ymin + h, xmin + w], 1)


def _random_data(seed=0, num_images=12):
  rng = np.random.default_rng(seed)
  data = []
  for image_id in range(1, num_images + 1):
    n_gt = rng.integers(1, 6)
    gt = _random_boxes(rng, n_gt)
    gt_classes = rng.integers(1, 4, n_gt)
    # Detections: jittered groundtruth plus random false positives.
    jitter = gt + rng.normal(0, 4, gt.shape)
    fp = _random_boxes(rng, rng.integers(0, 5))
    det = np.concatenate([jitter, fp])
    det_classes = np.concatenate([gt_classes, rng.integers(1, 4, len(fp))])
    det_scores = rng.uniform(0, 1, len(det))
    data.append((image_id, gt, gt_classes, det, det_scores, det_classes))
  return data


def _direct_cocoeval(data):
  images, anns, dets = [], [], []
  for image_id, gt, gt_classes, det, scores, det_classes in data:
    images.append({'id': image_id})
    for (y0, x0, y1, x1), c in zip(gt, gt_classes):
      anns.append({'id': len(anns) + 1, 'image_id': image_id,
                   'category_id': int(c), 'bbox': [x0, y0, x1 - x0, y1 - y0],
                   'area': (x1 - x0) * (y1 - y0), 'iscrowd': 0})
    for (y0, x0, y1, x1), s, c in zip(det, scores, det_classes):
      dets.append({'image_id': image_id, 'category_id': int(c),
                   'bbox': [x0, y0, x1 - x0, y1 - y0], 'score': s})
  with contextlib.redirect_stdout(io.StringIO()):
    gt_coco = coco.COCO()
    gt_coco.dataset = {'images': images, 'annotations': anns,
                       'categories': CATEGORIES}
    gt_coco.createIndex()
    evaluation = cocoeval.COCOeval(gt_coco, gt_coco.loadRes(dets), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
  return evaluation.stats


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_metrics_equal_direct_cocoeval(seed):
  data = _random_data(seed)
  evaluator = coco_evaluator.CocoDetectionEvaluator(CATEGORIES)
  for image_id, gt, gt_classes, det, scores, det_classes in data:
    evaluator.add_groundtruth(image_id, gt, gt_classes)
    evaluator.add_detections(image_id, det, scores, det_classes)
  metrics = evaluator.evaluate()
  expected = _direct_cocoeval(data)
  got = [metrics[name] for name in coco_evaluator.METRIC_NAMES]
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
  assert 0.0 < metrics['DetectionBoxes_Precision/mAP@.50IOU'] < 1.0


def test_perfect_detections_score_one_and_per_category_keys():
  evaluator = coco_evaluator.CocoDetectionEvaluator(
      CATEGORIES, include_metrics_per_category=True)
  boxes = np.array([[10, 10, 60, 80], [100, 100, 150, 190]], float)
  evaluator.add_groundtruth('a', boxes, [1, 3])
  evaluator.add_detections('a', boxes, [0.9, 0.8], [1, 3])
  metrics = evaluator.evaluate()
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0)
  assert metrics['DetectionBoxes_PerformanceByCategory/mAP/disc'] == (
      pytest.approx(1.0))
  # No groundtruth of 'ring': COCO reports -1 for it.
  assert metrics['DetectionBoxes_PerformanceByCategory/mAP/ring'] == -1.0


def test_no_detections_gives_zero_map():
  evaluator = coco_evaluator.CocoDetectionEvaluator(CATEGORIES)
  evaluator.add_groundtruth(1, [[0, 0, 10, 10]], [2])
  assert evaluator.evaluate()['DetectionBoxes_Precision/mAP'] == 0.0


def test_misuse_is_reported():
  evaluator = coco_evaluator.CocoDetectionEvaluator(CATEGORIES)
  with pytest.raises(ValueError, match='no groundtruth'):
    evaluator.evaluate()
  with pytest.raises(ValueError, match='before its detections'):
    evaluator.add_detections(5, [[0, 0, 1, 1]], [0.5], [1])
  evaluator.add_groundtruth(5, [[0, 0, 1, 1]], [1])
  with pytest.raises(ValueError, match='already added'):
    evaluator.add_groundtruth(5, [[0, 0, 1, 1]], [1])
