"""DESIGN §2 rules checked on gradients of the whole model's losses."""
import numpy as np
import pytest
import tensorflow as tf

import note_test_utils as u
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import PredictionFields
from object_detection_note.losses import note_rules

# One square exactly on a 32-pixel anchor (rows/cols 12..44): positives exist
# for both stages even with untrained weights.
_BOX = np.array([12, 12, 44, 44], np.float32) / u.IMAGE_SIZE
NOTE = note_rules.NoteConfig(rpn_cls_a=True, det_cls_a=True,
                             mask_mined_background=True)


def _batch(is_mined):
  num = len(is_mined)
  images = np.full([num, u.IMAGE_SIZE, u.IMAGE_SIZE, 3], 20, np.uint8)
  images[:, 12:44, 12:44] = u.COLOURS[0]
  boxes = np.zeros([num, u.MAX_BOXES, 4], np.float32)
  boxes[:, 0] = _BOX
  classes = np.zeros([num, u.MAX_BOXES], np.int32)
  classes[:, 0] = 1
  weights = np.zeros([num, u.MAX_BOXES], np.float32)
  weights[:, 0] = 1.0
  return u.make_batch(images, boxes, classes, weights, np.array(is_mined))


def _params(note, **overrides):
  # All 128 anchors become proposals, so the anchor on the box is one.
  return u.tiny_params(note=note, first_stage_max_proposals=128,
                       first_stage_pre_nms_top_k=128, **overrides)


def _layer_gradients(model, loss_key, batch):
  """{head layer name: sum |grad|} of one loss (or the total)."""
  layers = {'rpn_cls': model.rpn_head.rpn_cls,
            'rpn_reg': model.rpn_head.rpn_reg,
            'rpn_cls_a': model.rpn_head.rpn_cls_a,
            'det_cls': model.box_predictor.det_cls,
            'det_cls_a': model.box_predictor.det_cls_a,
            'det_reg': model.box_predictor.det_reg,
            'det_cls_s': model.box_predictor.det_cls_s,
            'first_stage_features': model.first_stage_feature_extractor,
            'second_stage_features': model.second_stage_feature_extractor}
  layers = {name: layer for name, layer in layers.items() if layer is not None}
  with tf.GradientTape() as tape:
    losses = model.compute_losses(batch)
  variables = {name: layer.trainable_variables
               for name, layer in layers.items()}
  grads = tape.gradient(losses[loss_key], variables)
  return {name: sum(float(tf.reduce_sum(tf.abs(g))) for g in layer_grads
                    if g is not None)
          for name, layer_grads in grads.items()}, losses


@pytest.fixture(scope='module')
def note_model():
  return u.tiny_model(_params(NOTE))


def test_mined_only_batch_trains_only_the_a_heads(note_model):
  grads, losses = _layer_gradients(note_model, LossKeys.total,
                                   _batch([1.0, 1.0]))
  for head in ('rpn_cls', 'rpn_reg', 'det_cls', 'det_reg'):
    assert grads[head] == 0.0, head
  for head in ('rpn_cls_a', 'det_cls_a'):
    assert grads[head] > 0.0, head
  for key in (LossKeys.rpn_objectness, LossKeys.rpn_localization,
              LossKeys.box_classification, LossKeys.box_localization):
    assert float(losses[key]) == 0.0, key
  assert float(losses[LossKeys.box_classification_a]) > 0.0


def test_seed_batch_trains_every_head(note_model):
  grads, _ = _layer_gradients(note_model, LossKeys.total, _batch([0.0, 0.0]))
  for head in ('rpn_cls', 'rpn_reg', 'rpn_cls_a', 'det_cls', 'det_cls_a',
               'det_reg'):
    assert grads[head] > 0.0, head


def test_det_cls_a_masks_background_of_mined_images_only(note_model):
  batch = _batch([0.0, 1.0])  # Image 0 seed, image 1 mined.
  with tf.GradientTape() as tape:
    predictions = note_model.predict(
        note_model.preprocess(batch[InputFields.image])[0],
        batch[InputFields.true_image_shape], groundtruth=batch, training=True)
    logits_a = predictions[PredictionFields.class_logits_a]
    loss = note_model.loss(predictions, batch)[LossKeys.box_classification_a]
  grad = np.abs(tape.gradient(loss, logits_a).numpy()).sum(axis=-1)
  targets = predictions[PredictionFields.proposal_class_targets].numpy()
  valid = (np.arange(targets.shape[1])[None] <
           predictions[PredictionFields.num_proposals].numpy()[:, None])
  background = valid & (targets == 0)
  foreground = valid & (targets > 0)
  assert background[1].any() and foreground[1].any() and background[0].any()
  np.testing.assert_array_equal(grad[1][background[1]], 0.0)
  assert (grad[1][foreground[1]] > 0).all()
  assert (grad[0][background[0]] > 0).all()


@pytest.fixture(scope='module')
def distilled_model():
  source = u.tiny_model(u.tiny_params(num_classes=3), seed=7)
  note = note_rules.NoteConfig(distillation_loss_weight=1.0)
  return u.tiny_model(_params(note, num_source_classes=3),
                      source_model=source)


def test_distillation_reaches_features_but_no_target_head(distilled_model):
  source_ids = {id(v) for v in distilled_model.source_model.variables}
  assert not source_ids & {id(v) for v in distilled_model.variables}
  grads, losses = _layer_gradients(distilled_model, LossKeys.distillation,
                                   _batch([0.0, 1.0]))
  assert float(losses[LossKeys.distillation]) > 0.0
  for part in ('det_cls_s', 'first_stage_features', 'second_stage_features'):
    assert grads[part] > 0.0, part
  for head in ('det_cls', 'det_cls_a', 'det_reg', 'rpn_cls', 'rpn_cls_a',
               'rpn_reg'):
    assert grads[head] == 0.0, head


def test_distillation_target_is_source_distribution(distilled_model):
  batch = _batch([1.0])
  preprocessed = distilled_model.preprocess(batch[InputFields.image])[0]
  predictions = distilled_model.predict(
      preprocessed, batch[InputFields.true_image_shape], groundtruth=batch,
      training=True)
  expected = distilled_model.source_model.box_classifier_probabilities(
      preprocessed, predictions[PredictionFields.proposal_boxes] /
      u.IMAGE_SIZE)
  assert expected.shape == (1, 16, 4)
  np.testing.assert_allclose(
      predictions[PredictionFields.source_class_probabilities], expected,
      rtol=1e-5, atol=1e-6)
  # The source's own inference rule: mean of its det-cls and det-cls-a.
  np.testing.assert_allclose(tf.reduce_sum(expected, -1), 1.0, rtol=1e-5)


def test_distillation_without_source_model_is_an_error():
  note = note_rules.NoteConfig(distillation_loss_weight=1.0)
  with pytest.raises(ValueError, match='source_model'):
    u.tiny_model(_params(note, num_source_classes=3))


def test_naive_trains_every_head_on_mined_images():
  model = u.tiny_model(_params(note_rules.NAIVE))
  assert model.rpn_head.rpn_cls_a is None
  assert model.box_predictor.det_cls_a is None
  grads, losses = _layer_gradients(model, LossKeys.total, _batch([1.0, 1.0]))
  for head in ('rpn_cls', 'rpn_reg', 'det_cls', 'det_reg'):
    assert grads[head] > 0.0, head
  assert LossKeys.rpn_objectness_a not in losses
  assert LossKeys.box_classification_a not in losses
