"""Checkpoints with the OD API's names and shapes, random values.

The names and shapes are those of ``checkpoint_variables.json`` (listed with
``tf.train.list_variables`` from checkpoints written by the OD API itself,
see ``/work/shared/odapi-reference``), copied to ``tests/training/data`` so
the tests run without the OD API. Each checkpoint is written through nested
``tf.train.Checkpoint`` objects, so it carries the same object graph as the
OD API's (what ``tf.train.Checkpoint.restore`` needs).
"""
import json
import os

import numpy as np
import tensorflow as tf

VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
DETECTION = 'faster_rcnn_inception_resnet_v2_keras_detection_ckpt'
CLASSIFICATION = 'inception_resnet_v2_classification_ckpt'
_JSON = os.path.join(os.path.dirname(__file__), 'data',
                     'odapi_checkpoint_variables.json')


def variable_shapes(name):
  """{key: shape} of the variables of checkpoint `name` (no bookkeeping)."""
  with open(_JSON) as f:
    entries = json.load(f)[name]
  return {key: tuple(shape) for key, shape in entries
          if key.endswith(VALUE_SUFFIX) and not key.startswith('save_counter')}


def write_checkpoint(prefix, shapes, seed=0):
  """Writes random float32 values under exactly the keys of `shapes`.

  Args:
    prefix: checkpoint prefix to write.
    shapes: {key: shape}, keys ending in ``/.ATTRIBUTES/VARIABLE_VALUE``.
    seed: numpy seed.

  Returns:
    (path written, {key: value}).
  """
  rng = np.random.default_rng(seed)
  root = {}
  values = {}
  for key in sorted(shapes):
    path = key[:-len(VALUE_SUFFIX)].split('/')
    node = root
    for part in path[:-1]:
      node = node.setdefault(part, {})
    values[key] = rng.standard_normal(shapes[key]).astype(np.float32)
    node[path[-1]] = tf.Variable(values[key])

  def to_checkpoint(tree):
    return tf.train.Checkpoint(**{
        name: to_checkpoint(child) if isinstance(child, dict) else child
        for name, child in tree.items()})

  checkpoint = to_checkpoint(root)
  checkpoint.save_counter.assign(1)  # Written by the OD API's save().
  return checkpoint.write(prefix), values
