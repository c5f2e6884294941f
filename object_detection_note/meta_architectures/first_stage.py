"""RPN anchors, training targets and proposal generation.

All boxes here are absolute pixel (ymin, xmin, ymax, xmax) in the frame of
the padded input image.
"""
import numpy as np
import tensorflow as tf

from official.vision.ops import box_matcher
from official.vision.ops import box_ops
from official.vision.ops import nms

from object_detection_note.meta_architectures import sampling

# OD API Faster R-CNN box coder scale factors (y, x, h, w), both stages.
BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def grid_anchors(feature_height, feature_width, stride, base_anchor_size,
                 scales, aspect_ratios, base_anchor_width=None, offset=None):
  """OD API grid anchors over a feature map.

  Anchor of scale s and aspect ratio a (width / height): height
  ``base * s / sqrt(a)``, width ``base_width * s * sqrt(a)``, centred at
  ``(offset_y + row * stride, offset_x + col * stride)``.

  Args:
    feature_height, feature_width: static ints, feature map size.
    stride: int, pixels per feature cell.
    base_anchor_size: float, base anchor height (OD API default 256).
    scales, aspect_ratios: lists of floats.
    base_anchor_width: float, base anchor width (None: base_anchor_size).
    offset: (y, x) pixels of the first centre; None: (stride / 2,
      stride / 2), the centre of the first cell (the OD API's default is 0).

  Returns:
    float32 [feature_height * feature_width * k, 4], order (row, col, anchor)
    with anchor index = scale_index * len(aspect_ratios) + ratio_index.
  """
  base_height = float(base_anchor_size)
  base_width = float(base_anchor_width or base_anchor_size)
  offset_y, offset_x = (stride / 2.0, stride / 2.0) if offset is None else (
      offset)
  sizes = np.array([(base_height * s / np.sqrt(a), base_width * s * np.sqrt(a))
                    for s in scales for a in aspect_ratios], np.float64)
  centre_y = offset_y + stride * np.arange(feature_height, dtype=np.float64)
  centre_x = offset_x + stride * np.arange(feature_width, dtype=np.float64)
  cy = centre_y[:, None, None]
  cx = centre_x[None, :, None]
  heights = sizes[None, None, :, 0]
  widths = sizes[None, None, :, 1]
  shape = (feature_height, feature_width, len(sizes))
  corners = np.stack([np.broadcast_to(cy - heights / 2, shape),
                      np.broadcast_to(cx - widths / 2, shape),
                      np.broadcast_to(cy + heights / 2, shape),
                      np.broadcast_to(cx + widths / 2, shape)], axis=-1)
  return tf.constant(corners.reshape([-1, 4]), tf.float32)


def groundtruth_to_absolute(boxes, weights, image_height, image_width):
  """Normalised groundtruth -> absolute boxes with padding set to -1.

  Args:
    boxes: float [B, M, 4] normalised to the padded image.
    weights: float [B, M], 0 for padding.
    image_height, image_width: padded image size (ints or scalar tensors).

  Returns:
    float32 [B, M, 4]; padded rows are -1 (Model Garden's "invalid" marker).
  """
  height = tf.cast(image_height, tf.float32)
  width = tf.cast(image_width, tf.float32)
  scale = tf.stack([height, width, height, width])
  absolute = tf.cast(boxes, tf.float32) * scale
  valid = tf.cast(weights, tf.float32)[..., tf.newaxis] > 0
  return tf.where(valid, absolute, -tf.ones_like(absolute))


def _match_with_forced_best(iou, gt_valid, negative_threshold,
                            positive_threshold):
  """Argmax matching + each valid groundtruth forced onto its best anchor.

  Args:
    iou: float [B, A, M]; padded groundtruth columns hold -1.
    gt_valid: bool [B, M].
    negative_threshold, positive_threshold: floats.

  Returns:
    (matched_gt int32 [B, A], positive bool [B, A], negative bool [B, A]).
  """
  matcher = box_matcher.BoxMatcher(
      thresholds=[negative_threshold, positive_threshold],
      indicators=[-1, -2, 1])
  matched_gt, indicators = matcher(iou)
  # Model Garden's force_match_for_each_col would also force the padded
  # columns, so force only valid groundtruth with some overlap.
  num_anchors = iou.shape[1]
  best_anchor = tf.argmax(iou, axis=1, output_type=tf.int32)  # [B, M]
  best_iou = tf.reduce_max(iou, axis=1)
  force = tf.one_hot(best_anchor, num_anchors, axis=1) * tf.cast(
      tf.logical_and(gt_valid, best_iou > 0), tf.float32)[:, tf.newaxis, :]
  forced = tf.reduce_max(force, axis=2) > 0
  matched_gt = tf.where(forced, tf.argmax(force, axis=2, output_type=tf.int32),
                        matched_gt)
  positive = tf.logical_or(forced, indicators == 1)
  negative = tf.logical_and(tf.logical_not(positive), indicators == -1)
  return matched_gt, positive, negative


def rpn_targets(anchors, gt_boxes, gt_valid, positive_threshold,
                negative_threshold, minibatch_size, positive_fraction):
  """Objectness and box targets of the anchors, with a balanced minibatch.

  Args:
    anchors: float [A, 4] absolute.
    gt_boxes: float [B, M, 4] absolute, padding -1.
    gt_valid: bool [B, M].
    positive_threshold, negative_threshold: IoU thresholds (0.7 / 0.3).
    minibatch_size: anchors sampled per image (256).
    positive_fraction: maximum positive fraction of the minibatch (0.5).

  Returns:
    dict with float32 tensors:
      'objectness' [B, A] 1 positive / 0 otherwise,
      'box_targets' [B, A, 4] encoded (zeros on non-positive anchors),
      'sampled' [B, A] 1 for the minibatch anchors.
  """
  batch = tf.shape(gt_boxes)[0]
  tiled = tf.broadcast_to(anchors[tf.newaxis], [batch, anchors.shape[0], 4])
  iou = box_ops.bbox_overlap(tiled, gt_boxes)
  matched_gt, positive, negative = _match_with_forced_best(
      iou, gt_valid, negative_threshold, positive_threshold)
  sampled = sampling.balanced_sample(positive, negative, minibatch_size,
                                     positive_fraction)
  matched_boxes = tf.gather(gt_boxes, matched_gt, batch_dims=1)
  box_targets = box_ops.encode_boxes(matched_boxes, tiled,
                                     weights=BOX_CODER_WEIGHTS)
  box_targets = tf.where(positive[..., tf.newaxis], box_targets,
                         tf.zeros_like(box_targets))
  return {
      'objectness': tf.cast(positive, tf.float32),
      'box_targets': box_targets,
      'sampled': tf.cast(sampled, tf.float32),
  }


def propose(anchors, box_encodings, objectness, true_image_shapes,
            pre_nms_top_k, nms_iou_threshold, max_proposals,
            nms_score_threshold=0.0):
  """Decodes, clips and suppresses RPN boxes into a fixed number of proposals.

  Args:
    anchors: float [A, 4] absolute.
    box_encodings: float [B, A, 4] rpn-reg outputs.
    objectness: float [B, A] object probabilities (already averaged over
      rpn-cls and rpn-cls-a when both exist).
    true_image_shapes: int [B, 3]; boxes are clipped to the unpadded image.
    pre_nms_top_k: boxes kept (by score) before NMS.
    nms_iou_threshold: NMS IoU threshold.
    max_proposals: static proposal count P.
    nms_score_threshold: boxes need objectness > this to be proposed
      (``first_stage_nms_score_threshold``).

  Returns:
    (boxes float32 [B, P, 4] absolute, scores float32 [B, P],
     valid bool [B, P]); padding rows have zero boxes, score 0, not valid.
  """
  boxes = box_ops.decode_boxes(box_encodings, anchors[tf.newaxis],
                               weights=BOX_CODER_WEIGHTS)
  window = tf.cast(true_image_shapes[:, tf.newaxis, :2], boxes.dtype)
  boxes = box_ops.clip_boxes(boxes, window)
  non_empty = tf.logical_and(boxes[..., 2] > boxes[..., 0],
                             boxes[..., 3] > boxes[..., 1])
  scores = tf.where(tf.logical_and(non_empty, objectness > nms_score_threshold),
                    objectness, tf.zeros_like(objectness))
  top_k = min(pre_nms_top_k, anchors.shape[0])
  boxes, scores = box_ops.top_k_boxes(boxes, scores, k=top_k)
  if top_k < max_proposals:  # Fewer anchors than proposals: pad with dots.
    boxes = tf.pad(boxes, [[0, 0], [0, max_proposals - top_k], [0, 0]])
    scores = tf.pad(scores, [[0, 0], [0, max_proposals - top_k]])
  scores, boxes = nms.sorted_non_max_suppression_padded(
      scores, boxes, max_output_size=max_proposals,
      iou_threshold=nms_iou_threshold)
  valid = scores > 0
  boxes = tf.where(valid[..., tf.newaxis], boxes, tf.zeros_like(boxes))
  scores = tf.where(valid, scores, tf.zeros_like(scores))
  return boxes, scores, valid
