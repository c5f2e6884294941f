"""NoteFasterRcnn: inference rules, output contract, training predictions."""
import numpy as np
import pytest
import tensorflow as tf

import note_test_utils as u
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import PredictionFields as P


@pytest.fixture(scope='module')
def model():
  return u.tiny_model(u.tiny_params(num_classes=3))


@pytest.fixture(scope='module')
def batch():
  return u.make_batch(*u.synthetic_scenes(2, num_classes=3), is_mined=[0, 1])


def test_inference_probabilities_are_mean_of_det_cls_and_det_cls_a(model,
                                                                    batch):
  preprocessed, true_shapes = model.preprocess(batch[InputFields.image])
  predictions = model.predict(preprocessed, true_shapes)
  detections = model.postprocess(predictions, true_shapes)
  expected = 0.5 * (tf.nn.softmax(predictions[P.class_logits]) +
                    tf.nn.softmax(predictions[P.class_logits_a]))
  np.testing.assert_allclose(detections[D.raw_detection_scores], expected,
                             rtol=1e-5)
  # And the two heads do differ, so the mean is not trivially either one.
  assert not np.allclose(predictions[P.class_logits],
                         predictions[P.class_logits_a])
  # Detection scores are entries of those mean probabilities.
  num = int(detections[D.num_detections][0])
  classes = detections[D.detection_classes][0, :num].numpy().astype(int)
  multiclass = detections[D.detection_multiclass_scores][0, :num].numpy()
  np.testing.assert_allclose(multiclass[np.arange(num), classes],
                             detections[D.detection_scores][0, :num],
                             rtol=1e-5)


def test_rpn_objectness_is_mean_of_rpn_cls_and_rpn_cls_a(model):
  logits = tf.constant([[0.0, 2.0]])
  logits_a = tf.constant([[1.0, -2.0]])
  got = model.objectness_probabilities({P.rpn_objectness_logits: logits,
                                        P.rpn_objectness_logits_a: logits_a})
  np.testing.assert_allclose(
      got, 0.5 * (tf.sigmoid(logits) + tf.sigmoid(logits_a)), rtol=1e-6)


def test_detection_output_contract(model, batch):
  detections = model(batch[InputFields.image])
  assert set(detections) == {
      D.detection_boxes, D.detection_scores, D.detection_classes,
      D.num_detections, D.raw_detection_boxes, D.raw_detection_scores,
      D.detection_multiclass_scores, D.detection_anchor_indices}
  assert detections[D.detection_anchor_indices].shape == (2, 10)
  assert detections[D.detection_anchor_indices].dtype == tf.float32
  assert detections[D.detection_boxes].shape == (2, 10, 4)
  assert detections[D.detection_multiclass_scores].shape == (2, 10, 4)
  assert detections[D.raw_detection_boxes].shape == (2, 32, 4)
  assert detections[D.raw_detection_scores].shape == (2, 32, 4)
  assert detections[D.detection_classes].dtype == tf.float32
  num = detections[D.num_detections].numpy()
  assert (num > 0).all()
  for i in range(2):
    classes = detections[D.detection_classes][i].numpy()
    assert set(classes[:int(num[i])]) <= {1.0, 2.0, 3.0}
    assert (classes[int(num[i]):] == 0).all()
  boxes = detections[D.detection_boxes].numpy()
  assert boxes.min() >= 0.0 and boxes.max() <= 1.0


def test_preprocess_resizes_to_image_size():
  resizing = u.tiny_model(u.tiny_params(image_size=(64, 64)))
  preprocessed, shapes = resizing.preprocess(tf.fill([2, 32, 48, 3], 255.0))
  assert preprocessed.shape == (2, 64, 64, 3)
  np.testing.assert_array_equal(shapes, [[64, 64, 3]] * 2)
  np.testing.assert_allclose(preprocessed, 1.0)  # Tiny: [0, 255] -> [-1, 1].


def test_training_predictions_sample_fixed_counts(model, batch):
  preprocessed, _ = model.preprocess(batch[InputFields.image])
  predictions = model.predict(preprocessed, batch[InputFields.true_image_shape],
                              groundtruth=batch, training=True)
  assert predictions[P.proposal_boxes].shape == (2, 16, 4)
  assert predictions[P.class_logits].shape == (2, 16, 4)
  assert predictions[P.refined_box_encodings].shape == (2, 16, 3, 4)
  assert predictions[P.proposal_class_targets].shape == (2, 16)
  assert predictions[P.anchors].shape == (8 * 8 * 2, 4)
  assert predictions[P.rpn_objectness_logits].shape == (2, 128)
