"""Which examples train which head: DESIGN §2's table, in one place.

Every loss of ``rpn_losses`` and ``box_classifier_losses`` asks this module
for its weights; no other file decides what a mined example may train.

Per-image weights (``head_example_weights``), keyed by the loss of the head:

  head       loss key (LossKeys)     trained on
  ---------  ----------------------  ----------------------------------------
  rpn-cls    rpn_objectness          seed only; all data if rpn_cls_a is off
  rpn-reg    rpn_localization        seed only; all data if rpn_cls_a is off
  rpn-cls-a  rpn_objectness_a        seed + mined (background NOT masked)
  det-cls    box_classification      seed only; all data if det_cls_a is off
  det-reg    box_localization        seed only; all data if det_cls_a is off
  det-cls-a  box_classification_a    seed + mined (+ Eq. 2 mask, below)
  det-cls-s  distillation            all images

Per-proposal rule (``mined_background_weights``, Eq. 2 of the paper): on
mined images, det-cls-a ignores proposals whose target is background
(lambda(u, i) = 0 if u = 0 and i not in B0), because mined annotations miss
objects (false negatives). Seed images keep their background proposals.
"""
import dataclasses

import tensorflow as tf

from object_detection_note.core.fields import LossKeys


@dataclasses.dataclass(frozen=True)
class NoteConfig:
  """NOTE-RCNN switches; the ablations of the paper are settings of these.

  Attributes:
    rpn_cls_a: build rpn-cls-a; rpn-cls and rpn-reg then train on seed only.
    det_cls_a: build det-cls-a; det-cls and det-reg then train on seed only.
    mask_mined_background: apply Eq. 2 to det-cls-a (needs ``det_cls_a``).
    distillation_loss_weight: weight of the det-cls-s loss (Eq. 3); 0 = off.
    normalize_by_unmasked: det-cls-a's masked loss is divided by the count of
      unmasked proposals (True) instead of all sampled proposals of the
      images it trains on (False, the default; see ``masked_normalizer``).
    mean_objectness_for_training_proposals: training proposals are ranked by
      the mean of rpn-cls and rpn-cls-a (True, the default) or by rpn-cls
      alone (False: the mean at inference only).
    distill_all_proposals: det-cls-s learns S's distribution on all of T's
      proposals (True) instead of the sampled ones (False, the default).

  Naive = all off. Det-A = det_cls_a. Det-AZ = + mask_mined_background.
  Det-AZ&RPN-A = + rpn_cls_a. Det-AZ&RPN-A&Distill = + distillation weight.
  """
  rpn_cls_a: bool = True
  det_cls_a: bool = True
  mask_mined_background: bool = True
  distillation_loss_weight: float = 0.0
  normalize_by_unmasked: bool = False
  mean_objectness_for_training_proposals: bool = True
  distill_all_proposals: bool = False

  def __post_init__(self):
    if self.mask_mined_background and not self.det_cls_a:
      raise ValueError('NoteConfig.mask_mined_background needs det_cls_a: the '
                       'background mask (Eq. 2) applies to det-cls-a only.')
    if self.distillation_loss_weight < 0:
      raise ValueError('NoteConfig.distillation_loss_weight must be >= 0, got '
                       '%r' % (self.distillation_loss_weight,))


NAIVE = NoteConfig(rpn_cls_a=False, det_cls_a=False,
                   mask_mined_background=False)


def head_example_weights(is_mined, config):
  """Per-image weight of every head's loss.

  Args:
    is_mined: float [B], 1.0 for mined images, 0.0 for seed images.
    config: a ``NoteConfig``.

  Returns:
    dict LossKeys.<loss> -> float32 [B] in {0, 1}, one entry per loss in the
    module docstring's table.
  """
  is_mined = tf.cast(is_mined, tf.float32)
  seed = 1.0 - is_mined
  everything = tf.ones_like(is_mined)
  rpn_seed_heads = seed if config.rpn_cls_a else everything
  det_seed_heads = seed if config.det_cls_a else everything
  return {
      LossKeys.rpn_objectness: rpn_seed_heads,
      LossKeys.rpn_localization: rpn_seed_heads,
      LossKeys.rpn_objectness_a: everything,
      LossKeys.box_classification: det_seed_heads,
      LossKeys.box_localization: det_seed_heads,
      LossKeys.box_classification_a: everything,
      LossKeys.distillation: everything,
  }


def mined_background_weights(is_mined, class_targets, config):
  """Eq. 2: weight of each proposal in det-cls-a's loss.

  Args:
    is_mined: float [B].
    class_targets: int [B, P], 0 = background, 1..C = classes.
    config: a ``NoteConfig``.

  Returns:
    float32 [B, P]: 0 for background proposals of mined images when
    ``config.mask_mined_background`` is set, 1 otherwise.
  """
  ones = tf.ones_like(class_targets, dtype=tf.float32)
  if not config.mask_mined_background:
    return ones
  background = tf.cast(tf.equal(class_targets, 0), tf.float32)
  mined = tf.cast(is_mined, tf.float32)[:, tf.newaxis]
  return ones - background * mined


def masked_normalizer_weights(sampled_weights, masked_weights, config):
  """Normaliser weights of det-cls-a's loss (the count it is divided by).

  Args:
    sampled_weights: float [B, P], sampled proposals x per-image head weight,
      before the Eq. 2 mask.
    masked_weights: float [B, P], the same after the mask.
    config: a ``NoteConfig``.

  Returns:
    float32 [B, P]: ``masked_weights`` when ``config.normalize_by_unmasked``
    (each unmasked proposal of a mined image then weighs more), else
    ``sampled_weights`` (every sampled proposal counts, as for det-cls).
  """
  return masked_weights if config.normalize_by_unmasked else sampled_weights
