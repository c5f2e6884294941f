"""First-stage (RPN) losses of NOTE-RCNN: rpn-cls, rpn-cls-a, rpn-reg.

Each function applies its head's row of ``note_rules.head_example_weights``
and the shared normalisation of ``loss_ops`` (sum over the sampled anchors a
head may learn from, divided by their count, floored at 1). Inputs:

  objectness_targets  float [B, A]    1 positive anchor, 0 negative.
  sampled             float [B, A]    1 for the anchors of the balanced
                                      minibatch (positives and negatives).
  is_mined            float [B]       1 for mined images.
"""
from object_detection_note.core.fields import LossKeys
from object_detection_note.losses import loss_ops
from object_detection_note.losses import note_rules


def _objectness(logits, objectness_targets, sampled, is_mined, config, key):
  image_weights = note_rules.head_example_weights(is_mined, config)[key]
  weights = sampled * image_weights[:, None]
  return loss_ops.normalized_sum(
      loss_ops.sigmoid_cross_entropy(logits, objectness_targets), weights)


def rpn_objectness_loss(objectness_logits, objectness_targets, sampled,
                        is_mined, config):
  """rpn-cls (Eq. 1, first term): seed images only when rpn_cls_a is on.

  Args:
    objectness_logits: float [B, A], rpn-cls logits.
    objectness_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  return _objectness(objectness_logits, objectness_targets, sampled, is_mined,
                     config, LossKeys.rpn_objectness)


def rpn_objectness_a_loss(objectness_logits_a, objectness_targets, sampled,
                          is_mined, config):
  """rpn-cls-a (§3.3.3): seed and mined images, background NOT masked.

  RPN objectness is binary: without its negatives the head could not learn,
  so unlike det-cls-a no Eq. 2 mask is applied.

  Args:
    objectness_logits_a: float [B, A], rpn-cls-a logits.
    objectness_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  return _objectness(objectness_logits_a, objectness_targets, sampled,
                     is_mined, config, LossKeys.rpn_objectness_a)


def rpn_localization_loss(box_encodings, box_targets, objectness_targets,
                          sampled, is_mined, config):
  """rpn-reg (Eq. 1, second term): smooth L1 on positive sampled anchors.

  Normalised by the number of sampled anchors of the images rpn-reg learns
  from (seed only when rpn_cls_a is on), as the OD API does.

  Args:
    box_encodings: float [B, A, 4], rpn-reg outputs.
    box_targets: float [B, A, 4], encoded matched groundtruth (any value on
      non-positive anchors).
    objectness_targets, sampled, is_mined: see the module docstring.
    config: ``note_rules.NoteConfig``.

  Returns:
    float32 scalar.
  """
  image_weights = note_rules.head_example_weights(
      is_mined, config)[LossKeys.rpn_localization]
  sampled_weights = sampled * image_weights[:, None]
  return loss_ops.normalized_sum(
      loss_ops.smooth_l1(box_encodings, box_targets),
      sampled_weights * objectness_targets,
      normalizer_weights=sampled_weights)
