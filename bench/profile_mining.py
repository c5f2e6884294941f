r"""Where one mining image's time goes, stage by stage, at the paper's shapes.

  .venv/bin/python bench/profile_mining.py [--repeats=3] [--precision_policy=float32]

configs/ilsvrc13.config's model (IRv2, keep-aspect 600/1024 padded to
1024x1024, 300 proposals) with random weights, one synthetic 600x1024 JPEG
image. Each stage is its own ``tf.function``, warmed up once, then timed
``--repeats`` times (median wall and process CPU seconds):

* ``decode``: ``tf.io.decode_image`` of the JPEG (the pipeline decodes each
  image twice: once to validate the record, once to detect);
* ``resize_preprocess``: ``inference.resize_batch`` + ``model.preprocess``;
* ``first_stage_features``: the IRv2 trunk up to the RPN features;
* ``rpn_and_proposals``: RPN head, anchors, decoding and proposal NMS;
* ``box_classifier``: crops of the 300 proposals through the second-stage
  extractor and the box predictor;
* ``postprocess``: ``model.postprocess`` (per-class NMS);
* ``detect``: ``inference.detect`` end to end (the mining detector's call);
* ``python_mining``: best box per label, thresholding, record encoding.

Prints one JSON object.
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import json
import os
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer('repeats', 3, 'Timed calls per stage.')
flags.DEFINE_string('precision_policy', 'float32',
                    'Precision policy of the model.')


def _cpu():
  times = os.times()
  return times.user + times.system


def _time(function, repeats):
  function()
  walls, cpus = [], []
  for _ in range(repeats):
    wall, cpu = time.perf_counter(), _cpu()
    function()
    walls.append(time.perf_counter() - wall)
    cpus.append(_cpu() - cpu)
  return {'wall_s': statistics.median(walls), 'cpu_s': statistics.median(cpus)}


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  import mining_side_by_side
  from object_detection_note.evaluation import inference
  from object_detection_note.core.fields import PredictionFields
  from object_detection_note.config import config_util
  from object_detection_note.data.records import tf_example_codec
  from object_detection_note.mining import mining_pipeline
  from object_detection_note.mining import mining_spec
  from object_detection_note.builders import mixed_precision
  from object_detection_note.builders import model_builder
  from object_detection_note.meta_architectures import first_stage

  configs = config_util.get_configs_from_pipeline_file(
      mining_side_by_side.CONFIG)
  resizer = configs['model'].faster_rcnn.image_resizer
  with mixed_precision.policy_scope(FLAGS.precision_policy):
    model = model_builder.build(configs['model'], is_training=False,
                                note_config=configs['note'])
  inference.build_model_inputs(model, resizer)
  with tempfile.TemporaryDirectory() as work_dir:
    path = os.path.join(work_dir, 'images.tfrecord')
    mining_side_by_side.write_images(path, 1)
    serialized = next(iter(tf.data.TFRecordDataset(path))).numpy()
  record = tf_example_codec.example_to_record(serialized)
  image = tf.io.decode_image(record.image_bytes, channels=3,
                             expand_animations=False)[tf.newaxis]
  p = model.params

  resize = tf.function(lambda x: model.preprocess(
      inference.resize_batch(x, resizer)[0])[0])
  preprocessed = resize(image)
  true_shapes = inference.resize_batch(image, resizer)[1]
  features_fn = tf.function(lambda x: model.first_stage_feature_extractor(
      x, training=False))
  features = features_fn(preprocessed)

  @tf.function
  def proposals_fn(features):
    rpn = model.rpn_head(features)
    rpn = {k: tf.cast(v, tf.float32) for k, v in rpn.items()}
    height, width = preprocessed.shape[1], preprocessed.shape[2]
    anchors = model._anchors(features, height, width)  # pylint: disable=protected-access
    proposals, _, _ = first_stage.propose(
        anchors, rpn[PredictionFields.rpn_box_encodings],
        model.objectness_probabilities(rpn), true_shapes,
        p.first_stage_pre_nms_top_k, p.first_stage_nms_iou_threshold,
        p.first_stage_max_proposals, p.first_stage_nms_score_threshold)
    return proposals

  proposals = proposals_fn(features)
  box_fn = tf.function(lambda f, b: model._box_classifier(  # pylint: disable=protected-access
      f, b, False, (preprocessed.shape[1], preprocessed.shape[2])))
  predictions = tf.function(lambda x: model.predict(x, true_shapes))(
      preprocessed)
  post_fn = tf.function(lambda pr: model.postprocess(pr, true_shapes))
  detect_fn = tf.function(lambda x: inference.detect(model, x, resizer))
  detections = inference.numpy_detections(detect_fn(image), 0)
  names = mining_side_by_side.id_to_name()
  spec = mining_spec.MiningSpec(names, 0.0)

  repeats = FLAGS.repeats
  stages = {
      'decode': lambda: tf.io.decode_image(record.image_bytes, channels=3,
                                           expand_animations=False),
      'resize_preprocess': lambda: resize(image),
      'first_stage_features': lambda: features_fn(preprocessed),
      'rpn_and_proposals': lambda: proposals_fn(features),
      'box_classifier': lambda: box_fn(features, proposals),
      'postprocess': lambda: post_fn(predictions),
      'detect': lambda: detect_fn(image),
      'python_mining': lambda: mining_pipeline.mine_record(
          record, detections, spec),
  }
  results = {name: _time(fn, repeats) for name, fn in stages.items()}
  parts = [k for k in results if k not in ('detect', 'decode',
                                            'python_mining')]
  results['sum_of_model_stages_cpu_s'] = sum(results[k]['cpu_s']
                                             for k in parts)
  print(json.dumps({'policy': FLAGS.precision_policy, 'repeats': repeats,
                    'load_avg': [round(v, 2) for v in os.getloadavg()],
                    'stages': results}, indent=1))


if __name__ == '__main__':
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  app.run(main)
