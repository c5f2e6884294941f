"""Where a field is written in a pipeline config: ``<file>:<line>:<column>``.

Config errors name a dotted field (``train_config.optimizer.adam_optimizer.
learning_rate``, ``eval_input_reader[1].label_map_path``); ``where(path,
field)`` turns the file name of such a message into ``path:line:column`` of
that field in the file (1-based, as the text-format parser reports them).
A field the file does not write (a required field left out) is located at
its closest enclosing block that the file does write; a file that cannot be
read or parsed gives the bare path.
"""
import re

from google.protobuf import text_format
import tensorflow as tf

_COMPONENT = re.compile(r'^(?P<name>[^\[\]]+)(\[(?P<index>\d+)\])?$')


def field_positions(text):
  """``{((name, k), ...): (line, column)}`` of every field written in ``text``.

  ``k`` counts the occurrences of ``name`` (a repeated field) within the same
  enclosing block, from 0. Lines and columns are 1-based.
  """
  positions = {}
  tokenizer = text_format.Tokenizer(text.splitlines())
  stack = []  # path of the enclosing blocks, as (name, k)
  counts = [{}]  # per open block: name -> occurrences so far
  previous = previous_at = None
  pending = None  # (name, position) of "name:" awaiting its value

  def add(name, at):
    k = counts[-1].get(name, 0)
    counts[-1][name] = k + 1
    key = tuple(stack) + ((name, k),)
    positions.setdefault(key, at)
    return key

  while not tokenizer.AtEnd():
    token = tokenizer.token
    at = (tokenizer._line + 1, tokenizer._column + 1)  # pylint: disable=protected-access
    if token == ':' and previous is not None:
      pending = (previous, previous_at)
    elif token in ('{', '<'):
      name, name_at = pending if previous == ':' else (previous, previous_at)
      stack.append(add(name, name_at)[-1])
      counts.append({})
      pending = None
    elif token in ('}', '>'):
      if stack:
        stack.pop()
        counts.pop()
    elif pending is not None and previous == ':':
      add(*pending)
      pending = None
    previous, previous_at = token, at
    tokenizer.NextToken()
  return positions


def _key(field):
  key = []
  for component in field.split('.'):
    match = _COMPONENT.match(component)
    if not match:
      return None
    key.append((match.group('name'), int(match.group('index') or 0)))
  return tuple(key)


def locate(text, field):
  """``(line, column)`` of dotted ``field`` in ``text`` (or of its closest
  written parent), or None."""
  key = _key(field)
  if not key:
    return None
  try:
    positions = field_positions(text)
  except text_format.ParseError:
    return None
  for end in range(len(key), 0, -1):
    if key[:end] in positions:
      return positions[key[:end]]
  return None


def where(path, field, text=None):
  """``path:line:column`` of ``field`` in the config file ``path`` (read if
  ``text`` is None), or ``path`` when it cannot be located."""
  if text is None:
    try:
      if not tf.io.gfile.exists(path):
        return path
      with tf.io.gfile.GFile(path) as f:
        text = f.read()
    except (tf.errors.OpError, OSError, UnicodeDecodeError):
      return path
  position = locate(text, field)
  return '%s:%d:%d' % ((path,) + position) if position else path
