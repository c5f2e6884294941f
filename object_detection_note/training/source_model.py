"""The frozen source detector S that distillation (det-cls-s, Eq. 3) needs.

A pipeline config asks for distillation with ``note.distillation`` (weight
> 0). S is then described by ``note.source_detector``: its own pipeline config
(``pipeline_config_path``, S's model and source classes) and its trained
checkpoint (``checkpoint_dir``, a directory or a checkpoint prefix). Every
training path (``model_main_tf2``, the iterate loop, ``train_loop``) goes
through ``load_for_training``, so a config that asks for distillation either
trains with S or fails with an error naming the file and the missing field;
it never trains without S silently.
"""
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.config import errors
from object_detection_note.evaluation import eval_loop


def distillation_requested(note_config):
  """True if the ``note`` block (or None) asks for det-cls-s training."""
  return (note_config is not None and note_config.HasField('distillation')
          and note_config.distillation.weight > 0)


def source_checkpoint(note_config, pipeline_config_path):
  """S's checkpoint prefix from ``note.source_detector.checkpoint_dir``.

  Raises:
    errors.ConfigError: no source_detector, no checkpoint_dir, or no
      checkpoint there; the message names the file and the field.
  """
  if not note_config.HasField('source_detector'):
    raise errors.ConfigError(
        '%s: field note.distillation asks for distillation from a source '
        'detector S, but field note.source_detector is missing (set its '
        'pipeline_config_path and checkpoint_dir, or remove '
        'note.distillation)' % pipeline_config_path)
  path = note_config.source_detector.checkpoint_dir
  if not path:
    raise errors.ConfigError(
        '%s: field note.source_detector.checkpoint_dir is empty, but '
        'note.distillation needs a trained source detector S (train S first, '
        'e.g. `python -m object_detection_note.iterate ... --stage=source`, '
        'and set checkpoint_dir to its checkpoint)' % pipeline_config_path)
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
  else:
    latest = path if tf.io.gfile.glob(path + '.index') else None
  if not latest:
    raise errors.ConfigError(
        '%s: field note.source_detector.checkpoint_dir: no checkpoint at %s '
        '(needed by note.distillation)' % (pipeline_config_path, path))
  return latest


def source_config_path(note_config, pipeline_config_path):
  """S's pipeline config path; raises ConfigError if it is not set."""
  path = note_config.source_detector.pipeline_config_path
  if not path:
    raise errors.ConfigError(
        '%s: field note.source_detector.pipeline_config_path is empty, but '
        'note.distillation needs S\'s pipeline config (its model and source '
        'classes)' % pipeline_config_path)
  return path


def load_source_model(source_pipeline_config_path, checkpoint, strategy=None):
  """S restored from ``checkpoint``, frozen (``trainable = False``).

  Built under ``strategy.scope()`` when a strategy is given, so that its
  variables live where the training replicas run (TPU, several workers).
  """
  configs = config_util.get_configs_from_pipeline_file(
      source_pipeline_config_path)
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    model = eval_loop.restore_for_eval(configs, checkpoint)
  model.trainable = False
  return model


def load_for_training(configs, pipeline_config_path, strategy=None):
  """S for a training config, or None when the config asks for no distillation.

  Args:
    configs: dict from ``config_util.get_configs_from_pipeline_file``.
    pipeline_config_path: the config's path (named in errors).
    strategy: the training's ``tf.distribute`` strategy.

  Raises:
    errors.ConfigError: distillation is asked for but S cannot be built.
  """
  note = configs.get('note')
  if not distillation_requested(note):
    return None
  checkpoint = source_checkpoint(note, pipeline_config_path)
  return load_source_model(source_config_path(note, pipeline_config_path),
                           checkpoint, strategy)
