"""Pipeline config loading: clear errors naming file, line and field."""
import pytest

from object_detection_note.config import config_util
from object_detection_note.protos import pipeline_pb2

_VALID = """model {
  faster_rcnn {
    num_classes: 5
    image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
    feature_extractor { type: "faster_rcnn_tiny_keras" }
  }
}
train_config {
  batch_size: 2
  num_steps: 10
}
train_input_reader {
  label_map_path: "%(dir)s/labels.pbtxt"
  tf_record_input_reader { input_path: "%(dir)s/seed.tfrecord-*" }
}
eval_input_reader {
  tf_record_input_reader { input_path: "%(dir)s/val.tfrecord-*" }
}
note {
  mining { score_threshold: 0.9 }
  iterations: 3
}
"""


def _write(tmp_path, text, name='pipeline.config'):
  path = tmp_path / name
  path.write_text(text % {'dir': tmp_path} if '%(dir)s' in text else text)
  return str(path)


def test_reads_parts_like_the_od_api(tmp_path):
  configs = config_util.get_configs_from_pipeline_file(
      _write(tmp_path, _VALID))
  assert configs['model'].faster_rcnn.num_classes == 5
  assert configs['train_config'].batch_size == 2
  assert configs['eval_input_config'] is configs['eval_input_configs'][0]
  assert configs['note'].iterations == 3
  assert configs['note'].mining.score_threshold == pytest.approx(0.9)
  round_trip = config_util.create_pipeline_proto_from_configs(configs)
  assert isinstance(round_trip, pipeline_pb2.TrainEvalPipelineConfig)
  assert round_trip.note.iterations == 3


def test_misspelled_field_names_file_line_field_and_suggestion(tmp_path):
  path = _write(tmp_path, _VALID.replace('batch_size: 2', 'batch_sise: 2'))
  with pytest.raises(config_util.ConfigError) as error:
    config_util.get_configs_from_pipeline_file(path)
  message = str(error.value)
  assert message.startswith('%s:9:' % path)
  assert 'unknown field "batch_sise" in TrainConfig' in message
  assert 'did you mean "batch_size"' in message


def test_wrong_type_names_file_and_line(tmp_path):
  path = _write(tmp_path, _VALID.replace('num_steps: 10', 'num_steps: ten'))
  with pytest.raises(config_util.ConfigError) as error:
    config_util.get_configs_from_pipeline_file(path)
  assert str(error.value).startswith('%s:10:' % path)
  assert 'ten' in str(error.value)


def test_semantic_errors_name_the_field(tmp_path):
  path = _write(tmp_path, _VALID.replace('num_classes: 5', 'num_classes: 0'))
  with pytest.raises(config_util.ConfigError,
                     match='model.faster_rcnn.num_classes'):
    config_util.get_configs_from_pipeline_file(path)
  path = _write(tmp_path, _VALID.replace('score_threshold: 0.9',
                                         'score_threshold: 1.5'))
  with pytest.raises(config_util.ConfigError,
                     match='note.mining.score_threshold'):
    config_util.get_configs_from_pipeline_file(path)


def test_missing_file_and_missing_data_are_named(tmp_path):
  with pytest.raises(config_util.ConfigError, match='not found'):
    config_util.get_configs_from_pipeline_file(str(tmp_path / 'nope.config'))
  path = _write(tmp_path, _VALID)
  configs = config_util.get_configs_from_pipeline_file(path)
  with pytest.raises(config_util.ConfigError) as error:
    config_util.check_input_paths(configs['train_input_config'], path,
                                  'train_input_reader', how_to_make='make data')
  message = str(error.value)
  assert 'train_input_reader' in message and 'seed.tfrecord-*' in message
  assert 'make data' in message


def test_override_and_atomic_save(tmp_path):
  path = _write(tmp_path, _VALID)
  configs = config_util.get_configs_from_pipeline_file(
      path, config_override='train_config { num_steps: 99 }')
  assert configs['train_config'].num_steps == 99
  saved = config_util.save_pipeline_config(
      config_util.create_pipeline_proto_from_configs(configs),
      str(tmp_path / 'out'))
  again = config_util.get_configs_from_pipeline_file(saved)
  assert again['train_config'].num_steps == 99
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
      'pipeline.config']


def test_gfile_paths_work():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.gfile.GFile('ram://config_test/p.config', 'w') as f:
    f.write(_VALID % {'dir': 'ram://config_test'})
  configs = config_util.get_configs_from_pipeline_file(
      'ram://config_test/p.config')
  assert configs['model'].faster_rcnn.num_classes == 5
