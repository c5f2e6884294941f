"""NOTE loss rules: per-head masks, Eq. 2, Eq. 3 and normalisation."""
import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core.fields import LossKeys as L
from object_detection_note.losses import box_classifier_losses as bcl
from object_detection_note.losses import loss_ops
from object_detection_note.losses import note_rules
from object_detection_note.losses import rpn_losses

NOTE = note_rules.NoteConfig(rpn_cls_a=True, det_cls_a=True,
                             mask_mined_background=True)
IS_MINED = tf.constant([0.0, 1.0])


def test_head_example_weights_table():
  w = note_rules.head_example_weights(IS_MINED, NOTE)
  seed_only = [L.rpn_objectness, L.rpn_localization, L.box_classification,
               L.box_localization]
  for key in seed_only:
    np.testing.assert_array_equal(w[key], [1.0, 0.0])
  for key in (L.rpn_objectness_a, L.box_classification_a, L.distillation):
    np.testing.assert_array_equal(w[key], [1.0, 1.0])
  naive = note_rules.head_example_weights(IS_MINED, note_rules.NAIVE)
  for key in seed_only:
    np.testing.assert_array_equal(naive[key], [1.0, 1.0])


def test_rpn_a_switch_only_affects_rpn_heads():
  config = note_rules.NoteConfig(rpn_cls_a=False, det_cls_a=True)
  w = note_rules.head_example_weights(IS_MINED, config)
  np.testing.assert_array_equal(w[L.rpn_objectness], [1.0, 1.0])
  np.testing.assert_array_equal(w[L.rpn_localization], [1.0, 1.0])
  np.testing.assert_array_equal(w[L.box_localization], [1.0, 0.0])


def test_config_validation():
  with pytest.raises(ValueError, match='mask_mined_background'):
    note_rules.NoteConfig(det_cls_a=False, mask_mined_background=True)
  with pytest.raises(ValueError, match='distillation_loss_weight'):
    note_rules.NoteConfig(distillation_loss_weight=-1.0)


def test_mined_background_weights_eq2():
  targets = tf.constant([[0, 2, 0], [0, 1, 3]])
  np.testing.assert_array_equal(
      note_rules.mined_background_weights(IS_MINED, targets, NOTE),
      [[1, 1, 1], [0, 1, 1]])
  no_mask = note_rules.NoteConfig(mask_mined_background=False)
  np.testing.assert_array_equal(
      note_rules.mined_background_weights(IS_MINED, targets, no_mask),
      np.ones([2, 3]))


def test_smooth_l1_values():
  got = loss_ops.smooth_l1(tf.constant([[0.5, -2.0, 0.0, 1.0]]),
                           tf.zeros([1, 4]))
  np.testing.assert_allclose(got, [0.125 + 1.5 + 0.0 + 0.5])


def test_rpn_objectness_value_and_normaliser():
  logits = tf.constant([[0.0, 2.0, -1.0], [3.0, 3.0, 3.0]])
  targets = tf.constant([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
  sampled = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
  ce = tf.nn.sigmoid_cross_entropy_with_logits(targets, logits).numpy()
  got = rpn_losses.rpn_objectness_loss(logits, targets, sampled, IS_MINED, NOTE)
  np.testing.assert_allclose(got, (ce[0, 0] + ce[0, 1]) / 2.0, rtol=1e-6)
  got_a = rpn_losses.rpn_objectness_a_loss(logits, targets, sampled, IS_MINED,
                                           NOTE)
  np.testing.assert_allclose(got_a, (ce * sampled.numpy()).sum() / 5.0,
                             rtol=1e-6)


def test_rpn_localization_normalised_by_sampled_not_positives():
  enc = tf.ones([1, 3, 4])
  targets = tf.zeros([1, 3, 4])
  got = rpn_losses.rpn_localization_loss(
      enc, targets, tf.constant([[1.0, 0.0, 0.0]]),
      tf.constant([[1.0, 1.0, 0.0]]), tf.constant([0.0]), NOTE)
  np.testing.assert_allclose(got, 4 * 0.5 / 2.0)


def test_all_masked_batch_is_zero_loss_and_zero_gradient():
  logits = tf.Variable(tf.random.normal([2, 5, 4]))
  targets = tf.constant([[1, 0, 2, 3, 0], [0, 0, 1, 0, 0]])
  sampled = tf.ones([2, 5])
  with tf.GradientTape() as tape:
    loss = bcl.box_classification_loss(logits, targets, sampled,
                                       tf.ones([2]), NOTE)
  assert float(loss) == 0.0
  np.testing.assert_array_equal(tape.gradient(loss, logits), 0.0)


def test_det_cls_a_ignores_background_of_mined_images_only():
  targets = tf.constant([[0, 1], [0, 2]])
  sampled = tf.ones([2, 2])
  logits = tf.Variable(tf.random.normal([2, 2, 3]))
  with tf.GradientTape() as tape:
    loss = bcl.box_classification_a_loss(logits, targets, sampled, IS_MINED,
                                         NOTE)
  grad = tape.gradient(loss, logits).numpy()
  # Mined image (row 1): background proposal 0 gets no gradient, class 2 does.
  np.testing.assert_array_equal(grad[1, 0], 0.0)
  assert np.abs(grad[1, 1]).sum() > 0
  # Seed image: background proposal trains.
  assert np.abs(grad[0, 0]).sum() > 0
  ce = tf.nn.softmax_cross_entropy_with_logits(
      tf.one_hot(targets, 3), logits).numpy()
  # Default normaliser: all 4 sampled proposals, masked ones included.
  np.testing.assert_allclose(loss, (ce[0, 0] + ce[0, 1] + ce[1, 1]) / 4.0,
                             rtol=1e-6)


def test_det_cls_a_normaliser_options():
  """A mined image's unmasked proposal weighs as a seed proposal by default;
  with normalize_by_unmasked it weighs P times more (P = its proposals)."""
  # Image 0 seed: 4 proposals. Image 1 mined: 1 positive, 3 background.
  targets = tf.constant([[1, 0, 0, 0], [2, 0, 0, 0]])
  sampled = tf.ones([2, 4])
  logits = tf.Variable(tf.zeros([1, 4, 3]))
  mined_only = tf.constant([1.0])
  unmasked = note_rules.NoteConfig(normalize_by_unmasked=True)
  grads = {}
  for name, config in (('sampled', NOTE), ('unmasked', unmasked)):
    with tf.GradientTape() as tape:
      loss = bcl.box_classification_a_loss(logits, targets[1:], sampled[1:],
                                           mined_only, config)
    grads[name] = np.abs(tape.gradient(loss, logits).numpy()[0, 0]).sum()
    expected_divisor = 4.0 if name == 'sampled' else 1.0
    np.testing.assert_allclose(loss, np.log(3.0) / expected_divisor,
                               rtol=1e-6)
  np.testing.assert_allclose(grads['unmasked'], 4.0 * grads['sampled'],
                             rtol=1e-5)


def test_box_localization_uses_target_class_row_and_seed_only():
  enc = np.zeros([2, 2, 3, 4], np.float32)
  enc[0, 0, 1] = 1.0  # Class 2's row for proposal 0 of the seed image.
  enc[0, 1] = 5.0  # Background proposal: never regressed.
  enc[1] = 7.0  # Mined image: masked.
  got = bcl.box_localization_loss(
      tf.constant(enc), tf.zeros([2, 2, 4]), tf.constant([[2, 0], [1, 1]]),
      tf.ones([2, 2]), IS_MINED, NOTE)
  np.testing.assert_allclose(got, 4 * 0.5 / 2.0)


def test_distillation_loss_is_cross_entropy_to_source_distribution():
  logits = tf.constant([[[1.0, 0.0, -1.0]]])
  source = tf.constant([[[0.2, 0.5, 0.3]]])
  expected = -(source * tf.nn.log_softmax(logits)).numpy().sum()
  got = bcl.distillation_loss(logits, source, tf.ones([1, 1]),
                              tf.constant([1.0]), NOTE)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  source_var = tf.Variable(source)
  with tf.GradientTape() as tape:
    loss = bcl.distillation_loss(logits, source_var, tf.ones([1, 1]),
                                 tf.constant([1.0]), NOTE)
  assert tape.gradient(loss, source_var) is None


def test_rpn_cls_a_learns_background_of_mined_images():
  logits = tf.Variable(tf.zeros([2, 3]))
  targets = tf.constant([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
  sampled = tf.ones([2, 3])
  with tf.GradientTape(persistent=True) as tape:
    loss_a = rpn_losses.rpn_objectness_a_loss(logits, targets, sampled,
                                              IS_MINED, NOTE)
    loss = rpn_losses.rpn_objectness_loss(logits, targets, sampled, IS_MINED,
                                          NOTE)
  grad_a = tape.gradient(loss_a, logits).numpy()
  assert (grad_a[1, 1:] > 0).all()  # Negatives of the mined image train.
  np.testing.assert_array_equal(tape.gradient(loss, logits).numpy()[1], 0.0)


def test_masked_loss_normalizer_from_config():
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection_note.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection_note.protos import note_pb2  # pylint: disable=g-import-not-at-top
  default = model_builder.note_switches(note_pb2.NoteConfig(), distill=False)
  assert not default.normalize_by_unmasked
  unmasked = model_builder.note_switches(text_format.Parse(
      'masked_loss_normalizer: UNMASKED', note_pb2.NoteConfig()), False)
  assert unmasked.normalize_by_unmasked
