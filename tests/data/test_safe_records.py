"""Bad records in the tf.data input: located errors, or a counted skip.

Each case is a fabricated TFRecord file of 3 good records around 1 bad one.
"""
import json

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.core.fields import InputFields as I
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.input import bad_record_search
from object_detection_note.data.input import inputs
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.protos import input_reader_pb2
from object_detection_note.protos import model_pb2

_MODEL = """
faster_rcnn {
  num_classes: 3
  image_resizer { fixed_shape_resizer { height: 16 width: 16 } }
  feature_extractor { type: "faster_rcnn_tiny_keras" }
}
"""


def _jpeg(seed=0):
  pixels = np.random.RandomState(seed).randint(0, 255, (24, 24, 3))
  return codec.encode_image(pixels.astype(np.uint8), 'jpeg')


def _serialized(source_id, boxes=((0.1, 0.1, 0.5, 0.5),), classes=(1,),
                image_labels=(), image_bytes=None):
  record = codec.DetectionRecord(
      image_bytes=_jpeg() if image_bytes is None else image_bytes,
      source_id=source_id, height=24, width=24, boxes=list(boxes),
      classes=list(classes), image_labels=list(image_labels))
  return codec.serialize_record(record)


def _without_key(serialized, key):
  example = tf.train.Example.FromString(serialized)
  del example.features.feature[key]
  return example.SerializeToString()


def _write(path, serialized_records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for serialized in serialized_records:
      writer.write(serialized)
  return str(path)


def _file_with_bad_record(tmp_path, bad):
  """good-0, good-1, <bad>, good-3 in one file."""
  return _write(tmp_path / 'shard-00000-of-00001',
                [_serialized('good-0'), _serialized('good-1'), bad,
                 _serialized('good-3')])


def _reader(path, skip=False):
  reader = input_reader_pb2.InputReader()
  reader.tf_record_input_reader.input_path.append(path)
  reader.shuffle = False
  reader.max_number_of_boxes = 4
  reader.skip_bad_records = skip
  return reader


def _read_all(path, skip=False, skipped=None):
  model = text_format.Parse(_MODEL, model_pb2.DetectionModel())
  reader = _reader(path, skip)
  dataset = inputs.build_dataset(reader, model, 1, False,
                                 skipped_records=skipped)
  # As training and evaluation consume it: errors TF raises without a
  # location (undecodable image, unparsable record) get one.
  batches = bad_record_search.with_located_errors(dataset, reader, model)
  return [b[I.source_id][0].numpy().decode() for b in batches]


_TRUNCATED_JPEG = _jpeg()[:300]  # valid header, data cut short
_CASES = {
    'corrupt_jpeg': (_serialized('bad-2', image_bytes=_TRUNCATED_JPEG),
                     record_errors.ENCODED_UNDECODABLE),
    'not_an_image': (_serialized('bad-2', image_bytes=b'GARBAGE' * 20),
                     record_errors.ENCODED_FORMAT),
    'missing_image': (_without_key(_serialized('bad-2'), F.image_encoded),
                      record_errors.ENCODED_MISSING),
    'zero_area_box': (_serialized('bad-2', boxes=[(0.2, 0.1, 0.2, 0.5)]),
                      record_errors.BOX_ZERO_AREA),
    'image_label_999': (_serialized('bad-2', image_labels=[1, 999]),
                        record_errors.IMAGE_LABEL_UNKNOWN % 999),
    'image_label_0': (_serialized('bad-2', image_labels=[0]),
                      record_errors.IMAGE_LABEL_UNKNOWN % 0),
    'box_lists_differ': (
        _without_key(_serialized('bad-2'), F.object_bbox_xmax),
        record_errors.BOX_LIST_LENGTHS),
    'not_an_example': (b'\x0a\xff\xff\xff garbage', record_errors.NOT_AN_EXAMPLE),
}


@pytest.mark.parametrize('case', ['corrupt_jpeg', 'missing_image',
                                  'zero_area_box', 'image_label_999',
                                  'not_an_example'])
def test_bad_record_error_names_file_record_and_field(tmp_path, case):
  bad, problem = _CASES[case]
  path = _file_with_bad_record(tmp_path, bad)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _read_all(path)
  message = str(error.value)
  assert 'bad record in %s: record #2' % path in message
  assert problem in message
  if case not in ('not_an_example', 'missing_image'):
    assert '(source_id bad-2)' in message
  assert 'skip_bad_records' in message


def test_skip_bad_records_drops_and_counts_every_case(tmp_path):
  cases = sorted(_CASES)
  stream = []
  for case in cases:
    stream += [_serialized('good-%s' % case), _CASES[case][0]]
  path = _write(tmp_path / 'mixed-00000-of-00001', stream)
  skipped = record_errors.SkippedRecords()
  assert _read_all(path, skip=True, skipped=skipped) == [
      'good-%s' % case for case in cases]
  report = skipped.to_dict()
  assert report[K.count] == len(cases)
  assert [e[K.record] for e in report[K.first]] == list(
      range(1, 2 * len(cases), 2))[:10]
  assert {e[K.file] for e in report[K.first]} == {path}
  assert [e[K.problem] for e in report[K.first]] == [
      _CASES[case][1] for case in cases]
  assert sum(report[K.by_problem].values()) == len(cases)
  json.dumps(report)  # JSON-ready


def _truncated_file(tmp_path):
  path = _write(tmp_path / 'cut-00000-of-00001',
                [_serialized('good-%d' % i) for i in range(4)])
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:-40])
  return path, len(data) - 40


def test_truncated_file_names_file_and_first_unreadable_record(tmp_path):
  path, size = _truncated_file(tmp_path)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _read_all(path)
  message = str(error.value)
  assert 'bad record in %s: record #3' % path in message
  assert 'truncated or corrupt' in message
  assert 'of %d' % size in message


def test_truncated_file_skipped_keeps_its_readable_records(tmp_path):
  path, _ = _truncated_file(tmp_path)
  good = _write(tmp_path / 'fine-00000-of-00001', [_serialized('other')])
  skipped = record_errors.SkippedRecords()
  ids = _read_all(str(tmp_path / '*-00000-of-00001'), skip=True,
                  skipped=skipped)
  assert sorted(ids) == ['good-0', 'good-1', 'good-2', 'other']
  assert skipped.count == 1
  assert skipped.to_dict()[K.first][0][K.file] == path
  assert good != path


def test_corrupt_crc_in_the_middle_names_the_file(tmp_path):
  path = _write(tmp_path / 'crc-00000-of-00001',
                [_serialized('good-%d' % i) for i in range(4)])
  data = bytearray(open(path, 'rb').read())
  data[len(data) // 2] ^= 0xFF
  open(path, 'wb').write(bytes(data))
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _read_all(path)
  assert 'bad record in %s: record #' % path in str(error.value)
  assert 'truncated or corrupt' in str(error.value)


def test_skips_are_counted_once_per_record_across_epochs(tmp_path):
  bad, _ = _CASES['corrupt_jpeg']
  path = _file_with_bad_record(tmp_path, bad)
  reader = _reader(path, skip=True)
  reader.num_epochs = 3
  skipped = record_errors.SkippedRecords()
  model = text_format.Parse(_MODEL, model_pb2.DetectionModel())
  dataset = inputs.build_dataset(reader, model, 1, True,
                                 skipped_records=skipped)
  assert sum(1 for _ in dataset) == 9
  assert skipped.count == 1
  assert skipped.to_dict()[K.skip_events] == 3


def test_python_checks_use_the_same_problems():
  decode = codec.example_to_record
  for case, (bad, problem) in _CASES.items():
    _, _, found = record_errors.decode_checked(bad, [1, 2, 3], decode)
    assert found == problem, case
  _, source_id, found = record_errors.decode_checked(
      _serialized('fine'), [1, 2, 3], decode)
  assert (source_id, found) == ('fine', '')


def test_iterate_file_records_names_truncated_file(tmp_path):
  path, _ = _truncated_file(tmp_path)
  seen = []
  with pytest.raises(record_errors.BadRecordError) as error:
    for index, _ in record_errors.iterate_file_records(path):
      seen.append(index)
  assert seen == [0, 1, 2]
  assert error.value.path == path and error.value.index == 3
  assert 'truncated' in str(error.value)


def test_located_error_searches_every_reader_of_the_input(tmp_path):
  """Seed and mined sets are separate readers: a bad record in the second
  (the mined set) is found and named too."""
  from object_detection_note.protos import note_pb2
  seed = _write(tmp_path / 'seed-00000-of-00001', [_serialized('s0')])
  mined = _file_with_bad_record(tmp_path, _CASES['corrupt_jpeg'][0])
  note = note_pb2.NoteConfig()
  note.mined_input.input_path.append(mined)
  readers = bad_record_search.readers_of(_reader(seed), note)
  assert [list(r.tf_record_input_reader.input_path) for r in readers] == [
      [seed], [mined]]
  both = _reader(seed)
  both.tf_record_input_reader.input_path.append(mined)
  model = text_format.Parse(_MODEL, model_pb2.DetectionModel())
  dataset = inputs.build_dataset(both, model, 1, False)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    for _ in bad_record_search.with_located_errors(dataset, readers, model):
      pass
  assert 'bad record in %s: record #2 (source_id bad-2)' % mined in str(
      error.value)
  assert record_errors.ENCODED_UNDECODABLE in str(error.value)


def _graph_ops(dataset):
  """Op types of ``dataset``'s graph and of every function in it."""
  graph = tf.compat.v1.GraphDef.FromString(
      dataset._as_serialized_graph(  # pylint: disable=protected-access
          external_state_policy=tf.data.experimental.ExternalStatePolicy.IGNORE
      ).numpy())
  ops = {node.op for node in graph.node}
  for function in graph.library.function:
    ops |= {node.op for node in function.node_def}
  return ops


def test_skip_counting_runs_without_a_python_callback(tmp_path, capfd):
  """skip_bad_records counts in the graph (lookup tables), so the pipeline
  can run on a host without this Python process (e.g. a TPU host)."""
  path = _file_with_bad_record(tmp_path, _CASES['zero_area_box'][0])
  skipped = record_errors.SkippedRecords('train_input_reader')
  model = text_format.Parse(_MODEL, model_pb2.DetectionModel())
  dataset = inputs.build_dataset(_reader(path, skip=True), model, 1, False,
                                 skipped_records=skipped)
  ops = _graph_ops(dataset)
  assert 'MutableHashTableV2' in ops
  assert not ops & {'PyFunc', 'PyFuncStateless', 'EagerPyFunc'}
  assert sum(1 for _ in dataset) == 3
  assert skipped.to_dict() == {
      K.count: 1, K.skip_events: 1,
      K.first: [{K.file: path, K.record: 2, K.source_id: 'bad-2',
                 K.problem: record_errors.BOX_ZERO_AREA}],
      K.by_problem: {record_errors.BOX_ZERO_AREA: 1}}
  assert ('train_input_reader: skipped bad record in %s: record #2 '
          '(source_id bad-2): %s' % (path, record_errors.BOX_ZERO_AREA)
          in capfd.readouterr().err)
