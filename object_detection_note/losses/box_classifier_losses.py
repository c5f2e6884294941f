"""Second-stage losses of NOTE-RCNN: det-cls, det-cls-a, det-reg, det-cls-s.

Each function applies its head's row of ``note_rules`` and the shared
normalisation of ``loss_ops`` (sum over the sampled proposals a head may learn
from, divided by their count, floored at 1). Inputs:

  class_targets   int   [B, P]  0 background, 1..C classes.
  sampled         float [B, P]  1 for valid sampled proposals, 0 padding.
  is_mined        float [B]     1 for mined images.
"""
import tensorflow as tf

from object_detection_note.core.fields import LossKeys
from object_detection_note.losses import loss_ops
from object_detection_note.losses import note_rules


def _classification(logits, class_targets, weights, normalizer_weights=None):
  one_hot = tf.one_hot(class_targets, tf.shape(logits)[-1], dtype=logits.dtype)
  return loss_ops.normalized_sum(
      loss_ops.softmax_cross_entropy(logits, one_hot), weights,
      normalizer_weights)


def box_classification_loss(class_logits, class_targets, sampled, is_mined,
                            config):
  """det-cls: softmax cross-entropy; seed images only when det_cls_a is on.

  Args:
    class_logits: float [B, P, C + 1], det-cls logits.
    class_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  image_weights = note_rules.head_example_weights(
      is_mined, config)[LossKeys.box_classification]
  return _classification(class_logits, class_targets,
                         sampled * image_weights[:, None])


def box_classification_a_loss(class_logits_a, class_targets, sampled,
                              is_mined, config):
  """det-cls-a (Eq. 2): seed + mined images, mined background masked.

  With ``config.mask_mined_background`` the proposals of mined images whose
  target is background weigh 0. The loss is divided by the number of sampled
  proposals of the images (masked ones included), or by the number of
  unmasked ones with ``config.normalize_by_unmasked``.

  Args:
    class_logits_a: float [B, P, C + 1], det-cls-a logits.
    class_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  image_weights = note_rules.head_example_weights(
      is_mined, config)[LossKeys.box_classification_a]
  proposal_weights = note_rules.mined_background_weights(
      is_mined, class_targets, config)
  sampled_weights = sampled * image_weights[:, None]
  masked_weights = sampled_weights * proposal_weights
  return _classification(
      class_logits_a, class_targets, masked_weights,
      note_rules.masked_normalizer_weights(sampled_weights, masked_weights,
                                           config))


def box_localization_loss(refined_box_encodings, box_targets, class_targets,
                          sampled, is_mined, config):
  """det-reg: smooth L1 of the target class's box on positive proposals.

  Seed images only when det_cls_a is on, so the head never learns from mined
  coordinates. Normalised by the number of sampled proposals of those images.

  Args:
    refined_box_encodings: float [B, P, C, 4], class-specific det-reg output.
    box_targets: float [B, P, 4], matched groundtruth encoded against the
      proposal (any value on background proposals).
    class_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  image_weights = note_rules.head_example_weights(
      is_mined, config)[LossKeys.box_localization]
  num_classes = refined_box_encodings.shape[2]
  # Background (0) selects no row: one_hot(-1) is all zeros.
  class_one_hot = tf.one_hot(class_targets - 1, num_classes,
                             dtype=refined_box_encodings.dtype)
  predicted = tf.reduce_sum(
      refined_box_encodings * class_one_hot[..., None], axis=2)
  positive = tf.cast(class_targets > 0, sampled.dtype)
  sampled_weights = sampled * image_weights[:, None]
  return loss_ops.normalized_sum(
      loss_ops.smooth_l1(predicted, box_targets),
      sampled_weights * positive, normalizer_weights=sampled_weights)


def distillation_loss(class_logits_s, source_probabilities, sampled, is_mined,
                      config):
  """det-cls-s (Eq. 3): cross-entropy to the source detector's distribution.

  All images; the target distribution comes from a frozen detector and is
  treated as a constant (``tf.stop_gradient``).

  Args:
    class_logits_s: float [B, P, S + 1], det-cls-s logits.
    source_probabilities: float [B, P, S + 1], S's class probabilities on the
      same proposals.
    sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  image_weights = note_rules.head_example_weights(
      is_mined, config)[LossKeys.distillation]
  return loss_ops.normalized_sum(
      loss_ops.softmax_cross_entropy(
          class_logits_s, tf.stop_gradient(source_probabilities)),
      sampled * image_weights[:, None])
