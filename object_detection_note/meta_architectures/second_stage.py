"""Second-stage proposal sampling, targets and feature cropping.

Boxes are absolute pixel (ymin, xmin, ymax, xmax) in the padded image frame.
"""
import tensorflow as tf

from official.vision.ops import box_matcher
from official.vision.ops import box_ops
from official.vision.ops import spatial_transform_ops
from tf_keras.src.utils import control_flow_util

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


def _in_xla_context():
  """True while tracing for XLA (jit_compile=True, TPU replicas)."""
  return control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph())


def _sample_range(starts, sizes, crop_size):
  """First and last sample positions, as multilevel_crop_and_resize has them.

  Sample ``i`` of a box is at ``start + (i + 0.5) * size / crop_size``
  (``sample_offset`` 0.5).

  Returns:
    (first, last) float [B, K].
  """
  first = starts + 0.5 * sizes / float(crop_size)
  last = starts + (crop_size - 0.5) * sizes / float(crop_size)
  return first, last


def _model_garden_crops(features, cells, crop_size):
  """Model Garden's gather-based crops; compiles with XLA. [B, K, k, k, C]."""
  return spatial_transform_ops.multilevel_crop_and_resize(
      {'0': features}, cells, output_size=crop_size)


def _native_crops(features, cells, crop_size):
  """The same samples with ``tf.image.crop_and_resize``: [B, K, k, k, C].

  Exact (up to float rounding) for sample positions in ``[0, h] x [0, w]``
  (cell units): the map gets one replicated border row / column on top /
  left and two at the bottom / right, so that bilinear sampling of the
  padded map reproduces Model Garden's rule of reading the last row / column
  for positions past ``h - 1`` / ``w - 1``.
  """
  batch = tf.shape(features)[0]
  height, width = features.shape[1], features.shape[2]
  padded = tf.concat([features[:, :1], features, features[:, -1:],
                      features[:, -1:]], axis=1)
  padded = tf.concat([padded[:, :, :1], padded, padded[:, :, -1:],
                      padded[:, :, -1:]], axis=2)
  y_first, y_last = _sample_range(cells[..., 0], cells[..., 2] - cells[..., 0],
                                  crop_size)
  x_first, x_last = _sample_range(cells[..., 1], cells[..., 3] - cells[..., 1],
                                  crop_size)
  # crop_and_resize samples y1 * (H' - 1) + i * (y2 - y1) * (H' - 1) / (k - 1)
  # for a padded height H' = h + 3; the padding shifts positions by one.
  normalised = tf.stack([(y_first + 1.0) / float(height + 2),
                         (x_first + 1.0) / float(width + 2),
                         (y_last + 1.0) / float(height + 2),
                         (x_last + 1.0) / float(width + 2)], axis=-1)
  num_boxes = cells.shape[1]
  crops = tf.image.crop_and_resize(
      padded, tf.reshape(normalised, [-1, 4]),
      tf.repeat(tf.range(batch), num_boxes), [crop_size, crop_size])
  return tf.reshape(tf.cast(crops, features.dtype),
                    [batch, num_boxes, crop_size, crop_size,
                     features.shape[-1]])


def _odapi_cells(boxes, image_hw, feature_hw, crop_size):
  """Cell boxes whose RoIAlign samples are ``crop_and_resize``'s.

  The OD API crops with ``tf.image.crop_and_resize`` over boxes normalised
  to the image: sample ``i`` at ``y1 * (h - 1) + i * (y2 - y1) * (h - 1) /
  (k - 1)`` (feature row ``j`` at position ``j``). ``_sample_range`` puts
  sample ``i`` at ``start + (i + 0.5) * size / k``; this returns the
  (start, size) boxes giving the same positions.
  """
  if crop_size < 2:
    raise ValueError('odapi_compatible_geometry needs initial_crop_size >= 2, '
                     'got %d' % crop_size)
  height, width = image_hw
  feature_height, feature_width = feature_hw
  normalised = boxes / tf.constant([height, width, height, width], tf.float32)
  span = tf.constant([feature_height - 1, feature_width - 1] * 2, tf.float32)
  first = normalised[..., :2] * span[:2]
  step = (normalised[..., 2:] - normalised[..., :2]) * span[:2] / float(
      crop_size - 1)
  start = first - 0.5 * step
  return tf.concat([start, start + float(crop_size) * step], axis=-1)


def crop_features(features, boxes, stride, crop_size, maxpool_kernel_size,
                  maxpool_stride, image_hw=None):
  """Bilinear crops of the feature map for each box, then max pooling.

  The samples are those of Model Garden's ``multilevel_crop_and_resize``
  with a single level (RoIAlign-style, one sample per output cell, positions
  past the last row / column read it). Under XLA that gather-based op is
  used (``tf.image.crop_and_resize`` has no XLA kernel); otherwise, whenever
  every sample lies inside the feature map (always the case for proposals,
  which are clipped to the image), the native ``crop_and_resize`` kernel
  computes the same values (up to float rounding) several times faster and
  with far less memory, in the forward and the backward pass.

  Args:
    features: float [B, h, w, C] first-stage features (static h, w).
    boxes: float [B, K, 4] absolute pixels.
    stride: int, pixels per feature cell.
    crop_size: initial_crop_size.
    maxpool_kernel_size, maxpool_stride: OD API max-pool after the crop
      (VALID padding; 1 / 1 is the identity).
    image_hw: (height, width) of the padded image, for the OD API's sample
      positions (``odapi_compatible_geometry``); None: RoIAlign samples at
      cell centres of ``boxes / stride``.

  Returns:
    float [B * K, crop', crop', C], of the dtype of ``features`` (bfloat16 or
    float16 under a mixed-precision policy: the crops themselves are
    computed in float32, whose kernels and gradients exist on every device).
  """
  dtype = features.dtype
  features = tf.cast(features, tf.float32)
  height, width = features.shape[1], features.shape[2]
  if image_hw is None:
    cells = boxes / float(stride)
  else:
    cells = _odapi_cells(boxes, image_hw, (height, width), crop_size)
  if _in_xla_context():
    crops = _model_garden_crops(features, cells, crop_size)
  else:
    y_first, y_last = _sample_range(
        cells[..., 0], cells[..., 2] - cells[..., 0], crop_size)
    x_first, x_last = _sample_range(
        cells[..., 1], cells[..., 3] - cells[..., 1], crop_size)
    inside = tf.reduce_all(tf.stack([
        tf.minimum(y_first, y_last) >= 0.0,
        tf.maximum(y_first, y_last) <= float(height),
        tf.minimum(x_first, x_last) >= 0.0,
        tf.maximum(x_first, x_last) <= float(width)]))
    crops = tf.cond(inside,
                    lambda: _native_crops(features, cells, crop_size),
                    lambda: _model_garden_crops(features, cells, crop_size))
  crops = tf.reshape(crops, [-1, crop_size, crop_size, features.shape[-1]])
  if maxpool_kernel_size > 1 or maxpool_stride > 1:
    crops = tf.nn.max_pool2d(crops, maxpool_kernel_size, maxpool_stride,
                             padding='VALID')
  return tf.cast(crops, dtype)
