"""Fine-tune restore by type, and its precedence against resuming.

The source checkpoint is a plain Faster R-CNN (like S) or a NOTE model
(like T^{t-1}), saved in the training layout (model, optimizer,
global_step); the targets are NOTE models built from tiny configs.
"""
import numpy as np
import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.checkpoints import checkpoints
from object_detection_note.training import train_loop

_SHARED = ('first_stage_feature_extractor', 'second_stage_feature_extractor')
_RPN_FROM_S = ('rpn_conv', 'rpn_cls', 'rpn_reg')


def _configs(tmp_path, data_dir, name, **kwargs):
  path = utils.write_pipeline(tmp_path / (name + '.config'), data_dir,
                              **kwargs)
  return config_util.get_configs_from_pipeline_file(path)


def _build(configs):
  """A NoteFasterRcnn with its variables created."""
  model = model_builder.build(configs['model'], is_training=True,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  return model


def _values(layer):
  return [v.numpy() for v in layer.variables]


def _kernels(layer):
  """Randomly initialised variables (biases start at zero everywhere)."""
  return [v.numpy() for v in layer.variables if 'kernel' in v.name]


def _save_training_checkpoint(model, directory, step=5):
  global_step = tf.Variable(step, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(model=model, global_step=global_step)
  return tf.train.CheckpointManager(checkpoint, directory, 1).save()


def _assert_equal(a, b):
  assert len(a) == len(b) and a
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def _assert_all_differ(a, b):
  assert len(a) == len(b) and a
  for x, y in zip(a, b):
    assert not np.array_equal(x, y)


@pytest.fixture(scope='module')
def source(tmp_path_factory, tiny_data_dir):
  """A plain Faster R-CNN (like S) and its checkpoint directory."""
  tmp_path = tmp_path_factory.mktemp('source')
  model = _build(_configs(tmp_path, tiny_data_dir, 'source'))
  _save_training_checkpoint(model, str(tmp_path / 'ckpt'))
  return model, str(tmp_path / 'ckpt')


def test_detection_restores_extractors_and_rpn_not_the_heads(
    tmp_path, tiny_data_dir, source):
  source_model, source_dir = source
  target = _build(_configs(tmp_path, tiny_data_dir, 'target', note=True))
  heads_before = _values(target.box_predictor)
  rpn_a_before = _values(target.rpn_head.rpn_cls_a)
  for name in _SHARED:
    _assert_all_differ(_kernels(getattr(target, name)),
                       _kernels(getattr(source_model, name)))

  checkpoints.restore_fine_tune(target, source_dir, 'detection')

  for name in _SHARED:  # Every variable, batch-norm statistics included.
    _assert_equal(_values(getattr(target, name)),
                  _values(getattr(source_model, name)))
  for name in _RPN_FROM_S:
    _assert_equal(_values(getattr(target.rpn_head, name)),
                  _values(getattr(source_model.rpn_head, name)))
  # The class heads and NOTE's rpn-cls-a keep their own initial values.
  _assert_equal(_values(target.box_predictor), heads_before)
  for name in ('det_cls', 'det_reg'):
    _assert_all_differ(_kernels(getattr(target.box_predictor, name)),
                       _kernels(getattr(source_model.box_predictor, name)))
  _assert_equal(_values(target.rpn_head.rpn_cls_a), rpn_a_before)


def test_detection_restore_into_other_classes(tmp_path, tiny_data_dir,
                                              source):
  # T^0 usually has other (and fewer) classes than S: heads differ in shape.
  source_model, source_dir = source
  target = _build(_configs(tmp_path, tiny_data_dir, 'target', note=True,
                           num_classes=3))
  checkpoints.restore_fine_tune(target, source_dir, 'detection')
  _assert_equal(_values(target.rpn_head.rpn_cls),
                _values(source_model.rpn_head.rpn_cls))


def test_full_restores_every_model_variable(tmp_path, tiny_data_dir):
  configs = _configs(tmp_path, tiny_data_dir, 'note', note=True)
  previous = _build(configs)  # Like T^{t-1}.
  directory = str(tmp_path / 'previous')
  _save_training_checkpoint(previous, directory)
  target = _build(configs)
  _assert_all_differ(_kernels(target), _kernels(previous))

  checkpoints.restore_fine_tune(target, directory, 'full')

  assert [v.name for v in target.variables] == [
      v.name for v in previous.variables]
  _assert_equal(_values(target), _values(previous))


def test_wrong_type_is_a_clear_error(tmp_path, tiny_data_dir, source):
  _, source_dir = source
  target = model_builder.build(
      _configs(tmp_path, tiny_data_dir, 'target')['model'], is_training=True)
  with pytest.raises(ValueError,
                     match=r"fine_tune_checkpoint_type must be one of "
                     r"\('classification', 'detection', 'full'\), got "
                     r"'detections'"):
    checkpoints.restore_fine_tune(target, source_dir, 'detections')
  with pytest.raises(ValueError, match='no checkpoint in directory'):
    checkpoints.restore_fine_tune(target, str(tmp_path), 'full')


def test_training_start_fine_tunes_once_then_resumes(tmp_path, tiny_data_dir,
                                                     source):
  source_model, source_dir = source
  configs = _configs(tmp_path, tiny_data_dir, 'target', note=True,
                     fine_tune_checkpoint=source_dir,
                     fine_tune_checkpoint_type='detection')
  model_dir = str(tmp_path / 'model')
  resizer = configs['model'].faster_rcnn.image_resizer

  def start():
    trainer = train_loop.Trainer(configs, tf.distribute.get_strategy())
    manager = checkpoints.restore_or_initialize(
        trainer, model_dir, configs['train_config'],
        build_fn=lambda: inference.build_model_inputs(trainer.model, resizer))
    return trainer, manager

  trainer, manager = start()
  # Fine-tuning takes model parts only: S's step count stays behind.
  assert int(trainer.global_step.numpy()) == 0
  _assert_equal(_values(trainer.model.first_stage_feature_extractor),
                _values(source_model.first_stage_feature_extractor))
  inference.build_model_inputs(trainer.model, resizer)
  for v in trainer.model.box_predictor.trainable_variables:
    v.assign(tf.fill(v.shape, 0.5))
  trainer.global_step.assign(3)
  manager.save(checkpoint_number=3)

  # A restarted job resumes its own checkpoint, not the fine-tune one.
  trainer, _ = start()
  assert int(trainer.global_step.numpy()) == 3
  inference.build_model_inputs(trainer.model, resizer)
  for v in trainer.model.box_predictor.trainable_variables:
    np.testing.assert_array_equal(v.numpy(), 0.5)
  # Every model variable (batch-norm statistics too) came back.
  saved = utils.checkpoint_tensors(manager.latest_checkpoint)
  resaved = utils.checkpoint_tensors(tf.train.Checkpoint(
      model=trainer.model).write(str(tmp_path / 'resaved')))
  model_keys = sorted(k for k in saved if k.startswith('model/'))
  assert model_keys == sorted(k for k in resaved if k.startswith('model/'))
  for key in model_keys:
    np.testing.assert_array_equal(resaved[key], saved[key], err_msg=key)

  wrong = _configs(tmp_path, tiny_data_dir, 'wrong', note=True,
                   fine_tune_checkpoint=source_dir,
                   fine_tune_checkpoint_type='backbone')
  trainer = train_loop.Trainer(wrong, tf.distribute.get_strategy())
  with pytest.raises(ValueError, match="got 'backbone'"):
    checkpoints.restore_or_initialize(trainer, str(tmp_path / 'other'),
                                      wrong['train_config'])
