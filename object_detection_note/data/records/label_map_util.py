"""Label maps: load with validation, query, write atomically.

A label map is the OD API's ``label_map.pbtxt``: a ``StringIntLabelMap`` in
protobuf text format::

  item {
    name: "dog"
    id: 1
    display_name: "Dog"
  }

Rules checked on every load and write:
  * every item has a non-empty ``name`` and an ``id``;
  * ids are integers >= 1, since id 0 is the implicit background class;
  * ids are unique and names are unique.

Violations raise ``ValueError`` naming the file and the offending item and
field; text-format syntax errors also give the line and column.

All file access goes through ``tf.io.gfile``, so paths may be local, ``gs://``
or ``ram://``. Functions that read a label map accept either a path or an
already loaded ``StringIntLabelMap``.

Category dicts follow the OD API: ``{'id': int, 'name': str}`` where the name
is the item's ``display_name`` when set and its ``name`` otherwise.
"""
import os

from google.protobuf import text_format
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core.fields import CategoryFields
from object_detection_note.protos import string_int_label_map_pb2

StringIntLabelMap = string_int_label_map_pb2.StringIntLabelMap
StringIntLabelMapItem = string_int_label_map_pb2.StringIntLabelMapItem

_BACKGROUND_ID = 0


def _describe(index, item):
  """Human-readable reference to the 1-based ``index``-th item."""
  parts = []
  if item.HasField('name'):
    parts.append('name %r' % item.name)
  if item.HasField('id'):
    parts.append('id %d' % item.id)
  return 'item %d%s' % (index, ' (%s)' % ', '.join(parts) if parts else '')


def validate_label_map(label_map, source='<label map>'):
  """Raises ValueError if ``label_map`` breaks a rule in the module docstring.

  Args:
    label_map: a StringIntLabelMap.
    source: file name (or other description) quoted in error messages.
  """
  prefix = 'label map %s' % source
  if not label_map.item:
    raise ValueError('%s: has no items' % prefix)
  ids = {}
  names = {}
  for index, item in enumerate(label_map.item, start=1):
    where = '%s: %s' % (prefix, _describe(index, item))
    if not item.name:
      raise ValueError('%s: field "name" is missing or empty' % where)
    if not item.HasField('id'):
      raise ValueError('%s: field "id" is missing' % where)
    if item.id == _BACKGROUND_ID:
      raise ValueError('%s: field "id" is 0, which is reserved for the '
                       'background class; class ids start at 1' % where)
    if item.id < 0:
      raise ValueError('%s: field "id" is %d; ids must be positive integers'
                       % (where, item.id))
    if item.id in ids:
      raise ValueError('%s: field "id" %d is already used by %s'
                       % (where, item.id, ids[item.id]))
    if item.name in names:
      raise ValueError('%s: field "name" %r is already used by %s'
                       % (where, item.name, names[item.name]))
    ids[item.id] = names[item.name] = _describe(index, item)


def parse_label_map(text, source='<string>'):
  """Parses and validates label map text.

  Args:
    text: StringIntLabelMap in protobuf text format.
    source: file name (or other description) quoted in error messages.

  Returns:
    The StringIntLabelMap.

  Raises:
    ValueError: on a syntax error (with its line and column) or a rule
      violation.
  """
  label_map = StringIntLabelMap()
  try:
    text_format.Parse(text, label_map)
  except text_format.ParseError as e:
    line, column = e.GetLine(), e.GetColumn()
    if line is not None:
      raise ValueError('label map %s: line %d, column %d: %s' % (
          source, line, column, str(e).split(' : ', 1)[-1])) from e
    raise ValueError('label map %s: %s' % (source, e)) from e
  validate_label_map(label_map, source)
  return label_map


def load_label_map(path):
  """Reads and validates the label map file at ``path`` (any tf.io.gfile path).

  Returns:
    The StringIntLabelMap, items in file order.

  Raises:
    ValueError: if the file is missing, not UTF-8 text, malformed or breaks a
      rule; the message names the file.
  """
  path = os.fspath(path)
  if not tf.io.gfile.exists(path):
    raise ValueError('label map %s: file not found' % path)
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    raise ValueError('label map %s: not UTF-8 text (%s)' % (path, e)) from e
  return parse_label_map(text, source=path)


def _as_label_map(label_map_or_path):
  if isinstance(label_map_or_path, StringIntLabelMap):
    validate_label_map(label_map_or_path, '<StringIntLabelMap>')
    return label_map_or_path
  return load_label_map(label_map_or_path)


def _category_name(item):
  return item.display_name or item.name


def get_label_map_dict(label_map_or_path, use_display_name=False):
  """Maps class names to ids.

  Args:
    label_map_or_path: StringIntLabelMap or path of a label map file.
    use_display_name: key by ``display_name`` (falling back to ``name`` when
      an item has none) instead of ``name``, as the OD API input readers do
      with ``use_display_name: true``.

  Returns:
    dict {name: id}.

  Raises:
    ValueError: if two items share a display name while use_display_name.
  """
  label_map = _as_label_map(label_map_or_path)
  result = {}
  for item in label_map.item:
    key = _category_name(item) if use_display_name else item.name
    if key in result:
      raise ValueError('label map: display name %r is used by both id %d and '
                       'id %d' % (key, result[key], item.id))
    result[key] = item.id
  return result


def get_id_to_name(label_map_or_path):
  """Maps ids to ``display_name`` (or ``name`` when unset): {id: name}."""
  label_map = _as_label_map(label_map_or_path)
  return {item.id: _category_name(item) for item in label_map.item}


def get_categories(label_map_or_path):
  """OD API category list, sorted by id: [{'id': int, 'name': str}, ...]."""
  label_map = _as_label_map(label_map_or_path)
  return [{CategoryFields.id: item.id,
           CategoryFields.name: _category_name(item)}
          for item in sorted(label_map.item, key=lambda i: i.id)]


def get_category_index(label_map_or_path):
  """OD API category index: {id: {'id': id, 'name': name}}."""
  return {c[CategoryFields.id]: c for c in get_categories(label_map_or_path)}


def get_max_label_map_index(label_map_or_path):
  """Largest id, i.e. the num_classes a detector for this label map needs."""
  return max(item.id for item in _as_label_map(label_map_or_path).item)


def _to_item(entry):
  if isinstance(entry, StringIntLabelMapItem):
    return entry
  if isinstance(entry, dict):
    unknown = set(entry) - set(StringIntLabelMapItem.DESCRIPTOR.fields_by_name)
    if unknown:
      raise ValueError('label map entry %r: unknown fields %s'
                       % (entry, sorted(unknown)))
    try:
      return StringIntLabelMapItem(**entry)
    except (TypeError, ValueError) as e:
      raise ValueError('label map entry %r: %s' % (entry, e)) from e
  raise ValueError('label map entry %r: expected a StringIntLabelMapItem or a '
                   'dict with name/id[/display_name]' % (entry,))


def make_label_map(names_or_items):
  """Builds a StringIntLabelMap sorted by id (not validated).

  Args:
    names_or_items: a StringIntLabelMap; or a sequence of class names, given
      ids 1, 2, ... in order; or a sequence of StringIntLabelMapItem or dicts
      {'name': str, 'id': int, 'display_name': str (optional)}.

  Returns:
    A new StringIntLabelMap whose items are sorted by id.
  """
  if isinstance(names_or_items, StringIntLabelMap):
    items = list(names_or_items.item)
  else:
    entries = list(names_or_items)
    if entries and all(isinstance(e, str) for e in entries):
      items = [StringIntLabelMapItem(name=n, id=i)
               for i, n in enumerate(entries, start=1)]
    else:
      items = [_to_item(e) for e in entries]
  label_map = StringIntLabelMap()
  label_map.item.extend(sorted(items, key=lambda i: i.id))
  return label_map


def label_map_to_text(label_map):
  """Deterministic text form of a label map (UTF-8, fields in tag order)."""
  return text_format.MessageToString(label_map, as_utf8=True)


def write_label_map(path, names_or_items):
  """Validates and writes a label map to ``path`` atomically.

  The text is written to a temporary file beside ``path`` and renamed over
  it, so readers never see a partial file. The same input always gives the
  same bytes (items sorted by id).

  Args:
    path: destination (any tf.io.gfile path); parent directories are created.
    names_or_items: see make_label_map.

  Returns:
    The StringIntLabelMap written.

  Raises:
    ValueError: if the label map breaks a rule (nothing is written).
  """
  path = os.fspath(path)
  try:
    label_map = make_label_map(names_or_items)
  except ValueError as e:
    raise ValueError('label map %s: %s' % (path, e)) from e
  validate_label_map(label_map, source=path)
  file_io.write_atomically(path, label_map_to_text(label_map).encode('utf-8'))
  return label_map
