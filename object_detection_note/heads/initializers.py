"""Kernel initialisers of the heads from a hashable spec.

A spec is what ``builders.hyperparams_builder.initializer_spec`` makes of an
OD API ``Initializer`` proto, or None for the head's own default:

  ('truncated_normal', mean, stddev)
  ('random_normal', mean, stddev)
  ('variance_scaling', factor, mode, uniform)  mode: fan_in|fan_out|fan_avg

Variance scaling without ``uniform`` draws from a truncated normal, as the OD
API's Keras hyperparams builder does.
"""
import tf_keras


def from_spec(spec, default):
  """A tf_keras initializer for `spec` (``default`` when spec is None)."""
  if spec is None:
    return default
  kind = spec[0]
  if kind == 'truncated_normal':
    return tf_keras.initializers.TruncatedNormal(mean=spec[1], stddev=spec[2])
  if kind == 'random_normal':
    return tf_keras.initializers.RandomNormal(mean=spec[1], stddev=spec[2])
  if kind == 'variance_scaling':
    return tf_keras.initializers.VarianceScaling(
        scale=spec[1], mode=spec[2],
        distribution='uniform' if spec[3] else 'truncated_normal')
  raise ValueError('unknown initializer spec %r' % (spec,))
