"""Tests of the feature extractor registry."""

import pytest

from object_detection_note.models import inception_resnet_v2
from object_detection_note.models import registry
from object_detection_note.models import resnet
from object_detection_note.models import tiny


def test_known_types_are_the_od_api_names_plus_tiny():
  assert registry.known_feature_extractors() == [
      'faster_rcnn_inception_resnet_v2_keras',
      'faster_rcnn_resnet101_keras',
      'faster_rcnn_resnet50_keras',
      'faster_rcnn_tiny_keras',
  ]


@pytest.mark.parametrize('type_name,cls,stride', [
    ('faster_rcnn_inception_resnet_v2_keras',
     inception_resnet_v2.InceptionResnetV2FeatureExtractor, 16),
    ('faster_rcnn_resnet50_keras', resnet.ResnetFeatureExtractor, 16),
    ('faster_rcnn_resnet101_keras', resnet.ResnetFeatureExtractor, 16),
    ('faster_rcnn_tiny_keras', tiny.TinyFeatureExtractor, 8),
])
def test_builds_the_registered_class_without_building_models(
    type_name, cls, stride):
  extractor = registry.build_feature_extractor(
      type_name, is_training=True, first_stage_features_stride=stride,
      batch_norm_trainable=True, weight_decay=1e-4)
  assert type(extractor) is cls  # pylint: disable=unidiomatic-typecheck
  assert extractor.first_stage_features_stride == stride
  assert extractor.train_batch_norm
  assert extractor.weight_decay == pytest.approx(1e-4)
  assert extractor.classification_backbone is None  # built lazily


def test_resnet_depth_follows_type_name():
  r101 = registry.build_feature_extractor('faster_rcnn_resnet101_keras',
                                          False, 16)
  assert r101.first_stage_output_layer == 'conv4_block23_out'
  r50 = registry.build_feature_extractor('faster_rcnn_resnet50_keras',
                                         False, 16)
  assert r50.first_stage_output_layer == 'conv4_block6_out'


def test_batch_norm_trainable_needs_training():
  extractor = registry.build_feature_extractor(
      'faster_rcnn_tiny_keras', is_training=False,
      first_stage_features_stride=8, batch_norm_trainable=True)
  assert not extractor.train_batch_norm


def test_unknown_type_lists_known_ones():
  with pytest.raises(ValueError) as err:
    registry.build_feature_extractor('faster_rcnn_vgg16_keras', True, 16)
  message = str(err.value)
  assert 'faster_rcnn_vgg16_keras' in message
  for name in registry.known_feature_extractors():
    assert name in message


@pytest.mark.parametrize('type_name,stride', [
    ('faster_rcnn_inception_resnet_v2_keras', 32),
    ('faster_rcnn_resnet50_keras', 8),
    ('faster_rcnn_tiny_keras', 4),
])
def test_unsupported_stride_raises(type_name, stride):
  with pytest.raises(ValueError, match='first_stage_features_stride'):
    registry.build_feature_extractor(type_name, True, stride)


def test_bad_extractor_specific_arguments_raise():
  with pytest.raises(ValueError, match='preprocessing'):
    registry.build_feature_extractor('faster_rcnn_resnet50_keras', True, 16,
                                     preprocessing='torch')
  with pytest.raises(TypeError):
    registry.build_feature_extractor('faster_rcnn_tiny_keras', True, 8,
                                     no_such_argument=1)
