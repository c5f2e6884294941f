"""OD API ``Hyperparams`` protos -> what the heads and extractors take."""
from object_detection_note.protos import hyperparams_pb2

_MODES = {
    hyperparams_pb2.VarianceScalingInitializer.FAN_IN: 'fan_in',
    hyperparams_pb2.VarianceScalingInitializer.FAN_OUT: 'fan_out',
    hyperparams_pb2.VarianceScalingInitializer.FAN_AVG: 'fan_avg',
}


def l2_weight(hyperparams):
  """The l2_regularizer weight, 0 when unset."""
  if hyperparams.HasField('regularizer'):
    regularizer = hyperparams.regularizer
    if regularizer.WhichOneof('regularizer_oneof') == 'l2_regularizer':
      return regularizer.l2_regularizer.weight
  return 0.0


def initializer_spec(hyperparams):
  """Hashable initializer spec (``heads.initializers``) or None if unset."""
  if not hyperparams.HasField('initializer'):
    return None
  initializer = hyperparams.initializer
  kind = initializer.WhichOneof('initializer_oneof')
  if kind == 'truncated_normal_initializer':
    config = initializer.truncated_normal_initializer
    return ('truncated_normal', config.mean, config.stddev)
  if kind == 'random_normal_initializer':
    config = initializer.random_normal_initializer
    return ('random_normal', config.mean, config.stddev)
  if kind == 'variance_scaling_initializer':
    config = initializer.variance_scaling_initializer
    return ('variance_scaling', config.factor, _MODES[config.mode],
            config.uniform)
  raise ValueError('Hyperparams.initializer: %s is not supported' % kind)
