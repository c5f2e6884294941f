"""Label map loading, validation, queries and atomic writing."""
import random
import uuid

import pytest
import tensorflow as tf

from object_detection_note.data.records import label_map_util
from object_detection_note.protos import string_int_label_map_pb2

# OD API style: single quotes, display names, items not in id order.
_COCO_STYLE = """
item {
  name: '/m/01g317'
  id: 3
  display_name: 'person'
}
item {
  name: "/m/0199g"
  id: 1
  display_name: "bicycle"
}
item {
  name: "/m/0k4j"
  id: 2
}
"""


def _ram_dir():
  """A fresh directory on TF's in-memory filesystem."""
  return 'ram://label_map_test/%s' % uuid.uuid4().hex


def _write_text(path, text):
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(text)
  return path


@pytest.fixture
def coco_style_path(tmp_path):
  return _write_text(str(tmp_path / 'label_map.pbtxt'), _COCO_STYLE)


def test_load_keeps_file_order_and_fields(coco_style_path):
  label_map = label_map_util.load_label_map(coco_style_path)
  assert isinstance(label_map, string_int_label_map_pb2.StringIntLabelMap)
  assert [(i.name, i.id, i.display_name) for i in label_map.item] == [
      ('/m/01g317', 3, 'person'), ('/m/0199g', 1, 'bicycle'),
      ('/m/0k4j', 2, '')]


def test_name_and_id_queries(coco_style_path):
  assert label_map_util.get_label_map_dict(coco_style_path) == {
      '/m/01g317': 3, '/m/0199g': 1, '/m/0k4j': 2}
  assert label_map_util.get_label_map_dict(
      coco_style_path, use_display_name=True) == {
          'person': 3, 'bicycle': 1, '/m/0k4j': 2}
  assert label_map_util.get_id_to_name(coco_style_path) == {
      3: 'person', 1: 'bicycle', 2: '/m/0k4j'}
  assert label_map_util.get_max_label_map_index(coco_style_path) == 3


def test_categories_are_sorted_by_id_like_the_od_api(coco_style_path):
  assert label_map_util.get_categories(coco_style_path) == [
      {'id': 1, 'name': 'bicycle'}, {'id': 2, 'name': '/m/0k4j'},
      {'id': 3, 'name': 'person'}]
  index = label_map_util.get_category_index(coco_style_path)
  assert sorted(index) == [1, 2, 3]
  assert index[3] == {'id': 3, 'name': 'person'}


def test_helpers_accept_a_loaded_proto(coco_style_path):
  label_map = label_map_util.load_label_map(coco_style_path)
  assert label_map_util.get_id_to_name(label_map)[1] == 'bicycle'
  assert label_map_util.get_max_label_map_index(label_map) == 3


def test_helpers_validate_a_given_proto():
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  label_map.item.add(name='a', id=1)
  label_map.item.add(name='b', id=1)
  with pytest.raises(ValueError, match='already used'):
    label_map_util.get_categories(label_map)


def test_duplicate_display_names_cannot_key_a_dict(tmp_path):
  path = _write_text(str(tmp_path / 'lm.pbtxt'), """
      item { name: 'a' id: 1 display_name: 'same' }
      item { name: 'b' id: 2 display_name: 'same' }""")
  assert label_map_util.get_label_map_dict(path) == {'a': 1, 'b': 2}
  with pytest.raises(ValueError, match="'same'.*id 1 and id 2"):
    label_map_util.get_label_map_dict(path, use_display_name=True)


def test_write_names_on_ram_filesystem_round_trips():
  path = _ram_dir() + '/sub/dir/target_label_map.pbtxt'
  label_map_util.write_label_map(path, ['zebra', 'apple', 'café'])
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  assert data.decode('utf-8') == (
      'item {\n  name: "zebra"\n  id: 1\n}\n'
      'item {\n  name: "apple"\n  id: 2\n}\n'
      'item {\n  name: "café"\n  id: 3\n}\n')
  assert label_map_util.get_label_map_dict(path) == {
      'zebra': 1, 'apple': 2, 'café': 3}


def test_write_is_deterministic_whatever_the_item_order():
  items = [{'name': 'n%d' % i, 'id': i, 'display_name': 'N%d' % i}
           for i in (5, 1, 9, 2, 7)]
  directory = _ram_dir()
  outputs = []
  for trial in range(3):
    shuffled = list(items)
    random.Random(trial).shuffle(shuffled)
    path = '%s/lm_%d.pbtxt' % (directory, trial)
    label_map_util.write_label_map(path, shuffled)
    with tf.io.gfile.GFile(path, 'rb') as f:
      outputs.append(f.read())
  assert outputs[0] == outputs[1] == outputs[2]
  ids = [i.id for i in label_map_util.load_label_map(
      '%s/lm_0.pbtxt' % directory).item]
  assert ids == [1, 2, 5, 7, 9]


def test_write_accepts_items_and_protos_and_leaves_no_temp_files():
  directory = _ram_dir()
  item = string_int_label_map_pb2.StringIntLabelMapItem(
      name='dog', id=4, display_name='Dog')
  written = label_map_util.write_label_map(directory + '/a.pbtxt', [item])
  label_map_util.write_label_map(directory + '/b.pbtxt', written)
  assert tf.io.gfile.listdir(directory) == ['a.pbtxt', 'b.pbtxt']
  assert label_map_util.get_id_to_name(directory + '/b.pbtxt') == {4: 'Dog'}


def test_write_replaces_an_existing_file(tmp_path):
  path = str(tmp_path / 'lm.pbtxt')
  label_map_util.write_label_map(path, ['old1', 'old2'])
  label_map_util.write_label_map(path, ['new'])
  assert label_map_util.get_label_map_dict(path) == {'new': 1}
  assert sorted(p.name for p in tmp_path.iterdir()) == ['lm.pbtxt']


@pytest.mark.parametrize('entries, message', [
    ([{'name': 'a', 'id': 0}], 'reserved for the background'),
    ([{'name': 'a', 'id': 1}, {'name': 'a', 'id': 2}],
     'item 2 .*"name" \'a\' is already used by item 1'),
    ([{'name': 'a', 'id': 1, 'colour': 'red'}], r"unknown fields \['colour'\]"),
    ([], 'has no items'),
])
def test_invalid_write_raises_and_writes_nothing(entries, message):
  directory = _ram_dir()
  path = directory + '/lm.pbtxt'
  with pytest.raises(ValueError) as info:
    label_map_util.write_label_map(path, entries)
  assert str(info.value).startswith('label map %s: ' % path)
  assert info.match(message)
  assert not tf.io.gfile.exists(path)
  assert not tf.io.gfile.exists(directory) or not tf.io.gfile.listdir(
      directory)


@pytest.mark.parametrize('text, message', [
    ("item { name: 'bg' id: 0 }",
     r"item 1 \(name 'bg', id 0\): field \"id\" is 0, which is reserved for "
     'the background class'),
    ("item { name: 'a' id: -3 }", r'field "id" is -3; ids must be positive'),
    ("item { name: 'a' }", r"item 1 \(name 'a'\): field \"id\" is missing"),
    ('item { id: 2 }', r'item 1 \(id 2\): field "name" is missing or empty'),
    ("item { name: '' id: 2 }", 'field "name" is missing or empty'),
    ("item { name: 'a' id: 1 } item { name: 'b' id: 1 }",
     r"item 2 \(name 'b', id 1\): field \"id\" 1 is already used by item 1 "
     r"\(name 'a', id 1\)"),
    ("item { name: 'a' id: 1 } item { name: 'a' id: 2 }",
     'field "name" \'a\' is already used by item 1'),
    ('', 'has no items'),
    ('# only a comment\n', 'has no items'),
    ("item {\n  name: 'a'\n  id: 1\n}\nitem {\n  label: 'b'\n}\n",
     r'line 6, column 3: .*no field named "label"'),
    ("item {\n  name: 'a'\n  id: one\n}\n", 'line 3, column 7: '),
    ("item {\n  name: 'a'\n  id: 1\n", r'line 3, column \d+: Expected "}"'),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, message):
  path = _write_text(str(tmp_path / 'bad_label_map.pbtxt'), text)
  with pytest.raises(ValueError) as info:
    label_map_util.load_label_map(path)
  assert str(info.value).startswith('label map %s: ' % path)
  assert info.match(message)


def test_bad_file_on_ram_filesystem_names_the_ram_path():
  path = _write_text(_ram_dir() + '/lm.pbtxt', "item { name: 'x' id: 0 }")
  with pytest.raises(ValueError, match='^label map ram://.*/lm.pbtxt: item 1'):
    label_map_util.load_label_map(path)


def test_missing_file_is_named():
  path = _ram_dir() + '/missing.pbtxt'
  with pytest.raises(ValueError, match='^label map %s: file not found' % path):
    label_map_util.load_label_map(path)


def test_binary_file_is_rejected_as_not_text(tmp_path):
  path = str(tmp_path / 'lm.pb')
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(b'\x0a\x08\xff\xfe\x00\x01')
  with pytest.raises(ValueError, match='lm.pb: not UTF-8 text'):
    label_map_util.load_label_map(path)
