"""No config field is silently ignored: honoured, warned about, or rejected.

The OD API-style configs in ``tests/config/data`` are modelled on the upstream
TF2 model zoo's Faster R-CNN IRv2 and ResNet-50 sample configs.
"""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.config import field_policy
from object_detection_note.heads import rpn_head
from object_detection_note.meta_architectures import first_stage

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
_IRV2 = os.path.join(_HERE, 'data',
                     'faster_rcnn_inception_resnet_v2_640x640_odapi.config')
_RESNET = os.path.join(_HERE, 'data',
                       'faster_rcnn_resnet50_v1_640x640_odapi.config')


def _project_configs():
  return sorted(glob.glob(os.path.join(_REPO, 'configs', '*.config')) +
                glob.glob(os.path.join(_REPO, 'configs', '*', '*.config')))


def test_project_configs_use_only_honoured_fields():
  paths = _project_configs()
  assert len(paths) >= 10
  for path in paths:
    pipeline = config_util.read_pipeline_config(path)
    assert field_policy.find_unsupported_fields(pipeline) == [], path
    config_util.get_configs_from_pipeline_file(path)


@pytest.mark.parametrize('path,warned', [
    (_IRV2, {'train_config.unpad_groundtruth_tensors'}),
    (_RESNET, {'train_config.unpad_groundtruth_tensors',
               'model.faster_rcnn.use_static_shapes',
               'model.faster_rcnn.use_matmul_crop_and_resize',
               'model.faster_rcnn.use_static_balanced_label_sampler',
               'model.faster_rcnn.use_matmul_gather_in_matcher',
               'model.faster_rcnn.second_stage_post_processing.'
               'batch_non_max_suppression.use_static_shapes'}),
])
def test_odapi_sample_configs_load_with_fields_honoured(path, warned):
  pipeline = config_util.read_pipeline_config(path)
  findings = field_policy.find_unsupported_fields(pipeline)
  assert not [f for f in findings if f.is_error]
  assert {f.path for f in findings} == warned

  configs = config_util.get_configs_from_pipeline_file(path)
  params = model_builder.build_params(configs['model'].faster_rcnn)
  assert params.first_stage_box_predictor_initializer == (
      'truncated_normal', 0.0, pytest.approx(0.01))
  assert params.second_stage_box_predictor_initializer == (
      'variance_scaling', 1.0, 'fan_avg', True)
  assert params.first_stage_box_predictor_weight_decay == 0.0
  assert params.first_stage_nms_score_threshold == 0.0
  assert params.clip_anchors_to_image == (path == _RESNET)
  steps = [s.WhichOneof('preprocessing_step') for s in
           configs['train_config'].data_augmentation_options]
  assert steps == ['random_horizontal_flip', 'random_adjust_hue',
                   'random_adjust_contrast', 'random_adjust_saturation',
                   'random_square_crop_by_scale']
  # train_config.max_number_of_boxes pads the training groundtruth.
  assert configs['train_input_config'].max_number_of_boxes == 100


def _with_line(tmp_path, after, added):
  """The IRv2 sample config with `added` inserted after the `after` line.

  A field the config already sets is replaced instead.
  """
  lines = open(_IRV2).read().split('\n')
  index = next(i for i, line in enumerate(lines) if line.strip() == after)
  if after.split(':')[0] == added.split(':')[0]:
    lines[index] = added
    line = index + 1
  else:
    lines.insert(index + 1, added)
    line = index + 2
  path = tmp_path / 'pipeline.config'
  path.write_text('\n'.join(lines))
  return str(path), line  # 1-based line of the new text.


@pytest.mark.parametrize('after,added,field,reason', [
    ('second_stage_classification_loss_weight: 1.0',
     'hard_example_miner { num_hard_examples: 64 }',
     'model.faster_rcnn.hard_example_miner', 'not implemented'),
    ('first_stage_nms_iou_threshold: 0.7', 'number_of_stages: 1',
     'model.faster_rcnn.number_of_stages', 'only 2'),
    ('first_stage_nms_iou_threshold: 0.7', 'first_stage_atrous_rate: 2',
     'model.faster_rcnn.first_stage_atrous_rate', 'only 1'),
    ('second_stage_classification_loss_weight: 1.0',
     'second_stage_classification_loss { weighted_sigmoid {} }',
     'model.faster_rcnn.second_stage_classification_loss.weighted_sigmoid',
     'not implemented'),
    ('op: CONV', 'batch_norm { decay: 0.99 }',
     'model.faster_rcnn.first_stage_box_predictor_conv_hyperparams.'
     'batch_norm', 'not implemented'),
    ('batch_size: 64', 'data_augmentation_options { random_image_scale {} }',
     'train_config.data_augmentation_options.random_image_scale',
     'not implemented'),
    ('use_moving_average: false', 'use_moving_average: true',
     'train_config.optimizer.use_moving_average', 'true is not implemented'),
    ('use_moving_averages: false', 'use_moving_averages: true',
     'eval_config.use_moving_averages', 'true is not implemented'),
])
def test_unsupported_fields_fail_naming_file_line_and_field(
    tmp_path, after, added, field, reason):
  path, line = _with_line(tmp_path, after, added)
  with pytest.raises(config_util.ConfigError) as error:
    config_util.get_configs_from_pipeline_file(path)
  message = str(error.value)
  assert '%s:%d: field %s' % (path, line, field) in message
  assert reason in message


def test_score_converter_other_than_softmax_is_rejected(tmp_path):
  text = open(_IRV2).read().replace('score_converter: SOFTMAX',
                                    'score_converter: SIGMOID')
  path = tmp_path / 'sigmoid.config'
  path.write_text(text)
  line = text.split('\n').index('      score_converter: SIGMOID') + 1
  with pytest.raises(config_util.ConfigError,
                     match=r'sigmoid.config:%d: field model.faster_rcnn.'
                     r'second_stage_post_processing.score_converter: only '
                     r'SOFTMAX supported, got SIGMOID' % line):
    config_util.get_configs_from_pipeline_file(str(path))


def test_no_effect_fields_warn(caplog):
  config_util.get_configs_from_pipeline_file(_IRV2)
  unpad = [r.getMessage() for r in caplog.records
           if 'train_config.unpad_groundtruth_tensors' in r.getMessage()]
  assert len(unpad) == 1 and 'has no effect' in unpad[0]
  line = open(_IRV2).read().split('\n').index(
      '  unpad_groundtruth_tensors: false') + 1
  assert '%s:%d:' % (_IRV2, line) in unpad[0]
  # use_bfloat16 is honoured (mixed_bfloat16 policy): no warning.
  assert not [r for r in caplog.records
              if 'train_config.use_bfloat16' in r.getMessage()]


def test_first_stage_nms_score_threshold_drops_low_proposals():
  anchors = tf.constant([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]],
                        tf.float32)
  encodings = tf.zeros([1, 3, 4])
  objectness = tf.constant([[0.9, 0.4, 0.6]])
  shapes = tf.constant([[64, 64, 3]])
  _, scores, valid = first_stage.propose(anchors, encodings, objectness,
                                         shapes, 10, 0.7, 3)
  assert int(tf.reduce_sum(tf.cast(valid, tf.int32))) == 3
  _, scores, valid = first_stage.propose(anchors, encodings, objectness,
                                         shapes, 10, 0.7, 3,
                                         nms_score_threshold=0.5)
  np.testing.assert_allclose(scores[0], [0.9, 0.6, 0.0], rtol=1e-6)
  np.testing.assert_array_equal(valid[0], [True, True, False])


def test_grid_anchor_width_and_offsets():
  anchors = first_stage.grid_anchors(1, 2, 16, 256.0, (1.0,), (1.0,),
                                     base_anchor_width=128.0,
                                     offset=(0.0, 0.0)).numpy()
  np.testing.assert_allclose(anchors, [[-128, -64, 128, 64],
                                       [-128, -48, 128, 80]])
  default = first_stage.grid_anchors(1, 1, 16, 256.0, (1.0,), (1.0,)).numpy()
  np.testing.assert_allclose(default, [[-120, -120, 136, 136]])


def test_rpn_initializer_from_config():
  tf.random.set_seed(0)
  head = rpn_head.RpnHead(
      3, depth=64, use_objectness_a=False,
      kernel_initializer_spec=('variance_scaling', 1.0, 'fan_avg', True))
  head(tf.zeros([1, 4, 4, 256]))
  kernel = head.rpn_conv.kernel.numpy()
  limit = np.sqrt(3.0 / ((3 * 3 * 256 + 3 * 3 * 64) / 2.0))
  assert np.abs(kernel).max() <= limit
  assert np.abs(kernel).max() > 0.9 * limit  # Uniform, not stddev 0.01.
  assert np.abs(head.rpn_cls.kernel.numpy()).max() > 0.05
