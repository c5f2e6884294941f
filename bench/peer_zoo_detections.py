r"""Peer venv: an OD API Faster R-CNN IRv2 checkpoint and its own detections.

  PEER/bin/python bench/peer_zoo_detections.py OUT_DIR [SIZE]

Builds the upstream OD API's ``faster_rcnn_inception_resnet_v2_keras`` model
(90 classes, fixed SIZE x SIZE resizer, default 192; random weights), runs
it on a fixed random image and writes, under OUT_DIR:

  checkpoint/ckpt-0.*   ``tf.train.Checkpoint(model=detection_model)``, the
                        model zoo's layout
  image.npy             the uint8 [1, SIZE, SIZE, 3] input
  detections.npz        the OD API's postprocessed detections

``bench/compare_zoo_detections.py`` then loads the checkpoint into this
project (``odapi_compatible_geometry``) and compares the detections.
"""
import os
import sys

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from object_detection.builders import model_builder
from object_detection.protos import pipeline_pb2

CONFIG = """
model { faster_rcnn {
  num_classes: 90
  image_resizer { fixed_shape_resizer { height: %(size)d width: %(size)d } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0]
    height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { op: CONV
    regularizer { l2_regularizer { weight: 0.0 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } } }
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: 20
  first_stage_localization_loss_weight: 2.0
  first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 17
  maxpool_kernel_size: 1
  maxpool_stride: 1
  second_stage_box_predictor { mask_rcnn_box_predictor {
    use_dropout: false dropout_keep_probability: 1.0
    fc_hyperparams { op: FC regularizer { l2_regularizer { weight: 0.0 } }
      initializer { variance_scaling_initializer {
        factor: 1.0 uniform: true mode: FAN_AVG } } } } }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6
      max_detections_per_class: 100 max_total_detections: 100 }
    score_converter: SOFTMAX }
  second_stage_localization_loss_weight: 2.0
  second_stage_classification_loss_weight: 1.0
  second_stage_batch_size: 20
}}
"""


def main(argv):
  out = argv[1]
  size = int(argv[2]) if len(argv) > 2 else 192
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Merge(CONFIG % dict(size=size), pipeline)
  model = model_builder.build(pipeline.model, is_training=False)
  rng = np.random.default_rng(7)
  image = rng.integers(0, 256, [1, size, size, 3]).astype(np.uint8)
  preprocessed, shapes = model.preprocess(tf.cast(image, tf.float32))
  predictions = model.predict(preprocessed, shapes)
  detections = model.postprocess(predictions, shapes)
  os.makedirs(out, exist_ok=True)
  np.save(os.path.join(out, 'image.npy'), image)
  np.savez(os.path.join(out, 'detections.npz'),
           **{k: v.numpy() for k, v in detections.items()})
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=model), os.path.join(out, 'checkpoint'),
      max_to_keep=1, checkpoint_name='ckpt')
  print('saved', manager.save(checkpoint_number=0), flush=True)


if __name__ == '__main__':
  main(sys.argv)
