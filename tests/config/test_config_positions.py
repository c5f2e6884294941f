"""Config errors carry <file>:<line>:<column> of the field they name."""
import pytest

from object_detection_note.config import config_checks
from object_detection_note.config import config_positions
from object_detection_note.config import config_util

_TEXT = '''model {
  faster_rcnn {
    num_classes: 0
    feature_extractor { type: "faster_rcnn_tiny_keras" }
  }
}
eval_input_reader {
  label_map_path: "a.pbtxt"
}
eval_input_reader: {
  label_map_path: "b.pbtxt"
  tf_record_input_reader { input_path: ["x-*", "y-*"] }
}
'''


@pytest.mark.parametrize('field, position', [
    ('model.faster_rcnn.num_classes', (3, 5)),
    ('model.faster_rcnn.feature_extractor.type', (4, 25)),
    ('eval_input_reader[0].label_map_path', (8, 3)),
    ('eval_input_reader.label_map_path', (8, 3)),
    ('eval_input_reader[1].label_map_path', (11, 3)),
    ('eval_input_reader[1].tf_record_input_reader.input_path', (12, 28)),
    # Not written: the closest enclosing block that is.
    ('model.faster_rcnn.image_resizer', (2, 3)),
    ('train_config.batch_size', None),
])
def test_locate(field, position):
  assert config_positions.locate(_TEXT, field) == position


def test_validation_error_names_line_and_column(tmp_path):
  path = tmp_path / 'p.config'
  path.write_text(_TEXT)
  with pytest.raises(config_util.ConfigError) as error:
    config_util.validate_pipeline(config_util.parse_pipeline_text(_TEXT),
                                  str(path))
  assert str(error.value) == (
      '%s:3:5: field model.faster_rcnn.num_classes must be > 0, got 0' % path)


def test_config_check_error_names_line_and_column(tmp_path):
  text = _TEXT.replace('num_classes: 0', 'num_classes: 2') + '''
train_config {
  optimizer {
    adam_optimizer {
      learning_rate { constant_learning_rate { learning_rate: -1.0 } }
    }
  }
}'''
  path = tmp_path / 'p.config'
  path.write_text(text)
  with pytest.raises(config_util.ConfigError) as error:
    config_checks.check_learning_rate(config_util.parse_pipeline_text(text),
                                      str(path), config_util.ConfigError)
  assert str(error.value).startswith(
      '%s:18:48: field train_config.optimizer.adam_optimizer.learning_rate.'
      'constant_learning_rate.learning_rate must be > 0' % path)


def test_unreadable_file_gives_the_bare_path(tmp_path):
  assert config_positions.where(str(tmp_path / 'none.config'),
                                'model') == str(tmp_path / 'none.config')
