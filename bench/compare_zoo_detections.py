r"""This project's detections from an OD API checkpoint vs the OD API's own.

  python bench/compare_zoo_detections.py --peer_dir=OUT_DIR \
      [--odapi_compatible_geometry=true]

OUT_DIR is written by ``bench/peer_zoo_detections.py`` in the peer venv (an
OD API Faster R-CNN IRv2 checkpoint, its input image and its detections).
This builds the same model here (same config fields; the geometry chosen by
the flag), restores the checkpoint with ``fine_tune_checkpoint_type: full``,
runs it on the same image and prints how far the proposals' raw scores and
the final detections are from the OD API's.
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import os
import sys

from absl import app
from absl import flags
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.append(REPO_ROOT)

from object_detection_note.evaluation import inference  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.builders import model_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.config import config_util  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.core.fields import DetectionFields as D  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.checkpoints import checkpoints  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('peer_dir', None, 'Output of peer_zoo_detections.py.')
flags.DEFINE_bool('odapi_compatible_geometry', True, 'Geometry to run.')
FLAGS = flags.FLAGS

_MODEL = """
model { faster_rcnn {
  num_classes: 90
  image_resizer { fixed_shape_resizer { height: %(size)d width: %(size)d } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0]
    height_stride: 16 width_stride: 16 } }
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: 20
  initial_crop_size: 17
  maxpool_kernel_size: 1
  maxpool_stride: 1
  second_stage_box_predictor { mask_rcnn_box_predictor { use_dropout: false } }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6
      max_detections_per_class: 100 max_total_detections: 100 }
    score_converter: SOFTMAX }
  second_stage_batch_size: 20
  odapi_compatible_geometry: %(geometry)s
}}
"""


def main(argv):
  del argv
  image = np.load(os.path.join(FLAGS.peer_dir, 'image.npy'))
  peer = dict(np.load(os.path.join(FLAGS.peer_dir, 'detections.npz')))
  pipeline = config_util.parse_pipeline_text(_MODEL % dict(
      size=image.shape[1],
      geometry='true' if FLAGS.odapi_compatible_geometry else 'false'))
  model = model_builder.build(pipeline.model, is_training=False)
  resizer = pipeline.model.faster_rcnn.image_resizer
  inference.build_model_inputs(model, resizer)
  report = checkpoints.restore_fine_tune(
      model, os.path.join(FLAGS.peer_dir, 'checkpoint'), 'full')
  print('restored %d variables, %d not restored' % (
      len(report.restored), len(report.not_restored)))
  ours = {k: v.numpy() for k, v in
          inference.detect(model, image, resizer).items()}
  # DetectionModel.postprocess gives 0-based classes; the OD API's exporter
  # adds the label-id offset 1 (this project's are label-map ids already).
  peer[D.detection_classes] = peer[D.detection_classes] + 1
  count = int(peer[D.num_detections][0])
  print('num_detections: OD API %d, project %d' % (
      count, int(ours[D.num_detections][0])))
  for key in (D.raw_detection_scores, D.raw_detection_boxes):
    if key in peer:
      difference = np.abs(np.sort(peer[key].ravel()) -
                          np.sort(ours[key].ravel()))
      print('%s: max |sorted difference| %.2e (values up to %.2e)' % (
          key, difference.max(), np.abs(peer[key]).max()))
  n = min(count, int(ours[D.num_detections][0]), 20)
  for key in (D.detection_scores, D.detection_boxes, D.detection_classes):
    difference = np.abs(peer[key][0, :n] - ours[key][0, :n])
    print('%s (top %d): max |difference| %.2e' % (key, n, difference.max()))


if __name__ == '__main__':
  flags.mark_flag_as_required('peer_dir')
  app.run(main)
