"""The training loop behind ``model_main_tf2`` and the iterate driver.

``train_loop`` builds the model, optimizer and input pipeline from a pipeline
config under a ``tf.distribute`` strategy, restores ``<model_dir>`` (resume:
the step counter continues) or else the config's ``fine_tune_checkpoint``,
and runs compiled train steps, writing checkpoints, TensorBoard scalars
(every loss key, learning rate, steps/s) and a progress line with ETA.

``train_config.use_bfloat16`` / ``use_mixed_float16`` build the trained
model under the Keras mixed_bfloat16 / mixed_float16 policy
(``mixed_precision``; the latter with dynamic loss scaling); the global
policy is restored once the model is built.

A non-finite loss stops training with ``NonFiniteLossError`` naming the step
and the loss keys, before any checkpoint of the broken state is written.
"""

import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from object_detection_note.builders import model_builder
from object_detection_note.builders import optimizer_builder
from object_detection_note.config import config_checks
from object_detection_note.config import config_util
from object_detection_note.config import errors
from object_detection_note.core import stale_files
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import SummaryKeys
from object_detection_note.evaluation import inference
from object_detection_note.data.input import bad_record_search
from object_detection_note.data.input import inputs
from object_detection_note.data.records import record_errors
from object_detection_note.evaluation import eval_loop
from object_detection_note.checkpoints import checkpoints
from object_detection_note.training import distribute_util
from object_detection_note.builders import mixed_precision
from object_detection_note.core import progress
from object_detection_note.training import source_model as source_model_lib


class NonFiniteLossError(RuntimeError):
  """Raised when a loss becomes NaN or Inf; names the step and the keys."""


def check_finite(step, loss_values):
  """Raises NonFiniteLossError if any value in ``loss_values`` is not finite.

  Args:
    step: the 1-based number of the step that produced the values.
    loss_values: dict of loss key → python float.
  """
  bad = sorted(k for k, v in loss_values.items() if v != v or abs(v) == float('inf'))
  if bad:
    raise NonFiniteLossError(
        'training stopped at step %d: non-finite loss in %s (%s); the last '
        'checkpoint before this step is intact' %
        (step, ', '.join(bad),
         ', '.join('%s=%r' % (k, loss_values[k]) for k in bad)))


def check_finite_variables(step, variables):
  """Raises NonFiniteLossError if a variable holds NaN or Inf.

  A finite loss does not prove a finite update (e.g. a NaN learning rate):
  this is checked before a checkpoint is written, so none holds such state.

  Args:
    step: the step whose update produced the values.
    variables: the model's variables.
  """
  bad = [v.name for v in variables
         if not np.all(np.isfinite(v.numpy()))]
  if bad:
    raise NonFiniteLossError(
        'training stopped at step %d: the update of this step made %d '
        'variable(s) non-finite (%s%s) although the losses were finite; '
        'check the learning rate; no checkpoint was written for this step' %
        (step, len(bad), ', '.join(bad[:3]), ', ...' if len(bad) > 3 else ''))


def _without_strings(batch):
  """Drops string features (source_id): XLA and TPUs cannot take them."""
  return {k: v for k, v in batch.items() if v.dtype != tf.string}


def _clip_gradients(gradients, clip_norm):
  if clip_norm and clip_norm > 0:
    gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
  return gradients


class Trainer:
  """Owns the model, optimizer, step counter and the compiled train step.

  Args:
    configs: dict from ``config_util.get_configs_from_pipeline_file``.
    strategy: a ``tf.distribute.Strategy``.
    jit_compile: compile the forward and backward pass with XLA (the TPU
      shape discipline).
    source_model: optional frozen source detector for distillation (kept
      in the precision it was built in).
    policy: a ``mixed_precision`` policy name; None: the one
      ``train_config`` asks for.

  ``optimizer`` is the configured optimizer (checkpointed, so checkpoints
  have the same layout under every policy); under mixed_float16 the steps
  apply gradients through ``loss_scale_optimizer``, a dynamic
  ``LossScaleOptimizer`` around it (its loss scale is not checkpointed: a
  resumed run starts again from the initial scale).
  """

  def __init__(self, configs, strategy, jit_compile=False, source_model=None,
               policy=None):
    self._configs = configs
    self._strategy = strategy
    train_config = configs['train_config']
    self.policy = mixed_precision.check_policy(
        policy or mixed_precision.policy_name(train_config))
    with strategy.scope():
      with mixed_precision.policy_scope(self.policy):
        self.model = model_builder.build(
            configs['model'], is_training=True, note_config=configs['note'],
            source_model=source_model)
      self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                     name='global_step')
      self.optimizer, self.learning_rate = optimizer_builder.build(
          train_config.optimizer)
      self.loss_scale_optimizer = mixed_precision.loss_scale_optimizer(
          self.optimizer, self.policy)
    self._clip_norm = train_config.gradient_clipping_by_norm
    # Bad records skipped by the input (train_input_reader.skip_bad_records).
    self.skipped_records = record_errors.SkippedRecords('train_input_reader')
    # Only the forward and backward pass is compiled: a nested tf.function
    # must not hold the cross-replica gradient sum of apply_gradients.
    self._gradients_fn = (
        tf.function(self._losses_and_gradients, jit_compile=True)
        if jit_compile else self._losses_and_gradients)
    self._create_variables()

  def _create_variables(self):
    """Creates the model's and the optimizer's variables before any step.

    Variables first created inside the traced step make ``tf.function``
    trace it twice (per replica); creating them here also lets a checkpoint
    restore them at once instead of on creation.
    """
    with self._strategy.scope():
      inference.build_model_inputs(
          self.model, self._configs['model'].faster_rcnn.image_resizer)
      self.optimizer.build(self.model.trainable_variables)

  def _losses_and_gradients(self, batch):
    """Loss dict and clipped gradients (None where unused) of one replica.

    Losses are float32 under every policy. Under mixed_float16 the loss is
    multiplied by the dynamic loss scale before the backward pass and the
    gradients divided by it before clipping (non-finite gradients then make
    ``LossScaleOptimizer`` skip the update and lower the scale).
    """
    with tf.GradientTape() as tape:
      losses = self.model.compute_losses(batch, training=True)
      scaled = losses[LossKeys.total] / self._strategy.num_replicas_in_sync
      if self.loss_scale_optimizer is not None:
        scaled = self.loss_scale_optimizer.get_scaled_loss(scaled)
    gradients = tape.gradient(scaled, self.model.trainable_variables)
    if self.loss_scale_optimizer is not None:
      gradients = self.loss_scale_optimizer.get_unscaled_gradients(gradients)
    return losses, _clip_gradients(gradients, self._clip_norm)

  def _replica_step(self, batch):
    losses, gradients = self._gradients_fn(_without_strings(batch))
    (self.loss_scale_optimizer or self.optimizer).apply_gradients(
        [(g, v) for g, v in zip(gradients, self.model.trainable_variables)
         if g is not None])
    return losses

  def _step(self, batch):
    per_replica = self._strategy.run(self._replica_step, args=(batch,))
    losses = {k: self._strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
              for k, v in per_replica.items()}
    self.global_step.assign_add(1)
    return losses

  @tf.function
  def distributed_step(self, batch):
    """One training step on a distributed batch; returns the mean losses."""
    return self._step(batch)

  @tf.function
  def distributed_steps(self, iterator, num_steps):
    """``num_steps`` (an int32 tensor ≥ 1) steps in one call, no host trip.

    Batches come from ``iterator`` (of ``dataset()``) inside the function, so
    one call runs N steps on the device (the TPU pattern); returns the last
    step's mean losses. One trace serves every ``num_steps``.
    """
    losses = self._step(next(iterator))
    for _ in tf.range(num_steps - 1):
      losses = self._step(next(iterator))
    return losses

  def dataset(self, input_config=None):
    """The distributed training dataset (per-replica batches).

    Elements are ``data.input.inputs`` dicts without their string features, with
    the batch dimension ``train_config.batch_size / num_replicas``.
    """
    train_config = self._configs['train_config']
    input_config = input_config or self._configs['train_input_config']
    replicas = self._strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
      raise ValueError('train_config.batch_size (%d) must be divisible by the '
                       'number of replicas (%d)' % (train_config.batch_size,
                                                    replicas))
    per_replica = train_config.batch_size // replicas

    def dataset_fn(input_context):
      return inputs.build_dataset(
          input_config, self._configs['model'], per_replica, True,
          train_config, input_context, self._configs.get('note'),
          self.skipped_records).map(_without_strings)
    return self._strategy.distribute_datasets_from_function(dataset_fn)


def steps_until_host(step, total_steps, steps_per_loop, every):
  """Steps the next device call may run from ``step``.

  At most ``steps_per_loop``, and ending on the next multiple of any period
  in ``every`` (logging, checkpoints, evaluation) or at ``total_steps``.
  """
  stop = min([total_steps] + [(step // n + 1) * n for n in every])
  return max(1, min(steps_per_loop, stop - step))


def train_loop(pipeline_config_path, model_dir, num_train_steps=None,
               checkpoint_every_n=1000, checkpoint_max_to_keep=7,
               record_summaries=True, strategy=None, jit_compile=False,
               config_override=None, log_every_n=None, source_model=None,
               eval_every_n=0, steps_per_loop=1, progress_clock=None):
  """Trains until ``num_train_steps`` (or train_config.num_steps) are done.

  With ``steps_per_loop > 1`` each call of the compiled function runs up to
  that many steps (``Trainer.distributed_steps``), stopping at every step
  where the host must log, checkpoint or evaluate; the non-finite loss check
  then sees the last step of each call.

  With ``eval_every_n > 0`` the model is also evaluated in-process on the
  first eval input every n steps and at the end (``<model_dir>/eval``).

  When the config asks for distillation (``note.distillation``) and no
  ``source_model`` is given, S is restored from ``note.source_detector``; if
  it cannot be, ``errors.ConfigError`` names the missing field.

  Under a multi-worker strategy every worker calls this with the same
  ``model_dir``: the chief writes checkpoints, summaries, evaluations and
  pipeline.config there; the others save into a temporary per-worker
  directory (``distribute_util``) that is removed at the end.

  Progress: a line right after the first step (with the time setup and
  tracing took) and then at least every ``progress.DEFAULT_INTERVAL_S``
  seconds (a step longer than that gets a 'still running' line);
  ``progress_clock`` replaces ``time.monotonic`` there.

  Returns:
    dict of the last step's loss values (python floats), plus 'step'.
  """
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path,
                                                       config_override)
  config_util.check_input_paths(configs['train_input_config'],
                                pipeline_config_path, 'train_input_reader')
  config_checks.check_pipeline(
      config_util.create_pipeline_proto_from_configs(configs),
      pipeline_config_path, errors.ConfigError)
  strategy = strategy or tf.distribute.get_strategy()
  if source_model is None:
    source_model = source_model_lib.load_for_training(
        configs, pipeline_config_path, strategy)
  trainer = Trainer(configs, strategy, jit_compile, source_model,
                    policy=mixed_precision.policy_name(
                        configs['train_config'], pipeline_config_path))
  mixed_precision.log_policy(trainer.policy)
  total_steps = int(num_train_steps or configs['train_config'].num_steps)
  if total_steps <= 0:
    raise ValueError('%s: set train_config.num_steps or --num_train_steps' %
                     pipeline_config_path)
  tf.io.gfile.makedirs(model_dir)
  chief = distribute_util.is_chief(strategy)
  if chief:
    # Half-written files and checkpoint saves of a killed earlier run.
    stale_files.remove_stale_temporaries(model_dir)
  manager = checkpoints.restore_or_initialize(
      trainer, model_dir, configs['train_config'], checkpoint_max_to_keep,
      save_dir=distribute_util.checkpoint_dir(strategy, model_dir))
  if chief:
    config_util.save_pipeline_config(
        config_util.create_pipeline_proto_from_configs(configs), model_dir)
  step = int(trainer.global_step.numpy())
  if step >= total_steps:
    logging.info('model_dir %s is already at step %d >= %d: nothing to do',
                 model_dir, step, total_steps)
    distribute_util.remove_worker_dir(strategy, model_dir)
    return {'step': step}
  log_every_n = log_every_n or max(1, min(100, checkpoint_every_n))
  writer = (tf.summary.create_file_writer(model_dir + '/train')
            if record_summaries and chief else tf.summary.create_noop_writer())
  meter = progress.RateMeter(total=total_steps)
  meter.reset(step)
  values = {}
  saved_step = step

  def save(step):
    check_finite_variables(step, trainer.model.variables)
    manager.save(checkpoint_number=step)
    record_errors.write_report(trainer.skipped_records, model_dir)
    return step

  logging.info('training %s from step %d to %d', model_dir, step, total_steps)
  every = [n for n in (log_every_n, checkpoint_every_n, eval_every_n) if n]
  parent, name = os.path.split(os.path.normpath(model_dir))
  timed = progress.ProgressLogger(
      'training %s' % os.path.join(os.path.basename(parent), name),
      total=total_steps, clock=progress_clock or time.monotonic)
  iterator = iter(trainer.dataset())
  with writer.as_default(), timed.keepalive(), bad_record_search.located_errors(
      bad_record_search.readers_of(configs['train_input_config'],
                                   configs.get('note')), configs['model']):
    while step < total_steps:
      try:
        if steps_per_loop > 1:
          count = steps_until_host(step, total_steps, steps_per_loop, every)
          losses = trainer.distributed_steps(iterator, tf.constant(count))
        else:
          losses = trainer.distributed_step(next(iterator))
      except (StopIteration, tf.errors.OutOfRangeError):
        step = int(trainer.global_step.numpy())
        break
      step = int(trainer.global_step.numpy())
      values = {k: float(v) for k, v in losses.items()}
      check_finite(step, values)
      logged = step % log_every_n == 0 or step == total_steps
      if logged:
        rate = meter.rate(step)
        for key, value in values.items():
          tf.summary.scalar(key, value, step=step)
        tf.summary.scalar(SummaryKeys.learning_rate,
                          float(trainer.learning_rate(trainer.optimizer.iterations)),
                          step=step)
        tf.summary.scalar(SummaryKeys.steps_per_sec, rate, step=step)
        logging.info('step %s loss %.4f', meter.status(step),
                     values[LossKeys.total])
      if logged and timed.started:
        timed.note_line()
      else:
        timed.update(step, 'loss %.4f' % values[LossKeys.total])
      if step % checkpoint_every_n == 0 or step >= total_steps:
        saved_step = save(step)
      if chief and eval_every_n and (step % eval_every_n == 0 or
                                     step >= total_steps):
        visualizations = eval_loop.side_by_side(configs)
        metrics = eval_loop.evaluate_model(trainer.model, configs,
                                           visualizations=visualizations)
        eval_loop.write_metrics(metrics, model_dir + '/eval', step)
        visualizations.write(model_dir + '/eval', step)
        logging.info('step %d: mAP %.4f', step,
                     metrics['DetectionBoxes_Precision/mAP'])
      if step >= total_steps:
        break
  if step < total_steps:
    # The input ran out first (train_input_reader.num_epochs): keep the steps.
    logging.warning('train input exhausted at step %d of %d', step,
                    total_steps)
    if step > saved_step:
      save(step)
  writer.flush()
  distribute_util.remove_worker_dir(strategy, model_dir)
  values['step'] = step
  return values
