"""COCO detection metrics (pycocotools COCOeval) under the OD API's names.

Usage::

  evaluator = CocoDetectionEvaluator(categories)   # [{'id': 1, 'name': 'a'}]
  evaluator.add_groundtruth(image_id, boxes, classes)        # per image
  evaluator.add_detections(image_id, boxes, scores, classes)  # per image
  metrics = evaluator.evaluate()

Boxes are float ``[N, 4]`` ``(ymin, xmin, ymax, xmax)`` in *pixels* of the
original image (COCO's small/medium/large areas are in pixels); classes are
1-based label-map ids. ``evaluate`` returns a dict with
``DetectionBoxes_Precision/mAP``, ``.../mAP@.50IOU``, ``.../mAP@.75IOU``,
``.../mAP (small|medium|large)``, ``DetectionBoxes_Recall/AR@{1,10,100}``,
``.../AR@100 (small|medium|large)`` and, when asked for,
``DetectionBoxes_PerformanceByCategory/mAP/<name>``.
"""
import contextlib
import io

import numpy as np
from pycocotools import coco
from pycocotools import cocoeval

METRIC_NAMES = (
    'DetectionBoxes_Precision/mAP',
    'DetectionBoxes_Precision/mAP@.50IOU',
    'DetectionBoxes_Precision/mAP@.75IOU',
    'DetectionBoxes_Precision/mAP (small)',
    'DetectionBoxes_Precision/mAP (medium)',
    'DetectionBoxes_Precision/mAP (large)',
    'DetectionBoxes_Recall/AR@1',
    'DetectionBoxes_Recall/AR@10',
    'DetectionBoxes_Recall/AR@100',
    'DetectionBoxes_Recall/AR@100 (small)',
    'DetectionBoxes_Recall/AR@100 (medium)',
    'DetectionBoxes_Recall/AR@100 (large)',
)
PER_CATEGORY_PREFIX = 'DetectionBoxes_PerformanceByCategory/mAP/'


def yxyx_to_xywh(boxes):
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1],
                   boxes[:, 2] - boxes[:, 0]], axis=1)


class CocoDetectionEvaluator:
  """Accumulates groundtruth and detections; computes COCO box metrics."""

  def __init__(self, categories, include_metrics_per_category=False):
    self._categories = [dict(id=int(c['id']), name=str(c['name']))
                        for c in categories]
    self._per_category = include_metrics_per_category
    self.clear()

  def clear(self):
    self._images = []
    self._image_ids = set()
    self._groundtruth = []
    self._detections = []

  @property
  def num_images(self):
    return len(self._images)

  def add_groundtruth(self, image_id, boxes, classes, is_crowd=None):
    """Adds one image's groundtruth; each image id may be added once."""
    if image_id in self._image_ids:
      raise ValueError('groundtruth for image %r was already added' %
                       (image_id,))
    self._image_ids.add(image_id)
    self._images.append({'id': image_id})
    xywh = yxyx_to_xywh(boxes)
    crowd = np.zeros(len(xywh), int) if is_crowd is None else np.asarray(
        is_crowd, int)
    for box, label, crowd_flag in zip(xywh, np.asarray(classes).reshape(-1),
                                      crowd):
      self._groundtruth.append({
          'id': len(self._groundtruth) + 1, 'image_id': image_id,
          'category_id': int(label), 'bbox': [float(v) for v in box],
          'area': float(box[2] * box[3]), 'iscrowd': int(crowd_flag)})

  def add_detections(self, image_id, boxes, scores, classes):
    """Adds one image's detections (after its groundtruth)."""
    if image_id not in self._image_ids:
      raise ValueError('add groundtruth for image %r before its detections' %
                       (image_id,))
    xywh = yxyx_to_xywh(boxes)
    for box, score, label in zip(xywh, np.asarray(scores).reshape(-1),
                                 np.asarray(classes).reshape(-1)):
      self._detections.append({
          'image_id': image_id, 'category_id': int(label),
          'bbox': [float(v) for v in box], 'score': float(score)})

  def _coco_eval(self):
    groundtruth = coco.COCO()
    groundtruth.dataset = {'images': self._images,
                           'annotations': self._groundtruth,
                           'categories': self._categories}
    with contextlib.redirect_stdout(io.StringIO()):
      groundtruth.createIndex()
      detections = (groundtruth.loadRes(self._detections)
                    if self._detections else coco.COCO())
      if not self._detections:
        detections.dataset = {'images': self._images, 'annotations': [],
                              'categories': self._categories}
        detections.createIndex()
      evaluator = cocoeval.COCOeval(groundtruth, detections, iouType='bbox')
      evaluator.params.imgIds = [image['id'] for image in self._images]
      evaluator.evaluate()
      evaluator.accumulate()
      evaluator.summarize()
    return evaluator

  def evaluate(self):
    """Returns the metrics dict (floats; -1 where COCO has no data)."""
    if not self._images:
      raise ValueError('no groundtruth was added to the evaluator')
    evaluator = self._coco_eval()
    metrics = dict(zip(METRIC_NAMES, (float(v) for v in evaluator.stats)))
    if self._per_category:
      # precision: [iou, recall, category, area, max_dets].
      precision = evaluator.eval['precision']
      for index, category_id in enumerate(evaluator.params.catIds):
        name = next(c['name'] for c in self._categories
                    if c['id'] == category_id)
        values = precision[:, :, index, 0, -1]
        values = values[values > -1]
        metrics[PER_CATEGORY_PREFIX + name] = (
            float(np.mean(values)) if values.size else -1.0)
    return metrics
