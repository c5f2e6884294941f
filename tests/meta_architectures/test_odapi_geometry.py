"""odapi_compatible_geometry: the OD API Keras Faster R-CNN's shapes and samples.

Golden shapes are those of the OD API's own IRv2 model
(``/work/shared/odapi-reference``): a 600x1024 image gives 38x64 first-stage
features; a 17x17 crop gives 9x9 second-stage features (SAME padding).
"""
import numpy as np
import tensorflow as tf

from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import note_faster_rcnn
from object_detection_note.meta_architectures import second_stage
from object_detection_note.models import inception_resnet_v2 as irv2
from object_detection_note.models import registry


def test_irv2_odapi_geometry_golden_shapes():
  extractor = irv2.InceptionResnetV2FeatureExtractor(
      is_training=False, first_stage_features_stride=16,
      second_stage_same_padding=True)
  first, second = extractor.build_models()
  assert first.compute_output_shape((1, 600, 1024, 3)) == (1, 38, 64, 1088)
  assert second.compute_output_shape((2, 17, 17, 1088)) == (2, 9, 9, 1536)
  # Padding is not a weight: the 896 backbone tensors of the OD API's IRv2
  # checkpoint (906 variables less 10 of the RPN and box heads).
  assert len(first.weights) + len(second.weights) == 896


def test_odapi_crops_are_crop_and_resize_of_normalised_boxes():
  rng = np.random.default_rng(0)
  height, width, stride, crop = 6, 9, 16, 5
  features = tf.constant(rng.standard_normal([2, height, width, 3]),
                         tf.float32)
  image_hw = (height * stride, width * stride)
  corners = rng.uniform(0, 1, [2, 7, 4]) * np.array(image_hw * 2)
  boxes = np.concatenate([np.minimum(corners[..., :2], corners[..., 2:]),
                          np.maximum(corners[..., :2], corners[..., 2:])], -1)
  boxes[0, 0] = [0, 0, image_hw[0], image_hw[1]]  # The whole image.
  boxes = tf.constant(boxes, tf.float32)
  got = second_stage.crop_features(features, boxes, stride, crop, 1, 1,
                                   image_hw=image_hw)
  normalised = boxes / tf.constant(image_hw * 2, tf.float32)
  expected = tf.image.crop_and_resize(
      features, tf.reshape(normalised, [-1, 4]), tf.repeat(tf.range(2), 7),
      [crop, crop])
  np.testing.assert_allclose(got, expected, atol=1e-5)
  # The whole-image box samples the corner cells exactly.
  np.testing.assert_allclose(got[0, 0, 0], features[0, 0, 0], atol=1e-6)
  np.testing.assert_allclose(got[0, -1, -1], features[0, -1, -1], atol=1e-6)


def _tiny_model(odapi):
  params = note_faster_rcnn.NoteFasterRcnnParams(
      num_classes=2, anchor_scales=(1.0,), anchor_aspect_ratios=(1.0,),
      base_anchor_size=32.0, first_stage_max_proposals=4,
      second_stage_batch_size=4, initial_crop_size=4,
      odapi_compatible_geometry=odapi, note=note_rules.NAIVE)
  return note_faster_rcnn.NoteFasterRcnn(
      params, registry.build_feature_extractor('faster_rcnn_tiny_keras',
                                               False, 8))


def test_anchor_offset_follows_the_geometry():
  images = tf.zeros([1, 32, 32, 3])
  for odapi, first_centre in ((False, 4.0), (True, 0.0)):
    model = _tiny_model(odapi)
    preprocessed, shapes = model.preprocess(images)
    anchors = model.predict(preprocessed, shapes)['anchors'].numpy()
    np.testing.assert_allclose((anchors[0, 0] + anchors[0, 2]) / 2,
                               first_centre)
    np.testing.assert_allclose(anchors[1, 1] - anchors[0, 1], 8.0)
