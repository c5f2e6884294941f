"""Tiny models, synthetic batches and COCO AP for meta-architecture tests."""
import numpy as np
import tensorflow as tf

from object_detection_note.core.fields import DetectionFields
from object_detection_note.core.fields import InputFields
from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import note_faster_rcnn
from object_detection_note.models import tiny

IMAGE_SIZE = 64
MAX_BOXES = 3
COLOURS = ((230, 40, 40), (40, 200, 60), (50, 80, 230))


def tiny_params(num_classes=2, note=note_rules.NoteConfig(), **overrides):
  """Small, fast settings: 64x64 images, stride 8, 2 anchors per cell."""
  values = dict(
      num_classes=num_classes, base_anchor_size=32.0,
      anchor_scales=(0.5, 1.0), anchor_aspect_ratios=(1.0,),
      first_stage_box_predictor_depth=32, first_stage_minibatch_size=64,
      first_stage_max_proposals=32, first_stage_pre_nms_top_k=128,
      initial_crop_size=8, second_stage_batch_size=16,
      max_detections_per_class=10, max_total_detections=10, note=note)
  values.update(overrides)
  return note_faster_rcnn.NoteFasterRcnnParams(**values)


def tiny_model(params, source_model=None, seed=1):
  extractor = tiny.TinyFeatureExtractor(is_training=True,
                                        first_stage_features_stride=8,
                                        depth=16, seed=seed)
  tf.random.set_seed(seed)
  model = note_faster_rcnn.NoteFasterRcnn(params, extractor,
                                          source_model=source_model)
  # Builds every variable (postprocess creates none and is slow to trace).
  model.predict(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3]),
                tf.constant([[IMAGE_SIZE, IMAGE_SIZE, 3]]))
  return model


def synthetic_scenes(num_images, num_classes=2, seed=0):
  """Coloured squares on a dark background; colour = class.

  Returns:
    (images uint8 [N, 64, 64, 3], boxes float32 [N, MAX_BOXES, 4] normalised,
     classes int32 [N, MAX_BOXES], weights float32 [N, MAX_BOXES]).
  """
  rng = np.random.RandomState(seed)
  images = np.full([num_images, IMAGE_SIZE, IMAGE_SIZE, 3], 20, np.uint8)
  boxes = np.zeros([num_images, MAX_BOXES, 4], np.float32)
  classes = np.zeros([num_images, MAX_BOXES], np.int32)
  weights = np.zeros([num_images, MAX_BOXES], np.float32)
  for i in range(num_images):
    taken = []
    for j in range(rng.randint(1, 3)):
      for _ in range(50):
        size = rng.randint(14, 30)
        y, x = rng.randint(0, IMAGE_SIZE - size, size=2)
        if all(y + size <= ty or ty + ts <= y or x + size <= tx or
               tx + ts <= x for ty, tx, ts in taken):
          break
      taken.append((y, x, size))
      label = rng.randint(1, num_classes + 1)
      images[i, y:y + size, x:x + size] = COLOURS[label - 1]
      boxes[i, j] = np.array([y, x, y + size, x + size]) / IMAGE_SIZE
      classes[i, j] = label
      weights[i, j] = 1.0
  return images, boxes, classes, weights


def make_batch(images, boxes, classes, weights, is_mined):
  num = images.shape[0]
  return {
      InputFields.image: tf.constant(images, tf.float32),
      InputFields.true_image_shape: tf.constant(
          [[IMAGE_SIZE, IMAGE_SIZE, 3]] * num, tf.int32),
      InputFields.groundtruth_boxes: tf.constant(boxes, tf.float32),
      InputFields.groundtruth_classes: tf.constant(classes, tf.int32),
      InputFields.groundtruth_weights: tf.constant(weights, tf.float32),
      InputFields.num_groundtruth_boxes: tf.constant(
          (weights > 0).sum(axis=1), tf.int32),
      InputFields.is_mined: tf.constant(is_mined, tf.float32),
  }


def coco_ap50(detections, boxes, classes, weights, num_classes):
  """AP@IoU0.5 (COCOeval) of ``detections`` on the groundtruth arrays."""
  from pycocotools import coco  # pylint: disable=g-import-not-at-top
  from pycocotools import cocoeval  # pylint: disable=g-import-not-at-top
  scale = np.array([IMAGE_SIZE] * 4, np.float32)

  def xywh(box):
    ymin, xmin, ymax, xmax = (box * scale).tolist()
    return [xmin, ymin, xmax - xmin, ymax - ymin]

  annotations, results = [], []
  for i in range(boxes.shape[0]):
    for j in np.nonzero(weights[i])[0]:
      bbox = xywh(boxes[i, j])
      annotations.append({'id': len(annotations) + 1, 'image_id': i,
                          'category_id': int(classes[i, j]), 'bbox': bbox,
                          'area': bbox[2] * bbox[3], 'iscrowd': 0})
    det_boxes = detections[DetectionFields.detection_boxes][i].numpy()
    det_scores = detections[DetectionFields.detection_scores][i].numpy()
    det_classes = detections[DetectionFields.detection_classes][i].numpy()
    for k in range(int(detections[DetectionFields.num_detections][i])):
      results.append({'image_id': i, 'category_id': int(det_classes[k]),
                      'bbox': xywh(det_boxes[k]),
                      'score': float(det_scores[k])})
  ground_truth = coco.COCO()
  ground_truth.dataset = {
      'images': [{'id': i} for i in range(boxes.shape[0])],
      'annotations': annotations,
      'categories': [{'id': c} for c in range(1, num_classes + 1)]}
  ground_truth.createIndex()
  evaluator = cocoeval.COCOeval(ground_truth, ground_truth.loadRes(results),
                                'bbox')
  evaluator.evaluate()
  evaluator.accumulate()
  evaluator.summarize()
  return evaluator.stats[1]
