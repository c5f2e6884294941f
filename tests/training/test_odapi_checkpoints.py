"""OD API (model zoo layout) checkpoints restore into the project's models.

The checkpoints have exactly the names and shapes the OD API writes for its
Faster R-CNN Inception-ResNet-v2 (``odapi_checkpoint_fixture``), random
values; the model is the project's IRv2 NOTE-RCNN, its variables created
without running the backbone (variable shapes do not depend on the input
size).
"""
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import odapi_checkpoint_fixture as fixture
from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import first_stage
from object_detection_note.meta_architectures import note_faster_rcnn
from object_detection_note.models import registry
from object_detection_note.protos import train_pb2
from object_detection_note.checkpoints import checkpoint_layouts
from object_detection_note.checkpoints import checkpoints

_PROPOSAL = 'model/_feature_extractor_for_proposal_features/'
_BOX_CLASSIFIER = 'model/_feature_extractor_for_box_classifier_features/'
_RPN_CONV = 'model/_first_stage_box_predictor_first_conv/layer_with_weights-0/'
_RPN = 'model/_first_stage_box_predictor/_prediction_heads/'
_RPN_OBJECTNESS = (_RPN + 'class_predictions_with_background/0/'
                   '_class_predictor_layers/0/')
_RPN_BOXES = _RPN + 'box_encodings/0/_box_encoder_layers/0/'
_CLASSES = ('model/_mask_rcnn_box_predictor/_class_prediction_head/'
            '_class_predictor_layers/1/')
_BOXES = ('model/_mask_rcnn_box_predictor/_box_prediction_head/'
          '_box_encoder_layers/1/')
_SCALES = (0.25, 0.5, 1.0, 2.0)
_RATIOS = (0.5, 1.0, 2.0)
_NOTE = note_rules.NoteConfig(rpn_cls_a=True, det_cls_a=True,
                              mask_mined_background=True)


def _irv2_model(num_classes, extractor):
  """IRv2 NOTE-RCNN with every variable created, no forward pass.

  Models built on one extractor share its backbone models (built once: the
  IRv2 construction is the slow part).
  """
  params = note_faster_rcnn.NoteFasterRcnnParams(
      num_classes=num_classes, anchor_scales=_SCALES,
      anchor_aspect_ratios=_RATIOS, first_stage_max_proposals=8,
      second_stage_batch_size=8, note=_NOTE)
  model = note_faster_rcnn.NoteFasterRcnn(params, extractor)
  model.rpn_head(tf.zeros([1, 2, 2, extractor.proposal_feature_depth]))
  model.box_predictor(
      tf.zeros([1, 1, 1, extractor.box_classifier_feature_depth]))
  return model


def _v(key):
  return key + fixture.VALUE_SUFFIX


def _weighted_layer_keys(keras_model, prefix):
  """(variable, key) of a functional model by its weighted-layer order."""
  pairs = []
  layers = [layer for layer in keras_model.layers if layer.weights]
  for index, layer in enumerate(layers):
    for variable in layer.weights:
      attribute = variable.name.split('/')[-1].split(':')[0]
      pairs.append((variable, _v('%slayer_with_weights-%d/%s' %
                                 (prefix, index, attribute))))
  return pairs


def _odapi_anchor_sizes():
  """(height, width) of the OD API's anchors of one cell, its order."""
  sizes = []
  for ratio in _RATIOS:  # OD API: aspect ratio outer, scale inner.
    for scale in _SCALES:
      sizes.append((256 * scale / np.sqrt(ratio), 256 * scale * np.sqrt(ratio)))
  return np.array(sizes)


def _expected_objectness(value):
  """OD API [.., 12 * 2] softmax logits -> our [.., 12] sigmoid logits."""
  permutation = checkpoint_layouts.anchor_permutation(len(_SCALES),
                                                      len(_RATIOS))
  return np.stack([value[..., 2 * i + 1] - value[..., 2 * i]
                   for i in permutation], axis=-1)


def _expected_boxes(value):
  permutation = checkpoint_layouts.anchor_permutation(len(_SCALES),
                                                      len(_RATIOS))
  return np.concatenate([value[..., 4 * i:4 * i + 4] for i in permutation],
                        axis=-1)


@pytest.fixture(scope='module')
def zoo_checkpoint(tmp_path_factory):
  shapes = fixture.variable_shapes(fixture.DETECTION)
  prefix = str(tmp_path_factory.mktemp('zoo') / 'checkpoint' / 'ckpt-0')
  return fixture.write_checkpoint(prefix, shapes, seed=1)


@pytest.fixture(scope='module')
def extractor():
  return registry.build_feature_extractor(
      'faster_rcnn_inception_resnet_v2_keras', is_training=True,
      first_stage_features_stride=16, batch_norm_trainable=True)


@pytest.fixture(scope='module')
def model_90(extractor):
  return _irv2_model(90, extractor)


def _assert_backbone_restored(model, values):
  pairs = (_weighted_layer_keys(model.first_stage_feature_extractor,
                                _PROPOSAL) +
           _weighted_layer_keys(model.second_stage_feature_extractor,
                                _BOX_CLASSIFIER))
  # Every backbone tensor of the zoo checkpoint has a model variable.
  assert {key for _, key in pairs} == {
      k for k in values if k.startswith((_PROPOSAL, _BOX_CLASSIFIER))}
  for variable, key in pairs:
    np.testing.assert_array_equal(variable.numpy(), values[key],
                                  err_msg=variable.name)


def test_anchor_permutation_matches_the_odapi_anchor_order():
  ours = first_stage.grid_anchors(1, 1, 16, 256.0, _SCALES, _RATIOS).numpy()
  our_sizes = np.stack([ours[:, 2] - ours[:, 0], ours[:, 3] - ours[:, 1]], 1)
  permutation = checkpoint_layouts.anchor_permutation(len(_SCALES),
                                                      len(_RATIOS))
  np.testing.assert_allclose(our_sizes, _odapi_anchor_sizes()[permutation],
                             rtol=1e-5)


def test_objectness_transform_gives_the_odapi_probabilities():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal([5, 24]).astype(np.float32)
  odapi = tf.nn.softmax(logits.reshape([5, 12, 2]))[..., 1].numpy()
  ours = tf.sigmoid(_expected_objectness(logits)).numpy()
  permutation = checkpoint_layouts.anchor_permutation(len(_SCALES),
                                                      len(_RATIOS))
  np.testing.assert_allclose(ours, odapi[:, permutation], atol=1e-6)


def test_full_restores_every_variable_from_a_zoo_checkpoint(
    zoo_checkpoint, model_90):
  path, values = zoo_checkpoint
  report = checkpoints.restore_fine_tune(model_90, path, 'full')

  assert report.layout == checkpoint_layouts.ODAPI
  assert report.not_restored == [] and report.unused_keys == []
  assert len(report.restored) == len(model_90.variables)
  _assert_backbone_restored(model_90, values)
  rpn = model_90.rpn_head
  np.testing.assert_array_equal(rpn.rpn_conv.kernel.numpy(),
                                values[_v(_RPN_CONV + 'kernel')])
  np.testing.assert_array_equal(rpn.rpn_conv.bias.numpy(),
                                values[_v(_RPN_CONV + 'bias')])
  for head in (rpn.rpn_cls, rpn.rpn_cls_a):
    for attribute in ('kernel', 'bias'):
      np.testing.assert_allclose(
          getattr(head, attribute).numpy(),
          _expected_objectness(values[_v(_RPN_OBJECTNESS + attribute)]),
          atol=1e-6)
  for attribute in ('kernel', 'bias'):
    np.testing.assert_array_equal(
        getattr(rpn.rpn_reg, attribute).numpy(),
        _expected_boxes(values[_v(_RPN_BOXES + attribute)]))
  predictor = model_90.box_predictor
  for attribute in ('kernel', 'bias'):
    for head in (predictor.det_cls, predictor.det_cls_a):
      np.testing.assert_array_equal(getattr(head, attribute).numpy(),
                                    values[_v(_CLASSES + attribute)])
    np.testing.assert_array_equal(getattr(predictor.det_reg,
                                          attribute).numpy(),
                                  values[_v(_BOXES + attribute)])


def test_other_num_classes_keeps_new_class_heads(zoo_checkpoint, extractor):
  path, values = zoo_checkpoint
  model = _irv2_model(3, extractor)
  predictor = model.box_predictor
  heads_before = [v.numpy() for v in predictor.variables]
  rpn_a_before = [v.numpy() for v in model.rpn_head.rpn_cls_a.variables]

  report = checkpoints.restore_fine_tune(model, path, 'detection')
  _assert_backbone_restored(model, values)
  np.testing.assert_array_equal(model.rpn_head.rpn_conv.kernel.numpy(),
                                values[_v(_RPN_CONV + 'kernel')])
  for before, variable in zip(heads_before, predictor.variables):
    np.testing.assert_array_equal(variable.numpy(), before)
  for before, variable in zip(rpn_a_before,
                              model.rpn_head.rpn_cls_a.variables):
    np.testing.assert_array_equal(variable.numpy(), before)
  assert report.not_restored == []
  assert _v(_CLASSES + 'kernel') in report.unused_keys

  report = checkpoints.restore_fine_tune(model, path, 'full')
  skipped = dict(report.not_restored)
  assert sorted(skipped) == sorted(v.name for v in predictor.variables)
  assert all('checkpoint shape' in reason for reason in skipped.values())
  for before, variable in zip(heads_before, predictor.variables):
    np.testing.assert_array_equal(variable.numpy(), before)
  np.testing.assert_allclose(
      model.rpn_head.rpn_cls_a.kernel.numpy(),
      _expected_objectness(values[_v(_RPN_OBJECTNESS + 'kernel')]),
      atol=1e-6)


def test_classification_from_zoo_and_odapi_classification_checkpoints(
    tmp_path, zoo_checkpoint, model_90):
  path, values = zoo_checkpoint
  model_90.rpn_head.rpn_conv.kernel.assign(
      tf.zeros_like(model_90.rpn_head.rpn_conv.kernel))
  report = checkpoints.restore_fine_tune(model_90, path, 'classification')
  _assert_backbone_restored(model_90, values)
  assert not np.any(model_90.rpn_head.rpn_conv.kernel.numpy())
  assert len(report.restored) == len(
      checkpoint_layouts.backbone_variables(model_90))

  # tf.train.Checkpoint(feature_extractor=<Keras IRv2 backbone>).
  shapes = fixture.variable_shapes(fixture.CLASSIFICATION)
  prefix, classification = fixture.write_checkpoint(
      str(tmp_path / 'ckpt-0'), shapes, seed=2)
  assert checkpoints.restore_fine_tune(model_90, prefix,
                                       'classification') is None
  backbone = model_90._extractor.classification_backbone  # pylint: disable=protected-access
  pairs = _weighted_layer_keys(backbone, 'feature_extractor/')
  assert {key for _, key in pairs} == set(classification)
  for variable, key in pairs:
    np.testing.assert_array_equal(variable.numpy(), classification[key])


def test_training_start_and_eval_restore_log_a_zoo_checkpoint(
    tmp_path, zoo_checkpoint, model_90, monkeypatch):
  path, values = zoo_checkpoint
  for variable in model_90.first_stage_feature_extractor.variables[:3]:
    variable.assign(tf.zeros_like(variable))
  trainer = types.SimpleNamespace(model=model_90,
                                  optimizer=tf_keras.optimizers.SGD(),
                                  global_step=tf.Variable(0, dtype=tf.int64))
  train_config = train_pb2.TrainConfig(fine_tune_checkpoint=path,
                                       fine_tune_checkpoint_type='full')
  # absl's logger is not always propagated to caplog: record the calls.
  messages = []
  monkeypatch.setattr(checkpoints.logging, 'info',
                      lambda fmt, *args: messages.append(fmt % args))
  checkpoints.restore_or_initialize(trainer, str(tmp_path / 'model'),
                                    train_config)
  _assert_backbone_restored(model_90, values)
  assert any('odapi layout): restored %d variables, 0 not restored' %
             len(model_90.variables) in m for m in messages), messages[:3]


def test_nothing_matching_is_a_clear_error(tmp_path, zoo_checkpoint):
  path, _ = zoo_checkpoint
  tiny = note_faster_rcnn.NoteFasterRcnn(
      note_faster_rcnn.NoteFasterRcnnParams(
          num_classes=3, first_stage_max_proposals=8,
          second_stage_batch_size=8),
      registry.build_feature_extractor('faster_rcnn_tiny_keras', True, 8))
  tiny.rpn_head(tf.zeros([1, 2, 2, tiny._extractor.proposal_feature_depth]))  # pylint: disable=protected-access
  with pytest.raises(ValueError, match='no variable of the model matches it|'
                     'feature-extractor variables do not match it'):
    checkpoints.restore_fine_tune(tiny, path, 'detection')
  other = str(tmp_path / 'other')
  tf.train.Checkpoint(model=tf.train.Checkpoint(
      other=tf.Variable(1.0))).write(other)
  with pytest.raises(ValueError, match='not a detection checkpoint'):
    checkpoints.restore_fine_tune(tiny, other, 'full')
