"""The choices the paper leaves open, as NoteConfig switches: which objectness
ranks the training proposals, and which proposals distillation covers."""
import numpy as np
import pytest
import tensorflow as tf

import note_test_utils as u
from object_detection_note.builders import model_builder
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import PredictionFields
from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import first_stage
from object_detection_note.protos import note_pb2

NUM_PROPOSALS = 32  # tiny_params' first_stage_max_proposals
NUM_SAMPLED = 16  # tiny_params' second_stage_batch_size


def _batch():
  images, boxes, classes, weights = u.synthetic_scenes(2, seed=3)
  return u.make_batch(images, boxes, classes, weights,
                      np.array([0.0, 1.0], np.float32))


def _ranking_objectness(model, batch, monkeypatch, training):
  """The objectness ``propose`` ranks with, and rpn-cls / rpn-cls-a's."""
  seen = []
  propose = first_stage.propose

  def spy(anchors, encodings, objectness, *args, **kwargs):
    seen.append(objectness)
    return propose(anchors, encodings, objectness, *args, **kwargs)

  monkeypatch.setattr(first_stage, 'propose', spy)
  preprocessed, shapes = model.preprocess(batch[InputFields.image])
  predictions = model.predict(preprocessed, shapes,
                              groundtruth=batch if training else None,
                              training=training)
  monkeypatch.setattr(first_stage, 'propose', propose)
  return (seen[0].numpy(),
          tf.sigmoid(predictions[PredictionFields.rpn_objectness_logits]),
          tf.sigmoid(predictions[PredictionFields.rpn_objectness_logits_a]))


@pytest.mark.parametrize('mean_at_training', [True, False])
def test_objectness_of_training_proposals(monkeypatch, mean_at_training):
  note = note_rules.NoteConfig(
      mean_objectness_for_training_proposals=mean_at_training)
  model = u.tiny_model(u.tiny_params(note=note))
  batch = _batch()
  used, cls, cls_a = _ranking_objectness(model, batch, monkeypatch, True)
  mean = 0.5 * (cls + cls_a)
  assert np.abs(mean - cls).max() > 1e-4  # the two rules differ here
  np.testing.assert_allclose(used, mean if mean_at_training else cls,
                             rtol=1e-6)
  # Inference always ranks by the mean (§3.3.3).
  used, cls, cls_a = _ranking_objectness(model, batch, monkeypatch, False)
  np.testing.assert_allclose(used, 0.5 * (cls + cls_a), rtol=1e-6)


def _distilled(all_proposals):
  source = u.tiny_model(u.tiny_params(num_classes=3), seed=7)
  note = note_rules.NoteConfig(distillation_loss_weight=1.0,
                               distill_all_proposals=all_proposals)
  return u.tiny_model(u.tiny_params(note=note, num_source_classes=3),
                      source_model=source)


@pytest.mark.parametrize('all_proposals', [False, True])
def test_distillation_targets(all_proposals):
  model = _distilled(all_proposals)
  batch = _batch()
  tf.random.set_seed(1)
  preprocessed, shapes = model.preprocess(batch[InputFields.image])
  predictions = model.predict(preprocessed, shapes, groundtruth=batch,
                              training=True)
  key = (PredictionFields.distillation_class_logits_s if all_proposals
         else PredictionFields.class_logits_s)
  logits_s = predictions[key]
  source = predictions[PredictionFields.source_class_probabilities]
  assert logits_s.shape[:2] == source.shape[:2] == (
      2, NUM_PROPOSALS if all_proposals else NUM_SAMPLED)
  if all_proposals:
    valid = predictions[PredictionFields.distillation_proposals_valid]
  else:
    valid = tf.cast(tf.range(NUM_SAMPLED)[tf.newaxis] <
                    predictions[PredictionFields.num_proposals][:, None],
                    tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(logits_s)
    losses = model.loss(predictions, batch)
  gradient = tape.gradient(losses[LossKeys.distillation], logits_s)
  # Every (valid) proposal distilled is one term with gradient, no other.
  terms = np.abs(gradient.numpy()).sum(-1) > 0
  np.testing.assert_array_equal(terms, valid.numpy() > 0)
  assert terms.sum() > (2 * NUM_SAMPLED if all_proposals else 0)
  cross_entropy = -tf.reduce_sum(source * tf.nn.log_softmax(logits_s), -1)
  expected = tf.reduce_sum(cross_entropy * valid) / tf.reduce_sum(valid)
  assert float(losses[LossKeys.distillation]) == pytest.approx(
      float(expected), rel=1e-5)


def test_switches_are_read_from_the_note_block():
  note = note_pb2.NoteConfig()
  switches = model_builder.note_switches(note, distill=True)
  assert switches.mean_objectness_for_training_proposals
  assert not switches.distill_all_proposals
  note.mean_objectness_for_training_proposals = False
  note.distillation.targets = note_pb2.Distillation.ALL_PROPOSALS
  switches = model_builder.note_switches(note, distill=True)
  assert not switches.mean_objectness_for_training_proposals
  assert switches.distill_all_proposals
