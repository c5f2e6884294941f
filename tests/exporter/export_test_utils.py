"""A tiny detector checkpoint to export, shared by the exporter/infer tests."""
import os

import numpy as np
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.data.records import label_map_util

LABELS = ('red_square', 'green_disc', 'blue_cross')

# 64x64 padded inputs (keep-aspect-ratio resize), the tiny extractor, a NOTE
# model with rpn-cls-a and det-cls-a; the distillation block must not make
# the export ask for a source detector.
PIPELINE = """
model {
  faster_rcnn {
    num_classes: 3
    image_resizer { keep_aspect_ratio_resizer {
      min_dimension: 48 max_dimension: 64 pad_to_max_dimension: true } }
    feature_extractor {
      type: "faster_rcnn_tiny_keras" first_stage_features_stride: 8
      batch_norm_trainable: true }
    first_stage_anchor_generator { grid_anchor_generator {
      height: 32 width: 32 height_stride: 8 width_stride: 8
      scales: [0.5, 1.0] aspect_ratios: [1.0] } }
    first_stage_box_predictor_depth: 16
    first_stage_minibatch_size: 32
    first_stage_max_proposals: 16
    initial_crop_size: 8
    second_stage_batch_size: 8
    second_stage_post_processing { batch_non_max_suppression {
      score_threshold: 0.0 iou_threshold: 0.6
      max_detections_per_class: 5 max_total_detections: 10 } }
  }
}
train_config { batch_size: 2 num_steps: 10 }
train_input_reader {
  label_map_path: "%(label_map)s"
  tf_record_input_reader { input_path: "%(data)s/train-*" }
}
eval_input_reader {
  label_map_path: "%(label_map)s"
  tf_record_input_reader { input_path: "%(data)s/val-*" }
}
note {
  rpn_cls_a: true
  det_cls_a: true
  mask_mined_background: true
  distillation { weight: 1.0 }
}
"""


def write_pipeline(directory, **overrides):
  """Writes the label map and pipeline config; returns the config path."""
  label_map = os.path.join(directory, 'label_map.pbtxt')
  label_map_util.write_label_map(label_map, LABELS)
  path = os.path.join(directory, 'pipeline.config')
  text = PIPELINE % dict(label_map=label_map, data=directory)
  for old, new in overrides.items():
    text = text.replace(old, new)
  with open(path, 'w') as f:
    f.write(text)
  return path


def train_checkpoint(pipeline_path, checkpoint_dir, seed=3):
  """Builds the training-mode model and saves checkpoints as training does.

  Saves ckpt-1, then changes every weight and saves ckpt-2 (with the step
  counter and a stray optimizer-like variable), so an export must pick the
  latest checkpoint and ignore what is not part of the model.

  Returns:
    (model holding the ckpt-2 weights, configs).
  """
  configs = config_util.get_configs_from_pipeline_file(pipeline_path)
  tf.random.set_seed(seed)
  model = model_builder.build(configs['model'], is_training=True,
                              note_config=configs['note'])
  resizer = configs['model'].faster_rcnn.image_resizer
  inference.build_model_inputs(model, resizer)
  step = tf.Variable(1, dtype=tf.int64)
  slot = tf.Variable(tf.zeros([3]))
  checkpoint = tf.train.Checkpoint(model=model, global_step=step,
                                   optimizer=tf.train.Checkpoint(slot=slot))
  manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir,
                                       max_to_keep=3)
  manager.save(checkpoint_number=1)
  rng = np.random.RandomState(seed)
  for variable in model.variables:
    variable.assign(variable + 0.05 * rng.standard_normal(
        variable.shape).astype(variable.dtype.as_numpy_dtype))
  step.assign(2)
  manager.save(checkpoint_number=2)
  return model, configs


def test_image(height=40, width=56, seed=0):
  """uint8 [H, W, 3]: coloured rectangles on noise (non-square on purpose)."""
  rng = np.random.RandomState(seed)
  image = rng.randint(0, 60, size=[height, width, 3]).astype(np.uint8)
  image[5:25, 8:30] = (220, 30, 30)
  image[18:36, 30:52] = (30, 200, 40)
  return image
