"""Learning-rate schedules of the OD API as functions of the global step.

Each ``*_schedule`` returns a ``tf_keras`` LearningRateSchedule, so the
optimizer evaluates it at its own ``iterations`` (restored on resume).
"""
import math

import tensorflow as tf
import tf_keras


class _FunctionSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
  """Wraps ``fn(step: float32 tensor) -> float32 tensor``."""

  def __init__(self, fn, description):
    super().__init__()
    self._fn = fn
    self._description = description

  def __call__(self, step):
    return self._fn(tf.cast(step, tf.float32))

  def get_config(self):
    return {'description': self._description}


def constant(learning_rate):
  return _FunctionSchedule(
      lambda step: tf.constant(learning_rate, tf.float32) + 0.0 * step,
      'constant %g' % learning_rate)


def exponential_decay(initial_learning_rate, decay_steps, decay_factor,
                      staircase=True, burnin_learning_rate=0.0, burnin_steps=0,
                      min_learning_rate=0.0):
  """initial * factor^((step - burnin) / decay_steps), floored at min; a
  constant ``burnin_learning_rate`` (0 = initial) for the first burnin steps."""
  burnin_lr = burnin_learning_rate or initial_learning_rate

  def fn(step):
    exponent = (step - burnin_steps) / float(decay_steps)
    if staircase:
      exponent = tf.floor(exponent)
    decayed = initial_learning_rate * tf.pow(decay_factor, exponent)
    decayed = tf.maximum(decayed, min_learning_rate)
    return tf.where(step < burnin_steps, burnin_lr, decayed)
  return _FunctionSchedule(fn, 'exponential_decay')


def manual_step(initial_learning_rate, boundaries_and_rates, warmup=False):
  """Piecewise constant: ``initial`` until the first boundary, then each
  schedule's rate from its step on. With ``warmup``, the rate rises linearly
  from ``initial`` to the first schedule rate over the first interval."""
  steps = [float(s) for s, _ in boundaries_and_rates]
  rates = [initial_learning_rate] + [float(r) for _, r in boundaries_and_rates]
  if any(b <= a for a, b in zip(steps, steps[1:])) or (steps and steps[0] <= 0):
    raise ValueError('manual_step_learning_rate: schedule steps must be '
                     'positive and increasing, got %s' % steps)

  def fn(step):
    index = tf.reduce_sum(tf.cast(step >= tf.constant(steps + [math.inf]),
                                  tf.int32))
    rate = tf.gather(tf.constant(rates, tf.float32), index)
    if warmup and steps:
      slope = (rates[1] - rates[0]) / steps[0]
      rate = tf.where(step < steps[0], rates[0] + slope * step, rate)
    return rate
  return _FunctionSchedule(fn, 'manual_step')


def cosine_decay_with_warmup(learning_rate_base, total_steps,
                             warmup_learning_rate=0.0, warmup_steps=0,
                             hold_base_rate_steps=0):
  """Linear warm-up, hold, cosine decay to 0 at ``total_steps``, then 0."""
  if total_steps < warmup_steps + hold_base_rate_steps:
    raise ValueError('cosine_decay_learning_rate: total_steps must be >= '
                     'warmup_steps + hold_base_rate_steps')
  decay_steps = max(1.0, float(total_steps - warmup_steps -
                               hold_base_rate_steps))

  def fn(step):
    progress = (step - warmup_steps - hold_base_rate_steps) / decay_steps
    rate = 0.5 * learning_rate_base * (1.0 + tf.cos(math.pi * progress))
    rate = tf.where(step < warmup_steps + hold_base_rate_steps,
                    learning_rate_base, rate)
    if warmup_steps > 0:
      slope = (learning_rate_base - warmup_learning_rate) / warmup_steps
      rate = tf.where(step < warmup_steps, warmup_learning_rate + slope * step,
                      rate)
    return tf.where(step >= total_steps, 0.0, rate)
  return _FunctionSchedule(fn, 'cosine_decay')
