"""LVIS evaluator: equals lvis' LVISEval on files; works on current NumPy."""
import json

import numpy as np
import pytest

from object_detection_note.evaluation import lvis_evaluator

CATEGORIES = [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'},
              {'id': 3, 'name': 'c'}]


def _data(seed):
  rng = np.random.default_rng(seed)
  data = []
  for image_id in range(1, 9):
    n = int(rng.integers(1, 4))
    y0, x0 = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    gt = np.stack([y0, x0, y0 + rng.uniform(10, 60, n),
                   x0 + rng.uniform(10, 60, n)], 1)
    classes = rng.integers(1, 4, n)
    det = np.concatenate([gt + rng.normal(0, 3, gt.shape),
                          gt[:1] + 30])
    det_classes = np.concatenate([classes, rng.integers(1, 4, 1)])
    data.append((image_id, gt, classes, det, rng.uniform(0, 1, n + 1),
                 det_classes))
  return data


def test_equals_lvis_eval_run_on_files(tmp_path):
  from lvis import LVIS, LVISEval, LVISResults  # pylint: disable=g-import-not-at-top
  data = _data(0)
  evaluator = lvis_evaluator.LvisDetectionEvaluator(CATEGORIES)
  images, anns, dets = [], [], []
  for image_id, gt, classes, det, scores, det_classes in data:
    evaluator.add_groundtruth(image_id, gt, classes,
                              not_exhaustive_category_ids=[int(classes[0])])
    evaluator.add_detections(image_id, det, scores, det_classes)
    images.append({'id': image_id,
                   'neg_category_ids': [c['id'] for c in CATEGORIES
                                        if c['id'] not in classes],
                   'not_exhaustive_category_ids': [int(classes[0])]})
    for (y0, x0, y1, x1), c in zip(gt, classes):
      anns.append({'id': len(anns) + 1, 'image_id': image_id,
                   'category_id': int(c),
                   'bbox': [x0, y0, x1 - x0, y1 - y0],
                   'area': (x1 - x0) * (y1 - y0)})
    for (y0, x0, y1, x1), s, c in zip(det, scores, det_classes):
      dets.append({'image_id': image_id, 'category_id': int(c),
                   'bbox': [x0, y0, x1 - x0, y1 - y0], 'score': float(s)})
  metrics = evaluator.evaluate()
  gt_path = tmp_path / 'gt.json'
  gt_path.write_text(json.dumps({
      'images': images, 'annotations': anns,
      'categories': [dict(c, frequency='f') for c in CATEGORIES]}))
  gt = LVIS(str(gt_path))
  direct = LVISEval(gt, LVISResults(gt, dets), iou_type='bbox')
  direct.run()
  results = direct.get_results()
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(
      results['AP'], abs=1e-12)
  assert metrics['DetectionBoxes_Precision/mAP@.50IOU'] == pytest.approx(
      results['AP50'], abs=1e-12)
  assert 0 < metrics['DetectionBoxes_Precision/mAP'] < 1


def test_unlabelled_categories_are_not_penalised():
  evaluator = lvis_evaluator.LvisDetectionEvaluator(CATEGORIES)
  box = [[10, 10, 50, 50]]
  # Category 3 is neither present nor verified absent: its detection is
  # ignored, so the perfect detection of category 1 keeps AP at 1.
  evaluator.add_groundtruth(1, box, [1], neg_category_ids=[2])
  evaluator.add_detections(1, box + [[60, 60, 90, 90]], [0.9, 0.95], [1, 3])
  assert evaluator.evaluate()['DetectionBoxes_Precision/mAP'] == (
      pytest.approx(1.0))
