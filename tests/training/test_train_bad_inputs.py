"""Training on bad inputs: stops naming file/record/field, or (with
train_input_reader.skip_bad_records) skips, counts and writes
skipped_records.json; configs that would train wrongly never start; a
killed run's temporaries are removed."""
import glob
import json
import os
import re

import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.core import cli_errors
from object_detection_note.config import config_util
from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.records import record_errors
from object_detection_note.evaluation import eval_loop
from object_detection_note.training import train_loop


def _records(data_dir, count):
  shard = sorted(glob.glob(os.path.join(data_dir, 'source_train.tfrecord-*')))[0]
  records = []
  for _, serialized in record_errors.iterate_file_records(shard):
    records.append(serialized)
  assert len(records) >= count
  return records[:count]


def _with_feature(serialized, key, feature):
  example = tf.train.Example.FromString(serialized)
  example.features.feature[key].CopyFrom(feature)
  return example.SerializeToString()


def _bad_shard(tmp_path, data_dir):
  """good, corrupt JPEG/PNG, good, zero-area box, good, good."""
  good = _records(data_dir, 4)
  example = tf.train.Example.FromString(good[0])
  image = example.features.feature[F.image_encoded].bytes_list.value[0]
  corrupt = _with_feature(good[1], F.image_encoded, tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[image[:len(image) // 3]])))
  zero_area = good[2]
  for key, value in ((F.object_bbox_ymin, 0.5), (F.object_bbox_ymax, 0.5)):
    count = len(tf.train.Example.FromString(zero_area).features.feature[
        key].float_list.value)
    zero_area = _with_feature(zero_area, key, tf.train.Feature(
        float_list=tf.train.FloatList(value=[value] * count)))
  path = str(tmp_path / 'bad_train.tfrecord-00000-of-00001')
  with tf.io.TFRecordWriter(path) as writer:
    for serialized in (good[0], corrupt, good[1], zero_area, good[2],
                       good[3]):
      writer.write(serialized)
  return path


def _config(tmp_path, data_dir, shard, skip, **kwargs):
  text = utils.pipeline_text(data_dir, shuffle=False, flip=False, **kwargs)
  text = text.replace(os.path.join(data_dir, 'source_train.tfrecord-*'),
                      shard)
  if skip:
    text = text.replace('train_input_reader {',
                        'train_input_reader {\n  skip_bad_records: true', 1)
  path = tmp_path / 'pipeline.config'
  path.write_text(text)
  return str(path)


def test_bad_record_stops_training_naming_it(tmp_path, tiny_data_dir):
  shard = _bad_shard(tmp_path, tiny_data_dir)
  config = _config(tmp_path, tiny_data_dir, shard, skip=False)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    train_loop.train_loop(config, str(tmp_path / 'model'), num_train_steps=3,
                          record_summaries=False)
  message = str(error.value)
  assert 'bad record in %s: record #1' % shard in message
  assert record_errors.ENCODED_UNDECODABLE in message
  # What the binaries print: the located line, unwrapped from tf.data's error.
  [(_, record)] = [r for r in record_errors.iterate_file_records(shard)
                   if r[0] == 1]
  source_id = tf.train.Example.FromString(record).features.feature[
      F.source_id].bytes_list.value[0].decode()
  assert cli_errors.user_message(error.value) == '%s (%s)' % (
      record_errors.locate(shard, 1, source_id,
                           record_errors.ENCODED_UNDECODABLE),
      record_errors.SKIP_HINT)


def test_skip_bad_records_trains_and_reports(tmp_path, tiny_data_dir):
  shard = _bad_shard(tmp_path, tiny_data_dir)
  config = _config(tmp_path, tiny_data_dir, shard, skip=True)
  model_dir = str(tmp_path / 'model')
  # What a killed earlier run left behind; this run removes it.
  os.makedirs(os.path.join(model_dir, 'ckpt-9_temp'))
  stale = os.path.join(model_dir, 'pipeline.config.tmp-' + 'f' * 32)
  open(stale, 'w').write('half')
  result = train_loop.train_loop(config, model_dir, num_train_steps=3,
                                 record_summaries=False)
  assert result['step'] == 3
  assert not os.path.exists(stale)
  assert not os.path.exists(os.path.join(model_dir, 'ckpt-9_temp'))
  with open(os.path.join(model_dir, K.report_file)) as f:
    report = json.load(f)
  assert report[K.count] == 2
  assert [(e[K.file], e[K.record], e[K.problem]) for e in report[K.first]] == [
      (shard, 1, record_errors.ENCODED_UNDECODABLE),
      (shard, 3, record_errors.BOX_ZERO_AREA)]
  assert report[K.first][0][K.source_id]


@pytest.mark.parametrize('kwargs, field', [
    ({'learning_rate': '0'}, 'constant_learning_rate.learning_rate'),
    ({'learning_rate': '-0.001'}, 'constant_learning_rate.learning_rate'),
    ({'num_classes': 3}, 'model.faster_rcnn.num_classes'),
])
def test_config_that_would_train_wrongly_never_starts(tmp_path, tiny_data_dir,
                                                      kwargs, field):
  config = utils.write_pipeline(tmp_path / 'p.config', tiny_data_dir,
                                **kwargs)
  model_dir = tmp_path / 'model'
  with pytest.raises(config_util.ConfigError) as error:
    train_loop.train_loop(config, str(model_dir), num_train_steps=2,
                          record_summaries=False)
  # <file>:<line>:<column> where the file writes the field.
  match = re.match(r'%s:(\d+):(\d+): field (\S+) ' % re.escape(config),
                   str(error.value))
  assert match, str(error.value)
  assert match.group(3).endswith(field)
  line, column = int(match.group(1)), int(match.group(2))
  with open(config) as f:
    written = f.read().splitlines()[line - 1][column - 1:]
  assert written.startswith(field.rsplit('.', 1)[-1] + ':')
  assert not model_dir.exists() or not tf.train.latest_checkpoint(
      str(model_dir))


def _eval_config(tmp_path, data_dir, shard, skip):
  text = utils.pipeline_text(data_dir, shuffle=False, flip=False)
  text = text.replace(os.path.join(data_dir, 'source_val.tfrecord-*'), shard)
  if skip:
    text = text.replace('eval_input_reader {',
                        'eval_input_reader {\n  skip_bad_records: true', 1)
  path = tmp_path / 'eval.config'
  path.write_text(text)
  return str(path)


def test_evaluation_stops_or_skips_and_reports(tmp_path, tiny_data_dir):
  shard = _bad_shard(tmp_path, tiny_data_dir)
  model_dir = str(tmp_path / 'model')
  train_loop.train_loop(utils.write_pipeline(tmp_path / 'train.config',
                                             tiny_data_dir),
                        model_dir, num_train_steps=1, record_summaries=False)
  strict = _eval_config(tmp_path, tiny_data_dir, shard, skip=False)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='bad record in %s: record #1' % shard):
    eval_loop.evaluate_checkpoints(strict, model_dir, model_dir, timeout=0)
  metrics = eval_loop.evaluate_checkpoints(
      _eval_config(tmp_path, tiny_data_dir, shard, skip=True), model_dir,
      model_dir, timeout=0)
  assert metrics['num_images'] == 4
  assert metrics[K.skipped_records] == 2
  with open(os.path.join(model_dir, 'eval', K.report_file)) as f:
    report = json.load(f)
  assert [e[K.record] for e in report[K.first]] == [1, 3]
