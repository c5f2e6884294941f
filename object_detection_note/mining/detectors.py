"""Detector factories for the mining pipeline's ``DetectorSpec``.

Each factory returns ``detect(images) -> list of dicts``: ``images`` is a
list of uint8 ``[H, W, 3]`` arrays (sizes may differ); each dict holds numpy
``detection_boxes`` [N, 4] normalised to that image, ``detection_scores``
[N] and ``detection_classes`` [N] (label ids). Factories run on the workers
(``DoFn.setup``), so the model is loaded once per worker.
"""
import collections

import numpy as np
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import saved_model_detector as saved_model_detector_lib
from object_detection_note.mining.mining_pipeline import DetectorSpec
from object_detection_note.checkpoints import note_head_checks


def _checkpoint_path(path):
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise ValueError('checkpoint_dir %s holds no checkpoint' % path)
    return latest
  return path


def checkpoint_detector(pipeline_config_path, checkpoint, batch_size=8,
                        allow_partial_restore=False, policy=None):
  """Detector from a pipeline config and a training checkpoint (or its dir).

  ``allow_partial_restore``: see ``eval_loop.restore_for_eval``; ``policy``:
  the ``builders.mixed_precision`` policy of the model (None: the config's
  train_config).
  """
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
  model = eval_loop.restore_for_eval(configs, _checkpoint_path(checkpoint),
                                     allow_partial_restore, policy)
  resizer = configs['model'].faster_rcnn.image_resizer

  @tf.function(reduce_retracing=True)
  def run(images):
    return inference.detect(model, images, resizer)

  def detect(images):
    results = [None] * len(images)
    by_size = collections.defaultdict(list)
    for index, image in enumerate(images):
      by_size[image.shape].append(index)
    for indices in by_size.values():
      for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        detections = run(tf.constant(np.stack([images[i] for i in chunk])))
        for row, index in enumerate(chunk):
          results[index] = inference.numpy_detections(detections, row)
    return results
  return detect


def saved_model_detector(saved_model_dir):
  """Detector from an ``exporter_main_v2`` export (any input type)."""
  exported = saved_model_detector_lib.ExportedDetector(saved_model_dir)
  return lambda images: [exported.detect(image) for image in images]


def check_checkpoint_heads(pipeline_config_path, checkpoint_dir,
                           allow_partial_restore=False):
  """On the driver, before any worker starts: the NOTE heads of the config's
  model and of the checkpoint agree (``note_head_checks``), or
  HeadMismatchError naming the heads."""
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
  note_head_checks.check_heads(
      note_head_checks.config_heads(configs['note']),
      _checkpoint_path(checkpoint_dir), allow_partial_restore,
      'checkpoint_dir')


def detector_spec(pipeline_config_path, checkpoint_dir=None,
                  saved_model_dir=None, batch_size=8,
                  allow_partial_restore=False, policy=None):
  """DetectorSpec for a checkpoint or a SavedModel; a checkpoint's NOTE
  heads are checked against the config here (``check_checkpoint_heads``).

  ``policy`` (checkpoints only): see ``checkpoint_detector``; a SavedModel
  runs in the precision it was exported with.
  """
  if bool(checkpoint_dir) == bool(saved_model_dir):
    raise ValueError('give exactly one of checkpoint_dir and saved_model_dir')
  if checkpoint_dir:
    check_checkpoint_heads(pipeline_config_path, checkpoint_dir,
                           allow_partial_restore)
  if saved_model_dir:
    return DetectorSpec(
        __name__ + ':saved_model_detector',
        (('saved_model_dir', saved_model_dir),))
  return DetectorSpec(
      __name__ + ':checkpoint_detector',
      (('pipeline_config_path', pipeline_config_path),
       ('checkpoint', checkpoint_dir), ('batch_size', int(batch_size)),
       ('allow_partial_restore', bool(allow_partial_restore)),
       ('policy', policy)))
