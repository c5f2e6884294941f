"""Evaluation of a detector on an eval input reader, and of checkpoints.

``evaluate_model`` runs the model over the eval dataset (images resized and
padded exactly as in training) and scores the detections with COCO metrics
(``coco_detection_metrics``, default) or LVIS metrics
(``lvis_detection_metrics``), in pixels of the original images.
``evaluate_checkpoints`` does it for the checkpoints of a training job (the
``model_main_tf2 --checkpoint_dir`` mode) and writes
``<model_dir>/eval/metrics.json`` (atomically), TensorBoard scalars and
``eval_config.num_visualizations`` side-by-side images
(``eval_visualization``).
"""
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_checks
from object_detection_note.config import config_util
from object_detection_note.config import errors
from object_detection_note.core import stale_files
from object_detection_note.core.fields import BadRecordFields
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import InputFields as I
from object_detection_note.data.input import bad_record_search
from object_detection_note.data.input import inputs
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import record_errors
from object_detection_note.evaluation import coco_evaluator
from object_detection_note.evaluation import eval_visualization
from object_detection_note.evaluation import lvis_evaluator
from object_detection_note.checkpoints import checkpoint_layouts
from object_detection_note.checkpoints import checkpoints
from object_detection_note.builders import mixed_precision
from object_detection_note.checkpoints import checkpoint_errors
from object_detection_note.checkpoints import note_head_checks
from object_detection_note.core import progress

METRICS_FILE = 'metrics.json'


def _categories(eval_input_config, num_classes):
  if eval_input_config.label_map_path:
    return label_map_util.get_categories(eval_input_config.label_map_path)
  return [{'id': i, 'name': str(i)} for i in range(1, num_classes + 1)]


def make_evaluator(eval_config, categories):
  metrics = list(eval_config.metrics_set) or ['coco_detection_metrics']
  if metrics != ['coco_detection_metrics'] and metrics != [
      'lvis_detection_metrics']:
    raise ValueError('eval_config.metrics_set: supported values are '
                     '"coco_detection_metrics" and "lvis_detection_metrics", '
                     'one at a time; got %s' % metrics)
  if metrics[0] == 'lvis_detection_metrics':
    return lvis_evaluator.LvisDetectionEvaluator(categories)
  return coco_evaluator.CocoDetectionEvaluator(
      categories, eval_config.include_metrics_per_category)


@tf.function
def _detect_batch(model, images, true_shapes):
  preprocessed, _ = model.preprocess(images)
  predictions = model.predict(preprocessed, true_shapes, training=False)
  return model.postprocess(predictions, true_shapes)


def _add_batch(evaluator, batch, detections, seen):
  """Feeds one batch (boxes → pixels of the original images)."""
  padded_hw = np.asarray(batch[I.image].shape[1:3], np.float64)
  for i in range(int(batch[I.image].shape[0])):
    image_id = batch[I.source_id][i].numpy().decode('utf8') or str(len(seen))
    if image_id in seen:
      raise ValueError('eval input: duplicate image/source_id %r' % image_id)
    seen.add(image_id)
    original = np.tile(batch[I.original_image_spatial_shape][i].numpy(), 2)
    true_hw = batch[I.true_image_shape][i, :2].numpy().astype(np.float64)
    count = int(batch[I.num_groundtruth_boxes][i])
    # Groundtruth is normalised to the padded image; rescale to the true one.
    gt = batch[I.groundtruth_boxes][i, :count].numpy() * np.tile(
        padded_hw / true_hw, 2)
    evaluator.add_groundtruth(image_id, gt * original,
                              batch[I.groundtruth_classes][i, :count].numpy())
    one = inference.numpy_detections(detections, i)
    evaluator.add_detections(image_id, one[D.detection_boxes] * original,
                             one[D.detection_scores], one[D.detection_classes])


def evaluate_model(model, configs, eval_index=0, max_batches=None,
                   log_every_n=20, skipped_records=None, visualizations=None,
                   progress_clock=None):
  """COCO/LVIS metrics of ``model`` on ``configs['eval_input_configs'][i]``.

  With ``eval_input_reader.skip_bad_records``, bad records are counted in
  ``skipped_records`` (a ``record_errors.SkippedRecords``, default a new one).
  ``visualizations``: an ``eval_visualization.SideBySide`` given every batch.

  Progress: a line after the first batch (with the setup and tracing time)
  and at least every ``progress.DEFAULT_INTERVAL_S`` seconds (images, rate,
  ETA when eval_config.num_examples is set); ``progress_clock`` replaces
  ``time.monotonic`` there.

  Returns:
    dict of metric name → float, plus 'num_images' (and 'skipped_records',
    the count, when the reader skips bad records).
  """
  eval_input = configs['eval_input_configs'][eval_index]
  eval_config = configs['eval_config']
  num_classes = configs['model'].faster_rcnn.num_classes
  evaluator = make_evaluator(eval_config, _categories(eval_input, num_classes))
  if eval_input.skip_bad_records and skipped_records is None:
    skipped_records = record_errors.SkippedRecords('eval_input_reader')
  dataset = inputs.build_dataset(eval_input, configs['model'],
                                 eval_config.batch_size or 1, False,
                                 skipped_records=skipped_records)
  meter = progress.RateMeter()
  total = (eval_config.num_examples if eval_config.HasField('num_examples')
           else None)
  timed = progress.ProgressLogger('evaluation', total=total, unit='images',
                                  clock=progress_clock or time.monotonic,
                                  update_name='batch')
  seen = set()
  batches = bad_record_search.with_located_errors(dataset, eval_input,
                                                  configs['model'])
  with timed.keepalive():
    for step, batch in enumerate(batches):
      if max_batches is not None and step >= max_batches:
        break
      detections = _detect_batch(model, batch[I.image],
                                 batch[I.true_image_shape])
      _add_batch(evaluator, batch, detections, seen)
      if visualizations is not None and not visualizations.full:
        visualizations.add(batch, detections)
      if log_every_n and (step + 1) % log_every_n == 0 and timed.started:
        logging.info('eval %s', meter.status(len(seen), 'images'))
        timed.note_line()
      else:
        timed.update(len(seen))
  metrics = evaluator.evaluate()
  metrics['num_images'] = len(seen)
  if eval_input.skip_bad_records:
    metrics[BadRecordFields.skipped_records] = skipped_records.count
    skipped_records.log_summary()
  return metrics


def write_metrics(metrics, directory, step=None):
  """Writes ``<directory>/metrics.json`` atomically and TensorBoard scalars."""
  path = os.path.join(directory, METRICS_FILE)
  payload = dict(metrics)
  if step is not None:
    payload['step'] = int(step)
  file_io.write_json_atomically(path, payload)
  if step is not None:
    with tf.summary.create_file_writer(directory).as_default():
      for key, value in metrics.items():
        tf.summary.scalar(key, value, step=step)
  return path


def restore_for_eval(configs, checkpoint_path, allow_partial_restore=False,
                     policy=None):
  """Builds the model for inference and restores a checkpoint into it.

  Project checkpoints must match the model exactly, NOTE heads included
  (``note_head_checks``: a NOTE checkpoint into a model without them, or
  the reverse, fails unless ``allow_partial_restore``); OD API model-zoo
  checkpoints are read by ``checkpoints.checkpoints`` (``full``: heads of
  another num_classes stay initialised, and are logged).

  ``policy`` is the ``builders.mixed_precision`` policy the model is built
  under (None: the one ``train_config`` asks for, as the OD API evaluates
  with use_bfloat16). Variables are float32 under every policy, so any
  checkpoint loads into any policy's model; detections are float32.
  """
  policy = mixed_precision.check_policy(
      policy or mixed_precision.policy_name(configs['train_config']))
  with mixed_precision.policy_scope(policy):
    model = model_builder.build(configs['model'], is_training=False,
                                note_config=configs['note'])
  inference.build_model_inputs(model, configs['model'].faster_rcnn.image_resizer)
  try:
    layout = checkpoint_layouts.detect_layout(
        dict(tf.train.list_variables(checkpoint_path)))
  except (IndexError, tf.errors.OpError):
    layout = None  # unreadable: checkpoint_errors.restore names the problem
  if layout == checkpoint_layouts.ODAPI:
    # An OD API (model zoo) checkpoint: every variable, shapes checked.
    checkpoints.restore_fine_tune(model, checkpoint_path, 'full')
    return model
  missing = note_head_checks.check_heads(model, checkpoint_path,
                                        allow_partial_restore)
  # CheckpointError (a ValueError) names the checkpoint and says whether it
  # is unreadable or which variables do not fit.
  checkpoint_errors.restore(tf.train.Checkpoint(model=model), checkpoint_path,
                            assert_matched=not missing)
  note_head_checks.fill_missing_heads(model, missing, checkpoint_path)
  return model


def side_by_side(configs):
  """The evaluation images of ``configs['eval_config']`` (num_visualizations,
  ...), filled by ``evaluate_model(..., visualizations=)`` and written to
  TensorBoard by its ``write(directory, step)``."""
  return eval_visualization.SideBySide(
      configs['eval_config'], _categories(
          configs['eval_input_configs'][0],
          configs['model'].faster_rcnn.num_classes))


class EvaluationError(ValueError):
  """Evaluation could not run or evaluated nothing; names the reason."""


def evaluate_checkpoints(pipeline_config_path, model_dir, checkpoint_dir,
                         timeout=3600, config_override=None,
                         allow_partial_restore=False):
  """Evaluates the latest checkpoint (timeout 0) or each new one.

  ``allow_partial_restore``: see ``restore_for_eval``.

  Returns:
    the metrics of the last evaluated checkpoint.
  """
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path,
                                                       config_override)
  if not configs['eval_input_configs']:
    raise errors.ConfigError('%s: field eval_input_reader is required for '
                                  'evaluation' % pipeline_config_path)
  config_util.check_input_paths(configs['eval_input_config'],
                                pipeline_config_path, 'eval_input_reader[0]')
  config_checks.check_num_classes(
      config_util.create_pipeline_proto_from_configs(configs),
      pipeline_config_path, errors.ConfigError)
  eval_dir = os.path.join(model_dir, 'eval')
  if not tf.io.gfile.isdir(checkpoint_dir):
    raise EvaluationError('--checkpoint_dir %s: directory not found' %
                          checkpoint_dir)
  stale_files.remove_stale_temporaries(eval_dir)  # of a killed earlier run
  if not timeout:
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
      raise EvaluationError('--checkpoint_dir %s holds no checkpoint' %
                            checkpoint_dir)
    paths = [latest]
  else:
    paths = tf.train.checkpoints_iterator(checkpoint_dir, timeout=timeout)
  metrics = {}
  evaluated = 0
  skipped = record_errors.SkippedRecords('eval_input_reader')
  for path in paths:
    start = time.monotonic()
    model = restore_for_eval(configs, path, allow_partial_restore)
    visualizations = side_by_side(configs)
    metrics = evaluate_model(model, configs, skipped_records=skipped,
                             visualizations=visualizations)
    step = checkpoint_errors.read_step(path)
    write_metrics(metrics, eval_dir, step)
    visualizations.write(eval_dir, step)
    record_errors.write_report(skipped, eval_dir)
    evaluated += 1
    logging.info('evaluated %s (step %d) in %.1fs: mAP %.4f, mAP@.50IOU %.4f',
                 path, step, time.monotonic() - start,
                 metrics['DetectionBoxes_Precision/mAP'],
                 metrics['DetectionBoxes_Precision/mAP@.50IOU'])
  if not evaluated:
    raise EvaluationError(
        'no checkpoint appeared in --checkpoint_dir %s within --eval_timeout='
        '%s seconds; nothing was evaluated' % (checkpoint_dir, timeout))
  return metrics
