"""Second-stage proposal sampling, targets and feature cropping.

Boxes are absolute pixel (ymin, xmin, ymax, xmax) in the padded image frame.
"""
import tensorflow as tf

from official.vision.ops import box_matcher
from official.vision.ops import box_ops

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


def _interpolation_matrix(starts, sizes, length, crop_size):
  """Bilinear sampling weights along one axis, as a dense matrix.

  Same sample positions and border rule as Model Garden's
  ``multilevel_crop_and_resize`` (``sample_offset`` 0.5): sample ``i`` of a
  box is at ``start + (i + 0.5) * size / crop_size``; its lower neighbour is
  ``floor`` of that, clipped to ``[0, length - 1]``, its upper neighbour the
  next cell clipped to ``length - 1``, and the weights are ``1 - d`` and
  ``d`` with ``d`` the distance to the lower neighbour.

  Args:
    starts: float [B, K] box starts, in feature cells.
    sizes: float [B, K] box sizes, in feature cells.
    length: static int, feature map size along the axis.
    crop_size: static int.

  Returns:
    float [B, K, crop_size, length]; each row sums to 1.
  """
  offsets = tf.range(crop_size, dtype=starts.dtype) + 0.5
  positions = (starts[..., tf.newaxis] +
               offsets * sizes[..., tf.newaxis] / float(crop_size))
  limit = float(length - 1)
  lower = tf.minimum(tf.maximum(tf.floor(positions), 0.0), limit)
  upper = tf.minimum(lower + 1.0, limit)
  upper_weight = positions - lower
  lower_weight = 1.0 - upper_weight
  return (lower_weight[..., tf.newaxis] *
          tf.one_hot(tf.cast(lower, tf.int32), length, dtype=starts.dtype) +
          upper_weight[..., tf.newaxis] *
          tf.one_hot(tf.cast(upper, tf.int32), length, dtype=starts.dtype))


def _separable_resample(features, rows, cols):
  """``out[b,k,i,j] = sum_{y,x} rows[b,k,i,y] cols[b,k,j,x] features[b,y,x]``.

  Two batched matrix products, the longer spatial axis contracted first (the
  second product is then the smaller).

  Args:
    features: [B, h, w, C].
    rows: [B, K, crop, h].
    cols: [B, K, crop, w].

  Returns:
    [B, K, crop, crop, C].
  """
  batch = tf.shape(features)[0]
  height, width, channels = features.shape[1:4]
  num_boxes, crop_size = rows.shape[1], rows.shape[2]
  if width >= height:
    first, second = cols, rows
    maps = tf.transpose(features, [0, 2, 1, 3])  # [B, w, h, C]
    long_len, short_len = width, height
  else:
    first, second = rows, cols
    maps = features
    long_len, short_len = height, width
  # [B, K * crop, long] x [B, long, short * C] -> [B, K * crop, short * C].
  partial = tf.matmul(
      tf.reshape(first, [batch, num_boxes * crop_size, long_len]),
      tf.reshape(maps, [batch, long_len, short_len * channels]))
  # -> [B * K, short, crop * C], contracted with [B * K, crop, short].
  partial = tf.reshape(partial, [-1, crop_size, short_len, channels])
  partial = tf.reshape(tf.transpose(partial, [0, 2, 1, 3]),
                       [-1, short_len, crop_size * channels])
  out = tf.matmul(tf.reshape(second, [-1, crop_size, short_len]), partial)
  out = tf.reshape(out, [batch, num_boxes, crop_size, crop_size, channels])
  if width < height:  # Rows were contracted first: out is [B, K, j, i, C].
    out = tf.transpose(out, [0, 1, 3, 2, 4])
  return out


def crop_features(features, boxes, stride, crop_size, maxpool_kernel_size,
                  maxpool_stride):
  """Bilinear crops of the feature map for each box, then max pooling.

  Samples exactly where Model Garden's ``multilevel_crop_and_resize`` with a
  single level does (RoIAlign-style, one sample per output cell, borders
  clamped), but as two small matrix products per box, one per axis, instead
  of gathering four ``[crop, crop, C]`` corner tensors per box: the same
  values up to float rounding, a fraction of the time and memory (its
  gradient is a matrix product too, not a scatter). Matrix products and
  ``one_hot`` compile with XLA (``tf.image.crop_and_resize`` does not).

  Args:
    features: float [B, h, w, C] first-stage features (static h, w).
    boxes: float [B, K, 4] absolute pixels.
    stride: int, pixels per feature cell.
    crop_size: initial_crop_size.
    maxpool_kernel_size, maxpool_stride: OD API max-pool after the crop
      (VALID padding; 1 / 1 is the identity).

  Returns:
    float [B * K, crop', crop', C].
  """
  height, width, channels = features.shape[1:4]
  cells = boxes / float(stride)
  rows = _interpolation_matrix(cells[..., 0], cells[..., 2] - cells[..., 0],
                               height, crop_size)  # [B, K, crop, h]
  cols = _interpolation_matrix(cells[..., 1], cells[..., 3] - cells[..., 1],
                               width, crop_size)  # [B, K, crop, w]
  rows = tf.cast(rows, features.dtype)
  cols = tf.cast(cols, features.dtype)
  crops = _separable_resample(features, rows, cols)
  crops = tf.reshape(crops, [-1, crop_size, crop_size, channels])
  if maxpool_kernel_size > 1 or maxpool_stride > 1:
    crops = tf.nn.max_pool2d(crops, maxpool_kernel_size, maxpool_stride,
                             padding='VALID')
  return crops
