"""Where each model variable lives in a fine-tune checkpoint.

Two checkpoint layouts are read:

* ``project``: written by this project's training
  (``tf.train.Checkpoint(model=NoteFasterRcnn, ...)``): keys such as
  ``model/first_stage_feature_extractor/layer_with_weights-0/kernel/...``.
* ``odapi``: written by the TF Object Detection API's TF2 Faster R-CNN
  (``tf.train.Checkpoint(model=detection_model)``, the model zoo's layout):
  the two extractor models under ``model/_feature_extractor_for_proposal_
  features`` and ``model/_feature_extractor_for_box_classifier_features``
  (their weighted layers in the same order as ours), the RPN under
  ``model/_first_stage_box_predictor_first_conv`` and
  ``model/_first_stage_box_predictor/_prediction_heads/...``, the second
  stage under ``model/_mask_rcnn_box_predictor/...``.

A layout maps each selected model variable (by ``var.ref()``) to a
``Source``: the checkpoint key and an optional numpy transform from the
stored value to ours. The OD API transforms are exact re-parameterisations:

* RPN objectness: the OD API has two softmax logits (background,
  object) per anchor, we have one sigmoid logit; ``sigmoid(f - b) ==
  softmax([b, f])[1]``, so our kernel / bias are object minus background.
* Anchor order: the OD API's grid anchors in a cell are ordered
  ``aspect_ratio_index * num_scales + scale_index``, ours
  ``scale_index * num_aspect_ratios + aspect_ratio_index``; the RPN output
  channels are permuted accordingly.
* NOTE's extra heads (rpn-cls-a, det-cls-a) have no OD API counterpart;
  under ``full`` they start from the plain heads' values, so the mean of the
  two heads equals the OD API's single head and the detections match.

Scopes (what a ``fine_tune_checkpoint_type`` restores):
  ``backbone``: the two feature-extractor models.
  ``detection``: backbone + RPN (rpn conv, rpn-cls, rpn-reg); NOTE's
    rpn-cls-a and the box predictor stay new (T^0 from S, paper §3.2).
  ``full``: every variable.
"""
import collections
import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
PROJECT = 'project'
ODAPI = 'odapi'
SCOPES = ('backbone', 'detection', 'full')

_ODAPI_PROPOSAL = 'model/_feature_extractor_for_proposal_features'
_ODAPI_BOX_CLASSIFIER = 'model/_feature_extractor_for_box_classifier_features'
_ODAPI_RPN_CONV = 'model/_first_stage_box_predictor_first_conv/layer_with_weights-0'
_ODAPI_RPN_HEADS = 'model/_first_stage_box_predictor/_prediction_heads'
_ODAPI_RPN_OBJECTNESS = (
    _ODAPI_RPN_HEADS +
    '/class_predictions_with_background/0/_class_predictor_layers/0')
_ODAPI_RPN_BOXES = _ODAPI_RPN_HEADS + '/box_encodings/0/_box_encoder_layers/0'
_ODAPI_BOX_PREDICTOR = 'model/_mask_rcnn_box_predictor'
_ODAPI_CLASS_LAYERS = _ODAPI_BOX_PREDICTOR + '/_class_prediction_head/_class_predictor_layers/'
_ODAPI_BOX_LAYERS = _ODAPI_BOX_PREDICTOR + '/_box_prediction_head/_box_encoder_layers/'


@dataclasses.dataclass(frozen=True)
class Source:
  """Checkpoint key of a variable and the map from stored value to ours."""
  key: str
  transform: Optional[Callable[[np.ndarray], np.ndarray]] = None


def _escape(name):
  """A child name as TF writes it in a checkpoint key ('.'->'..', '/'->'.S')."""
  return name.replace('.', '..').replace('/', '.S')


def variable_keys(root, prefix=''):
  """Checkpoint key of every variable reachable from `root`.

  The keys ``tf.train.Checkpoint`` would write for ``root`` (the first path
  of a breadth-first walk over the trackable children, as TF names objects).

  Args:
    root: a trackable (Keras model or layer, ``tf.train.Checkpoint``).
    prefix: prepended to each key (e.g. ``'model/'``).

  Returns:
    dict ``var.ref()`` -> key ending in ``/.ATTRIBUTES/VARIABLE_VALUE``.
  """
  keys = {}
  seen = {id(root)}
  queue = collections.deque([(root, prefix)])
  while queue:
    obj, path = queue.popleft()
    for name, child in tf.train.TrackableView.children(obj).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = path + _escape(name)
      if isinstance(child, tf.Variable):
        keys[child.ref()] = child_path + VALUE_SUFFIX
      queue.append((child, child_path + '/'))
  return keys


def detect_layout(checkpoint_keys):
  """'odapi' or 'project' from the keys of a detection checkpoint, else None."""
  if any(k.startswith(_ODAPI_PROPOSAL + '/') for k in checkpoint_keys):
    return ODAPI
  if any(k.startswith('model/first_stage_feature_extractor/')
         for k in checkpoint_keys):
    return PROJECT
  return None


def _check_scope(scope):
  if scope not in SCOPES:
    raise ValueError('checkpoint scope must be one of %s, got %r' %
                     (SCOPES, scope))


def _refs(layer):
  return {v.ref() for v in layer.variables} if layer is not None else set()


def selected_variables(model, scope):
  """Refs of the model variables a scope restores (see module docstring)."""
  _check_scope(scope)
  refs = (_refs(model.first_stage_feature_extractor) |
          _refs(model.second_stage_feature_extractor))
  rpn = model.rpn_head
  if scope in ('detection', 'full'):
    refs |= _refs(rpn.rpn_conv) | _refs(rpn.rpn_cls) | _refs(rpn.rpn_reg)
  if scope == 'full':
    refs |= {v.ref() for v in model.variables}
  return refs


def project_layout(model, scope):
  """Sources of the selected variables in a project checkpoint."""
  keys = variable_keys(tf.train.Checkpoint(model=model))
  return {ref: Source(keys[ref]) for ref in selected_variables(model, scope)}


def anchor_permutation(num_scales, num_aspect_ratios):
  """OD API anchor index of each of our anchors in a cell: int array [k]."""
  return np.array([a * num_scales + s for s in range(num_scales)
                   for a in range(num_aspect_ratios)])


def _per_anchor(value, values_per_anchor, permutation):
  """Reorders the last axis [k * n] of `value` to our anchor order."""
  grouped = value.reshape(value.shape[:-1] + (-1, values_per_anchor))
  return grouped[..., permutation, :].reshape(value.shape)


def _objectness(value, permutation):
  """OD API [..., k * 2] (background, object) -> our [..., k] object logit."""
  grouped = value.reshape(value.shape[:-1] + (-1, 2))
  logit = grouped[..., 1] - grouped[..., 0]
  return logit[..., permutation]


def _keyed(layer, prefix, transform=None):
  """Sources of a Dense/Conv layer's kernel and bias under `prefix`."""
  sources = {}
  for attribute in ('kernel', 'bias'):
    variable = getattr(layer, attribute, None)
    if variable is not None:
      sources[variable.ref()] = Source(
          '%s/%s%s' % (prefix, attribute, VALUE_SUFFIX), transform)
  return sources


def _dense_index(checkpoint_keys, prefix):
  """The `<prefix><i>/kernel` layer index present (Dense after Flatten)."""
  for key in sorted(checkpoint_keys):
    if key.startswith(prefix) and key.endswith('/kernel' + VALUE_SUFFIX):
      return key[len(prefix):].split('/')[0]
  return '1'


def odapi_layout(model, scope, checkpoint_keys):
  """Sources of the selected variables in an OD API (zoo) checkpoint."""
  _check_scope(scope)
  sources = {}
  extractors = tf.train.Checkpoint(
      _feature_extractor_for_proposal_features=(
          model.first_stage_feature_extractor),
      _feature_extractor_for_box_classifier_features=(
          model.second_stage_feature_extractor))
  for ref, key in variable_keys(extractors, 'model/').items():
    sources[ref] = Source(key)
  if scope == 'backbone':
    return sources
  params = model.params
  permutation = anchor_permutation(len(params.anchor_scales),
                                   len(params.anchor_aspect_ratios))
  rpn = model.rpn_head
  sources.update(_keyed(rpn.rpn_conv, _ODAPI_RPN_CONV))
  sources.update(_keyed(
      rpn.rpn_reg, _ODAPI_RPN_BOXES,
      lambda v: _per_anchor(v, 4, permutation)))
  objectness = lambda v: _objectness(v, permutation)
  sources.update(_keyed(rpn.rpn_cls, _ODAPI_RPN_OBJECTNESS, objectness))
  if scope == 'full':
    if rpn.rpn_cls_a is not None:
      sources.update(_keyed(rpn.rpn_cls_a, _ODAPI_RPN_OBJECTNESS, objectness))
    predictor = model.box_predictor
    class_prefix = _ODAPI_CLASS_LAYERS + _dense_index(checkpoint_keys,
                                                      _ODAPI_CLASS_LAYERS)
    box_prefix = _ODAPI_BOX_LAYERS + _dense_index(checkpoint_keys,
                                                  _ODAPI_BOX_LAYERS)
    sources.update(_keyed(predictor.det_cls, class_prefix))
    if predictor.det_cls_a is not None:
      sources.update(_keyed(predictor.det_cls_a, class_prefix))
    sources.update(_keyed(predictor.det_reg, box_prefix))
  return sources


def backbone_variables(model):
  """Refs of the two feature-extractor models' variables."""
  return selected_variables(model, 'backbone')
