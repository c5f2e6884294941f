r"""The TF Object Detection API's own Faster R-CNN IRv2 training step, timed.

Runs in a peer venv holding the upstream OD API (see
/work/shared/odapi-reference/peer_setup.sh), never in the project's venv:

  PEER/bin/python bench/peer_odapi_step.py HEIGHT WIDTH PROPOSALS \
      SECOND_STAGE_BATCH STEPS WARMUP

Builds the OD API's ``faster_rcnn_inception_resnet_v2_keras`` model with the
zoo config's hyper-parameters (the project's IRv2 bench settings: grid
anchors 4 scales x 3 ratios, 17x17 crops, 10 classes, batch 1, random
weights), and times ``provide_groundtruth + preprocess + predict + loss +
gradient + momentum-SGD update`` under one ``tf.function`` (no gradient
clipping, as the OD API's own loop without ``gradient_clipping_by_norm``).
Prints one JSON line: wall and process-CPU seconds of every timed step, their
medians and the number of trainable variables.
"""
import json
import statistics
import sys
import time

import tensorflow as tf
from google.protobuf import text_format
from object_detection.builders import model_builder
from object_detection.protos import pipeline_pb2

_CONFIG = """
model { faster_rcnn {
  num_classes: 10
  image_resizer { fixed_shape_resizer { height: %(height)d width: %(width)d } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0]
    height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { op: CONV
    regularizer { l2_regularizer { weight: 0.0 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } } }
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: %(proposals)d
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
  second_stage_batch_size: %(batch)d
}}
"""


def main(argv):
  height, width, proposals, batch, steps, warmup = (int(a) for a in argv[1:7])
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Merge(_CONFIG % dict(height=height, width=width,
                                   proposals=proposals, batch=batch),
                    pipeline)
  model = model_builder.build(pipeline.model, is_training=True)
  optimizer = tf.keras.optimizers.SGD(learning_rate=3e-4, momentum=0.9)
  image = tf.random.uniform([1, height, width, 3], seed=1) * 255.0
  boxes = tf.constant([[0.1, 0.1, 0.5, 0.5], [0.4, 0.5, 0.9, 0.8]])
  classes = tf.one_hot([3, 7], 10)

  @tf.function
  def step():
    model.provide_groundtruth(groundtruth_boxes_list=[boxes],
                              groundtruth_classes_list=[classes])
    with tf.GradientTape() as tape:
      preprocessed, shapes = model.preprocess(image)
      predictions = model.predict(preprocessed, shapes)
      total = tf.add_n(list(model.loss(predictions, shapes).values()))
    gradients = tape.gradient(total, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return total

  for _ in range(max(1, warmup)):
    step().numpy()
  wall, cpu = [], []
  for _ in range(steps):
    cpu_start, start = time.process_time(), time.perf_counter()
    step().numpy()
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - cpu_start)
  result = {
      'step_seconds': wall, 'cpu_seconds': cpu,
      'median_s': statistics.median(wall),
      'median_cpu_s': statistics.median(cpu),
      'trainable_variables': len(model.trainable_variables),
      'compute_dtype': 'float32',
  }
  try:
    # Counted from the traced step's graph, as for the project's step.
    import flops  # pylint: disable=g-import-not-at-top
    result['flops_per_step'] = flops.function_flops(step)
    result['achieved_flops_per_s'] = (result['flops_per_step'] /
                                      result['median_s'])
    result['achieved_flops_per_cpu_s'] = (result['flops_per_step'] /
                                          result['median_cpu_s'])
  except Exception as error:  # pylint: disable=broad-except
    result['flops_error'] = repr(error)  # the timing stays valid
  print(json.dumps(result), flush=True)


if __name__ == '__main__':
  main(sys.argv)
