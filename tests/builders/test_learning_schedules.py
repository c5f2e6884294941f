"""OD API learning-rate schedules and the optimizer builder."""
import numpy as np
import pytest
from google.protobuf import text_format

from object_detection_note.builders import optimizer_builder
from object_detection_note.protos import optimizer_pb2
from object_detection_note.builders import learning_schedules as ls


def _values(schedule, steps):
  return [float(schedule(s)) for s in steps]


def test_manual_step_with_and_without_warmup():
  plain = ls.manual_step(0.1, [(10, 0.01), (20, 0.001)])
  np.testing.assert_allclose(_values(plain, [0, 9, 10, 19, 20, 100]),
                             [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
  warm = ls.manual_step(0.0, [(10, 0.01)], warmup=True)
  np.testing.assert_allclose(_values(warm, [0, 5, 10]), [0.0, 0.005, 0.01],
                             rtol=1e-6, atol=1e-9)
  with pytest.raises(ValueError, match='increasing'):
    ls.manual_step(0.1, [(20, 0.01), (10, 0.001)])


def test_cosine_decay_with_warmup_and_hold():
  schedule = ls.cosine_decay_with_warmup(1.0, total_steps=110,
                                         warmup_learning_rate=0.0,
                                         warmup_steps=10,
                                         hold_base_rate_steps=0)
  np.testing.assert_allclose(_values(schedule, [0, 5, 10, 60, 110, 200]),
                             [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)


def test_exponential_decay_with_burnin_and_floor():
  schedule = ls.exponential_decay(1.0, decay_steps=10, decay_factor=0.5,
                                  staircase=True, burnin_learning_rate=0.1,
                                  burnin_steps=5, min_learning_rate=0.2)
  np.testing.assert_allclose(_values(schedule, [0, 5, 14, 15, 35]),
                             [0.1, 1.0, 1.0, 0.5, 0.2], rtol=1e-6)


def test_builder_maps_momentum_and_adam():
  config = text_format.Parse("""
    momentum_optimizer {
      learning_rate { manual_step_learning_rate {
        initial_learning_rate: 0.0003
        schedule { step: 100 learning_rate: 0.00003 } } }
      momentum_optimizer_value: 0.9 }
    use_moving_average: false""", optimizer_pb2.Optimizer())
  optimizer, schedule = optimizer_builder.build(config)
  assert type(optimizer).__name__ == 'SGD'
  assert float(optimizer.momentum) == pytest.approx(0.9)
  assert float(schedule(150)) == pytest.approx(3e-5)
  adam = text_format.Parse(
      'adam_optimizer { learning_rate { constant_learning_rate { '
      'learning_rate: 0.01 } } }', optimizer_pb2.Optimizer())
  optimizer, schedule = optimizer_builder.build(adam)
  assert type(optimizer).__name__ == 'Adam'
  assert float(schedule(7)) == pytest.approx(0.01)
  with pytest.raises(ValueError, match='train_config.optimizer'):
    optimizer_builder.build(optimizer_pb2.Optimizer())
