"""Checkpoint resume and fine-tune restore.

Order of precedence when training starts:
  1. ``<model_dir>`` has a checkpoint → resume it (model, optimizer slots and
     step counter), so a stopped job continues where it was.
  2. else ``train_config.fine_tune_checkpoint`` is set → restore the parts
     named by ``fine_tune_checkpoint_type``, from a checkpoint of this
     project or of the OD API (model-zoo layout; ``checkpoint_layouts``):
       * ``classification``: the feature extractor's backbone only, from a
         local Keras weights file or TF checkpoint of the classification
         network (never downloaded), or the backbone of a detection
         checkpoint;
       * ``detection``: everything but the class-specific heads (backbone,
         RPN, second-stage feature extractor), as used to initialise T^0 from
         the source detector S (paper §3.2);
       * ``full``: every model variable (not the optimizer), as used to
         initialise T^t from T^{t-1}; from an OD API checkpoint, the class
         heads only when their shapes fit (same num_classes).
     Every restore logs what was restored and what was not, and fails when
     nothing (or not the whole backbone) matches.
  3. else start from the initialisers.
"""
import dataclasses
from typing import List, Optional, Tuple

from absl import logging
import tensorflow as tf

from object_detection_note.checkpoints import checkpoint_layouts
from object_detection_note.checkpoints import checkpoint_errors

FINE_TUNE_TYPES = ('classification', 'detection', 'full')
_BOOKKEEPING_PREFIXES = ('optimizer/', 'global_step/', 'save_counter/',
                         '_CHECKPOINTABLE_OBJECT_GRAPH')


def _checkpoint_path(path):
  """A checkpoint prefix from a prefix or a directory holding checkpoints."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise ValueError('fine_tune_checkpoint: no checkpoint in directory %s' %
                       path)
    return latest
  return path


@dataclasses.dataclass
class RestoreReport:
  """What a fine-tune restore did.

  Attributes:
    path: the checkpoint prefix read.
    layout: ``checkpoint_layouts.PROJECT`` or ``ODAPI`` (None for a
      classification weights file).
    restored: names of the model variables given checkpoint values.
    not_restored: (variable name, reason) of the selected variables that
      kept their initial values (missing key or other shape).
    unused_keys: checkpoint keys of variables nothing was restored from.
  """
  path: str
  layout: Optional[str]
  restored: List[str]
  not_restored: List[Tuple[str, str]]
  unused_keys: List[str]


def _is_bookkeeping(key):
  return (key.startswith(_BOOKKEEPING_PREFIXES) or
          not key.endswith(checkpoint_layouts.VALUE_SUFFIX))


def _restore_from_sources(model, path, reader, sources, layout):
  """Assigns each source value whose key exists and shape fits."""
  shapes = reader.get_variable_to_shape_map()
  restored, not_restored, used = [], [], set()
  # Model order, the same in every worker (assignments to distributed
  # variables must happen in one order on all of them).
  for variable in model.variables:
    source = sources.get(variable.ref())
    if source is None:
      continue
    if source.key not in shapes:
      not_restored.append((variable.name, 'no key ' + source.key))
      continue
    value = reader.get_tensor(source.key)
    if source.transform is not None:
      value = source.transform(value)
    if tuple(value.shape) != tuple(variable.shape):
      not_restored.append((variable.name, 'checkpoint shape %s != %s (%s)' % (
          tuple(value.shape), tuple(variable.shape), source.key)))
      continue
    variable.assign(value.astype(variable.dtype.as_numpy_dtype))
    restored.append(variable.name)
    used.add(source.key)
  unused = sorted(k for k in shapes if k not in used and
                  not _is_bookkeeping(k))
  return RestoreReport(path, layout, restored, not_restored, unused)


def _log_report(report, checkpoint_type):
  logging.info('fine_tune_checkpoint %s (%s, %s layout): restored %d '
               'variables, %d not restored, %d checkpoint values unused',
               report.path, checkpoint_type, report.layout,
               len(report.restored), len(report.not_restored),
               len(report.unused_keys))
  for name, reason in report.not_restored:
    logging.info('  not restored (kept initial value): %s: %s', name, reason)
  for key in report.unused_keys:
    logging.info('  unused checkpoint value: %s', key)


def _check_report(report, model, scope):
  """Fails when nothing, or not the whole backbone, was restored."""
  if not report.restored:
    raise ValueError(
        'fine_tune_checkpoint %s: no variable of the model matches it (%s '
        'layout, scope %s); first reasons: %s' % (
            report.path, report.layout, scope, report.not_restored[:3]))
  backbone = {v.name for v in model.variables
              if v.ref() in checkpoint_layouts.backbone_variables(model)}
  missing = [(n, r) for n, r in report.not_restored if n in backbone]
  if missing:
    raise ValueError(
        'fine_tune_checkpoint %s: %d feature-extractor variables do not '
        'match it (a checkpoint of another feature_extractor.type?); first: '
        '%s' % (report.path, len(missing), missing[:3]))
  if report.layout == checkpoint_layouts.PROJECT and report.not_restored:
    raise ValueError(
        'fine_tune_checkpoint %s: %d variables of scope %s missing from this '
        'project checkpoint; first: %s' % (
            report.path, len(report.not_restored), scope,
            report.not_restored[:3]))


def _detection_layout(path):
  """(reader, layout) of a detection checkpoint; layout None otherwise."""
  if not tf.io.gfile.exists(path + '.index'):
    return None, None
  try:
    reader = tf.train.load_checkpoint(path)
    keys = reader.get_variable_to_shape_map().keys()
  except (IndexError, tf.errors.OpError) as error:
    raise checkpoint_errors.explain(
        error, None, path, 'train_config.fine_tune_checkpoint') from None
  return reader, checkpoint_layouts.detect_layout(keys)


def restore_fine_tune(model, checkpoint, checkpoint_type):
  """Restores part of ``model`` from a fine-tune checkpoint.

  Detection checkpoints of this project and of the OD API (model zoo
  layout) are read variable by variable (``checkpoint_layouts``):
  ``detection`` restores backbone + RPN, ``full`` every variable whose
  shape fits (an OD API checkpoint's class heads are skipped, and logged,
  when its num_classes differs), ``classification`` the backbone. A
  classification weights file (Keras ``.h5``, an OD API
  ``Checkpoint(feature_extractor=...)``) goes to the extractor's
  ``load_classification_weights``.

  Args:
    model: the detection model (NoteFasterRcnn, variables created).
    checkpoint: checkpoint prefix or directory (or, for classification, a
      Keras weights file).
    checkpoint_type: one of FINE_TUNE_TYPES.

  Returns:
    RestoreReport (None for a classification weights file).

  Raises:
    ValueError: unknown type, nothing matches, the backbone does not match,
      or a project checkpoint lacks a selected variable.
  """
  if checkpoint_type not in FINE_TUNE_TYPES:
    raise ValueError('train_config.fine_tune_checkpoint_type must be one of '
                     '%s, got %r' % (FINE_TUNE_TYPES, checkpoint_type))
  scope = 'backbone' if checkpoint_type == 'classification' else (
      checkpoint_type)
  path = _checkpoint_path(checkpoint)
  reader, layout = _detection_layout(path)
  if checkpoint_type == 'classification':
    if layout is None:
      model.restore_classification_weights(path)
      logging.info('fine_tune_checkpoint %s (classification): backbone '
                   'weights loaded', path)
      return None
  elif layout is None:
    raise ValueError(
        'fine_tune_checkpoint %s: not a detection checkpoint of this '
        'project or of the OD API (no model/first_stage_feature_extractor '
        'or model/_feature_extractor_for_proposal_features entries); a '
        'classification checkpoint needs fine_tune_checkpoint_type '
        '"classification"' % path)
  if layout == checkpoint_layouts.ODAPI:
    sources = checkpoint_layouts.odapi_layout(
        model, scope, reader.get_variable_to_shape_map().keys())
  else:
    sources = checkpoint_layouts.project_layout(model, scope)
  try:
    report = _restore_from_sources(model, path, reader, sources, layout)
  except (IndexError, tf.errors.OpError) as error:  # truncated data files
    raise checkpoint_errors.explain(
        error, None, path, 'train_config.fine_tune_checkpoint') from None
  _log_report(report, checkpoint_type)
  _check_report(report, model, scope)
  return report


def restore_or_initialize(trainer, model_dir, train_config, max_to_keep=7,
                          build_fn=None, save_dir=None):
  """Resumes ``model_dir`` or applies the fine-tune checkpoint.

  Args:
    trainer: object with ``model``, ``optimizer`` and ``global_step``.
    model_dir: directory of this training job's checkpoints.
    train_config: TrainConfig proto (fine_tune_checkpoint and its type).
    max_to_keep: how many checkpoints the returned manager keeps.
    build_fn: creates the model's variables (needed before a partial
      fine-tune restore can be checked).
    save_dir: where the returned manager writes (default ``model_dir``); a
      non-chief worker resumes from ``model_dir`` but saves to its own
      temporary directory.

  Returns:
    tf.train.CheckpointManager over ``save_dir``.
  """
  checkpoint = tf.train.Checkpoint(model=trainer.model,
                                   optimizer=trainer.optimizer,
                                   global_step=trainer.global_step)
  manager = tf.train.CheckpointManager(checkpoint, save_dir or model_dir,
                                       max_to_keep=max_to_keep)
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    checkpoint_errors.restore(checkpoint, latest, 'checkpoint of model_dir',
                              assert_matched=False)
    logging.info('resumed %s at step %d', latest,
                 int(trainer.global_step.numpy()))
  elif train_config.fine_tune_checkpoint:
    if build_fn is not None:
      build_fn()
    restore_fine_tune(trainer.model, train_config.fine_tune_checkpoint,
                      train_config.fine_tune_checkpoint_type or 'detection')
  return manager
