"""End to end: an XLA-compiled train step overfits a few synthetic images.

Reaching COCO AP@0.5 >= 0.9 on the training images shows that anchors, RPN
and second-stage targets, losses, box decoding and post-processing agree.
"""
import numpy as np
import tensorflow as tf
import tf_keras

import note_test_utils as u
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys

_STEPS = 200


def test_jit_train_step_overfits_synthetic_squares():
  params = u.tiny_params(num_classes=2)
  model = u.tiny_model(params, seed=1)
  images, boxes, classes, weights = u.synthetic_scenes(4, num_classes=2)
  batch = u.make_batch(images, boxes, classes, weights, is_mined=np.zeros(4))
  optimizer = tf_keras.optimizers.Adam(3e-3)

  @tf.function(jit_compile=True)
  def train_step(inputs):
    with tf.GradientTape() as tape:
      losses = model.compute_losses(inputs)
    grads = tape.gradient(losses[LossKeys.total], model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return losses

  first = train_step(batch)
  assert set(first) == {
      LossKeys.rpn_objectness, LossKeys.rpn_objectness_a,
      LossKeys.rpn_localization, LossKeys.box_classification,
      LossKeys.box_classification_a, LossKeys.box_localization,
      LossKeys.total}
  for _ in range(_STEPS - 1):
    last = train_step(batch)
  assert all(np.isfinite(float(v)) for v in last.values())
  assert float(last[LossKeys.total]) < 0.5 * float(first[LossKeys.total])

  detections = model(batch[InputFields.image])
  ap50 = u.coco_ap50(detections, boxes, classes, weights, num_classes=2)
  assert ap50 >= 0.9
