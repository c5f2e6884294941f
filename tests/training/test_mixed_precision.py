"""Mixed precision: the policy scope, and bfloat16 / float16 training steps,
checkpoints, evaluation, mining and export against float32."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection_note.config import config_util
from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import label_map_util
from object_detection_note.losses import note_rules
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import exporter_lib_v2
from object_detection_note.mining import detectors
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.models import keras_utils
from object_detection_note.protos import train_pb2
from object_detection_note.builders import mixed_precision
from object_detection_note.training import train_loop

import training_test_utils as utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                'meta_architectures'))
import note_test_utils  # pylint: disable=g-import-not-at-top,wrong-import-position

MIXED = (mixed_precision.MIXED_BFLOAT16, mixed_precision.MIXED_FLOAT16)
# Largest relative difference of an anchor-level (RPN) loss from float32 on
# the same weights and samples: bfloat16 keeps 8 mantissa bits (2^-8 = 0.4%
# per rounding), float16 11.
RPN_LOSS_RTOL = {mixed_precision.MIXED_BFLOAT16: 0.03,
                 mixed_precision.MIXED_FLOAT16: 0.01}
# Largest absolute difference of box-classifier probabilities on fixed boxes.
PROBABILITY_ATOL = {mixed_precision.MIXED_BFLOAT16: 0.02,
                    mixed_precision.MIXED_FLOAT16: 0.005}
# Smallest cosine similarity of the RPN head's gradient with float32's.
GRADIENT_COSINE = 0.98


# ----------------------------------------------------------------- the scope
def test_policy_scope_sets_and_restores_the_global_policy():
  assert tf_keras.mixed_precision.global_policy().name == 'float32'
  with mixed_precision.policy_scope('mixed_bfloat16'):
    assert tf_keras.mixed_precision.global_policy().name == 'mixed_bfloat16'
    layer = tf_keras.layers.Dense(2)
  assert tf_keras.mixed_precision.global_policy().name == 'float32'
  # The layer keeps the policy it was built under.
  assert layer.compute_dtype == 'bfloat16'
  assert layer(tf.ones([1, 3])).dtype == tf.bfloat16
  assert layer.kernel.dtype == tf.float32
  with pytest.raises(RuntimeError):
    with mixed_precision.policy_scope('mixed_float16'):
      raise RuntimeError('inside')
  assert tf_keras.mixed_precision.global_policy().name == 'float32'
  with pytest.raises(ValueError, match='unknown precision policy'):
    with mixed_precision.policy_scope('float8'):
      pass


def test_policy_from_train_config_and_both_fields_rejected():
  train = train_pb2.TrainConfig()
  assert mixed_precision.policy_name(train) == 'float32'
  train.use_bfloat16 = True
  assert mixed_precision.policy_name(train) == 'mixed_bfloat16'
  train.use_mixed_float16 = True
  with pytest.raises(ValueError, match=r'a.config: fields train_config.'
                     r'use_bfloat16 and train_config.use_mixed_float16'):
    mixed_precision.policy_name(train, 'a.config')
  train.use_bfloat16 = False
  assert mixed_precision.policy_name(train) == 'mixed_float16'


def test_log_line_says_whether_the_cpu_has_bfloat16(tmp_path):
  native = tmp_path / 'native'
  native.write_text('processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n')
  emulated = tmp_path / 'emulated'
  emulated.write_text('processor\t: 0\nflags\t\t: fpu sse avx2\n')
  if tf.config.list_physical_devices('GPU'):
    pytest.skip('the CPU sentence is for machines without a GPU')
  line = mixed_precision.describe_device_support('mixed_bfloat16', str(native))
  assert 'oneDNN has avx512_bf16 here' in line
  line = mixed_precision.describe_device_support('mixed_bfloat16',
                                                 str(emulated))
  assert 'no AVX512_BF16/AMX' in line and 'only saves memory' in line
  assert 'only saves memory' in mixed_precision.describe_device_support(
      'mixed_float16', str(native))


# ------------------------------------------------- one step against float32
def _model(policy, weights=None):
  with mixed_precision.policy_scope(policy):
    model = note_test_utils.tiny_model(note_test_utils.tiny_params())
  keras_utils.use_convolution_input_gradients(
      model.first_stage_feature_extractor.layers +
      model.second_stage_feature_extractor.layers)
  if weights is not None:
    model.set_weights(weights)
  return model


def _losses_and_gradients(model, batch):
  tf.random.set_seed(7)  # the same proposal and anchor samples
  with tf.GradientTape() as tape:
    losses = model.compute_losses(batch)
  gradients = tape.gradient(losses[LossKeys.total], model.trainable_variables)
  return losses, gradients


def _cosine(a, b):
  a, b = np.ravel(a), np.ravel(b)
  return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize('policy', MIXED)
def test_training_step_is_finite_and_close_to_float32(policy):
  images, boxes, classes, weights = note_test_utils.synthetic_scenes(2)
  batch = note_test_utils.make_batch(images, boxes, classes, weights,
                                     np.array([0.0, 1.0], np.float32))
  reference = _model('float32')
  mixed = _model(policy, reference.get_weights())
  assert tf_keras.mixed_precision.global_policy().name == 'float32'
  dtype = mixed_precision.compute_dtype(policy)
  conv = [l for l in mixed.first_stage_feature_extractor.layers
          if isinstance(l, tf_keras.layers.Conv2D)]
  assert conv and all(l.compute_dtype == dtype.name for l in conv)
  assert mixed.box_predictor.det_cls.compute_dtype == dtype.name
  assert all(v.dtype == tf.float32 for v in mixed.variables)

  expected, expected_gradients = _losses_and_gradients(reference, batch)
  losses, gradients = _losses_and_gradients(mixed, batch)
  assert set(losses) == set(expected)
  for key, value in losses.items():
    assert value.dtype == tf.float32 and np.isfinite(value.numpy()), key
  for key in (LossKeys.rpn_objectness, LossKeys.rpn_objectness_a,
              LossKeys.rpn_localization):
    assert float(losses[key]) == pytest.approx(
        float(expected[key]), rel=RPN_LOSS_RTOL[policy], abs=1e-3), key
  assert float(losses[LossKeys.total]) == pytest.approx(
      float(expected[LossKeys.total]), rel=0.5)
  used = [(g, e) for g, e in zip(gradients, expected_gradients)
          if e is not None]
  assert all(g is not None and g.dtype == tf.float32 and
             np.all(np.isfinite(g.numpy())) for g, _ in used)
  for variable, gradient, reference_gradient in zip(
      mixed.trainable_variables, gradients, expected_gradients):
    if 'rpn_cls/' in variable.name or 'rpn_conv/' in variable.name:
      assert _cosine(gradient, reference_gradient) >= GRADIENT_COSINE, (
          variable.name)

  # The crop wrapper and the heads on fixed boxes (the distillation path).
  fixed = tf.constant([[[0.1, 0.1, 0.5, 0.6], [0.3, 0.2, 0.9, 0.9]]] * 2)
  preprocessed, _ = reference.preprocess(tf.constant(images, tf.float32))
  probabilities = mixed.box_classifier_probabilities(preprocessed, fixed)
  assert probabilities.dtype == tf.float32
  np.testing.assert_allclose(
      probabilities.numpy(),
      reference.box_classifier_probabilities(preprocessed, fixed).numpy(),
      atol=PROBABILITY_ATOL[policy])


@pytest.mark.parametrize('all_proposals', [False, True])
def test_bfloat16_model_distils_from_a_float32_source(all_proposals):
  source = note_test_utils.tiny_model(note_test_utils.tiny_params(
      num_classes=3), seed=7)
  note = note_rules.NoteConfig(distillation_loss_weight=1.0,
                               distill_all_proposals=all_proposals)
  with mixed_precision.policy_scope('mixed_bfloat16'):
    model = note_test_utils.tiny_model(
        note_test_utils.tiny_params(note=note, num_source_classes=3),
        source_model=source)
  assert source.box_predictor.det_cls.compute_dtype == 'float32'
  assert model.box_predictor.det_cls_s.compute_dtype == 'bfloat16'
  images, boxes, classes, weights = note_test_utils.synthetic_scenes(2)
  batch = note_test_utils.make_batch(images, boxes, classes, weights,
                                     np.array([0.0, 1.0], np.float32))
  with tf.GradientTape() as tape:
    losses = model.compute_losses(batch)
  gradient = tape.gradient(losses[LossKeys.distillation],
                           model.box_predictor.det_cls_s.kernel)
  assert losses[LossKeys.distillation].dtype == tf.float32
  assert float(losses[LossKeys.distillation]) > 0
  assert gradient.dtype == tf.float32
  assert np.all(np.isfinite(gradient.numpy()))
  assert float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_float16_trainer_scales_the_loss(tmp_path, tiny_data_dir):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                note=True)
  configs = config_util.get_configs_from_pipeline_file(config)
  configs['train_config'].use_mixed_float16 = True
  trainer = train_loop.Trainer(configs, tf.distribute.get_strategy())
  assert trainer.policy == 'mixed_float16'
  assert isinstance(trainer.loss_scale_optimizer,
                    tf_keras.mixed_precision.LossScaleOptimizer)
  assert float(trainer.loss_scale_optimizer.loss_scale) > 1
  images, boxes, classes, weights = note_test_utils.synthetic_scenes(2)
  batch = note_test_utils.make_batch(images, boxes, classes, weights,
                                     np.array([0.0, 1.0], np.float32))
  before = [v.numpy() for v in trainer.model.trainable_variables]
  losses = trainer.distributed_step(batch)
  assert all(np.isfinite(float(v)) for v in losses.values())
  # A finite step is applied (an overflow would skip it and lower the scale).
  changed = sum(not np.array_equal(b, v.numpy()) for b, v in
                zip(before, trainer.model.trainable_variables))
  assert changed > 0
  assert int(trainer.optimizer.iterations) == 1
  assert tf_keras.mixed_precision.global_policy().name == 'float32'


# ----------------------------- checkpoints across policies: eval, mining, export
def _config(tmp_path, data_dir, policy):
  text = utils.pipeline_text(data_dir, num_steps=1, note=True)
  field = {'mixed_bfloat16': 'use_bfloat16: true\n',
           'mixed_float16': 'use_mixed_float16: true\n'}.get(policy, '')
  text = text.replace('train_config {\n', 'train_config {\n  ' + field, 1)
  path = tmp_path / ('%s.config' % policy)
  path.write_text(text)
  return str(path)


def _eval_mine_export(tmp_path, config, model_dir, policy, data_dir,
                      export=True):
  """Float32 metrics, mining outputs and export dtypes under ``policy``."""
  configs = config_util.get_configs_from_pipeline_file(config)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  model = eval_loop.restore_for_eval(configs, checkpoint, policy=policy)
  assert model.box_predictor.det_cls.compute_dtype == (
      mixed_precision.compute_dtype(policy).name)
  metrics = eval_loop.evaluate_model(model, configs, max_batches=1)
  assert metrics['num_images'] == 2
  assert np.isfinite(metrics['DetectionBoxes_Precision/mAP'])

  out_dir = str(tmp_path / ('mined_' + policy))
  mined = mining_pipeline.run_mining(
      mining_spec.MiningSpec(
          score_threshold=0.0, id_to_name=label_map_util.get_id_to_name(
              os.path.join(data_dir, DatasetFiles.source_label_map)),
          num_shards=1, batch_size=8),
      os.path.join(data_dir, Splits.image_level + '.tfrecord-*'), out_dir,
      detectors.detector_spec(config, model_dir, batch_size=8, policy=policy),
      pipeline_options=beam_io.pipeline_options([]))
  assert mined['images'] > 0 and mined['mined_boxes'] > 0
  assert tf.io.gfile.glob(os.path.join(out_dir, 'mined.tfrecord-*'))
  assert json.load(open(os.path.join(out_dir, 'mining_metrics.json')))
  if export:
    saved = exporter_lib_v2.export_inference_graph(
        'image_tensor', config_util.read_pipeline_config(config), model_dir,
        str(tmp_path / ('export_' + policy)), policy=policy)
    serving = tf.saved_model.load(saved).signatures['serving_default']
    (_, spec), = serving.structured_input_signature[1].items()
    assert spec.dtype == tf.uint8
    outputs = serving(tf.zeros([1, 64, 64, 3], tf.uint8))
    assert all(v.dtype == tf.float32 for v in outputs.values())
  assert tf_keras.mixed_precision.global_policy().name == 'float32'


def _train(tmp_path, data_dir, policy):
  config = _config(tmp_path, data_dir, policy)
  model_dir = str(tmp_path / ('train_' + policy))
  result = train_loop.train_loop(config, model_dir, record_summaries=False)
  assert result['step'] == 1 and np.isfinite(result[LossKeys.total])
  assert tf_keras.mixed_precision.global_policy().name == 'float32'
  return config, model_dir


def test_bfloat16_checkpoint_evaluates_mines_and_exports_in_float32(
    tmp_path, tiny_data_dir):
  config, model_dir = _train(tmp_path, tiny_data_dir, 'mixed_bfloat16')
  _eval_mine_export(tmp_path, config, model_dir, 'float32', tiny_data_dir)


def test_float32_checkpoint_evaluates_mines_and_exports_in_bfloat16(
    tmp_path, tiny_data_dir):
  config, model_dir = _train(tmp_path, tiny_data_dir, 'float32')
  _eval_mine_export(tmp_path, config, model_dir, 'mixed_bfloat16',
                    tiny_data_dir)


def test_float16_checkpoint_evaluates_and_mines_in_float16(
    tmp_path, tiny_data_dir):
  config, model_dir = _train(tmp_path, tiny_data_dir, 'mixed_float16')
  _eval_mine_export(tmp_path, config, model_dir, 'mixed_float16',
                    tiny_data_dir, export=False)
