"""A NOTE checkpoint restored into a model without NOTE heads (or the reverse)
for evaluation, export or mining fails naming the heads, unless a partial
restore is allowed (then: a warning, and missing heads start from the plain
heads).
"""
import os

import numpy as np
import pytest
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import exporter_lib_v2
from object_detection_note.mining import detectors
from object_detection_note.checkpoints import checkpoint_errors
from object_detection_note.checkpoints import note_head_checks


def _model(configs):
  model = model_builder.build(configs['model'], is_training=False,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  return model


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory, tiny_data_dir):
  """Configs and saved checkpoints of a NOTE and of a plain tiny model."""
  work = tmp_path_factory.mktemp('note_heads')
  out = {}
  for name, note in (('note', True), ('plain', False)):
    config = utils.write_pipeline(work / (name + '.config'), tiny_data_dir,
                                  note=note)
    configs = config_util.get_configs_from_pipeline_file(config)
    model = _model(configs)
    prefix = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), str(work / name), 1).save()
    out[name] = (config, configs, prefix, model)
  return out


def test_note_checkpoint_into_plain_model_names_the_dropped_heads(
    checkpoints):
  _, plain_configs, _, _ = checkpoints['plain']
  _, _, note_prefix, _ = checkpoints['note']
  with pytest.raises(note_head_checks.HeadMismatchError) as error:
    eval_loop.restore_for_eval(plain_configs, note_prefix)
  message = str(error.value)
  assert note_prefix in message
  assert 'holds the NOTE head(s) rpn-cls-a, det-cls-a' in message
  assert 'drop them' in message and '--allow_partial_restore' in message


def test_plain_checkpoint_into_note_model_names_the_missing_heads(
    checkpoints):
  _, note_configs, _, _ = checkpoints['note']
  _, _, plain_prefix, _ = checkpoints['plain']
  with pytest.raises(note_head_checks.HeadMismatchError,
                     match='has the NOTE head.s. rpn-cls-a, det-cls-a that '
                     'checkpoint %s lacks' % plain_prefix):
    eval_loop.restore_for_eval(note_configs, plain_prefix)


def test_allowed_partial_restore_warns_and_fills_missing_heads(
    checkpoints, absl_log):
  _, note_configs, _, _ = checkpoints['note']
  _, plain_configs, plain_prefix, plain = checkpoints['plain']
  model = eval_loop.restore_for_eval(note_configs, plain_prefix,
                                     allow_partial_restore=True)
  for head, plain_head in ((model.box_predictor.det_cls_a,
                            plain.box_predictor.det_cls),
                           (model.rpn_head.rpn_cls_a, plain.rpn_head.rpn_cls)):
    for got, want in zip(head.variables, plain_head.variables):
      np.testing.assert_array_equal(got.numpy(), want.numpy())
  _, _, note_prefix, note = checkpoints['note']
  dropped = eval_loop.restore_for_eval(plain_configs, note_prefix,
                                       allow_partial_restore=True)
  np.testing.assert_array_equal(dropped.box_predictor.det_cls.kernel.numpy(),
                                note.box_predictor.det_cls.kernel.numpy())
  warnings = [r.getMessage() for r in absl_log.records
              if 'allow_partial_restore' in r.getMessage()]
  assert any('rpn-cls-a, det-cls-a' in m for m in warnings), warnings


def test_export_and_mining_refuse_the_mismatch(checkpoints, tmp_path):
  plain_config, _, _, _ = checkpoints['plain']
  _, _, note_prefix, _ = checkpoints['note']
  with pytest.raises(exporter_lib_v2.ExportError,
                     match='holds the NOTE head.s. rpn-cls-a, det-cls-a'):
    exporter_lib_v2.export_inference_graph(
        'image_tensor', config_util.read_pipeline_config(plain_config),
        os.path.dirname(note_prefix),
        str(tmp_path / 'exported'))
  # Mining checks on the driver, before any worker loads the detector.
  with pytest.raises(note_head_checks.HeadMismatchError,
                     match='holds the NOTE head.s. rpn-cls-a, det-cls-a'):
    detectors.detector_spec(plain_config, note_prefix)
  spec = detectors.detector_spec(plain_config, note_prefix,
                                 allow_partial_restore=True)
  assert ('allow_partial_restore', True) in spec.kwargs


def test_matching_heads_restore_as_before(checkpoints):
  _, note_configs, note_prefix, note = checkpoints['note']
  model = eval_loop.restore_for_eval(note_configs, note_prefix)
  np.testing.assert_array_equal(model.box_predictor.det_cls_a.kernel.numpy(),
                                note.box_predictor.det_cls_a.kernel.numpy())


def test_allowed_partial_restore_still_names_other_missing_variables(
    checkpoints, tmp_path):
  _, note_configs, _, _ = checkpoints['note']
  _, _, _, plain = checkpoints['plain']
  # The plain heads only: no feature extractors in this checkpoint.
  heads_only = tf.train.Checkpoint(model=tf.train.Checkpoint(
      rpn_head=plain.rpn_head, box_predictor=plain.box_predictor)).write(
          str(tmp_path / 'heads_only'))
  with pytest.raises(checkpoint_errors.CheckpointError,
                     match='lacks \\d+ model variable.s. besides the NOTE '
                     'heads: model/first_stage_feature_extractor/'):
    eval_loop.restore_for_eval(note_configs, heads_only,
                               allow_partial_restore=True)
