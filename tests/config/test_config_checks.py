"""Config values that parse but would train wrongly are errors naming the
file and the field: num_classes vs the label map, learning rates <= 0,
inconsistent schedules."""
import glob
import os

import pytest
from google.protobuf import text_format

from object_detection_note.config import config_checks
from object_detection_note.config import config_util
from object_detection_note.data.records import label_map_util
from object_detection_note.protos import pipeline_pb2

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

_PIPELINE = """model { faster_rcnn {
  num_classes: %(num_classes)d
  image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
  feature_extractor { type: "faster_rcnn_tiny_keras" } } }
train_config { batch_size: 2 optimizer { momentum_optimizer {
  learning_rate { %(learning_rate)s } } } }
train_input_reader {
  label_map_path: "%(label_map)s"
  tf_record_input_reader { input_path: "x-*" } }
eval_input_reader {
  label_map_path: "%(eval_label_map)s"
  tf_record_input_reader { input_path: "y-*" } }
"""
_CONSTANT = 'constant_learning_rate { learning_rate: 0.001 }'


def _pipeline(tmp_path, num_classes=3, learning_rate=_CONSTANT,
              label_map_classes=3, eval_label_map=None):
  label_map = str(tmp_path / 'labels.pbtxt')
  label_map_util.write_label_map(label_map,
                                 ['c%d' % i for i in range(label_map_classes)])
  text = _PIPELINE % dict(num_classes=num_classes, learning_rate=learning_rate,
                          label_map=label_map,
                          eval_label_map=eval_label_map or label_map)
  return text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())


def _check(pipeline):
  config_checks.check_pipeline(pipeline, 'p.config', config_util.ConfigError)


def test_consistent_config_passes(tmp_path):
  _check(_pipeline(tmp_path))


def test_num_classes_must_equal_the_largest_label_map_id(tmp_path):
  with pytest.raises(config_util.ConfigError) as error:
    _check(_pipeline(tmp_path, num_classes=3, label_map_classes=5))
  message = str(error.value)
  assert message.startswith('p.config: field model.faster_rcnn.num_classes '
                            'is 3 but train_input_reader.label_map_path ')
  assert 'has 5 classes with largest id 5' in message
  with pytest.raises(config_util.ConfigError, match='is 6 but'):
    _check(_pipeline(tmp_path, num_classes=6, label_map_classes=5))


def test_eval_label_map_is_checked_and_missing_ones_are_not(tmp_path):
  other = str(tmp_path / 'other.pbtxt')
  label_map_util.write_label_map(other, ['a', 'b'])
  with pytest.raises(config_util.ConfigError,
                     match=r'eval_input_reader\[0\].label_map_path'):
    _check(_pipeline(tmp_path, eval_label_map=other))
  _check(_pipeline(tmp_path, eval_label_map=str(tmp_path / 'not_yet.pbtxt')))
  pipeline = _pipeline(tmp_path)
  pipeline.note.image_level_input_reader.label_map_path = other
  with pytest.raises(config_util.ConfigError,
                     match=r'note.image_level_input_reader.label_map_path'):
    _check(pipeline)


_RATE = 'train_config.optimizer.momentum_optimizer.learning_rate.'


@pytest.mark.parametrize('learning_rate, field, problem', [
    ('constant_learning_rate { learning_rate: 0 }',
     'constant_learning_rate.learning_rate', 'must be > 0, got 0'),
    ('constant_learning_rate { learning_rate: -0.01 }',
     'constant_learning_rate.learning_rate', 'must be > 0, got -0.01'),
    ('exponential_decay_learning_rate { initial_learning_rate: -1 }',
     'exponential_decay_learning_rate.initial_learning_rate', 'must be > 0'),
    ('exponential_decay_learning_rate { decay_factor: 0 }',
     'exponential_decay_learning_rate.decay_factor', 'must be > 0'),
    ('exponential_decay_learning_rate { initial_learning_rate: 0.01 '
     'min_learning_rate: 0.1 }',
     'exponential_decay_learning_rate.min_learning_rate',
     'must be in [0, initial_learning_rate'),
    ('manual_step_learning_rate { schedule { step: 10 learning_rate: 0.01 } '
     'schedule { step: 20 learning_rate: 0 } }',
     'manual_step_learning_rate.schedule[1].learning_rate', 'must be > 0'),
    ('manual_step_learning_rate { schedule { step: 20 learning_rate: 0.01 } '
     'schedule { step: 10 learning_rate: 0.001 } }',
     'manual_step_learning_rate.schedule[1].step', 'must be > 20'),
    ('manual_step_learning_rate { warmup: true }',
     'manual_step_learning_rate.warmup', 'needs at least one schedule entry'),
    ('cosine_decay_learning_rate { learning_rate_base: 0.01 total_steps: 100 '
     'warmup_steps: 80 hold_base_rate_steps: 30 }',
     'cosine_decay_learning_rate.total_steps',
     'is 100, less than warmup_steps 80 + hold_base_rate_steps 30'),
    ('cosine_decay_learning_rate { learning_rate_base: 0.01 total_steps: 100 '
     'warmup_steps: 10 warmup_learning_rate: 0.1 }',
     'cosine_decay_learning_rate.warmup_learning_rate',
     'must be in [0, learning_rate_base'),
    ('', '', 'is required'),
])
def test_learning_rate_problems_name_the_field(tmp_path, learning_rate, field,
                                               problem):
  with pytest.raises(config_util.ConfigError) as error:
    _check(_pipeline(tmp_path, learning_rate=learning_rate))
  message = str(error.value)
  assert message.startswith('p.config: field ' + (_RATE + field).rstrip('.'))
  assert problem in message


def test_bundled_configs_pass_the_learning_rate_checks():
  paths = sorted(glob.glob(os.path.join(_ROOT, 'configs', '**', '*.config'),
                           recursive=True))
  assert paths
  for path in paths:
    pipeline = config_util.read_pipeline_config(path)
    config_checks.check_learning_rate(pipeline, path, config_util.ConfigError)
