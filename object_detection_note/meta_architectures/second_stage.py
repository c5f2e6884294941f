"""Second-stage proposal sampling, targets and feature cropping.

Boxes are absolute pixel (ymin, xmin, ymax, xmax) in the padded image frame.
"""
import tensorflow as tf

from official.vision.ops import box_matcher
from official.vision.ops import box_ops
from official.vision.ops import spatial_transform_ops

from object_detection_note.meta_architectures import first_stage
from object_detection_note.meta_architectures import sampling


def sample_proposals(proposals, proposals_valid, gt_boxes, gt_classes,
                     sample_size, positive_fraction, positive_threshold):
  """Samples a balanced, fixed-size set of proposals and their targets.

  Args:
    proposals: float [B, P, 4] absolute.
    proposals_valid: bool [B, P].
    gt_boxes: float [B, M, 4] absolute, padding -1 (IoU -1: never matched).
    gt_classes: int [B, M] 1-based.
    sample_size: K, proposals kept per image (second_stage_batch_size).
    positive_fraction: maximum foreground fraction (0.25).
    positive_threshold: IoU for foreground (0.5); lower IoU is background.

  Returns:
    dict:
      'boxes'          float32 [B, K, 4] sampled proposals (stop-gradient),
      'class_targets'  int32   [B, K] 0 background, 1..C,
      'box_targets'    float32 [B, K, 4] encoded (zeros on background),
      'valid'          float32 [B, K] 1 for real samples, 0 padding.
  """
  iou = box_ops.bbox_overlap(proposals, gt_boxes)  # [B, P, M]
  matcher = box_matcher.BoxMatcher(thresholds=[positive_threshold],
                                   indicators=[-1, 1])
  matched_gt, indicators = matcher(iou)
  positive = tf.logical_and(proposals_valid, indicators == 1)
  negative = tf.logical_and(proposals_valid, indicators == -1)
  sampled = sampling.balanced_sample(positive, negative, sample_size,
                                     positive_fraction)
  indices, valid = sampling.sampled_indices(sampled, sample_size)

  boxes = tf.gather(proposals, indices, batch_dims=1)
  is_positive = tf.logical_and(valid, tf.gather(positive, indices,
                                                batch_dims=1))
  matched = tf.gather(matched_gt, indices, batch_dims=1)
  classes = tf.gather(tf.cast(gt_classes, tf.int32), matched, batch_dims=1)
  class_targets = tf.where(is_positive, classes, tf.zeros_like(classes))
  matched_boxes = tf.gather(gt_boxes, matched, batch_dims=1)
  box_targets = box_ops.encode_boxes(matched_boxes, boxes,
                                     weights=first_stage.BOX_CODER_WEIGHTS)
  box_targets = tf.where(is_positive[..., tf.newaxis], box_targets,
                         tf.zeros_like(box_targets))
  return {
      'boxes': tf.stop_gradient(boxes),
      'class_targets': class_targets,
      'box_targets': box_targets,
      'valid': tf.cast(valid, tf.float32),
  }


def crop_features(features, boxes, stride, crop_size, maxpool_kernel_size,
                  maxpool_stride):
  """Bilinear crops of the feature map for each box, then max pooling.

  Uses Model Garden's gather-based ``multilevel_crop_and_resize`` with a
  single level (``tf.image.crop_and_resize`` has no XLA kernel).

  Args:
    features: float [B, h, w, C] first-stage features.
    boxes: float [B, K, 4] absolute pixels.
    stride: int, pixels per feature cell.
    crop_size: initial_crop_size.
    maxpool_kernel_size, maxpool_stride: OD API max-pool after the crop
      (VALID padding; 1 / 1 is the identity).

  Returns:
    float [B * K, crop', crop', C].
  """
  crops = spatial_transform_ops.multilevel_crop_and_resize(
      {'0': features}, boxes / float(stride), output_size=crop_size)
  crops = tf.reshape(crops, [-1, crop_size, crop_size, features.shape[-1]])
  if maxpool_kernel_size > 1 or maxpool_stride > 1:
    crops = tf.nn.max_pool2d(crops, maxpool_kernel_size, maxpool_stride,
                             padding='VALID')
  return crops
