"""A NOTE training step with the Inception-ResNet-V2 extractor, eager graph
and XLA-compiled (the shape discipline TPUs need), at a small input size."""
import numpy as np
import tensorflow as tf
import tf_keras

from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import note_faster_rcnn
from object_detection_note.models import registry

_SIZE = 64


def _batch():
  boxes = np.zeros((1, 4, 4), np.float32)
  boxes[0, :2] = [[0.1, 0.1, 0.6, 0.5], [0.4, 0.5, 0.9, 0.95]]
  return {
      InputFields.image: tf.random.uniform([1, _SIZE, _SIZE, 3], 0, 255,
                                           seed=1),
      InputFields.true_image_shape: tf.constant([[_SIZE, _SIZE, 3]]),
      InputFields.groundtruth_boxes: tf.constant(boxes),
      InputFields.groundtruth_classes: tf.constant([[1, 2, 0, 0]]),
      InputFields.groundtruth_weights: tf.constant([[1.0, 1.0, 0.0, 0.0]]),
      InputFields.is_mined: tf.constant([1.0]),
  }


def test_irv2_note_step_runs_and_compiles_with_xla():
  tf.random.set_seed(0)
  extractor = registry.build_feature_extractor(
      'faster_rcnn_inception_resnet_v2_keras', is_training=True,
      first_stage_features_stride=16)
  params = note_faster_rcnn.NoteFasterRcnnParams(
      num_classes=2, base_anchor_size=32.0, anchor_scales=(0.5, 1.0),
      anchor_aspect_ratios=(1.0,), first_stage_box_predictor_depth=32,
      first_stage_minibatch_size=16, first_stage_max_proposals=4,
      first_stage_pre_nms_top_k=16, second_stage_batch_size=4,
      max_detections_per_class=4, max_total_detections=4,
      note=note_rules.NoteConfig())
  model = note_faster_rcnn.NoteFasterRcnn(params, extractor)
  optimizer = tf_keras.optimizers.SGD(1e-4, momentum=0.9)
  batch = _batch()

  def step(inputs):
    with tf.GradientTape() as tape:
      losses = model.compute_losses(inputs)
    variables = model.trainable_variables
    grads = tape.gradient(losses[LossKeys.total], variables)
    optimizer.apply_gradients(zip(grads, variables))
    return losses, grads

  losses, grads = tf.function(step)(batch)
  assert np.isfinite(float(losses[LossKeys.total]))
  backbone = {v.ref() for v in model.first_stage_feature_extractor
              .trainable_variables}
  # A mined-only batch still trains the backbone (through the -a heads).
  assert any(float(tf.reduce_sum(tf.abs(g))) > 0
             for g, v in zip(grads, model.trainable_variables)
             if g is not None and v.ref() in backbone)
  xla_losses, _ = tf.function(step, jit_compile=True)(batch)
  assert np.isfinite(float(xla_losses[LossKeys.total]))
  assert set(xla_losses) == set(losses)
