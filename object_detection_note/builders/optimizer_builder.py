"""Optimizer proto → tf_keras optimizer with its learning-rate schedule."""
from absl import logging
import tf_keras

from object_detection_note.builders import learning_schedules


def build_learning_rate(learning_rate_config):
  """LearningRate proto → LearningRateSchedule."""
  kind = learning_rate_config.WhichOneof('learning_rate')
  if kind == 'constant_learning_rate':
    return learning_schedules.constant(
        learning_rate_config.constant_learning_rate.learning_rate)
  if kind == 'exponential_decay_learning_rate':
    c = learning_rate_config.exponential_decay_learning_rate
    return learning_schedules.exponential_decay(
        c.initial_learning_rate, c.decay_steps, c.decay_factor, c.staircase,
        c.burnin_learning_rate, c.burnin_steps, c.min_learning_rate)
  if kind == 'manual_step_learning_rate':
    c = learning_rate_config.manual_step_learning_rate
    return learning_schedules.manual_step(
        c.initial_learning_rate,
        [(s.step, s.learning_rate) for s in c.schedule], c.warmup)
  if kind == 'cosine_decay_learning_rate':
    c = learning_rate_config.cosine_decay_learning_rate
    return learning_schedules.cosine_decay_with_warmup(
        c.learning_rate_base, c.total_steps, c.warmup_learning_rate,
        c.warmup_steps, c.hold_base_rate_steps)
  raise ValueError('train_config.optimizer.*.learning_rate: set one of '
                   'constant/exponential_decay/manual_step/cosine_decay '
                   '_learning_rate')


def build(optimizer_config):
  """Optimizer proto → (tf_keras optimizer, learning-rate schedule).

  SGD is ``momentum_optimizer`` with ``momentum_optimizer_value: 0``.
  """
  kind = optimizer_config.WhichOneof('optimizer')
  if kind is None:
    raise ValueError('train_config.optimizer: set momentum_optimizer, '
                     'adam_optimizer or rms_prop_optimizer')
  config = getattr(optimizer_config, kind)
  schedule = build_learning_rate(config.learning_rate)
  if kind == 'momentum_optimizer':
    optimizer = tf_keras.optimizers.SGD(
        schedule, momentum=config.momentum_optimizer_value)
  elif kind == 'adam_optimizer':
    optimizer = tf_keras.optimizers.Adam(schedule, epsilon=config.epsilon)
  else:
    optimizer = tf_keras.optimizers.RMSprop(
        schedule, rho=config.decay, momentum=config.momentum_optimizer_value,
        epsilon=config.epsilon)
  if optimizer_config.use_moving_average:
    logging.warning('train_config.optimizer.use_moving_average is not '
                    'supported yet and is ignored; set it to false.')
  return optimizer, schedule
