"""Atomic writes leave either the old file or the complete new one."""
import pytest
import tensorflow as tf

from object_detection_note.core import file_io


def test_text_bytes_and_json_round_trip(tmp_path):
  file_io.write_atomically(str(tmp_path / 'a' / 't.txt'), 'hello')
  file_io.write_atomically(str(tmp_path / 'b.bin'), b'\x00\x01')
  file_io.write_json_atomically(str(tmp_path / 'c.json'), {'b': 1, 'a': [2]})
  assert (tmp_path / 'a' / 't.txt').read_text() == 'hello'
  assert (tmp_path / 'b.bin').read_bytes() == b'\x00\x01'
  assert (tmp_path / 'c.json').read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}'
  assert file_io.read_json(str(tmp_path / 'c.json')) == {'a': [2], 'b': 1}
  assert file_io.read_json(str(tmp_path / 'missing.json')) is None
  assert sorted(p.name for p in tmp_path.iterdir()) == ['a', 'b.bin', 'c.json']


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / 'out.json')
  file_io.write_json_atomically(path, {'v': 1})

  class Unwritable:
    pass
  with pytest.raises(TypeError):
    file_io.write_atomically(path, Unwritable())
  assert file_io.read_json(path) == {'v': 1}
  assert [p.name for p in tmp_path.iterdir()] == ['out.json']


def test_ram_filesystem():
  file_io.write_json_atomically('ram://file_io_test/x.json', [1])
  assert file_io.read_json('ram://file_io_test/x.json') == [1]
  assert tf.io.gfile.listdir('ram://file_io_test') == ['x.json']
