"""Quality of mined boxes against the hidden groundtruth (paper Table 1, Fig. 6).

A mined box is a true positive when a hidden box of the same class overlaps
it with IoU ≥ ``iou_threshold`` (0.5), each hidden box matching at most one
mined box. Precision = TP / mined boxes; recall = TP / hidden boxes of all
images of the image-level set (also the images that yielded no box). Both are
None (JSON null, "—" in reports) when their denominator is 0.

``MiningStats`` accumulates per-image counts (per category too) and merges,
so a distributed job can combine partial results.
"""
import dataclasses

import numpy as np


def iou_matrix(boxes_a, boxes_b):
  """IoU of every pair: float ``[len(a), len(b)]`` for (ymin, xmin, ymax, xmax)."""
  a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
  b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
  ymin = np.maximum(a[:, None, 0], b[None, :, 0])
  xmin = np.maximum(a[:, None, 1], b[None, :, 1])
  ymax = np.minimum(a[:, None, 2], b[None, :, 2])
  xmax = np.minimum(a[:, None, 3], b[None, :, 3])
  inter = np.clip(ymax - ymin, 0, None) * np.clip(xmax - xmin, 0, None)
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  union = area_a[:, None] + area_b[None, :] - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_true_positives(mined_boxes, mined_classes, hidden_boxes,
                         hidden_classes, iou_threshold=0.5, mined_scores=None):
  """Boolean ``[K]``: which mined boxes hit a same-class hidden box.

  Greedy in descending score order (input order without scores); each hidden
  box is used once.
  """
  mined_classes = np.asarray(mined_classes).reshape(-1)
  hidden_classes = np.asarray(hidden_classes).reshape(-1)
  hits = np.zeros(len(mined_classes), bool)
  if not len(mined_classes) or not len(hidden_classes):
    return hits
  ious = iou_matrix(mined_boxes, hidden_boxes)
  used = np.zeros(len(hidden_classes), bool)
  order = (np.argsort(-np.asarray(mined_scores), kind='stable')
           if mined_scores is not None else range(len(mined_classes)))
  for i in order:
    candidates = np.where((hidden_classes == mined_classes[i]) & ~used,
                          ious[i], -1.0)
    j = int(np.argmax(candidates))
    if candidates[j] >= iou_threshold:
      hits[i] = True
      used[j] = True
  return hits


@dataclasses.dataclass
class MiningStats:
  """Counts over images; ``per_category`` maps class id → [mined, tp, hidden]."""
  images: int = 0
  images_with_boxes: int = 0
  mined_boxes: int = 0
  true_positives: int = 0
  hidden_boxes: int = 0
  per_category: dict = dataclasses.field(default_factory=dict)

  def _category(self, label):
    return self.per_category.setdefault(int(label), [0, 0, 0])

  def add_image(self, mined_classes, hits, hidden_classes):
    self.images += 1
    mined_classes = np.asarray(mined_classes).reshape(-1)
    hidden_classes = np.asarray(hidden_classes).reshape(-1)
    self.images_with_boxes += int(len(mined_classes) > 0)
    self.mined_boxes += len(mined_classes)
    self.true_positives += int(np.sum(hits))
    self.hidden_boxes += len(hidden_classes)
    for label, hit in zip(mined_classes, hits):
      self._category(label)[0] += 1
      self._category(label)[1] += int(hit)
    for label in hidden_classes:
      self._category(label)[2] += 1

  def merge(self, other):
    merged = MiningStats(
        self.images + other.images,
        self.images_with_boxes + other.images_with_boxes,
        self.mined_boxes + other.mined_boxes,
        self.true_positives + other.true_positives,
        self.hidden_boxes + other.hidden_boxes)
    for source in (self.per_category, other.per_category):
      for label, counts in source.items():
        target = merged._category(label)  # pylint: disable=protected-access
        for k in range(3):
          target[k] += counts[k]
    return merged

  @staticmethod
  def _ratio(numerator, denominator):
    """numerator / denominator; None (undefined) when the denominator is 0."""
    return float(numerator) / denominator if denominator else None

  def summary(self, id_to_name=None):
    """JSON-ready dict: totals, precision, recall, per-category figures."""
    id_to_name = id_to_name or {}
    categories = {}
    for label in sorted(self.per_category):
      mined, tp, hidden = self.per_category[label]
      categories[id_to_name.get(label, str(label))] = {
          'id': label, 'mined_boxes': mined, 'true_positives': tp,
          'hidden_boxes': hidden, 'precision': self._ratio(tp, mined),
          'recall': self._ratio(tp, hidden)}
    return {
        'images': self.images, 'images_with_boxes': self.images_with_boxes,
        'mined_boxes': self.mined_boxes, 'true_positives': self.true_positives,
        'hidden_boxes': self.hidden_boxes,
        'precision': self._ratio(self.true_positives, self.mined_boxes),
        'recall': self._ratio(self.true_positives, self.hidden_boxes),
        'per_category': categories,
    }


def threshold_sweep_counts(best_scores, best_hits, thresholds):
  """Precision-vs-#boxes points (paper Fig. 6) from best-per-label candidates.

  Args:
    best_scores: float ``[K]`` scores of every image's best box per label.
    best_hits: bool ``[K]`` whether each is a true positive.
    thresholds: iterable of θb values.

  Returns:
    list of {'threshold', 'mined_boxes', 'true_positives', 'precision'}.
  """
  scores = np.asarray(best_scores, np.float64).reshape(-1)
  hits = np.asarray(best_hits, bool).reshape(-1)
  points = []
  for threshold in thresholds:
    kept = scores > threshold
    n, tp = int(kept.sum()), int(hits[kept].sum())
    points.append({'threshold': float(threshold), 'mined_boxes': n,
                   'true_positives': tp,
                   'precision': float(tp) / n if n else None})
  return points
