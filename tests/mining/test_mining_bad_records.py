"""Mining validates every image-level record: a bad one stops the job naming
file, record and field, or (skip_bad_records) is skipped and counted in
mining_metrics.json; a killed run's temporaries are removed by the next."""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core import cli_errors
from object_detection_note.core import stale_files
from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.mining import record_validation

sys.path.insert(0, os.path.dirname(__file__))
SPEC = mining_pipeline.DetectorSpec('fake_detector:make_detector')
_ID_TO_NAME = {1: 'bright', 2: 'dark'}


def _serialized(source_id, image_labels=(1,), image_bytes=None):
  pixels = np.full((16, 16, 3), 128, np.uint8)
  pixels[:8, :8] = 250
  record = codec.DetectionRecord(
      image_bytes=(codec.encode_image(pixels, 'png') if image_bytes is None
                   else image_bytes),
      source_id=source_id, height=16, width=16, image_format='png',
      image_labels=list(image_labels))
  return codec.serialize_record(record)


def _without_image(serialized):
  example = tf.train.Example.FromString(serialized)
  del example.features.feature[F.image_encoded]
  return example.SerializeToString()


_PNG = codec.encode_image(np.zeros((16, 16, 3), np.uint8), 'png')
# Per file: good, good, <bad>, good.
_BAD = {
    'a-corrupt': (_serialized('bad-a', image_bytes=_PNG[:40]),
                  record_errors.ENCODED_UNDECODABLE),
    'b-empty': (_serialized('bad-b', image_bytes=b''),
                record_errors.ENCODED_MISSING),
    'c-nokey': (_without_image(_serialized('bad-c')),
                record_errors.ENCODED_MISSING),
    'd-label999': (_serialized('bad-d', image_labels=[1, 999]),
                   record_errors.IMAGE_LABEL_UNKNOWN % 999),
    'e-label0': (_serialized('bad-e', image_labels=[0]),
                 record_errors.IMAGE_LABEL_UNKNOWN % 0),
}


def _write(path, serialized_records):
  with tf.io.TFRecordWriter(path) as writer:
    for serialized in serialized_records:
      writer.write(serialized)
  return path


def _input(tmp_path, names):
  paths = []
  for name in names:
    bad, _ = _BAD[name]
    paths.append(_write(str(tmp_path / ('%s.tfrecord' % name)), [
        _serialized(name + '-0'), _serialized(name + '-1'), bad,
        _serialized(name + '-3')]))
  return paths


def _mine(tmp_path, pattern, skip, out='out'):
  return mining_pipeline.run_mining(
      mining_spec.MiningSpec(_ID_TO_NAME, 0.9, num_shards=2, batch_size=4,
                             skip_bad_records=skip),
      pattern, str(tmp_path / out), SPEC,
      pipeline_options=beam_io.pipeline_options([]))


@pytest.fixture(autouse=True)
def _fake_detector_importable(monkeypatch):
  monkeypatch.setenv('PYTHONPATH', os.path.dirname(__file__) + os.pathsep +
                     os.environ.get('PYTHONPATH', ''))


def test_skip_bad_records_mines_the_good_ones_and_reports(tmp_path):
  paths = _input(tmp_path, sorted(_BAD))
  truncated = _write(str(tmp_path / 'f-cut.tfrecord'),
                     [_serialized('f-cut-%d' % i) for i in range(4)])
  data = open(truncated, 'rb').read()
  open(truncated, 'wb').write(data[:-30])
  metrics = _mine(tmp_path, str(tmp_path / '*.tfrecord'), skip=True)
  # 3 good images per bad-record file + 3 readable ones of the cut file.
  assert metrics['images'] == 3 * len(_BAD) + 3
  report = metrics[K.skipped_records]
  assert report[K.count] == len(_BAD) + 1
  expected = [(p, 2, _BAD[n][1]) for p, n in zip(paths, sorted(_BAD))]
  assert [(e[K.file], e[K.record], e[K.problem])
          for e in report[K.first]][:len(_BAD)] == expected
  last = report[K.first][len(_BAD)]
  assert (last[K.file], last[K.record]) == (truncated, 3)
  assert 'truncated or corrupt' in last[K.problem]
  assert report[K.first][0][K.source_id] == 'bad-a'
  assert sum(report[K.by_problem].values()) == len(_BAD) + 1


@pytest.mark.parametrize('name', ['a-corrupt', 'c-nokey', 'd-label999'])
def test_bad_record_stops_mining_naming_it(tmp_path, name):
  [path] = _input(tmp_path, [name])
  with pytest.raises(Exception) as error:
    _mine(tmp_path, path, skip=False)
  message = str(error.value)
  assert 'bad record in %s: record #2' % path in message
  assert _BAD[name][1] in message
  assert 'skip_bad_records' in message
  # What the binaries print: the located line, unwrapped from Beam's error.
  assert cli_errors.user_message(error.value) == '%s (%s)' % (
      record_errors.locate(path, 2, 'bad-' + name[0], _BAD[name][1]),
      record_validation.SKIP_HINT)
  assert not tf.io.gfile.glob(str(tmp_path / 'out' / 'mined.tfrecord-*'))


def test_truncated_file_stops_mining_naming_it(tmp_path):
  path = _write(str(tmp_path / 'cut.tfrecord'),
                [_serialized('cut-%d' % i) for i in range(4)])
  data = open(path, 'rb').read()
  open(path, 'wb').write(data[:-30])
  with pytest.raises(Exception) as error:
    _mine(tmp_path, path, skip=False)
  assert 'bad record in %s: record #3' % path in str(error.value)
  assert 'truncated or corrupt' in str(error.value)


def test_clean_input_reports_zero_skipped(tmp_path):
  path = _write(str(tmp_path / 'clean.tfrecord'),
                [_serialized('ok-%d' % i) for i in range(3)])
  metrics = _mine(tmp_path, path, skip=True)
  assert metrics['images'] == 3
  assert metrics[K.skipped_records] == {K.count: 0, K.first: [],
                                        K.by_problem: {}}


def test_next_run_removes_a_killed_runs_temporaries(tmp_path):
  out = tmp_path / 'out'
  out.mkdir()
  partial = out / ('mined.tfrecord-00000-of-00002.tmp-' + 'a' * 32)
  partial.write_bytes(b'half a shard')
  beam_dir = tmp_path / 'beam-pipeline-tempXYZ'
  beam_dir.mkdir()
  (out / (stale_files.BEAM_TEMPDIR_MARKER + '12345')).write_text(
      str(beam_dir))
  keep = out / 'notes.tmp'  # not a temporary of ours
  keep.write_text('x')
  path = _write(str(tmp_path / 'clean.tfrecord'), [_serialized('ok')])
  _mine(tmp_path, path, skip=False)
  assert not partial.exists() and not beam_dir.exists()
  assert keep.exists()
  assert sorted(os.listdir(out)) == sorted(
      ['mining_metrics.json', 'mined.tfrecord-00000-of-00002',
       'mined.tfrecord-00001-of-00002', 'notes.tmp'])


def test_zero_area_detections_are_never_mined():
  record = codec.example_to_record(_serialized('img', image_labels=[1, 2]))
  detections = {
      'detection_boxes': np.array([[0.5, 0.1, 0.5, 0.9],  # zero height
                                   [0.1, 0.1, 0.6, 0.6]], np.float32),
      'detection_scores': np.array([0.99, 0.95], np.float32),
      'detection_classes': np.array([1, 2])}
  result = mining_pipeline.mine_record(
      record, detections, mining_spec.MiningSpec(_ID_TO_NAME, 0.9))
  mined = codec.example_to_record(result.serialized)
  assert mined.classes.tolist() == [2]
  np.testing.assert_allclose(mined.boxes, [[0.1, 0.1, 0.6, 0.6]])
