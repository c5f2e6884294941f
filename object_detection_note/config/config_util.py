"""Reading, overriding, validating and writing pipeline configs.

The API follows the OD API's ``object_detection.utils.config_util``:
``get_configs_from_pipeline_file`` returns a dict of the pipeline's parts
(``model``, ``train_config``, ``train_input_config``, ``eval_config``,
``eval_input_configs``, ``eval_input_config``, ``note``) and
``create_pipeline_proto_from_configs`` turns such a dict back into a
``TrainEvalPipelineConfig``.

Every problem raises ``ConfigError`` whose message starts with
``<file>:<line>:<column>`` (when the text has a position) and names the field,
e.g. ``configs/x.config:12:5: unknown field "batch_sise" in TrainConfig (did
you mean "batch_size"?)``.
"""
import difflib
import os
import re

from google.protobuf import text_format
import tensorflow as tf

from object_detection_note.config import config_positions
from object_detection_note.config import field_policy
from object_detection_note.config.errors import ConfigError
from object_detection_note.core import file_io
from object_detection_note.protos import pipeline_pb2


_UNKNOWN_FIELD = re.compile(
    r'Message type "(?P<type>[\w.]+)" has no field named "(?P<field>[^"]+)"')


def _message_descriptor(full_name):
  pool = pipeline_pb2.DESCRIPTOR.pool
  try:
    return pool.FindMessageTypeByName(full_name)
  except KeyError:
    return None


def _describe_parse_error(path, error):
  """Turns a text_format.ParseError into a readable one-line message."""
  text = str(error)
  location = '%s:%s:%s' % (path, error.GetLine(), error.GetColumn())
  detail = re.sub(r'^\d+:\d+\s*:\s*', '', text)
  match = _UNKNOWN_FIELD.search(detail)
  if match:
    type_name, field = match.group('type'), match.group('field')
    descriptor = _message_descriptor(type_name)
    short_type = type_name.rsplit('.', 1)[-1]
    hint = ''
    if descriptor is not None:
      close = difflib.get_close_matches(
          field, [f.name for f in descriptor.fields], n=1)
      if close:
        hint = ' (did you mean "%s"?)' % close[0]
    return '%s: unknown field "%s" in %s%s' % (location, field, short_type,
                                              hint)
  return '%s: %s' % (location, detail)


def parse_pipeline_text(text, path='<string>'):
  """Parses pipeline config text; raises ConfigError naming path/line/field."""
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  try:
    text_format.Merge(text, pipeline)
  except text_format.ParseError as error:
    raise ConfigError(_describe_parse_error(path, error)) from None
  return pipeline


def read_pipeline_config(path, config_override=None):
  """Reads ``path`` (any tf.io.gfile path) into a TrainEvalPipelineConfig.

  Args:
    path: pipeline config text proto.
    config_override: optional text proto merged on top (later fields win,
      repeated fields are appended, as ``text_format.Merge`` does).
  """
  if not tf.io.gfile.exists(path):
    raise ConfigError('%s: pipeline config file not found' % path)
  with tf.io.gfile.GFile(path, 'r') as f:
    pipeline = parse_pipeline_text(f.read(), path)
  if config_override:
    pipeline.MergeFrom(parse_pipeline_text(config_override,
                                           '%s (override)' % path))
  return pipeline


def get_configs_from_pipeline_file(pipeline_config_path, config_override=None):
  """Reads and validates a pipeline config; returns its parts as a dict.

  Every field the config sets must be honoured (``field_policy``): others
  raise ConfigError naming file, line and field, or warn when on the
  documented no-effect list.
  """
  pipeline = read_pipeline_config(pipeline_config_path, config_override)
  validate_pipeline(pipeline, pipeline_config_path)
  field_policy.check_pipeline_fields(pipeline, pipeline_config_path)
  field_policy.apply_train_max_number_of_boxes(pipeline)
  return create_configs_from_pipeline_proto(pipeline)


def create_configs_from_pipeline_proto(pipeline):
  """TrainEvalPipelineConfig → dict of its parts (OD API keys + ``note``)."""
  eval_inputs = list(pipeline.eval_input_reader)
  return {
      'model': pipeline.model,
      'train_config': pipeline.train_config,
      'train_input_config': pipeline.train_input_reader,
      'eval_config': pipeline.eval_config,
      'eval_input_configs': eval_inputs,
      'eval_input_config': eval_inputs[0] if eval_inputs else None,
      'note': pipeline.note if pipeline.HasField('note') else None,
  }


def create_pipeline_proto_from_configs(configs):
  """Inverse of ``create_configs_from_pipeline_proto``."""
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  pipeline.model.CopyFrom(configs['model'])
  pipeline.train_config.CopyFrom(configs['train_config'])
  pipeline.train_input_reader.CopyFrom(configs['train_input_config'])
  pipeline.eval_config.CopyFrom(configs['eval_config'])
  pipeline.eval_input_reader.extend(configs['eval_input_configs'])
  if configs.get('note') is not None:
    pipeline.note.CopyFrom(configs['note'])
  return pipeline


def pipeline_to_text(pipeline):
  return text_format.MessageToString(pipeline)


def save_pipeline_config(pipeline, directory, filename='pipeline.config'):
  """Writes ``<directory>/pipeline.config`` atomically; returns its path."""
  path = os.path.join(directory, filename)
  file_io.write_atomically(path, pipeline_to_text(pipeline))
  return path


def validate_pipeline(pipeline, path='<pipeline>'):
  """Checks what the parser cannot: required blocks and sane values.

  Raises ConfigError naming ``path:line:column`` (where the file writes the
  field, or its closest enclosing block) and the dotted field.
  """
  def fail(field, problem):
    raise ConfigError('%s: field %s %s' % (config_positions.where(path, field),
                                           field, problem))

  if not pipeline.HasField('model'):
    fail('model', 'is required')
  if pipeline.model.WhichOneof('model') != 'faster_rcnn':
    fail('model', 'must be a faster_rcnn block')
  frcnn = pipeline.model.faster_rcnn
  if frcnn.num_classes <= 0:
    fail('model.faster_rcnn.num_classes', 'must be > 0, got %d' %
         frcnn.num_classes)
  if not frcnn.feature_extractor.type:
    fail('model.faster_rcnn.feature_extractor.type', 'is required')
  if pipeline.train_config.batch_size <= 0:
    fail('train_config.batch_size', 'must be > 0')
  readers = [('train_input_reader', pipeline.train_input_reader)]
  readers += [('eval_input_reader[%d]' % i, r)
              for i, r in enumerate(pipeline.eval_input_reader)]
  if pipeline.HasField('note'):
    note = pipeline.note
    if note.HasField('image_level_input_reader'):
      readers.append(('note.image_level_input_reader',
                      note.image_level_input_reader))
    if note.HasField('mining') and not 0.0 <= note.mining.score_threshold < 1:
      fail('note.mining.score_threshold', 'must be in [0, 1), got %g' %
           note.mining.score_threshold)
    if note.iterations < 0:
      fail('note.iterations', 'must be >= 0')
  for name, reader in readers:
    if reader.WhichOneof('input_reader') is None and reader.ByteSize():
      fail(name + '.tf_record_input_reader', 'is required')


def missing_input_paths(input_reader):
  """Returns the input_path globs and label_map_path of a reader that match nothing."""
  missing = []
  for pattern in input_reader.tf_record_input_reader.input_path:
    if not tf.io.gfile.glob(pattern):
      missing.append(pattern)
  if input_reader.label_map_path and not tf.io.gfile.exists(
      input_reader.label_map_path):
    missing.append(input_reader.label_map_path)
  return missing


def check_input_paths(input_reader, path, field, how_to_make=None):
  """Raises ConfigError naming the file and field if the reader's data is missing.

  Args:
    input_reader: InputReader proto.
    path: pipeline config path, for the message.
    field: dotted name of the reader in the pipeline, for the message.
    how_to_make: optional command that creates the data, appended as advice.
  """
  if not input_reader.tf_record_input_reader.input_path:
    field += '.tf_record_input_reader.input_path'
    raise ConfigError('%s: field %s is required' % (
        config_positions.where(path, field), field))
  missing = missing_input_paths(input_reader)
  if missing:
    advice = '; create it with: %s' % how_to_make if how_to_make else ''
    where = config_positions.where(
        path, field + '.tf_record_input_reader.input_path')
    raise ConfigError('%s: field %s: no file matches %s%s' %
                      (where, field, ', '.join(missing), advice))
