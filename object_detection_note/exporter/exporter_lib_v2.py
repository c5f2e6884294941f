"""Exports a trained detector as the OD API's ``exporter_main_v2`` does.

``export_inference_graph`` writes, under ``output_directory``:

  saved_model/      SavedModel, signature ``serving_default``: input
                    ``input_tensor`` (see ``detection_modules`` for the four
                    input types), outputs the DetectionFields dict (float32)
  checkpoint/       the restored model re-saved as ``ckpt-0``
                    (``tf.train.Checkpoint(model=...)``)
  pipeline.config   the pipeline config the model was built from

The model is built for inference (``is_training=False``) without a source
detector (det-cls-s is a training-only head), restored from the latest
checkpoint of ``trained_checkpoint_dir`` (optimizer slots and the step
counter are ignored).

Everything is first written to ``<output_directory>.tmp-<id>`` beside the
output and then renamed into place: a new output directory appears whole;
in an existing one each of the three parts is swapped in by rename, so a
reader never sees a half-written SavedModel or checkpoint.
"""
import os
import time
import uuid

from absl import logging
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.core import stale_files
from object_detection_note.core.fields import ExportFields
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import detection_modules


class ExportError(ValueError):
  """A bad export request (input type, checkpoint); the message says which."""


def check_input_type(input_type):
  if input_type not in detection_modules.DETECTION_MODULE_MAP:
    raise ExportError('--input_type: unknown input type %r; expected one of '
                      '%s' % (input_type,
                              ', '.join(detection_modules.INPUT_TYPES)))


def latest_checkpoint(trained_checkpoint_dir):
  """The newest checkpoint prefix in a directory, or ExportError."""
  if not trained_checkpoint_dir:
    raise ExportError('--trained_checkpoint_dir is required')
  if not tf.io.gfile.isdir(trained_checkpoint_dir):
    raise ExportError('--trained_checkpoint_dir %s: directory not found' %
                      trained_checkpoint_dir)
  path = tf.train.latest_checkpoint(trained_checkpoint_dir)
  if path is None:
    raise ExportError('--trained_checkpoint_dir %s holds no checkpoint (no '
                      '"checkpoint" index file naming a ckpt-N)' %
                      trained_checkpoint_dir)
  return path


def build_detection_module(input_type, pipeline_config, checkpoint_path,
                           allow_partial_restore=False, policy=None):
  """Restores the model and wraps it in the module for ``input_type``.

  Args:
    input_type: one of ``detection_modules.INPUT_TYPES``.
    pipeline_config: TrainEvalPipelineConfig proto.
    checkpoint_path: checkpoint prefix written by training.
    allow_partial_restore: accept a checkpoint whose NOTE heads differ from
      the model's, with a warning (``eval_loop.restore_for_eval``).
    policy: ``builders.mixed_precision`` policy the exported graph computes
      in (None: the config's train_config). Inputs and outputs have the
      same dtypes under every policy.

  Returns:
    (module, concrete serving function).
  """
  check_input_type(input_type)
  configs = config_util.create_configs_from_pipeline_proto(pipeline_config)
  try:
    model = eval_loop.restore_for_eval(configs, checkpoint_path,
                                       allow_partial_restore, policy)
  except (AssertionError, ValueError) as error:
    raise ExportError('export of %s: %s' % (checkpoint_path, error)) from None
  module = detection_modules.DETECTION_MODULE_MAP[input_type](
      model, configs['model'].faster_rcnn.image_resizer)
  # Tracing builds the serving graph (and checks it) before anything is saved.
  return module, module.__call__.get_concrete_function()


def _write_export(module, concrete_function, pipeline_config, directory):
  checkpoint = tf.train.Checkpoint(model=module.model)
  tf.train.CheckpointManager(
      checkpoint, os.path.join(directory, ExportFields.checkpoint_dir),
      max_to_keep=1).save(checkpoint_number=0)
  tf.saved_model.save(
      module, os.path.join(directory, ExportFields.saved_model_dir),
      signatures={ExportFields.signature: concrete_function})
  config_util.save_pipeline_config(pipeline_config, directory,
                                   ExportFields.pipeline_config)


def _publish(staging, output_directory):
  """Moves the staged export into ``output_directory`` by renames."""
  if not tf.io.gfile.exists(output_directory):
    tf.io.gfile.rename(staging, output_directory)
    return
  for name in (ExportFields.checkpoint_dir, ExportFields.saved_model_dir,
               ExportFields.pipeline_config):
    target = os.path.join(output_directory, name)
    if tf.io.gfile.exists(target):
      tf.io.gfile.rename(target, os.path.join(staging, 'replaced-' + name))
    tf.io.gfile.rename(os.path.join(staging, name), target)


def export_inference_graph(input_type, pipeline_config, trained_checkpoint_dir,
                           output_directory, allow_partial_restore=False,
                           policy=None):
  """Exports the latest checkpoint of ``trained_checkpoint_dir``.

  Args:
    input_type: one of ``detection_modules.INPUT_TYPES``.
    pipeline_config: TrainEvalPipelineConfig proto (overrides applied).
    trained_checkpoint_dir: training directory holding ``ckpt-N`` files.
    output_directory: where saved_model/, checkpoint/ and pipeline.config go.
    allow_partial_restore: see ``build_detection_module``.
    policy: see ``build_detection_module``.

  Returns:
    the SavedModel directory.

  Raises:
    ExportError: bad input type, no checkpoint, or a checkpoint that does not
      fit the config's model.
  """
  start = time.monotonic()
  check_input_type(input_type)
  checkpoint_path = latest_checkpoint(trained_checkpoint_dir)
  logging.info('exporting %s (input_type %s)', checkpoint_path, input_type)
  module, concrete_function = build_detection_module(
      input_type, pipeline_config, checkpoint_path, allow_partial_restore,
      policy)
  output_directory = output_directory.rstrip('/')
  # Staging directories of a killed earlier export.
  stale_files.remove_stale_siblings(output_directory)
  staging = '%s.tmp-%s' % (output_directory, uuid.uuid4().hex)
  tf.io.gfile.makedirs(staging)
  try:
    _write_export(module, concrete_function, pipeline_config, staging)
    _publish(staging, output_directory)
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)
  saved_model_dir = os.path.join(output_directory,
                                 ExportFields.saved_model_dir)
  logging.info('exported %s to %s in %.1fs', checkpoint_path, saved_model_dir,
               time.monotonic() - start)
  return saved_model_dir
