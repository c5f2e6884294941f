"""Keras mixed-precision policies for training, evaluation, mining and export.

Policy names are Keras' own: ``float32``, ``mixed_bfloat16`` (set by
``train_config.use_bfloat16``, as the OD API's model_lib_v2 does) and
``mixed_float16`` (``train_config.use_mixed_float16``, beyond the OD API, with
dynamic loss scaling). Under a mixed policy the layers built while it is set
compute in the 16-bit type and keep float32 variables; the meta-architecture
casts head outputs back to float32, so box decoding, NMS and losses run in
float32.

A layer reads the global policy when it is constructed, so a model keeps the
policy it was built under. ``policy_scope`` sets the global policy for the
construction only and restores the previous one afterwards: one process can
train a bfloat16 model and then evaluate or mine with a float32 one.
"""
import contextlib
from typing import Optional

from absl import logging
import tensorflow as tf
import tf_keras

FLOAT32 = 'float32'
MIXED_BFLOAT16 = 'mixed_bfloat16'
MIXED_FLOAT16 = 'mixed_float16'
POLICIES = (FLOAT32, MIXED_BFLOAT16, MIXED_FLOAT16)

# /proc/cpuinfo flags with which oneDNN runs bfloat16 natively.
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')


def policy_name(train_config, path='pipeline config'):
  """The policy a TrainConfig asks for.

  Args:
    train_config: TrainConfig proto.
    path: the config file, for the error message.

  Returns:
    one of ``POLICIES``.

  Raises:
    ValueError: both use_bfloat16 and use_mixed_float16 are set.
  """
  if train_config.use_bfloat16 and train_config.use_mixed_float16:
    raise ValueError(
        '%s: fields train_config.use_bfloat16 and '
        'train_config.use_mixed_float16 are both true; set at most one' % path)
  if train_config.use_bfloat16:
    return MIXED_BFLOAT16
  if train_config.use_mixed_float16:
    return MIXED_FLOAT16
  return FLOAT32


def check_policy(name):
  if name not in POLICIES:
    raise ValueError('unknown precision policy %r; one of %s' %
                     (name, ', '.join(POLICIES)))
  return name


@contextlib.contextmanager
def policy_scope(name: Optional[str]):
  """Sets the global Keras policy to ``name`` inside the block.

  The previous global policy is restored on exit, also on an exception.
  ``None`` leaves the current policy as it is.
  """
  if name is None:
    yield tf_keras.mixed_precision.global_policy().name
    return
  check_policy(name)
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(name)
  try:
    yield name
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def compute_dtype(name):
  """tf.DType the layers of policy ``name`` compute in."""
  return tf.as_dtype(tf_keras.mixed_precision.Policy(
      check_policy(name)).compute_dtype)


def cpu_flags(cpuinfo_path='/proc/cpuinfo'):
  """The set of CPU feature flags of the first processor (empty if unknown)."""
  try:
    with open(cpuinfo_path) as f:
      for line in f:
        if line.startswith('flags'):
          return set(line.split(':', 1)[1].split())
  except OSError:
    pass
  return set()


def describe_device_support(name, cpuinfo_path='/proc/cpuinfo'):
  """One sentence on what policy ``name`` buys on this machine."""
  if name == FLOAT32:
    return 'precision policy float32'
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    return 'precision policy %s on %d GPU(s)' % (name, len(gpus))
  flags = cpu_flags(cpuinfo_path)
  if name == MIXED_BFLOAT16:
    native = sorted(f for f in BF16_CPU_FLAGS if f in flags)
    if native:
      return ('precision policy mixed_bfloat16 on CPU: oneDNN has %s here '
              '(bfloat16 convolutions and matmuls run natively)' %
              '/'.join(native))
    return ('precision policy mixed_bfloat16 on CPU: no AVX512_BF16/AMX in '
            '%s, so bfloat16 only saves memory (compute is emulated and may '
            'be slower than float32)' % cpuinfo_path)
  return ('precision policy mixed_float16 on CPU: no GPU here, float16 is '
          'emulated; it only saves memory and is slower than float32')


def log_policy(name):
  """Logs ``describe_device_support(name)`` once (an info line)."""
  logging.info('%s', describe_device_support(name))


def loss_scale_optimizer(optimizer, name):
  """Wraps ``optimizer`` for dynamic loss scaling under mixed_float16.

  Returns None for the other policies (no loss scaling needed: bfloat16 has
  float32's exponent range).
  """
  if name != MIXED_FLOAT16:
    return None
  return tf_keras.mixed_precision.LossScaleOptimizer(optimizer, dynamic=True)


def to_float32(tensors):
  """Casts every floating tensor of a nested structure to float32."""
  def cast(t):
    if isinstance(t, tf.Tensor) and t.dtype.is_floating and (
        t.dtype != tf.float32):
      return tf.cast(t, tf.float32)
    return t
  return tf.nest.map_structure(cast, tensors)
