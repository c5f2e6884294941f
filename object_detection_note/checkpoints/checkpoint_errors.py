"""Checkpoint read failures that name the checkpoint and say what is wrong.

Restoring a TF checkpoint fails in two very different ways, and TF's own
errors say neither which checkpoint nor which variable:

  * the files are truncated or corrupt (an interrupted copy or download):
    ``IndexError: Read less bytes than requested``, ``not an sstable``,
    ``DataLossError``;
  * the checkpoint is fine but belongs to another model (other num_classes,
    other heads, another feature extractor): a raw shape error, or an
    assertion about unmatched objects.

``restore`` wraps ``tf.train.Checkpoint.restore`` and raises
``CheckpointError`` for both, naming the checkpoint prefix, and either the
files with their sizes or the variables that do not fit (checkpoint key,
model shape, checkpoint shape). It is used by fine-tuning, resume,
evaluation, export and mining.
"""
import collections

import tensorflow as tf

_VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
_MAX_LISTED = 8
_READ_FAILURES = ('Read less bytes', 'sstable', 'corrupt', 'truncated',
                  'Data loss', 'checksum', 'Unable to open table',
                  'Failed to read')


class CheckpointError(ValueError):
  """A checkpoint that cannot be restored; names it and the reason."""


def checkpoint_files(prefix):
  """``[(path, size in bytes)]`` of the checkpoint's index and data files."""
  files = sorted(tf.io.gfile.glob(prefix + '.index') +
                 tf.io.gfile.glob(prefix + '.data-*'))
  return [(f, tf.io.gfile.stat(f).length) for f in files]


def _files_text(prefix):
  files = checkpoint_files(prefix)
  if not files:
    return 'no %s.index / .data-* files' % prefix
  return ', '.join('%s (%d bytes)' % f for f in files)


def _is_read_failure(error):
  if isinstance(error, (IndexError, tf.errors.DataLossError)):
    return True
  return isinstance(error, tf.errors.OpError) and any(
      text in str(error) for text in _READ_FAILURES)


def _unreadable(prefix, error, what):
  detail = str(error).strip().splitlines()[0][:200] if str(error) else (
      type(error).__name__)
  return CheckpointError(
      '%s %s is truncated or corrupt and cannot be read (%s): %s; copy it '
      'again or use another checkpoint' % (what, prefix, detail,
                                           _files_text(prefix)))


def variable_keys(root):
  """``{checkpoint key: variable}`` of every variable reachable from ``root``.

  Keys are the object-graph paths TF writes (``model/_rpn/.../kernel`` +
  ``/.ATTRIBUTES/VARIABLE_VALUE``), found breadth-first as TF names them.
  """
  view = tf.train.TrackableView(root)
  keys = {}
  seen = {id(root)}
  queue = collections.deque([((), root)])
  while queue:
    path, obj = queue.popleft()
    for name, child in view.children(obj).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = path + (name,)
      if isinstance(child, tf.Variable):
        keys['/'.join(child_path) + _VALUE_SUFFIX] = child
      else:
        queue.append((child_path, child))
  return keys


def describe_mismatch(root, prefix):
  """What does not fit between ``root``'s variables and the checkpoint.

  Returns:
    (shape_mismatches [(key, model shape, checkpoint shape)], keys of model
    variables absent from the checkpoint), each sorted.
  """
  stored = dict(tf.train.list_variables(prefix))
  mismatched, missing = [], []
  for key, variable in sorted(variable_keys(root).items()):
    if key not in stored:
      missing.append(key)
    elif list(variable.shape) != list(stored[key]):
      mismatched.append((key, list(variable.shape), list(stored[key])))
  return mismatched, missing


def _short(key):
  return key[:-len(_VALUE_SUFFIX)] if key.endswith(_VALUE_SUFFIX) else key


def _mismatch_error(root, prefix, error, what):
  mismatched, missing = describe_mismatch(root, prefix)
  parts = []
  if mismatched:
    parts.append('%d variable(s) with other shapes: %s' % (
        len(mismatched), '; '.join(
            '%s model %s vs checkpoint %s' % (_short(k), m, c)
            for k, m, c in mismatched[:_MAX_LISTED])))
  if missing:
    parts.append('%d model variable(s) not in the checkpoint: %s%s' % (
        len(missing), ', '.join(_short(k) for k in missing[:_MAX_LISTED]),
        ', ...' if len(missing) > _MAX_LISTED else ''))
  if not parts:
    parts.append(str(error).strip().splitlines()[0][:300])
  return CheckpointError(
      '%s %s does not match the model of this pipeline config (different '
      'num_classes, heads or feature extractor?): %s' % (
          what, prefix, '; '.join(parts)))


def explain(error, root, prefix, what='checkpoint'):
  """The CheckpointError for ``error`` raised while restoring ``prefix``."""
  if _is_read_failure(error):
    return _unreadable(prefix, error, what)
  try:
    tf.train.list_variables(prefix)
  except (IndexError, tf.errors.OpError) as read_error:
    if isinstance(read_error, tf.errors.NotFoundError):
      return CheckpointError('%s %s not found (%s)' % (what, prefix,
                                                      _files_text(prefix)))
    return _unreadable(prefix, read_error, what)
  return _mismatch_error(root, prefix, error, what)


def restore(checkpoint, prefix, what='checkpoint', partial=True,
            assert_matched=True):
  """``checkpoint.restore(prefix)`` with errors that say what is wrong.

  Args:
    checkpoint: ``tf.train.Checkpoint`` whose variables already exist.
    prefix: checkpoint prefix (``.../ckpt-7``).
    what: how the message calls it, e.g. ``fine_tune_checkpoint``.
    partial: allow checkpoint values the model does not use.
    assert_matched: every existing model object must be in the checkpoint.

  Returns:
    the restore status.

  Raises:
    CheckpointError: unreadable (truncated, corrupt, missing) or mismatched.
  """
  try:
    status = checkpoint.restore(prefix)
    if partial:
      status.expect_partial()
    if assert_matched:
      status.assert_existing_objects_matched()
    return status
  except (IndexError, ValueError, AssertionError, tf.errors.OpError) as error:
    raise explain(error, checkpoint, prefix, what) from None


def read_step(prefix, key='global_step' + _VALUE_SUFFIX, what='checkpoint'):
  """The step counter stored in ``prefix`` (0 if absent); CheckpointError if
  the checkpoint cannot be read."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    return int(reader.get_tensor(key)) if reader.has_tensor(key) else 0
  except (IndexError, tf.errors.OpError) as error:
    raise _unreadable(prefix, error, what) from None
