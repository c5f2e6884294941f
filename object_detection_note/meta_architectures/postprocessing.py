"""Second-stage post-processing: class-specific decoding and per-class NMS.

Produces the OD API detection dict (``core.fields.DetectionFields``) with
static shapes. Boxes are normalised to the true (unpadded) image, as the OD
API's Faster R-CNN does, so that exported detections refer to the input
image whatever padding preprocessing added.
"""
import tensorflow as tf

from official.vision.ops import box_ops

from object_detection_note.core.fields import DetectionFields
from object_detection_note.meta_architectures import first_stage


def _normalize(boxes, true_image_shapes):
  """Absolute boxes [B, ..., 4] -> normalised to the true image shape."""
  height = tf.cast(true_image_shapes[:, 0], boxes.dtype)
  width = tf.cast(true_image_shapes[:, 1], boxes.dtype)
  scale = tf.stack([height, width, height, width], axis=-1)
  scale = tf.reshape(scale, [-1] + [1] * (len(boxes.shape) - 2) + [4])
  return boxes / scale


def postprocess_detections(proposal_boxes, num_proposals, refined_box_encodings,
                           class_probabilities, true_image_shapes,
                           score_threshold, iou_threshold,
                           max_detections_per_class, max_total_detections):
  """Per-class NMS over class-specific boxes.

  Args:
    proposal_boxes: float [B, P, 4] absolute; the first ``num_proposals`` rows
      of each image are real.
    num_proposals: int [B].
    refined_box_encodings: float [B, P, C, 4] (det-reg, w.r.t. the proposal).
    class_probabilities: float [B, P, C + 1], index 0 background.
    true_image_shapes: int [B, 3].
    score_threshold: detections need a score > this.
    iou_threshold: per-class NMS IoU.
    max_detections_per_class: NMS output per class.
    max_total_detections: static output count D.

  Returns:
    dict with DetectionFields keys:
      detection_boxes float32 [B, D, 4] normalised, zero padded,
      detection_scores float32 [B, D], detection_classes float32 [B, D]
      (1-based label ids, 0 on padding), num_detections float32 [B],
      detection_multiclass_scores float32 [B, D, C + 1],
      raw_detection_boxes float32 [B, P, 4] (each proposal's box for its
      highest-scoring class), raw_detection_scores float32 [B, P, C + 1],
      detection_anchor_indices float32 [B, D] (the proposal, i.e. the row of
      raw_detection_*, each detection comes from; 0 on padding), as the OD
      API's Faster R-CNN exports them.
  """
  num_props = proposal_boxes.shape[1]
  num_classes = refined_box_encodings.shape[2]
  boxes = box_ops.decode_boxes(refined_box_encodings,
                               proposal_boxes[:, :, tf.newaxis, :],
                               weights=first_stage.BOX_CODER_WEIGHTS)
  window = tf.cast(true_image_shapes[:, tf.newaxis, tf.newaxis, :2],
                   boxes.dtype)
  boxes = box_ops.clip_boxes(boxes, window)  # [B, P, C, 4]
  proposal_valid = tf.range(num_props)[tf.newaxis] < num_proposals[:, None]
  scores = tf.where(proposal_valid[..., tf.newaxis],
                    class_probabilities[..., 1:], -1.0)  # [B, P, C]

  per_class_boxes = tf.transpose(boxes, [0, 2, 1, 3])  # [B, C, P, 4]
  per_class_scores = tf.transpose(scores, [0, 2, 1])  # [B, C, P]
  per_class_k = min(max_detections_per_class, num_props)
  nms_indices, nms_count = tf.image.non_max_suppression_padded(
      per_class_boxes, per_class_scores, per_class_k,
      iou_threshold=iou_threshold, score_threshold=score_threshold,
      pad_to_max_output_size=True,
      # Exact greedy NMS for any tile size; the default (512) would pad the
      # P proposals of every class to 512 boxes.
      tile_size=min(512, num_props))  # [B, C, K], [B, C]
  kept = tf.range(per_class_k)[tf.newaxis, tf.newaxis] < nms_count[..., None]
  kept_scores = tf.gather(per_class_scores, nms_indices, batch_dims=2)
  kept_scores = tf.where(kept, kept_scores, -2.0)

  flat_scores = tf.reshape(kept_scores, [-1, num_classes * per_class_k])
  flat_proposals = tf.reshape(nms_indices, [-1, num_classes * per_class_k])
  if num_classes * per_class_k < max_total_detections:
    pad = max_total_detections - num_classes * per_class_k
    flat_scores = tf.pad(flat_scores, [[0, 0], [0, pad]],
                         constant_values=-2.0)
    flat_proposals = tf.pad(flat_proposals, [[0, 0], [0, pad]])
  top_scores, order = tf.math.top_k(flat_scores, k=max_total_detections)
  valid = top_scores > -2.0
  proposal_index = tf.gather(flat_proposals, order, batch_dims=1)
  class_index = tf.minimum(order // per_class_k, num_classes - 1)

  pair = tf.stack([proposal_index, class_index], axis=-1)
  det_boxes = tf.gather_nd(boxes, pair, batch_dims=1)
  det_boxes = _normalize(det_boxes, true_image_shapes)
  validf = tf.cast(valid, tf.float32)
  multiclass = tf.gather(class_probabilities, proposal_index, batch_dims=1)

  best_class = tf.argmax(class_probabilities[..., 1:], axis=-1,
                         output_type=tf.int32)
  raw_boxes = tf.gather(boxes, best_class, batch_dims=2)
  return {
      DetectionFields.detection_boxes: det_boxes * validf[..., None],
      DetectionFields.detection_scores: tf.maximum(top_scores, 0.0) * validf,
      DetectionFields.detection_classes:
          tf.cast(class_index + 1, tf.float32) * validf,
      DetectionFields.num_detections: tf.reduce_sum(validf, axis=1),
      DetectionFields.detection_multiclass_scores:
          multiclass * validf[..., None],
      DetectionFields.raw_detection_boxes:
          _normalize(raw_boxes, true_image_shapes),
      DetectionFields.raw_detection_scores: class_probabilities,
      DetectionFields.detection_anchor_indices:
          tf.cast(proposal_index, tf.float32) * validf,
  }
