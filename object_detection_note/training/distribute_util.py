"""tf.distribute strategy choice and the chief / non-chief file rules.

Strategy (the OD API's ``model_main_tf2`` rule): ``use_tpu`` → TPUStrategy;
``num_workers > 1`` → MultiWorkerMirroredStrategy (cluster from the
``TF_CONFIG`` environment variable); local GPUs → MirroredStrategy; else the
default strategy.

Multi-worker file rule: every worker runs the same training and takes part
in every checkpoint save (saving a distributed variable may need the other
workers), but only the chief writes into ``model_dir``; the other workers
write their checkpoints into ``<model_dir>/temp_worker_NNN`` and remove it
when training ends. Summaries and ``pipeline.config`` are the chief's only.
"""
import os

import tensorflow as tf

TEMP_WORKER_DIR = 'temp_worker_%03d'


def choose_strategy(use_tpu=False, tpu_name=None, num_workers=1):
  """The tf.distribute strategy for a training job (see module docstring)."""
  if use_tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu_name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if num_workers > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  if tf.config.list_physical_devices('GPU'):
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def is_chief(strategy):
  """True for the worker that owns ``model_dir`` (always, on one machine)."""
  return bool(strategy.extended.should_checkpoint)


def task_id(strategy):
  """This worker's index in the cluster (0 without a cluster)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  return int(getattr(resolver, 'task_id', None) or 0)


def checkpoint_dir(strategy, model_dir):
  """Where this worker saves checkpoints: model_dir, or its temporary dir."""
  if is_chief(strategy):
    return model_dir
  return os.path.join(model_dir, TEMP_WORKER_DIR % task_id(strategy))


def remove_worker_dir(strategy, model_dir):
  """Deletes a non-chief worker's temporary checkpoint dir (chief: no-op)."""
  if is_chief(strategy):
    return
  path = checkpoint_dir(strategy, model_dir)
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
