"""LVIS-style detection metrics for non-exhaustively labelled sets.

``lvis`` (LVISEval) scores an image only on categories known to be present
(from its boxes) or known to be absent (``neg_category_ids``); detections of
other categories are ignored, and false positives of categories listed in
``not_exhaustive_category_ids`` are not penalised. This suits sets such as
OpenImages, whose labels are not exhaustive.

lvis 0.5.3 uses ``np.float``, removed in NumPy 1.24: ``_numpy_compat`` adds
the alias back (it is just the builtin ``float``) before LVISEval runs.

Boxes and classes follow ``coco_evaluator``: pixels, ``(ymin, xmin, ymax,
xmax)``, 1-based ids. Metric names: ``LVIS_METRIC_NAMES``.
"""
import contextlib
import io
import logging as std_logging

import numpy as np

from object_detection_note.evaluation.coco_evaluator import yxyx_to_xywh

LVIS_METRIC_NAMES = {
    'AP': 'DetectionBoxes_Precision/mAP',
    'AP50': 'DetectionBoxes_Precision/mAP@.50IOU',
    'AP75': 'DetectionBoxes_Precision/mAP@.75IOU',
    'APs': 'DetectionBoxes_Precision/mAP (small)',
    'APm': 'DetectionBoxes_Precision/mAP (medium)',
    'APl': 'DetectionBoxes_Precision/mAP (large)',
    'APr': 'DetectionBoxes_Precision/mAP (rare)',
    'APc': 'DetectionBoxes_Precision/mAP (common)',
    'APf': 'DetectionBoxes_Precision/mAP (frequent)',
    'AR@300': 'DetectionBoxes_Recall/AR@300',
    'ARs@300': 'DetectionBoxes_Recall/AR@300 (small)',
    'ARm@300': 'DetectionBoxes_Recall/AR@300 (medium)',
    'ARl@300': 'DetectionBoxes_Recall/AR@300 (large)',
}


def _numpy_compat():
  if 'float' not in np.__dict__:
    np.float = float  # pylint: disable=attribute-defined-outside-init


def _lvis_from_dict(dataset):
  from lvis import lvis as lvis_lib  # pylint: disable=g-import-not-at-top
  gt = lvis_lib.LVIS.__new__(lvis_lib.LVIS)
  gt.logger = std_logging.getLogger('lvis')
  gt.dataset = dataset
  gt._create_index()  # pylint: disable=protected-access
  return gt


class LvisDetectionEvaluator:
  """Accumulates groundtruth and detections; computes LVIS box metrics.

  Args:
    categories: [{'id': int, 'name': str, optional 'frequency': 'r'|'c'|'f'}];
      frequency defaults to 'f'.
    max_detections: detections kept per image (LVIS uses 300).
  """

  def __init__(self, categories, max_detections=300):
    self._categories = [
        dict(id=int(c['id']), name=str(c['name']),
             frequency=c.get('frequency', 'f')) for c in categories]
    self._max_detections = max_detections
    self._images = []
    self._annotations = []
    self._detections = []

  def add_groundtruth(self, image_id, boxes, classes, neg_category_ids=None,
                      not_exhaustive_category_ids=()):
    """Adds one image.

    Args:
      image_id: int id.
      boxes: [N, 4] pixels.
      classes: [N] ids.
      neg_category_ids: categories verified absent; None = every category
        without a box (an exhaustively labelled image).
      not_exhaustive_category_ids: present categories whose boxes may be
        incomplete.
    """
    classes = [int(c) for c in np.asarray(classes).reshape(-1)]
    if neg_category_ids is None:
      neg_category_ids = [c['id'] for c in self._categories
                          if c['id'] not in classes]
    self._images.append({
        'id': image_id, 'neg_category_ids': [int(c) for c in neg_category_ids],
        'not_exhaustive_category_ids': [
            int(c) for c in not_exhaustive_category_ids]})
    for box, label in zip(yxyx_to_xywh(boxes), classes):
      self._annotations.append({
          'id': len(self._annotations) + 1, 'image_id': image_id,
          'category_id': label, 'bbox': [float(v) for v in box],
          'area': float(box[2] * box[3])})

  def add_detections(self, image_id, boxes, scores, classes):
    for box, score, label in zip(yxyx_to_xywh(boxes),
                                 np.asarray(scores).reshape(-1),
                                 np.asarray(classes).reshape(-1)):
      self._detections.append({
          'image_id': image_id, 'category_id': int(label),
          'bbox': [float(v) for v in box], 'score': float(score)})

  def evaluate(self):
    """Returns {OD API style name: value}; -1 where LVIS has no data."""
    if not self._images:
      raise ValueError('no groundtruth was added to the evaluator')
    if not self._detections:
      # LVISResults cannot hold an empty list; nothing detected scores 0.
      return {name: 0.0 for name in LVIS_METRIC_NAMES.values()}
    _numpy_compat()
    from lvis import eval as lvis_eval  # pylint: disable=g-import-not-at-top
    from lvis import results as lvis_results  # pylint: disable=g-import-not-at-top
    gt = _lvis_from_dict({'images': self._images,
                          'annotations': self._annotations,
                          'categories': self._categories})
    with contextlib.redirect_stdout(io.StringIO()):
      dt = lvis_results.LVISResults(gt, self._detections,
                                    max_dets=self._max_detections)
      evaluator = lvis_eval.LVISEval(gt, dt, iou_type='bbox')
      evaluator.run()
    return {LVIS_METRIC_NAMES[k]: float(v)
            for k, v in evaluator.get_results().items()
            if k in LVIS_METRIC_NAMES}
