"""The plain TFRecord reader: same records as tf.data, located errors."""
import os

import pytest
import tensorflow as tf

from object_detection_note.data.records import record_errors
from object_detection_note.data.writing import sorted_runs
from object_detection_note.data.records import tfrecord_reader


def _write(path, records, compression_type=''):
  options = tf.io.TFRecordOptions(compression_type=compression_type)
  with tf.io.TFRecordWriter(str(path), options) as writer:
    for record in records:
      writer.write(record)
  return str(path)


def _tf_data(path, compression_type=''):
  return [r.numpy() for r in tf.data.TFRecordDataset(
      path, compression_type=compression_type)]


_RECORDS = [b'', b'a', b'\x00\xff' * 50, os.urandom(1000), b'last']


def _overwrite(path, offset, xor):
  data = bytearray(open(path, 'rb').read())
  data[offset] ^= xor
  open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('records', [
    _RECORDS,
    [],  # empty file
    [os.urandom(3 << 20)],  # a 3 MB record
], ids=['several', 'empty', 'large'])
def test_same_records_as_tf_data(tmp_path, records):
  path = _write(tmp_path / 'f.tfrecord', records)
  read = list(tfrecord_reader.read_records(path))
  assert read == _tf_data(path) == records
  assert tfrecord_reader.count_records([path, path]) == 2 * len(records)


def test_gzip_files_read_like_tf_data(tmp_path):
  path = _write(tmp_path / 'f.tfrecord.gz', _RECORDS, 'GZIP')
  assert list(tfrecord_reader.read_records(path, 'GZIP')) == _tf_data(
      path, 'GZIP') == _RECORDS
  with pytest.raises(ValueError, match='compression_type'):
    list(tfrecord_reader.read_records(path, 'ZLIB'))


def test_masked_crc_matches_tfrecord_writer(tmp_path):
  path = _write(tmp_path / 'f', [b'hello'])
  data = open(path, 'rb').read()
  assert int.from_bytes(data[8:12], 'little') == tfrecord_reader.masked_crc(
      data[:8])
  assert int.from_bytes(data[-4:], 'little') == tfrecord_reader.masked_crc(
      b'hello')


def _read_until_error(path):
  seen = []
  with pytest.raises(tfrecord_reader.TFRecordReadError) as error:
    for record in tfrecord_reader.read_records(path):
      seen.append(record)
  return seen, error.value


def test_corrupt_length_names_file_offset_and_record(tmp_path):
  records = [b'x' * 10, b'y' * 20, b'z' * 30]
  path = _write(tmp_path / 'f', records)
  second = 16 + 10  # framing of record 0 + its data
  _overwrite(path, second + 2, 0x40)  # a bit of record 1's length
  seen, error = _read_until_error(path)
  assert seen == records[:1]
  assert (error.path, error.offset, error.index) == (path, second, 1)
  assert str(error).startswith('%s: record #1 at byte offset %d: length CRC '
                               'mismatch' % (path, second))


def test_corrupt_data_crc_names_file_offset_and_record(tmp_path):
  records = [b'x' * 10, b'y' * 20, b'z' * 30]
  path = _write(tmp_path / 'f', records)
  third = 2 * 16 + 10 + 20
  _overwrite(path, third + 12 + 5, 0x01)  # a byte of record 2's data
  seen, error = _read_until_error(path)
  assert seen == records[:2]
  assert (error.offset, error.index) == (third, 2)
  assert 'data CRC mismatch' in str(error) and path in str(error)


@pytest.mark.parametrize('cut', [26 + 3, 26 + 10, 26 + 12 + 5, 62 - 2],
                         ids=['length', 'length_crc', 'data', 'data_crc'])
def test_truncated_file_names_file_offset_and_record(tmp_path, cut):
  """Record 1 spans bytes 26-62; the file ends inside each of its parts."""
  records = [b'x' * 10, b'y' * 20]
  path = _write(tmp_path / 'f', records)
  data = open(path, 'rb').read()
  assert len(data) == 62
  open(path, 'wb').write(data[:cut])
  seen, error = _read_until_error(path)
  assert seen == records[:1]
  assert (error.path, error.offset, error.index) == (path, 26, 1)
  assert 'truncated' in str(error)


def test_read_run_and_mining_reader_use_the_checked_reader(tmp_path):
  run = str(tmp_path / 'shard.tmp-run-00000')
  sorted_runs.write_run(run, [('b', b'2'), ('a', b'1')])
  assert list(sorted_runs.read_run(run)) == [('a', b'1'), ('b', b'2')]
  _overwrite(run, os.path.getsize(run) - 1, 0x01)  # last data CRC
  with pytest.raises(tfrecord_reader.TFRecordReadError,
                     match='record #3 at byte offset'):
    list(sorted_runs.read_run(run))
  with pytest.raises(record_errors.BadRecordError,
                     match=r'record #3 .*data CRC mismatch .*at byte '
                     r'offset 51'):
    list(record_errors.iterate_file_records(run))
