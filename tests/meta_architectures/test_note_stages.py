"""Anchors, RPN targets, proposals, sampling, crops and post-processing."""
import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.meta_architectures import first_stage
from object_detection_note.meta_architectures import postprocessing
from object_detection_note.meta_architectures import sampling
from object_detection_note.meta_architectures import second_stage


def test_grid_anchors_follow_od_api_sizes():
  anchors = first_stage.grid_anchors(2, 3, 16, 256.0, (0.5, 1.0), (0.5, 2.0))
  assert anchors.shape == (2 * 3 * 4, 4)
  a = anchors.numpy().reshape(2, 3, 4, 4)
  heights = a[..., 2] - a[..., 0]
  widths = a[..., 3] - a[..., 1]
  # Anchor k = scale index * 2 + ratio index; ratio = width / height.
  np.testing.assert_allclose(heights[0, 0], [128 / 0.5**0.5, 128 / 2**0.5,
                                             256 / 0.5**0.5, 256 / 2**0.5],
                             rtol=1e-5)
  np.testing.assert_allclose(widths[0, 0] / heights[0, 0], [0.5, 2, 0.5, 2],
                             rtol=1e-5)
  centres_x = (a[..., 1] + a[..., 3]) / 2
  np.testing.assert_allclose(centres_x[1, :, 0], [8, 24, 40], rtol=1e-6)


def test_groundtruth_to_absolute_marks_padding():
  got = first_stage.groundtruth_to_absolute(
      tf.constant([[[0.5, 0.25, 1.0, 0.75], [0.0, 0.0, 0.0, 0.0]]]),
      tf.constant([[1.0, 0.0]]), 40, 80)
  np.testing.assert_allclose(got, [[[20, 20, 40, 60], [-1, -1, -1, -1]]])


def test_rpn_targets_force_best_anchor_and_ignore_padding():
  anchors = tf.constant([[0, 0, 10, 10], [0, 0, 20, 20], [50, 50, 60, 60],
                         [0, 0, 11, 10]], tf.float32)
  # Box 0 overlaps anchor 3 at IoU 100/150 (< 0.7): forced positive. A padded
  # column must not force anchor 0.
  gt = tf.constant([[[0, 0, 15, 10], [-1, -1, -1, -1]]], tf.float32)
  targets = first_stage.rpn_targets(anchors, gt, tf.constant([[True, False]]),
                                    0.7, 0.3, 4, 0.5)
  np.testing.assert_array_equal(targets['objectness'], [[0, 0, 0, 1]])
  # Anchor 0: IoU 0.667 -> ignored; anchor 1: 0.375 -> ignored; 2 negative.
  np.testing.assert_array_equal(targets['sampled'], [[0, 0, 1, 1]])
  expected = tf.constant([[[0, 0, 15, 10]]], tf.float32)
  decoded = first_stage.box_ops.decode_boxes(
      targets['box_targets'][:, 3:], anchors[3:][None],
      weights=first_stage.BOX_CODER_WEIGHTS)
  np.testing.assert_allclose(decoded, expected, atol=1e-3)
  np.testing.assert_array_equal(targets['box_targets'][0, :3], 0.0)


def test_balanced_sample_counts():
  tf.random.set_seed(3)
  positive = tf.constant([[True] * 10 + [False] * 30,
                          [True] * 2 + [False] * 38])
  negative = tf.logical_not(positive)
  sampled = sampling.balanced_sample(positive, negative, 8, 0.25).numpy()
  assert sampled.sum(axis=1).tolist() == [8, 8]
  assert (sampled & positive.numpy()).sum(axis=1).tolist() == [2, 2]
  few = sampling.balanced_sample(positive[:, :12], tf.zeros([2, 12], tf.bool),
                                 8, 0.5).numpy()
  assert few.sum(axis=1).tolist() == [4, 2]
  indices, valid = sampling.sampled_indices(tf.constant(few), 6)
  assert valid.numpy().sum(axis=1).tolist() == [4, 2]
  assert few[0][indices.numpy()[0][:4]].all()


def test_propose_clips_suppresses_and_packs_valid_first():
  anchors = tf.constant([[0, 0, 20, 20], [1, 1, 21, 21], [30, 30, 70, 50],
                         [100, 100, 120, 120]], tf.float32)
  encodings = tf.zeros([1, 4, 4])
  scores = tf.constant([[0.9, 0.8, 0.7, 0.6]])
  boxes, out_scores, valid = first_stage.propose(
      anchors, encodings, scores, tf.constant([[64, 48, 3]]), 10, 0.7, 5)
  # Anchor 1 is suppressed by anchor 0; anchor 3 lies outside the image.
  np.testing.assert_array_equal(valid, [[True, True, False, False, False]])
  np.testing.assert_allclose(boxes[0, :2], [[0, 0, 20, 20], [30, 30, 64, 48]],
                             atol=1e-4)
  np.testing.assert_allclose(out_scores[0, :2], [0.9, 0.7])


def test_sample_proposals_targets():
  tf.random.set_seed(0)
  proposals = tf.constant([[[0, 0, 10, 10], [0, 0, 10, 12], [20, 20, 30, 30],
                            [0, 0, 0, 0]]], tf.float32)
  gt = tf.constant([[[0, 0, 10, 11], [-1, -1, -1, -1]]], tf.float32)
  out = second_stage.sample_proposals(
      proposals, tf.constant([[True, True, True, False]]), gt,
      tf.constant([[2, 0]]), 4, 0.5, 0.5)
  valid = out['valid'].numpy()[0]
  np.testing.assert_array_equal(valid, [1, 1, 1, 0])
  boxes = out['boxes'].numpy()[0][:3].tolist()
  classes = out['class_targets'].numpy()[0][:3].tolist()
  by_box = {tuple(b): c for b, c in zip(boxes, classes)}
  assert by_box == {(0, 0, 10, 10): 2, (0, 0, 10, 12): 2, (20, 20, 30, 30): 0}
  for k in range(3):
    if classes[k]:
      decoded = first_stage.box_ops.decode_boxes(
          out['box_targets'][0, k], out['boxes'][0, k],
          weights=first_stage.BOX_CODER_WEIGHTS)
      np.testing.assert_allclose(decoded, [0, 0, 10, 11], atol=1e-3)
    else:
      np.testing.assert_array_equal(out['box_targets'][0, k], 0.0)


def test_crop_features_samples_the_box_region():
  features = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
  # Feature cell (1, 2) at stride 8 covers pixels [8, 16) x [16, 24).
  crops = second_stage.crop_features(features, tf.constant([[[8., 16., 16.,
                                                              24.]]]),
                                     8, 1, 1, 1)
  assert crops.shape == (1, 1, 1, 1)
  np.testing.assert_allclose(crops[0, 0, 0, 0], 1 * 4 + 2 + 0.5 * 5,
                             rtol=1e-6)
  pooled = second_stage.crop_features(features, tf.constant([[[0., 0., 32.,
                                                               32.]]]),
                                      8, 4, 2, 2)
  assert pooled.shape == (1, 2, 2, 1)


def test_postprocess_per_class_nms_and_normalisation():
  proposals = tf.constant([[[0, 0, 10, 10], [0, 0, 10, 10.5], [20, 20, 40, 40],
                            [0, 0, 5, 5]]], tf.float32)
  encodings = tf.zeros([1, 4, 2, 4])
  probabilities = tf.constant([[[0.1, 0.8, 0.1], [0.2, 0.7, 0.1],
                                [0.1, 0.3, 0.6], [0.0, 0.0, 1.0]]])
  out = postprocessing.postprocess_detections(
      proposals, tf.constant([3]), encodings, probabilities,
      tf.constant([[40, 80, 3]]), score_threshold=0.15, iou_threshold=0.5,
      max_detections_per_class=5, max_total_detections=4)
  # Proposal 3 is padding (num_proposals = 3): never detected.
  np.testing.assert_allclose(out[D.detection_scores], [[0.8, 0.6, 0.3, 0.0]],
                             rtol=1e-6)
  np.testing.assert_array_equal(out[D.detection_classes], [[1, 2, 1, 0]])
  assert float(out[D.num_detections][0]) == 3
  np.testing.assert_allclose(
      out[D.detection_boxes][0],
      [[0, 0, 0.25, 0.125], [0.5, 0.25, 1, 0.5], [0.5, 0.25, 1, 0.5],
       [0, 0, 0, 0]], atol=1e-5)
  np.testing.assert_allclose(out[D.detection_multiclass_scores][0, :3],
                             probabilities.numpy()[0, [0, 2, 2]])
  assert out[D.raw_detection_boxes].shape == (1, 4, 4)
  np.testing.assert_allclose(out[D.raw_detection_scores], probabilities)
  np.testing.assert_array_equal(out[D.detection_anchor_indices], [[0, 2, 2, 0]])


@pytest.mark.parametrize('bad', [dict(second_stage_batch_size=400),
                                 dict(num_classes=0)])
def test_params_validation(bad):
  from object_detection_note.meta_architectures import note_faster_rcnn
  values = dict(num_classes=2)
  values.update(bad)
  with pytest.raises(ValueError):
    note_faster_rcnn.NoteFasterRcnnParams(**values)
