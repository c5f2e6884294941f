r"""Peer venv only: the upstream OD API's own mining path at the paper's shapes.

Run with the peer venv's python (``peer_setup.sh``; its ``peer.env`` exported):

  peer_generate_detections.py export OUT_DIR
      builds the OD API's Faster R-CNN Inception-ResNet-v2 (Keras) with the
      model block of this project's configs/ilsvrc13.config (100 classes,
      keep-aspect resizer 600/1024 padded to 1024x1024, 300 proposals, 17x17
      crops), random weights, saves ``OUT_DIR/checkpoint/ckpt-0`` and exports
      it with the OD API's own exporter (``exporter_lib_v2``, input type
      ``tf_example``) to ``OUT_DIR/exported/saved_model``.
  peer_generate_detections.py mine INPUT_TFRECORD OUTPUT_PREFIX SAVED_MODEL_DIR
      runs the OD API's Beam detection job
      (``dataset_tools/context_rcnn/generate_detection_data``: its
      ``construct_pipeline`` and ``GenerateDetectionDataFn``) on the
      DirectRunner; prints one JSON line {"images", "seconds"}.

The DoFn (the TF2 version of the PyPI package) loads the SavedModel with
``tf.saved_model.load`` in ``setup`` and calls its ``serving_default``
signature once per record; it runs here unmodified.

TF 2.20 moved ``control_flow_ops.case`` and ``.cond`` (which tf_slim's
tf.Example image decoder, used by the exporter's ``tf_example`` input, still
calls) to ``control_flow_case`` and ``cond``; they are put back before the
export.
"""
import json
import os
import sys
import time

import apache_beam as beam
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.ops import cond as cond_lib
from tensorflow.python.ops import control_flow_case
from tensorflow.python.ops import control_flow_ops
if not hasattr(control_flow_ops, 'case'):
  control_flow_ops.case = control_flow_case.case
if not hasattr(control_flow_ops, 'cond'):
  control_flow_ops.cond = cond_lib.cond
from object_detection import exporter_lib_v2
from object_detection.builders import model_builder
from object_detection.dataset_tools.context_rcnn import generate_detection_data
from object_detection.protos import pipeline_pb2

# configs/ilsvrc13.config's model block in the OD API's schema (the conv and
# fc hyper-parameters the OD API requires are its sample configs' ones).
MODEL = """
model { faster_rcnn {
  num_classes: 100
  image_resizer { keep_aspect_ratio_resizer { min_dimension: 600 max_dimension: 1024 pad_to_max_dimension: true } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' first_stage_features_stride: 16 batch_norm_trainable: false }
  first_stage_anchor_generator { grid_anchor_generator { height: 256 width: 256 scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } } initializer { truncated_normal_initializer { stddev: 0.01 } } }
  first_stage_box_predictor_kernel_size: 3
  first_stage_box_predictor_depth: 512
  first_stage_minibatch_size: 256
  first_stage_positive_balance_fraction: 0.5
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: 300
  first_stage_localization_loss_weight: 2.0
  first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 17
  maxpool_kernel_size: 1
  maxpool_stride: 1
  second_stage_box_predictor { mask_rcnn_box_predictor { use_dropout: false dropout_keep_probability: 1.0 fc_hyperparams { op: FC regularizer { l2_regularizer { weight: 0.0 } } initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } } } } }
  second_stage_batch_size: 64
  second_stage_balance_fraction: 0.25
  second_stage_post_processing { batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6 max_detections_per_class: 100 max_total_detections: 300 } score_converter: SOFTMAX }
  second_stage_localization_loss_weight: 2.0
  second_stage_classification_loss_weight: 1.0
}}
"""


def export(out_dir):
  config = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Merge(MODEL, config)
  model = model_builder.build(config.model, is_training=False)
  image = tf.random.uniform([1, 600, 1024, 3], seed=1) * 255
  inputs, shapes = model.preprocess(image)
  model.postprocess(model.predict(inputs, shapes), shapes)
  checkpoint_dir = os.path.join(out_dir, 'checkpoint')
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), checkpoint_dir,
                             max_to_keep=1).save(checkpoint_number=0)
  exporter_lib_v2.export_inference_graph(
      'tf_example', config, checkpoint_dir, os.path.join(out_dir, 'exported'))
  print(json.dumps({'saved_model': os.path.join(out_dir, 'exported',
                                                'saved_model')}))


def mine(input_tfrecord, output_prefix, saved_model_dir):
  start = time.perf_counter()
  pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(
      ['--runner=DirectRunner']))
  generate_detection_data.construct_pipeline(
      pipeline, input_tfrecord, output_prefix, saved_model_dir,
      confidence_threshold=0.99, num_shards=1)
  result = pipeline.run()
  result.wait_until_finish()
  seconds = time.perf_counter() - start
  images = sum(1 for _ in tf.data.TFRecordDataset(
      tf.io.gfile.glob(output_prefix + '*')))
  print(json.dumps({'images': images, 'seconds': seconds}))


if __name__ == '__main__':
  if sys.argv[1] == 'export':
    export(sys.argv[2])
  elif sys.argv[1] == 'mine':
    mine(*sys.argv[2:5])
  else:
    raise SystemExit('usage: %s export OUT_DIR | mine INPUT OUTPUT MODEL_DIR'
                     % sys.argv[0])
