"""The config protos: generated modules are current, OD API configs parse.

The build (``make protos``) compiles ``protos/*.proto`` into
``object_detection_note/protos/*_pb2.py``; this test compiles nothing into
the package. It recompiles into a temporary directory only to check that the
generated modules match their current ``.proto`` sources.
"""
import ast
import glob
import importlib
import os
import subprocess
import sys

from google.protobuf import descriptor_pb2
from google.protobuf import text_format
import pytest

_STALE_HINT = 'run `make protos` to regenerate the modules'

# pylint: disable=g-import-not-at-top
try:
  from object_detection_note.protos import hyperparams_pb2
  from object_detection_note.protos import image_resizer_pb2
  from object_detection_note.protos import pipeline_pb2
  from object_detection_note.protos import post_processing_pb2
except ImportError as e:
  raise ImportError('%s: %s' % (e, _STALE_HINT)) from e
# pylint: enable=g-import-not-at-top

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROTO_DIR = os.path.join(_ROOT, 'protos')
_GEN_DIR = os.path.join(_ROOT, 'object_detection_note', 'protos')
_VIRTUAL_DIR = 'object_detection_note/protos'

_PROTO_NAMES = sorted(
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(_PROTO_DIR, '*.proto')))


def test_every_expected_proto_exists():
  assert set(_PROTO_NAMES) >= {
      'anchor_generator', 'box_predictor', 'eval', 'faster_rcnn',
      'grid_anchor_generator', 'hyperparams', 'image_resizer', 'input_reader',
      'losses', 'model', 'note', 'optimizer', 'pipeline', 'post_processing',
      'preprocessor', 'string_int_label_map', 'train'}


@pytest.mark.parametrize('name', _PROTO_NAMES)
def test_generated_module_imports(name):
  path = os.path.join(_GEN_DIR, name + '_pb2.py')
  assert os.path.exists(path), '%s is missing: %s' % (path, _STALE_HINT)
  module = importlib.import_module('object_detection_note.protos.%s_pb2' % name)
  assert module.DESCRIPTOR.name == '%s/%s.proto' % (_VIRTUAL_DIR, name)
  assert module.DESCRIPTOR.package == 'object_detection_note.protos'


def test_no_generated_module_without_a_proto():
  generated = sorted(
      os.path.basename(p)[:-len('_pb2.py')]
      for p in glob.glob(os.path.join(_GEN_DIR, '*_pb2.py')))
  orphans = sorted(set(generated) - set(_PROTO_NAMES))
  assert not orphans, (
      'generated modules without a protos/*.proto: %s; run `make clean protos`'
      % orphans)


def _serialized_file(generated_py):
  """The FileDescriptorProto bytes a protoc-generated module registers."""
  with open(generated_py, encoding='utf8') as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == 'AddSerializedFile'):
      return ast.literal_eval(node.args[0])
  raise AssertionError('no AddSerializedFile call in %s' % generated_py)


def _protoc(proto_dir, out_dir, files):
  """Runs grpc_tools' protoc in a child process.

  In-process protoc is unsafe here: importing grpc_tools' compiler extension
  after TensorFlow has been loaded (as in a full test run) crashes Python.
  """
  result = subprocess.run(
      [sys.executable, '-m', 'grpc_tools.protoc',
       '-I%s=%s' % (_VIRTUAL_DIR, proto_dir), '--python_out=%s' % out_dir]
      + [str(f) for f in files],
      capture_output=True, text=True, check=False)
  assert result.returncode == 0, 'protoc failed: %s' % result.stderr


@pytest.fixture(scope='module')
def fresh_dir(tmp_path_factory):
  """protoc output for the current protos/*.proto, in a temporary root."""
  out = tmp_path_factory.mktemp('fresh_protos')
  _protoc(_PROTO_DIR, out,
          [os.path.join(_PROTO_DIR, n + '.proto') for n in _PROTO_NAMES])
  return os.path.join(str(out), _VIRTUAL_DIR)


@pytest.mark.parametrize('name', _PROTO_NAMES)
def test_generated_module_is_up_to_date(name, fresh_dir):
  # Compares the descriptor bytes protoc embedded in each file: the runtime's
  # DESCRIPTOR.serialized_pb is re-serialized (float defaults are rewritten,
  # e.g. 0.9 -> 0.899999976), so it never equals protoc's bytes.
  generated = os.path.join(_GEN_DIR, name + '_pb2.py')
  assert os.path.exists(generated), '%s is missing: %s' % (generated,
                                                           _STALE_HINT)
  fresh = _serialized_file(os.path.join(fresh_dir, name + '_pb2.py'))
  installed = _serialized_file(generated)
  if installed != fresh:
    pytest.fail('object_detection_note/protos/%s_pb2.py is stale against '
                'protos/%s.proto (differences in %s): %s'
                % (name, name, _changed_types(installed, fresh), _STALE_HINT))


def _changed_types(old_bytes, new_bytes):
  """Names of top-level messages / enums that differ between two files."""
  old = descriptor_pb2.FileDescriptorProto.FromString(old_bytes)
  new = descriptor_pb2.FileDescriptorProto.FromString(new_bytes)
  def by_name(file_proto):
    types = list(file_proto.message_type) + list(file_proto.enum_type)
    return {t.name: t for t in types}
  old_types, new_types = by_name(old), by_name(new)
  changed = sorted(n for n in set(old_types) | set(new_types)
                   if old_types.get(n) != new_types.get(n))
  return changed or ['file options / imports']


def test_staleness_check_notices_a_changed_proto(tmp_path):
  """The comparison above is sensitive to a one-field change."""
  proto_dir = tmp_path / 'protos'
  proto_dir.mkdir()
  source = open(os.path.join(_PROTO_DIR, 'grid_anchor_generator.proto'),
                encoding='utf8').read()
  edited = source.replace('optional int32 octaves = 9 [default = 1];',
                          'optional int32 octaves = 9 [default = 2];')
  assert edited != source
  (proto_dir / 'grid_anchor_generator.proto').write_text(edited)
  _protoc(proto_dir, tmp_path, [proto_dir / 'grid_anchor_generator.proto'])
  changed = _serialized_file(
      str(tmp_path / _VIRTUAL_DIR / 'grid_anchor_generator_pb2.py'))
  current = _serialized_file(
      os.path.join(_GEN_DIR, 'grid_anchor_generator_pb2.py'))
  assert changed != current
  assert descriptor_pb2.FileDescriptorProto.FromString(changed).message_type[
      0].field[-1].default_value == '2'


# An OD API sample config, shaped like
# samples/configs/faster_rcnn_inception_resnet_v2_atrous_coco.config with the
# TF2 (model_main_tf2) fields, plus a NOTE-RCNN block.
_FRCNN_INCEPTION_RESNET_V2_CONFIG = r"""
model {
  faster_rcnn {
    num_classes: 90
    image_resizer {
      keep_aspect_ratio_resizer {
        min_dimension: 600
        max_dimension: 1024
        pad_to_max_dimension: true
      }
    }
    feature_extractor {
      type: 'faster_rcnn_inception_resnet_v2_keras'
      first_stage_features_stride: 16
      batch_norm_trainable: false
    }
    first_stage_anchor_generator {
      grid_anchor_generator {
        scales: [0.25, 0.5, 1.0, 2.0]
        aspect_ratios: [0.5, 1.0, 2.0]
        height_stride: 16
        width_stride: 16
      }
    }
    first_stage_atrous_rate: 1
    first_stage_box_predictor_conv_hyperparams {
      op: CONV
      regularizer {
        l2_regularizer {
          weight: 0.0
        }
      }
      initializer {
        truncated_normal_initializer {
          stddev: 0.01
        }
      }
    }
    first_stage_nms_score_threshold: 0.0
    first_stage_nms_iou_threshold: 0.7
    first_stage_max_proposals: 300
    first_stage_localization_loss_weight: 2.0
    first_stage_objectness_loss_weight: 1.0
    initial_crop_size: 17
    maxpool_kernel_size: 1
    maxpool_stride: 1
    second_stage_box_predictor {
      mask_rcnn_box_predictor {
        use_dropout: false
        dropout_keep_probability: 1.0
        fc_hyperparams {
          op: FC
          regularizer {
            l2_regularizer {
              weight: 0.0
            }
          }
          initializer {
            variance_scaling_initializer {
              factor: 1.0
              uniform: true
              mode: FAN_AVG
            }
          }
        }
      }
    }
    second_stage_post_processing {
      batch_non_max_suppression {
        score_threshold: 0.0
        iou_threshold: 0.6
        max_detections_per_class: 100
        max_total_detections: 100
      }
      score_converter: SOFTMAX
    }
    second_stage_localization_loss_weight: 2.0
    second_stage_classification_loss_weight: 1.0
    second_stage_classification_loss {
      weighted_softmax {
      }
    }
    use_static_shapes: true
    use_matmul_crop_and_resize: true
    clip_anchors_to_image: true
    use_static_balanced_label_sampler: true
    use_matmul_gather_in_matcher: true
  }
}

train_config: {
  batch_size: 1
  optimizer {
    momentum_optimizer: {
      learning_rate: {
        manual_step_learning_rate {
          initial_learning_rate: 0.0003
          schedule {
            step: 900000
            learning_rate: .00003
          }
          schedule {
            step: 1200000
            learning_rate: .000003
          }
        }
      }
      momentum_optimizer_value: 0.9
    }
    use_moving_average: false
  }
  gradient_clipping_by_norm: 10.0
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt"
  from_detection_checkpoint: true
  fine_tune_checkpoint_type: "detection"
  num_steps: 200000
  use_bfloat16: false
  max_number_of_boxes: 100
  unpad_groundtruth_tensors: false
  data_augmentation_options {
    random_horizontal_flip {
    }
  }
}

train_input_reader: {
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/mscoco_train.record-?????-of-00100"
  }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
}

eval_config: {
  metrics_set: "coco_detection_metrics"
  use_moving_averages: false
  num_examples: 8000
  max_evals: 10
}

eval_input_reader: {
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/mscoco_val.record-?????-of-00010"
  }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
  shuffle: false
  num_readers: 1
}

note {
  rpn_cls_a: true
  det_cls_a: true
  distillation {
    weight: 0.5
    iterations: 4
  }
  mining {
    score_threshold: 0.99
    threshold_sweep: [0.5, 0.9, 0.99]
    num_shards: 8
  }
  iterations: 8
  epochs_per_iteration: 20
  initial_epochs: 40
  image_level_input_reader {
    tf_record_input_reader {
      input_path: "data/coco17/image_level-?????-of-00008"
    }
    label_map_path: "data/coco17/target_label_map.pbtxt"
    shuffle: false
  }
  source_detector {
    pipeline_config_path: "configs/coco17_source.config"
  }
}
"""


def _parse(text):
  config = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Merge(text, config)
  return config


def test_od_api_faster_rcnn_config_parses_model():
  frcnn = _parse(_FRCNN_INCEPTION_RESNET_V2_CONFIG).model.faster_rcnn
  assert frcnn.num_classes == 90
  assert frcnn.number_of_stages == 2  # upstream default
  resizer = frcnn.image_resizer.keep_aspect_ratio_resizer
  assert (resizer.min_dimension, resizer.max_dimension) == (600, 1024)
  assert resizer.pad_to_max_dimension
  assert resizer.resize_method == image_resizer_pb2.BILINEAR
  assert frcnn.feature_extractor.type == 'faster_rcnn_inception_resnet_v2_keras'
  assert frcnn.feature_extractor.first_stage_features_stride == 16
  anchors = frcnn.first_stage_anchor_generator.grid_anchor_generator
  assert list(anchors.scales) == [0.25, 0.5, 1.0, 2.0]
  assert list(anchors.aspect_ratios) == [0.5, 1.0, 2.0]
  assert (anchors.height, anchors.width) == (256, 256)  # upstream defaults
  conv = frcnn.first_stage_box_predictor_conv_hyperparams
  assert conv.op == hyperparams_pb2.Hyperparams.CONV
  assert conv.initializer.truncated_normal_initializer.stddev == (
      pytest.approx(0.01))
  assert frcnn.first_stage_box_predictor_kernel_size == 3
  assert frcnn.first_stage_box_predictor_depth == 512
  assert frcnn.first_stage_minibatch_size == 256
  assert frcnn.first_stage_max_proposals == 300
  assert frcnn.first_stage_nms_iou_threshold == pytest.approx(0.7)
  assert frcnn.first_stage_localization_loss_weight == 2.0
  assert frcnn.initial_crop_size == 17
  assert (frcnn.maxpool_kernel_size, frcnn.maxpool_stride) == (1, 1)
  predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
  assert not predictor.use_dropout
  assert predictor.dropout_keep_probability == 1.0
  init = predictor.fc_hyperparams.initializer.variance_scaling_initializer
  assert init.uniform and init.factor == 1.0
  assert init.mode == hyperparams_pb2.VarianceScalingInitializer.FAN_AVG
  assert not predictor.share_box_across_classes
  assert frcnn.second_stage_batch_size == 64
  assert frcnn.second_stage_balance_fraction == pytest.approx(0.25)
  post = frcnn.second_stage_post_processing
  assert post.score_converter == post_processing_pb2.PostProcessing.SOFTMAX
  nms = post.batch_non_max_suppression
  assert nms.iou_threshold == pytest.approx(0.6)
  assert (nms.max_detections_per_class, nms.max_total_detections) == (100, 100)
  assert frcnn.second_stage_classification_loss.WhichOneof(
      'classification_loss') == 'weighted_softmax'
  assert frcnn.use_static_shapes and frcnn.clip_anchors_to_image


def test_od_api_faster_rcnn_config_parses_training_and_inputs():
  config = _parse(_FRCNN_INCEPTION_RESNET_V2_CONFIG)
  train = config.train_config
  assert train.batch_size == 1
  momentum = train.optimizer.momentum_optimizer
  assert momentum.momentum_optimizer_value == pytest.approx(0.9)
  schedule = momentum.learning_rate.manual_step_learning_rate
  assert schedule.initial_learning_rate == pytest.approx(3e-4)
  assert [s.step for s in schedule.schedule] == [900000, 1200000]
  assert schedule.schedule[0].learning_rate == pytest.approx(3e-5)
  assert not train.optimizer.use_moving_average
  assert train.gradient_clipping_by_norm == 10.0
  assert train.fine_tune_checkpoint_type == 'detection'
  assert train.num_steps == 200000
  steps = [s.WhichOneof('preprocessing_step')
           for s in train.data_augmentation_options]
  assert steps == ['random_horizontal_flip']
  flip = train.data_augmentation_options[0].random_horizontal_flip
  assert flip.probability == pytest.approx(0.5)
  reader = config.train_input_reader
  assert reader.WhichOneof('input_reader') == 'tf_record_input_reader'
  assert list(reader.tf_record_input_reader.input_path) == [
      'PATH_TO_BE_CONFIGURED/mscoco_train.record-?????-of-00100']
  assert reader.shuffle and reader.num_readers == 64  # upstream defaults
  assert reader.max_number_of_boxes == 100
  assert list(config.eval_config.metrics_set) == ['coco_detection_metrics']
  assert config.eval_config.num_examples == 8000
  assert len(config.eval_input_reader) == 1
  assert not config.eval_input_reader[0].shuffle
  assert config.eval_input_reader[0].num_readers == 1


def test_note_block_parses_with_documented_defaults():
  note = _parse(_FRCNN_INCEPTION_RESNET_V2_CONFIG).note
  assert note.rpn_cls_a and note.det_cls_a
  assert note.mask_mined_background  # default
  assert note.HasField('distillation')
  assert note.distillation.weight == pytest.approx(0.5)
  assert note.distillation.iterations == 4
  assert note.mining.score_threshold == pytest.approx(0.99)
  assert list(note.mining.threshold_sweep) == pytest.approx([0.5, 0.9, 0.99])
  assert note.mining.num_shards == 8
  assert note.mining.batch_size == 1  # default
  assert note.mining.match_iou_threshold == pytest.approx(0.5)  # default
  assert note.mining.export_review == 0  # default
  assert (note.iterations, note.epochs_per_iteration) == (8, 20)
  assert note.HasField('initial_epochs') and note.initial_epochs == 40
  image_level = note.image_level_input_reader
  assert list(image_level.tf_record_input_reader.input_path) == [
      'data/coco17/image_level-?????-of-00008']
  assert image_level.label_map_path == 'data/coco17/target_label_map.pbtxt'
  assert note.source_detector.pipeline_config_path == (
      'configs/coco17_source.config')
  assert not note.source_detector.checkpoint_dir


def test_empty_note_block_means_paper_defaults():
  note = _parse('note {}').note
  assert note.rpn_cls_a and note.det_cls_a and note.mask_mined_background
  assert not note.HasField('distillation')
  assert note.distillation.weight == 1.0 and note.distillation.iterations == 0
  assert not note.HasField('mining')
  assert note.mining.score_threshold == pytest.approx(0.99)
  assert note.mining.num_shards == 4
  assert note.iterations == 8
  assert note.epochs_per_iteration == 20
  assert not note.HasField('initial_epochs')


def test_config_without_note_block_has_no_note():
  config = _parse('model { faster_rcnn { num_classes: 3 } }')
  assert not config.HasField('note')
  assert config.model.WhichOneof('model') == 'faster_rcnn'


def test_upstream_field_numbers_are_kept():
  """Binary (not only text) compatibility with OD API messages."""
  pipeline = pipeline_pb2.TrainEvalPipelineConfig.DESCRIPTOR
  assert {f.name: f.number for f in pipeline.fields} == {
      'model': 1, 'train_config': 2, 'train_input_reader': 3,
      'eval_config': 4, 'eval_input_reader': 5, 'note': 50}
  frcnn = pipeline.fields_by_name['model'].message_type.fields_by_name[
      'faster_rcnn'].message_type
  numbers = {f.name: f.number for f in frcnn.fields}
  assert numbers['num_classes'] == 3
  assert numbers['first_stage_max_proposals'] == 15
  assert numbers['second_stage_box_predictor'] == 21
  assert numbers['second_stage_classification_loss'] == 29
  assert numbers['use_static_shapes'] == 35
  assert numbers['output_final_box_rpn_features'] == 43
  reader = pipeline.fields_by_name['train_input_reader'].message_type
  numbers = {f.name: f.number for f in reader.fields}
  assert numbers['label_map_path'] == 1
  assert numbers['tf_record_input_reader'] == 8
  assert numbers['sample_1_of_n_examples'] == 22
  assert numbers['max_number_of_boxes'] == 21
  train = pipeline.fields_by_name['train_config'].message_type
  numbers = {f.name: f.number for f in train.fields}
  assert numbers['fine_tune_checkpoint_type'] == 22
  assert numbers['use_bfloat16'] == 26


def test_unknown_field_is_rejected_with_its_line():
  with pytest.raises(text_format.ParseError, match=r'^3:'):
    _parse('model {\n  faster_rcnn {\n    no_such_field: 1\n  }\n}\n')
