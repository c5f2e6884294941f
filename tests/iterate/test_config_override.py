"""iterate --config_override: merged on the config, carried into every stage's
command, and part of the run's identity."""
import sys

import pytest

from object_detection_note.iterate import driver
from iterate_runs import MODEL as _MODEL
from iterate_runs import NOTE as _NOTE

_SMOKE = 'note { iterations: 1 initial_epochs: 1 epochs_per_iteration: 1 }'


@pytest.fixture
def config(tmp_path):
  path = tmp_path / 'target.config'
  path.write_text(
      (_MODEL % dict(num_classes=2, num_steps=1, data='/d', side='target',
                     train='seed', val='target_val')) +
      (_NOTE % dict(data='/d', source='/s.config')))
  return str(path)


def test_override_is_merged_and_passed_to_every_stage(config, tmp_path):
  plain = driver.make_context(config, str(tmp_path / 'a'))
  smoke = driver.make_context(config, str(tmp_path / 'b'),
                              config_override=_SMOKE)
  assert (plain.iterations, plain.note.initial_epochs) == (2, 2)
  assert (smoke.iterations, smoke.note.initial_epochs) == (1, 1)
  # Other note fields are kept.
  assert smoke.note.mining.num_shards == plain.note.mining.num_shards == 2
  commands = [c for c in driver.stage_commands(smoke)
              if not c.startswith('#')]  # the Beam options hint
  assert commands and all('--config_override=' in c for c in commands)
  assert len([c for c in commands if '--stage=train' in c]) == 2
  child = driver.child_command(smoke, 'mine', 1, ['--use_tpu'])
  assert child[:3] == [sys.executable, '-m', 'object_detection_note.iterate']
  assert '--config_override=' + _SMOKE in child
  assert {'--stage=mine', '--iteration=1', '--use_tpu'} <= set(child)


def test_a_run_directory_keeps_its_override(config, tmp_path):
  model_dir = str(tmp_path / 'run')
  driver.check_run_file(driver.make_context(config, model_dir,
                                            config_override=_SMOKE))
  driver.check_run_file(driver.make_context(config, model_dir,
                                            config_override=_SMOKE))
  with pytest.raises(ValueError, match='different config'):
    driver.check_run_file(driver.make_context(config, model_dir))
