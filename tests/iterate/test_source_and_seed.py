"""iterate: S trained into note.source_detector.checkpoint_dir when it is
empty, taken as is when it holds a checkpoint; --seed reaches every stage."""
import os

import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.iterate import driver
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages
from object_detection_note.protos import pipeline_pb2


def _ctx(tmp_path, checkpoint_dir='', source_config='s.config', seed=None):
  pipeline = text_format.Parse(
      'note { source_detector { pipeline_config_path: "%s" '
      'checkpoint_dir: "%s" } }' % (source_config, checkpoint_dir),
      pipeline_pb2.TrainEvalPipelineConfig())
  return stages.RunContext('t.config', str(tmp_path / 'run'),
                           {'note': pipeline.note}, seed=seed)


def _write_checkpoint(directory):
  checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
  return tf.train.CheckpointManager(checkpoint, directory, 3).save()


@pytest.fixture
def trainings(monkeypatch):
  calls = []

  def fake_train_loop(config_path, model_dir, **unused_kwargs):
    calls.append((config_path, model_dir))
    _write_checkpoint(model_dir)
  monkeypatch.setattr(stages.train_loop, 'train_loop', fake_train_loop)
  return calls


def test_empty_checkpoint_dir_trains_s_there_once(tmp_path, trainings):
  shared = str(tmp_path / 'shared_s')
  ctx = _ctx(tmp_path, checkpoint_dir=shared)
  checkpoint = stages.source_checkpoint(ctx)
  assert trainings == [('s.config', shared)]
  assert checkpoint.startswith(shared)
  assert not os.path.exists(os.path.join(shared, layout.SOURCE_PENDING))
  # A second run sharing the directory takes the finished S.
  assert stages.source_checkpoint(_ctx(tmp_path / 'b', shared)) == checkpoint
  assert len(trainings) == 1


def test_interrupted_training_there_resumes(tmp_path, trainings):
  shared = str(tmp_path / 'shared_s')
  os.makedirs(shared)
  _write_checkpoint(shared)  # a partial S ...
  layout.write_json(os.path.join(shared, layout.SOURCE_PENDING), {})  # ... ours
  stages.source_checkpoint(_ctx(tmp_path, checkpoint_dir=shared))
  assert trainings == [('s.config', shared)]


def test_checkpoint_trained_elsewhere_is_used_as_is(tmp_path, trainings):
  given = str(tmp_path / 'zoo')
  saved = _write_checkpoint(given)
  assert stages.source_checkpoint(_ctx(tmp_path, checkpoint_dir=given)) == saved
  assert not trainings


def test_empty_checkpoint_dir_without_source_config_fails(tmp_path, trainings):
  ctx = _ctx(tmp_path, checkpoint_dir=str(tmp_path / 'nothing'),
             source_config='')
  with pytest.raises(ValueError, match='no checkpoint in .*nothing.*'
                     'pipeline_config_path'):
    stages.source_checkpoint(ctx)


def test_seed_is_per_stage_and_reproducible(tmp_path):
  ctx = _ctx(tmp_path, seed=3)
  draws = []
  for stage, t in (('train', 1), ('train', 1), ('train', 2), ('source', 0)):
    stages.seed_stage(ctx, stage, t)
    draws.append(float(tf.random.uniform([])))
  assert draws[0] == draws[1]
  assert len({draws[0], draws[2], draws[3]}) == 3


def test_seed_in_commands_and_run_file(tmp_path):
  config = os.path.join(os.path.dirname(__file__), '..', '..', 'configs',
                        'synthetic.config')
  ctx = driver.make_context(str(config), str(tmp_path / 'run'), seed=5)
  assert all('--seed=5' in c for c in driver.stage_commands(ctx)
             if not c.startswith('#'))
  driver.check_run_file(ctx)
  assert layout.read_json(str(tmp_path / 'run' / layout.RUN_FILE))['seed'] == 5
  other = driver.make_context(str(config), str(tmp_path / 'run'), seed=6)
  with pytest.raises(ValueError, match='--seed=5, not 6'):
    driver.check_run_file(other)
