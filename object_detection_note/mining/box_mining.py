"""Box mining M(A, T, θb) of paper §3.2, as pure functions.

For one image with image-level labels L and detections of the current target
detector T: for each label l in L, take the highest-scoring detection whose
class is l and keep it if its score is strictly greater than θb. An image
with no kept box is left out of the mined set.

Arrays: boxes float ``[N, 4]`` normalised ``(ymin, xmin, ymax, xmax)``,
scores float ``[N]``, classes int ``[N]`` of 1-based label ids.
"""
import dataclasses

import numpy as np

from object_detection_note.data.records import tf_example_codec
from object_detection_note.mining import mining_metrics


@dataclasses.dataclass
class MinedBoxes:
  """The boxes mined from one image: one per matched image-level label."""
  boxes: np.ndarray  # float32 [K, 4]
  classes: np.ndarray  # int64 [K]
  scores: np.ndarray  # float32 [K]

  def __len__(self):
    return len(self.classes)


def best_box_per_label(boxes, scores, classes, image_labels):
  """The highest-scoring detection of each image-level label (no threshold).

  Returns:
    MinedBoxes with one entry per label that has any detection, in the order
    of ``sorted(set(image_labels))``. Ties keep the earlier detection.
  """
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  scores = np.asarray(scores, np.float32).reshape(-1)
  classes = np.asarray(classes, np.int64).reshape(-1)
  kept = []
  for label in sorted(set(int(l) for l in np.asarray(image_labels).ravel())):
    candidates = np.flatnonzero(classes == label)
    if candidates.size:
      kept.append(candidates[np.argmax(scores[candidates])])
  kept = np.asarray(kept, np.int64)
  return MinedBoxes(boxes[kept], classes[kept], scores[kept])


class OracleError(ValueError):
  """Oracle mining asked for on an image without hidden boxes of a label."""


def oracle_boxes(best, hidden_boxes, hidden_classes, source_id=''):
  """The oracle control (note.mining.control ORACLE) for one image.

  Each candidate of ``best`` (the best detection per image-level label)
  becomes a hidden true instance of its class: the one with the highest IoU
  with the detection, or the largest one (ties: the first) when none
  overlaps it. Classes and scores are kept, so the threshold θb then keeps
  the labels M would keep; the other instances stay unlabelled.

  Args:
    best: MinedBoxes from ``best_box_per_label``.
    hidden_boxes: float ``[H, 4]`` normalised hidden boxes of the image.
    hidden_classes: int ``[H]`` their label ids.
    source_id: the image's source_id, for the error message.

  Returns:
    MinedBoxes with the same classes and scores, boxes from ``hidden_boxes``.

  Raises:
    OracleError: a candidate's class has no hidden box in the image.
  """
  hidden_boxes = np.asarray(hidden_boxes, np.float32).reshape(-1, 4)
  hidden_classes = np.asarray(hidden_classes, np.int64).reshape(-1)
  boxes = np.zeros_like(best.boxes)
  ious = mining_metrics.iou_matrix(best.boxes, hidden_boxes) if len(
      hidden_boxes) and len(best) else np.zeros((len(best), 0))
  areas = ((hidden_boxes[:, 2] - hidden_boxes[:, 0]) *
           (hidden_boxes[:, 3] - hidden_boxes[:, 1]))
  for i, label in enumerate(best.classes):
    same = np.flatnonzero(hidden_classes == label)
    if not same.size:
      raise OracleError(
          'image %r: note.mining.control ORACLE needs the hidden boxes '
          '(image/note/hidden/bbox/*) of every image-level label; label %d has '
          'none' % (source_id, int(label)))
    overlap = ious[i, same]
    pick = same[np.argmax(overlap)] if overlap.max() > 0 else same[
        np.argmax(areas[same])]
    boxes[i] = hidden_boxes[pick]
  return MinedBoxes(boxes, best.classes.copy(), best.scores.copy())


def mine_image(boxes, scores, classes, image_labels, score_threshold):
  """M for one image: best box per image-level label with score > θb."""
  best = best_box_per_label(boxes, scores, classes, image_labels)
  keep = best.scores > score_threshold
  return MinedBoxes(best.boxes[keep], best.classes[keep], best.scores[keep])


def mined_record(record, mined, id_to_name):
  """A DetectionRecord for the mined set, or None when nothing was kept.

  The image, its image-level labels and its hidden boxes (for scoring) are
  kept; ``is_mined`` is 1 and the mined boxes become the object boxes.

  Args:
    record: tf_example_codec.DetectionRecord of the image-level set.
    mined: MinedBoxes of this image.
    id_to_name: {label id: name} of the target label map.
  """
  if not len(mined):
    return None
  return tf_example_codec.DetectionRecord(
      image_bytes=record.image_bytes, source_id=record.source_id,
      height=record.height, width=record.width,
      image_format=record.image_format, filename=record.filename,
      boxes=mined.boxes, classes=mined.classes,
      class_texts=[id_to_name.get(int(c), str(int(c))) for c in mined.classes],
      box_scores=mined.scores, image_labels=record.image_labels,
      image_label_texts=list(record.image_label_texts), is_mined=1,
      hidden_boxes=record.hidden_boxes, hidden_classes=record.hidden_classes,
      hidden_class_texts=list(record.hidden_class_texts))
