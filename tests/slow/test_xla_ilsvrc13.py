"""The training step at the paper's ILSVRC13 config, compiled with XLA.

``configs/ilsvrc13.config`` as is (Inception-ResNet-V2, images resized to
600x1024 and padded to 1024x1024, 300 proposals, 100 target classes, NOTE
heads and distillation from the 100-class source detector of
``configs/ilsvrc13_source.config``), one step of ``Trainer.distributed_step``
with ``jit_compile=True``: the shape discipline a TPU job needs. Random
weights, a synthetic batch. Slow (minutes on 2 CPU cores): ``make test-slow``.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.training import train_loop

pytestmark = pytest.mark.slow
_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
_MAX_BOXES = 8


def _batch(height, width, padded, num_classes):
  rng = np.random.RandomState(0)
  boxes = np.zeros([1, _MAX_BOXES, 4], np.float32)
  boxes[0, :3] = [[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.9],
                  [0.05, 0.6, 0.3, 0.95]]
  classes = np.zeros([1, _MAX_BOXES], np.int32)
  classes[0, :3] = rng.randint(1, num_classes + 1, size=3)
  weights = (classes > 0).astype(np.float32)
  image = np.zeros([1, padded, padded, 3], np.float32)
  image[0, :height, :width] = rng.uniform(0, 255, size=[height, width, 3])
  return {
      InputFields.image: tf.constant(image),
      InputFields.true_image_shape: tf.constant([[height, width, 3]]),
      InputFields.groundtruth_boxes: tf.constant(boxes),
      InputFields.groundtruth_classes: tf.constant(classes),
      InputFields.groundtruth_weights: tf.constant(weights),
      InputFields.num_groundtruth_boxes: tf.constant([3]),
      InputFields.is_mined: tf.constant([1.0]),
  }


def test_ilsvrc13_step_compiles_with_xla(monkeypatch):
  monkeypatch.chdir(_ROOT)
  configs = config_util.get_configs_from_pipeline_file(
      'configs/ilsvrc13.config')
  source_configs = config_util.get_configs_from_pipeline_file(
      configs['note'].source_detector.pipeline_config_path)
  resizer = configs['model'].faster_rcnn.image_resizer
  padded = inference.padded_image_size(resizer)
  assert padded == (1024, 1024)
  assert configs['model'].faster_rcnn.first_stage_max_proposals == 300
  source = model_builder.build(source_configs['model'], is_training=False)
  inference.build_model_inputs(source,
                               source_configs['model'].faster_rcnn
                               .image_resizer)
  source.trainable = False
  trainer = train_loop.Trainer(configs, tf.distribute.get_strategy(),
                               jit_compile=True, source_model=source)
  batch = _batch(600, 1024, padded[0],
                 configs['model'].faster_rcnn.num_classes)
  losses = trainer.distributed_step(batch)
  assert {LossKeys.rpn_objectness, LossKeys.rpn_objectness_a,
          LossKeys.box_classification, LossKeys.box_classification_a,
          LossKeys.box_localization, LossKeys.distillation,
          LossKeys.total} <= set(losses)
  assert all(np.isfinite(float(v)) for v in losses.values())
  assert int(trainer.global_step.numpy()) == 1
  graph = trainer.distributed_step.get_concrete_function(batch).graph
  functions = graph.as_graph_def().library.function
  assert any('_XlaMustCompile' in f.attr and f.attr['_XlaMustCompile'].b
             for f in functions)
