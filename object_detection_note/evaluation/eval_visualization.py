"""Evaluation images in TensorBoard, as the OD API writes them.

For the first ``eval_config.num_visualizations`` evaluation images,
``SideBySide`` keeps one picture: the image with its detections (score >=
``min_score_threshold``, at most ``max_num_boxes_to_visualize``, best
first; the ground truth boxes drawn on it too, in black, with
``visualize_groundtruth_boxes``) on the left and the same image with its
ground truth boxes on the right. ``write`` puts them into the eval
directory's event file as ``tf.summary.image`` summaries named
``eval_side_by_side_<i>`` (the OD API's names), at the checkpoint's step.

Inputs are one eval batch (``InputFields`` dict: padded images, true
shapes, ground truth normalised to the padded image) and the model's
postprocessed detections for it (``inference.numpy_detections``: boxes
normalised to the true image).
"""
import numpy as np
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import InputFields as I
from object_detection_note.evaluation import visualization

SUMMARY_PREFIX = 'eval_side_by_side_'
GROUNDTRUTH_COLOUR = (0, 0, 0)


class SideBySide:
  """Collects up to ``num_visualizations`` side-by-side images."""

  def __init__(self, eval_config, categories):
    """Args: eval_config: EvalConfig proto; categories: [{'id', 'name'}]."""
    self.max_images = int(eval_config.num_visualizations)
    self.max_boxes = int(eval_config.max_num_boxes_to_visualize)
    self.min_score = float(eval_config.min_score_threshold)
    self.groundtruth_on_detections = eval_config.visualize_groundtruth_boxes
    self.names = {c['id']: c['name'] for c in categories}
    self.images = []

  @property
  def full(self):
    return len(self.images) >= self.max_images

  def _labels(self, class_ids):
    return [self.names.get(int(c), str(int(c))) for c in class_ids]

  def _draw_groundtruth(self, pixels, boxes, classes):
    return np.asarray(visualization.draw_detections(
        pixels, boxes, classes, self._labels(classes), np.ones(len(boxes)),
        colour=GROUNDTRUTH_COLOUR, show_scores=False))

  def side_by_side(self, pixels, groundtruth_boxes, groundtruth_classes,
                   detection_boxes, detection_scores, detection_classes):
    """uint8 [H, 2W, 3]: detections left, ground truth right.

    Args:
      pixels: uint8 [H, W, 3].
      groundtruth_boxes, detection_boxes: [N, 4] in pixels of ``pixels``.
      groundtruth_classes, detection_classes: [N] label-map ids.
      detection_scores: [N].
    """
    keep = np.argsort(-np.asarray(detection_scores), kind='stable')
    keep = [i for i in keep if detection_scores[i] >= self.min_score]
    keep = keep[:max(self.max_boxes, 0)]
    left = pixels
    if self.groundtruth_on_detections:
      left = self._draw_groundtruth(left, groundtruth_boxes,
                                    groundtruth_classes)
    left = np.asarray(visualization.draw_detections(
        left, detection_boxes[keep], detection_classes[keep],
        self._labels(detection_classes[keep]), detection_scores[keep]))
    right = self._draw_groundtruth(pixels, groundtruth_boxes,
                                   groundtruth_classes)
    return np.concatenate([left, right], axis=1)

  def add(self, batch, detections):
    """Adds the batch's images until ``num_visualizations`` are kept."""
    padded_hw = np.asarray(batch[I.image].shape[1:3], np.float32)
    for i in range(int(batch[I.image].shape[0])):
      if self.full:
        return
      height, width = batch[I.true_image_shape][i, :2].numpy()
      pixels = np.clip(batch[I.image][i, :height, :width].numpy(), 0,
                       255).astype(np.uint8)
      count = int(batch[I.num_groundtruth_boxes][i])
      gt_boxes = batch[I.groundtruth_boxes][i, :count].numpy() * np.tile(
          padded_hw, 2)
      gt_classes = batch[I.groundtruth_classes][i, :count].numpy()
      one = inference.numpy_detections(detections, i)
      boxes = one[D.detection_boxes] * np.array([height, width] * 2,
                                                np.float32)
      self.images.append(self.side_by_side(
          pixels, gt_boxes, gt_classes, boxes, one[D.detection_scores],
          one[D.detection_classes]))

  def write(self, directory, step):
    """Writes the kept images as image summaries into ``directory``."""
    if not self.images:
      return
    with tf.summary.create_file_writer(directory).as_default():
      for index, image in enumerate(self.images):
        tf.summary.image(SUMMARY_PREFIX + str(index), image[None], step=step)
