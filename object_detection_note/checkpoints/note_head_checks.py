"""No silent loss of NOTE's heads when a checkpoint is restored for use.

A training checkpoint of a NOTE model holds rpn-cls-a and det-cls-a beside
the plain heads; a plain Faster R-CNN checkpoint holds neither. Evaluation,
export and mining restore with ``expect_partial`` (a training checkpoint
also holds the optimizer and det-cls-s), so without a check:

  * a NOTE checkpoint restored into a model built from a config without a
    ``note`` block drops the ``-a`` heads, and the detector scores with
    det-cls alone instead of NOTE's ensemble;
  * a plain checkpoint restored into a NOTE model leaves the ``-a`` heads
    at their random initial values.

``check_heads`` compares the NOTE heads of the model with those of the
checkpoint (project layout: ``model/rpn_head/rpn_cls_a/...``,
``model/box_predictor/det_cls_a/...``) and raises ``HeadMismatchError``
naming the heads that would be dropped or are missing, unless the caller
allows a partial restore (``--allow_partial_restore``): then it logs a
warning, and ``fill_missing_heads`` starts each missing ``-a`` head from its
plain head's values (rpn-cls-a from rpn-cls, det-cls-a from det-cls), so
that the ensemble equals the plain heads, as for an OD API checkpoint.
"""
from absl import logging
import tensorflow as tf

from object_detection_note.checkpoints import checkpoint_errors

ALLOW_FLAG = '--allow_partial_restore'

# (name in messages, owner attribute of the model, head attribute, the plain
# head whose values a missing head starts from).
NOTE_HEADS = (
    ('rpn-cls-a', 'rpn_head', 'rpn_cls_a', 'rpn_cls'),
    ('det-cls-a', 'box_predictor', 'det_cls_a', 'det_cls'),
)


class HeadMismatchError(checkpoint_errors.CheckpointError):
  """The checkpoint's NOTE heads differ from the model's; names them."""


def _in_checkpoint(keys, owner, attribute):
  prefix = 'model/%s/%s/' % (owner, attribute)
  return any(key.startswith(prefix) for key in keys)


def model_heads(model):
  """Names of the NOTE heads a built NoteFasterRcnn has."""
  return {name for name, owner, attribute, _ in NOTE_HEADS
          if getattr(getattr(model, owner, None), attribute, None)
          is not None}


def config_heads(note_config):
  """Names of the NOTE heads ``model_builder`` builds for a NoteConfig (or
  None: no note block)."""
  if note_config is None:
    return set()
  return {name for name, _, attribute, _ in NOTE_HEADS
          if getattr(note_config, attribute)}


def compare_heads(built_heads, checkpoint_path):
  """(dropped, missing) NOTE head names.

  Args:
    built_heads: the NOTE heads of the model (``model_heads`` or
      ``config_heads``).
    checkpoint_path: checkpoint prefix of this project's layout.

  Returns:
    (heads in the checkpoint that the model lacks, heads of the model that
    the checkpoint lacks); both empty when the checkpoint cannot be listed
    (the restore then names that problem).
  """
  try:
    keys = [key for key, _ in tf.train.list_variables(checkpoint_path)]
  except (IndexError, tf.errors.OpError, ValueError):
    return [], []
  dropped, missing = [], []
  for name, owner, attribute, _ in NOTE_HEADS:
    stored = _in_checkpoint(keys, owner, attribute)
    built = name in built_heads
    if stored and not built:
      dropped.append(name)
    elif built and not stored:
      missing.append(name)
  return dropped, missing


def mismatch_message(checkpoint_path, dropped, missing, what='checkpoint'):
  """The explanation of a head mismatch ('' if none)."""
  parts = []
  if dropped:
    parts.append(
        '%s %s holds the NOTE head(s) %s that the model of this config lacks '
        '(no note block, or its rpn_cls_a/det_cls_a off): restoring would '
        'drop them and score with the plain heads alone, not NOTE\'s '
        'ensemble; use the pipeline config the checkpoint was trained with' %
        (what, checkpoint_path, ', '.join(dropped)))
  if missing:
    parts.append(
        'the model of this config has the NOTE head(s) %s that %s %s lacks '
        '(a plain Faster R-CNN checkpoint?): they would keep their random '
        'initial values; remove the note block, or use a NOTE checkpoint' %
        (', '.join(missing), what, checkpoint_path))
  return '; '.join(parts)


def check_heads(model, checkpoint_path, allow_partial_restore=False,
                what='checkpoint'):
  """Fails (or, allowed, warns) when the NOTE heads do not match.

  Args:
    model: a built NoteFasterRcnn, or the set of its NOTE head names
      (``config_heads``, to check before a model is built).
    checkpoint_path: checkpoint prefix of this project's layout.
    allow_partial_restore: warn instead of failing.
    what: how the message calls the checkpoint.

  Returns:
    the names of the model's heads that the checkpoint lacks (for
    ``fill_missing_heads``; empty when they match).

  Raises:
    HeadMismatchError: heads would be dropped or are missing and
      ``allow_partial_restore`` is False.
  """
  built = model if isinstance(model, (set, frozenset)) else model_heads(model)
  dropped, missing = compare_heads(built, checkpoint_path)
  if not dropped and not missing:
    return []
  message = mismatch_message(checkpoint_path, dropped, missing, what)
  if not allow_partial_restore:
    raise HeadMismatchError('%s (or pass %s to accept it)' % (message,
                                                             ALLOW_FLAG))
  logging.warning('%s: %s%s', ALLOW_FLAG, message,
                  '; the missing head(s) start from the plain heads\' '
                  'values' if missing else '')
  return missing


def fill_missing_heads(model, missing, checkpoint_path=None):
  """Copies each missing ``-a`` head's plain head values into it.

  With ``checkpoint_path``, first checks that the missing heads are all the
  model lacks from that checkpoint (CheckpointError naming the rest), since
  their restore could not assert that every model variable matched.
  """
  if not missing:
    return
  if checkpoint_path is not None:
    heads = tuple('model/%s/%s/' % (owner, attribute)
                  for name, owner, attribute, _ in NOTE_HEADS
                  if name in missing)
    _, absent = checkpoint_errors.describe_mismatch(
        tf.train.Checkpoint(model=model), checkpoint_path)
    others = [k for k in absent
              if k.startswith('model/') and not k.startswith(heads)]
    if others:
      raise checkpoint_errors.CheckpointError(
          'checkpoint %s lacks %d model variable(s) besides the NOTE heads: '
          '%s' % (checkpoint_path, len(others), ', '.join(others[:8])))
  for name, owner, attribute, plain in NOTE_HEADS:
    if name not in missing:
      continue
    source = getattr(getattr(model, owner), plain)
    target = getattr(getattr(model, owner), attribute)
    for to, from_ in zip(target.variables, source.variables):
      to.assign(from_)
