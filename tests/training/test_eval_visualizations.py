"""Evaluation writes eval_config.num_visualizations side-by-side images
(detections | ground truth) to TensorBoard, honouring max_num_boxes_to_visualize,
min_score_threshold and visualize_groundtruth_boxes.
"""
import numpy as np
import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.evaluation import eval_visualization
from object_detection_note.evaluation import visualization
from object_detection_note.protos import eval_pb2


def test_evaluation_event_file_holds_num_visualizations_images(
    tiny_data_dir, tmp_path):
  config = utils.write_pipeline(tmp_path / 'six.config', tiny_data_dir)
  configs = config_util.get_configs_from_pipeline_file(config)
  model = model_builder.build(configs['model'], is_training=False,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  tf.train.CheckpointManager(
      tf.train.Checkpoint(model=model,
                          global_step=tf.Variable(7, dtype=tf.int64)),
      str(tmp_path / 'train'), 1).save()
  # 8 val images in batches of 2: three images come from two batches.
  eval_loop.evaluate_checkpoints(
      config, str(tmp_path / 'model'), str(tmp_path / 'train'), timeout=0,
      config_override='eval_config { num_visualizations: 3 '
      'min_score_threshold: 0.0 }')
  images = utils.read_images(str(tmp_path / 'model' / 'eval'))
  assert sorted(images) == ['eval_side_by_side_0', 'eval_side_by_side_1',
                            'eval_side_by_side_2']
  for (step, image), in images.values():
    assert step == 7
    assert image.shape == (utils.IMAGE_SIZE, 2 * utils.IMAGE_SIZE, 3)
    right = image[:, utils.IMAGE_SIZE:]
    # Ground truth boxes (black outlines) on the right half.
    assert (right.sum(axis=2) == 0).any()
  # Scalars are still read back beside the images.
  assert 'DetectionBoxes_Precision/mAP' in utils.read_scalars(
      str(tmp_path / 'model' / 'eval'))


def _colour_pixels(image, colour):
  return int(np.all(image == np.array(colour, np.uint8), axis=2).sum())


@pytest.mark.parametrize('max_boxes,min_score,groundtruth,drawn', [
    (20, 0.5, False, {1}),       # class 2 scores 0.3 < 0.5
    (20, 0.0, False, {1, 2}),
    (1, 0.0, False, {1}),        # only the best box
    (20, 0.5, True, {1}),
])
def test_side_by_side_honours_the_eval_config(max_boxes, min_score,
                                              groundtruth, drawn):
  config = eval_pb2.EvalConfig(num_visualizations=1,
                               max_num_boxes_to_visualize=max_boxes,
                               min_score_threshold=min_score,
                               visualize_groundtruth_boxes=groundtruth)
  pictures = eval_visualization.SideBySide(
      config, [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}])
  pixels = np.full((80, 80, 3), 128, np.uint8)
  image = pictures.side_by_side(
      pixels, np.array([[40., 40., 70., 70.]]), np.array([1]),
      np.array([[10., 10., 30., 30.], [45., 5., 75., 35.]]),
      np.array([0.9, 0.3]), np.array([1, 2]))
  left, right = image[:, :80], image[:, 80:]
  for class_id in (1, 2):
    colour = visualization.class_colour(class_id)
    assert (_colour_pixels(left, colour) > 0) == (class_id in drawn), class_id
    assert _colour_pixels(right, colour) == 0
  assert _colour_pixels(right, eval_visualization.GROUNDTRUTH_COLOUR) > 0
  assert (_colour_pixels(left, eval_visualization.GROUNDTRUTH_COLOUR) >
          0) == groundtruth
