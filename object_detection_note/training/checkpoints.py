"""Checkpoint resume and fine-tune restore.

Order of precedence when training starts:
  1. ``<model_dir>`` has a checkpoint → resume it (model, optimizer slots and
     step counter), so a stopped job continues where it was.
  2. else ``train_config.fine_tune_checkpoint`` is set → restore the parts
     named by ``fine_tune_checkpoint_type``:
       * ``classification``: the feature extractor's backbone only, from a
         local Keras weights file or TF checkpoint of the classification
         network (never downloaded);
       * ``detection``: everything but the class-specific heads (backbone,
         RPN, second-stage feature extractor), as used to initialise T^0 from
         the source detector S (paper §3.2);
       * ``full``: every model variable (not the optimizer), as used to
         initialise T^t from T^{t-1}.
  3. else start from the initialisers.
"""
from absl import logging
import tensorflow as tf

FINE_TUNE_TYPES = ('classification', 'detection', 'full')


def _checkpoint_path(path):
  """A checkpoint prefix from a prefix or a directory holding checkpoints."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise ValueError('fine_tune_checkpoint: no checkpoint in directory %s' %
                       path)
    return latest
  return path


def restore_fine_tune(model, checkpoint, checkpoint_type):
  """Restores part of ``model`` from a fine-tune checkpoint.

  Args:
    model: the detection model; must provide ``restore_map(type)`` → dict of
      attribute name → trackable, and ``restore_classification_weights(path)``.
    checkpoint: checkpoint prefix or directory (or, for classification, a
      Keras weights file).
    checkpoint_type: one of FINE_TUNE_TYPES.
  """
  if checkpoint_type not in FINE_TUNE_TYPES:
    raise ValueError('train_config.fine_tune_checkpoint_type must be one of '
                     '%s, got %r' % (FINE_TUNE_TYPES, checkpoint_type))
  if checkpoint_type == 'classification':
    model.restore_classification_weights(checkpoint)
    return
  path = _checkpoint_path(checkpoint)
  parts = model.restore_map(checkpoint_type)
  status = tf.train.Checkpoint(
      model=tf.train.Checkpoint(**parts)).restore(path)
  status.expect_partial()
  status.assert_existing_objects_matched()
  logging.info('restored %s from %s (%s)', sorted(parts), path,
               checkpoint_type)


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
    checkpoint.restore(latest).expect_partial()
    logging.info('resumed %s at step %d', latest,
                 int(trainer.global_step.numpy()))
  elif train_config.fine_tune_checkpoint:
    if build_fn is not None:
      build_fn()
    restore_fine_tune(trainer.model, train_config.fine_tune_checkpoint,
                      train_config.fine_tune_checkpoint_type or 'detection')
  return manager
