"""Atomic file writes through ``tf.io.gfile`` (local, gs://, ram://).

Every output of the project that a reader may pick up while it is being
produced goes through ``write_atomically``: the data is written under a
unique temporary name beside the target and renamed when complete, so a
killed job never leaves a half-written file under the final name.
"""
import json
import os
import uuid

import tensorflow as tf


def temporary_path(path):
  """A unique sibling name for ``path`` (same directory, same filesystem)."""
  return '%s.tmp-%s' % (path, uuid.uuid4().hex)


def write_atomically(path, data):
  """Writes ``data`` (bytes or str) to ``path`` via a temporary file."""
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp_path = temporary_path(path)
  try:
    with tf.io.gfile.GFile(tmp_path, 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)
    tf.io.gfile.rename(tmp_path, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp_path):
      tf.io.gfile.remove(tmp_path)


def write_json_atomically(path, payload):
  """Pretty, key-sorted JSON (deterministic bytes), written atomically."""
  write_atomically(path, json.dumps(payload, indent=2, sort_keys=True))


def read_json(path):
  """The JSON at ``path``, or None if there is no such file."""
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
