"""NOTE-RCNN: Faster R-CNN with seed/mixed heads, mined-background masking and
distillation from a frozen source detector (paper §3.3).

The model follows the OD API's DetectionModel protocol:

  preprocess(images)                 -> (preprocessed, true_image_shapes)
  predict(preprocessed, true_image_shapes, groundtruth=None, training=False)
                                     -> prediction dict (PredictionFields)
  loss(prediction_dict, groundtruth) -> loss dict (LossKeys), weighted
  postprocess(prediction_dict, true_image_shapes)
                                     -> detection dict (DetectionFields)

plus ``compute_losses(batch)`` for a training step on an input batch
(``InputFields`` keys) and ``call(images)`` = preprocess + predict +
postprocess for inference and export.

Shapes are static everywhere (padded groundtruth, fixed proposal and sample
counts) so a training step compiles with ``tf.function(jit_compile=True)``.

Proposals: first-stage objectness is the mean of the rpn-cls and rpn-cls-a
probabilities; ``first_stage_max_proposals`` (P) proposals after NMS, at
training and inference alike (with
``note.mean_objectness_for_training_proposals`` off, training ranks them by
rpn-cls alone). Training then samples
``second_stage_batch_size`` (K) of them per image, balanced 1:3 foreground to
background, for the second stage; inference sends all P to the second stage.
Proposal boxes are constants for the second stage (no gradient into the RPN
through the crops), as in the OD API.

Mixed precision: when built under a Keras ``mixed_bfloat16`` or
``mixed_float16`` global policy, the feature extractors and heads compute in
that type with float32 variables; this model itself is float32 and casts the
heads' outputs to float32 (``_float32``), so anchors, box decoding, NMS,
sampling, losses and detections are float32 under every policy.

Inference class probabilities are the mean of the det-cls and det-cls-a
softmaxes; boxes come from det-reg only; det-cls-s is never used for
detection.

Distillation (Eq. 3): when ``note.distillation_loss_weight > 0`` the frozen
source detector scores the sampled proposals (with
``note.distill_all_proposals``: all P proposals, through an extra
second-stage pass for det-cls-s) of the same image with
``box_classifier_probabilities``; its output is a constant target for
det-cls-s, whose gradient reaches the shared feature extractors and no other
head. The source model is held outside Keras' tracking, so its variables are
neither trained nor saved with this model.
"""
import dataclasses
from typing import Optional, Tuple

import tensorflow as tf
import tf_keras

from object_detection_note.core.fields import DiagnosticsFields
from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import PredictionFields
from object_detection_note.heads import box_predictor
from object_detection_note.heads import rpn_head
from object_detection_note.losses import box_classifier_losses
from object_detection_note.losses import note_rules
from object_detection_note.losses import rpn_losses
from object_detection_note.meta_architectures import first_stage
from object_detection_note.meta_architectures import postprocessing
from object_detection_note.meta_architectures import second_stage


@dataclasses.dataclass(frozen=True)
class NoteFasterRcnnParams:
  """Hyper-parameters; defaults are the OD API Faster R-CNN IRv2 ones.

  Attributes are named after the OD API ``faster_rcnn`` proto fields where
  one exists. ``image_size`` (height, width) is the size ``preprocess``
  resizes to (None: keep the input size).
  """
  num_classes: int
  image_size: Optional[Tuple[int, int]] = None
  # Grid anchors. anchor_offset None: the geometry's default (stride / 2,
  # or 0 with odapi_compatible_geometry).
  base_anchor_size: float = 256.0
  base_anchor_width: Optional[float] = None
  anchor_scales: Tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
  anchor_aspect_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
  anchor_offset: Optional[Tuple[float, float]] = None
  clip_anchors_to_image: bool = False
  odapi_compatible_geometry: bool = False
  # First stage.
  first_stage_box_predictor_depth: int = 512
  first_stage_box_predictor_kernel_size: int = 3
  first_stage_positive_iou_threshold: float = 0.7
  first_stage_negative_iou_threshold: float = 0.3
  first_stage_minibatch_size: int = 256
  first_stage_positive_balance_fraction: float = 0.5
  first_stage_pre_nms_top_k: int = 6000
  first_stage_nms_score_threshold: float = 0.0
  first_stage_nms_iou_threshold: float = 0.7
  first_stage_max_proposals: int = 300
  first_stage_localization_loss_weight: float = 2.0
  first_stage_objectness_loss_weight: float = 1.0
  # Second stage.
  initial_crop_size: int = 17
  maxpool_kernel_size: int = 1
  maxpool_stride: int = 1
  second_stage_batch_size: int = 64
  second_stage_balance_fraction: float = 0.25
  second_stage_positive_iou_threshold: float = 0.5
  use_dropout: bool = False
  dropout_keep_probability: float = 1.0
  second_stage_localization_loss_weight: float = 2.0
  second_stage_classification_loss_weight: float = 1.0
  head_weight_decay: float = 0.0
  # RPN conv weight decay; None: head_weight_decay.
  first_stage_box_predictor_weight_decay: Optional[float] = None
  # Kernel initialiser specs (heads.initializers); None: the heads' defaults.
  first_stage_box_predictor_initializer: Optional[tuple] = None
  second_stage_box_predictor_initializer: Optional[tuple] = None
  # Post-processing (per-class NMS).
  score_threshold: float = 0.0
  iou_threshold: float = 0.6
  max_detections_per_class: int = 100
  max_total_detections: int = 100
  # NOTE-RCNN.
  note: note_rules.NoteConfig = note_rules.NoteConfig()
  num_source_classes: int = 0

  def __post_init__(self):
    if self.num_classes < 1:
      raise ValueError('num_classes must be >= 1, got %d' % self.num_classes)
    if self.second_stage_batch_size > self.first_stage_max_proposals:
      raise ValueError(
          'second_stage_batch_size (%d) must not exceed '
          'first_stage_max_proposals (%d)' %
          (self.second_stage_batch_size, self.first_stage_max_proposals))
    if self.note.distillation_loss_weight > 0 and self.num_source_classes < 1:
      raise ValueError('note.distillation_loss_weight > 0 needs '
                       'num_source_classes >= 1 (the det-cls-s head).')

  @property
  def num_anchors_per_location(self):
    return len(self.anchor_scales) * len(self.anchor_aspect_ratios)


def _float32(outputs):
  """Casts the floating tensors of a dict of head outputs to float32."""
  return {key: tf.cast(value, tf.float32)
          if value.dtype.is_floating and value.dtype != tf.float32 else value
          for key, value in outputs.items()}


class _Untracked:
  """Holds a model without Keras/checkpoint dependency tracking."""

  def __init__(self, model):
    self.model = model


class NoteFasterRcnn(tf_keras.Model):
  """NOTE-RCNN detector. See the module docstring for the protocol."""

  def __init__(self, params, feature_extractor, source_model=None,
               name='note_faster_rcnn', **kwargs):
    """Constructor.

    Args:
      params: ``NoteFasterRcnnParams``.
      feature_extractor: a ``models.base.FasterRcnnFeatureExtractor``.
      source_model: optional frozen source detector with a
        ``box_classifier_probabilities(preprocessed_images, boxes)`` method
        (e.g. another ``NoteFasterRcnn``); required when distillation is on.
      name: model name.
      **kwargs: passed to ``tf_keras.Model``.
    """
    # float32 whatever the global policy: the layers built below follow it.
    kwargs.setdefault('dtype', 'float32')
    super().__init__(name=name, **kwargs)
    if params.note.distillation_loss_weight > 0 and source_model is None:
      raise ValueError('Distillation (note.distillation_loss_weight > 0) '
                       'needs a source_model.')
    self._params = params
    self._extractor = feature_extractor
    self._stride = feature_extractor.first_stage_features_stride
    self._source = _Untracked(source_model)
    self.first_stage_feature_extractor = (
        feature_extractor.get_proposal_feature_extractor_model(
            name='FirstStageFeatureExtractor'))
    self.second_stage_feature_extractor = (
        feature_extractor.get_box_classifier_feature_extractor_model(
            name='SecondStageFeatureExtractor'))
    self.rpn_head = rpn_head.RpnHead(
        params.num_anchors_per_location,
        depth=params.first_stage_box_predictor_depth,
        kernel_size=params.first_stage_box_predictor_kernel_size,
        use_objectness_a=params.note.rpn_cls_a,
        weight_decay=(params.head_weight_decay
                      if params.first_stage_box_predictor_weight_decay is None
                      else params.first_stage_box_predictor_weight_decay),
        kernel_initializer_spec=params.first_stage_box_predictor_initializer)
    self.box_predictor = box_predictor.BoxPredictor(
        params.num_classes,
        use_class_logits_a=params.note.det_cls_a,
        num_source_classes=params.num_source_classes,
        use_dropout=params.use_dropout,
        dropout_keep_probability=params.dropout_keep_probability,
        weight_decay=params.head_weight_decay,
        kernel_initializer_spec=params.second_stage_box_predictor_initializer)

  @property
  def params(self):
    return self._params

  @property
  def source_model(self):
    return self._source.model

  @property
  def distillation_enabled(self):
    return (self._params.note.distillation_loss_weight > 0 and
            self._source.model is not None)

  # ------------------------------------------------------------ checkpoints
  def restore_map(self, fine_tune_checkpoint_type):
    """Sub-objects restored from a fine-tune checkpoint, by attribute name.

    ``detection``: backbone, RPN (rpn-cls, rpn-reg) and second-stage
    features; rpn-cls-a and the box predictor stay new (T^0 initialised from
    S, paper §3.2). ``full``: every part (T^t initialised from T^{t-1}).
    """
    parts = {
        'first_stage_feature_extractor': self.first_stage_feature_extractor,
        'second_stage_feature_extractor': self.second_stage_feature_extractor,
    }
    if fine_tune_checkpoint_type == 'full':
      parts['rpn_head'] = self.rpn_head
      parts['box_predictor'] = self.box_predictor
    elif fine_tune_checkpoint_type == 'detection':
      # rpn-cls-a is NOTE's own head: S (a plain Faster R-CNN) has none.
      parts['rpn_head'] = tf.train.Checkpoint(
          rpn_conv=self.rpn_head.rpn_conv, rpn_cls=self.rpn_head.rpn_cls,
          rpn_reg=self.rpn_head.rpn_reg)
    else:
      raise ValueError('restore_map: unknown fine_tune_checkpoint_type %r' %
                       (fine_tune_checkpoint_type,))
    return parts

  def restore_classification_weights(self, path):
    """Loads the backbone of a classification network from a local file."""
    self._extractor.load_classification_weights(path)

  # --------------------------------------------------------------- preprocess
  def preprocess(self, images):
    """Resizes (if ``image_size`` is set) and normalises images.

    Args:
      images: float [B, H, W, 3] RGB in [0, 255].

    Returns:
      (preprocessed float32 [B, H', W', 3], true_image_shapes int32 [B, 3]).
    """
    images = tf.cast(images, tf.float32)
    size = self._params.image_size
    if size is not None and tuple(images.shape[1:3]) != tuple(size):
      images = tf.image.resize(images, size)
    shape = tf.shape(images)
    true_shapes = tf.tile(shape[tf.newaxis, 1:4], [shape[0], 1])
    return self._extractor.preprocess(images), true_shapes

  # ------------------------------------------------------------------ predict
  def _anchors(self, features, image_height, image_width):
    """Grid anchors [A, 4] of the feature map (clipped if configured)."""
    p = self._params
    offset = p.anchor_offset
    if offset is None and p.odapi_compatible_geometry:
      offset = (0.0, 0.0)
    anchors = first_stage.grid_anchors(
        features.shape[1], features.shape[2], self._stride,
        p.base_anchor_size, p.anchor_scales, p.anchor_aspect_ratios,
        base_anchor_width=p.base_anchor_width, offset=offset)
    if p.clip_anchors_to_image:
      anchors = tf.clip_by_value(
          anchors, 0.0,
          tf.constant([image_height, image_width, image_height, image_width],
                      tf.float32))
    return anchors

  def objectness_probabilities(self, rpn_outputs, training_proposals=False):
    """Sigmoid of rpn-cls, averaged with rpn-cls-a when it exists.

    With ``training_proposals`` and ``note.mean_objectness_for_training_
    proposals`` off, rpn-cls alone.
    """
    probabilities = tf.sigmoid(
        rpn_outputs[PredictionFields.rpn_objectness_logits])
    logits_a = rpn_outputs.get(PredictionFields.rpn_objectness_logits_a)
    if training_proposals and (
        not self._params.note.mean_objectness_for_training_proposals):
      logits_a = None
    if logits_a is not None:
      probabilities = 0.5 * (probabilities + tf.sigmoid(logits_a))
    return probabilities

  def _box_classifier(self, features, boxes, training, image_hw):
    """Second stage on absolute boxes [B, K, 4]; outputs are [B, K, ...]."""
    p = self._params
    crops = second_stage.crop_features(
        features, boxes, self._stride, p.initial_crop_size,
        p.maxpool_kernel_size, p.maxpool_stride,
        image_hw=image_hw if p.odapi_compatible_geometry else None)
    box_features = self.second_stage_feature_extractor(crops,
                                                       training=training)
    outputs = _float32(self.box_predictor(box_features, training=training))
    num_boxes = boxes.shape[1]
    return {key: tf.reshape(value, [-1, num_boxes] + value.shape[1:].as_list())
            for key, value in outputs.items()}

  def _image_hw(self, images):
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
      raise ValueError('NoteFasterRcnn needs a static image height and width '
                       '(fixed-size or padded inputs), got %s' %
                       (images.shape,))
    return height, width

  def _absolute_groundtruth(self, groundtruth, height, width):
    return first_stage.groundtruth_to_absolute(
        groundtruth[InputFields.groundtruth_boxes],
        groundtruth[InputFields.groundtruth_weights], height, width)

  def predict(self, preprocessed_images, true_image_shapes, groundtruth=None,
              training=False):
    """Runs both stages.

    Args:
      preprocessed_images: float [B, H, W, 3] (static H, W).
      true_image_shapes: int [B, 3].
      groundtruth: at training, the batch dict (InputFields groundtruth
        keys); proposals are then sampled for the second stage with targets.
      training: Keras training flag (batch norm, dropout).

    Returns:
      dict with PredictionFields keys: image_shape int32 [4], anchors [A, 4],
      rpn_box_encodings [B, A, 4], rpn_objectness_logits(_a) [B, A],
      proposal_boxes [B, K, 4] absolute (K = P at inference, the sampled count
      with groundtruth), num_proposals int32 [B] (valid rows come first),
      class_logits(_a, _s) [B, K, C+1 | S+1], refined_box_encodings
      [B, K, C, 4]; with groundtruth also proposal_class_targets int32
      [B, K], proposal_box_targets [B, K, 4] and, when distillation is on,
      source_class_probabilities [B, K, S+1] (with distill_all_proposals:
      [B, P, S+1], plus distillation_class_logits_s [B, P, S+1] and
      distillation_proposals_valid float32 [B, P]).
    """
    p = self._params
    height, width = self._image_hw(preprocessed_images)
    features = self.first_stage_feature_extractor(preprocessed_images,
                                                  training=training)
    rpn_outputs = _float32(self.rpn_head(features))
    anchors = self._anchors(features, height, width)
    proposals, _, proposals_valid = first_stage.propose(
        anchors,
        tf.stop_gradient(rpn_outputs[PredictionFields.rpn_box_encodings]),
        tf.stop_gradient(self.objectness_probabilities(
            rpn_outputs, training_proposals=groundtruth is not None)),
        true_image_shapes, p.first_stage_pre_nms_top_k,
        p.first_stage_nms_iou_threshold, p.first_stage_max_proposals,
        p.first_stage_nms_score_threshold)
    predictions = dict(rpn_outputs)
    predictions[PredictionFields.image_shape] = tf.shape(preprocessed_images)
    predictions[PredictionFields.anchors] = anchors

    if groundtruth is not None:
      samples = second_stage.sample_proposals(
          proposals, proposals_valid,
          self._absolute_groundtruth(groundtruth, height, width),
          groundtruth[InputFields.groundtruth_classes],
          p.second_stage_batch_size, p.second_stage_balance_fraction,
          p.second_stage_positive_iou_threshold)
      boxes = samples['boxes']
      valid = samples['valid'] > 0
      predictions[PredictionFields.proposal_class_targets] = (
          samples['class_targets'])
      predictions[PredictionFields.proposal_box_targets] = (
          samples['box_targets'])
    else:
      boxes = tf.stop_gradient(proposals)
      valid = proposals_valid
    predictions[PredictionFields.proposal_boxes] = boxes
    predictions[PredictionFields.num_proposals] = tf.reduce_sum(
        tf.cast(valid, tf.int32), axis=1)
    predictions.update(self._box_classifier(features, boxes, training,
                                            (height, width)))

    if groundtruth is not None and self.distillation_enabled:
      scale = tf.constant([height, width, height, width], tf.float32)
      if p.note.distill_all_proposals:
        boxes = tf.stop_gradient(proposals)
        predictions[PredictionFields.distillation_class_logits_s] = (
            self._box_classifier(features, boxes, training, (height, width))[
                PredictionFields.class_logits_s])
        predictions[PredictionFields.distillation_proposals_valid] = tf.cast(
            proposals_valid, tf.float32)
      source_probabilities = self._source.model.box_classifier_probabilities(
          preprocessed_images, boxes / scale)
      predictions[PredictionFields.source_class_probabilities] = (
          tf.stop_gradient(source_probabilities))
    return predictions

  def class_probabilities(self, predictions):
    """Mean of the det-cls and det-cls-a softmaxes: [B, K, C + 1]."""
    probabilities = tf.nn.softmax(predictions[PredictionFields.class_logits])
    logits_a = predictions.get(PredictionFields.class_logits_a)
    if logits_a is not None:
      probabilities = 0.5 * (probabilities + tf.nn.softmax(logits_a))
    return probabilities

  def head_class_probabilities(self, predictions):
    """Each box-classifier head's softmax apart, for the loop diagnostics.

    Returns:
      {'det_cls': float32 [B, K, C + 1], 'det_cls_a': float32 [B, K, C + 1]
      or None without det-cls-a}; ``class_probabilities`` is their mean.
    """
    logits_a = predictions.get(PredictionFields.class_logits_a)
    return {
        DiagnosticsFields.det_cls:
            tf.nn.softmax(predictions[PredictionFields.class_logits]),
        DiagnosticsFields.det_cls_a:
            None if logits_a is None else tf.nn.softmax(logits_a),
    }

  def box_classifier_probabilities(self, preprocessed_images, proposal_boxes):
    """Class distribution of given boxes, for distilling into another model.

    Args:
      preprocessed_images: float [B, H, W, 3], preprocessed as this model's
        ``preprocess`` does (a target model initialised from this one shares
        the preprocessing).
      proposal_boxes: float [B, K, 4] normalised to the (padded) image.

    Returns:
      float32 [B, K, C + 1] (inference probabilities, no gradient needed).
    """
    height, width = self._image_hw(preprocessed_images)
    features = self.first_stage_feature_extractor(preprocessed_images,
                                                  training=False)
    scale = tf.constant([height, width, height, width], tf.float32)
    outputs = self._box_classifier(features, proposal_boxes * scale,
                                   training=False, image_hw=(height, width))
    return self.class_probabilities(outputs)

  # --------------------------------------------------------------------- loss
  def loss(self, prediction_dict, groundtruth):
    """Weighted NOTE losses.

    Args:
      prediction_dict: output of ``predict`` called with ``groundtruth``.
      groundtruth: batch dict with InputFields groundtruth_boxes,
        groundtruth_weights and is_mined (the dict given to ``predict``).

    Returns:
      dict LossKeys -> float32 scalar, each already multiplied by its weight;
      LossKeys.total is their sum (plus regularization when present). Keys of
      disabled heads are absent.
    """
    p = self._params
    note = p.note
    pred = prediction_dict
    is_mined = tf.cast(groundtruth[InputFields.is_mined], tf.float32)
    gt_boxes = self._absolute_groundtruth(
        groundtruth, pred[PredictionFields.image_shape][1],
        pred[PredictionFields.image_shape][2])
    gt_valid = tf.cast(groundtruth[InputFields.groundtruth_weights],
                       tf.float32) > 0
    targets = first_stage.rpn_targets(
        pred[PredictionFields.anchors], gt_boxes, gt_valid,
        p.first_stage_positive_iou_threshold,
        p.first_stage_negative_iou_threshold, p.first_stage_minibatch_size,
        p.first_stage_positive_balance_fraction)
    losses = {
        LossKeys.rpn_objectness:
            p.first_stage_objectness_loss_weight *
            rpn_losses.rpn_objectness_loss(
                pred[PredictionFields.rpn_objectness_logits],
                targets['objectness'], targets['sampled'], is_mined, note),
        LossKeys.rpn_localization:
            p.first_stage_localization_loss_weight *
            rpn_losses.rpn_localization_loss(
                pred[PredictionFields.rpn_box_encodings],
                targets['box_targets'], targets['objectness'],
                targets['sampled'], is_mined, note),
    }
    if PredictionFields.rpn_objectness_logits_a in pred:
      losses[LossKeys.rpn_objectness_a] = (
          p.first_stage_objectness_loss_weight *
          rpn_losses.rpn_objectness_a_loss(
              pred[PredictionFields.rpn_objectness_logits_a],
              targets['objectness'], targets['sampled'], is_mined, note))

    class_targets = pred[PredictionFields.proposal_class_targets]
    num_samples = class_targets.shape[1]
    sampled = tf.cast(
        tf.range(num_samples)[tf.newaxis] <
        pred[PredictionFields.num_proposals][:, tf.newaxis], tf.float32)
    losses[LossKeys.box_classification] = (
        p.second_stage_classification_loss_weight *
        box_classifier_losses.box_classification_loss(
            pred[PredictionFields.class_logits], class_targets, sampled,
            is_mined, note))
    losses[LossKeys.box_localization] = (
        p.second_stage_localization_loss_weight *
        box_classifier_losses.box_localization_loss(
            pred[PredictionFields.refined_box_encodings],
            pred[PredictionFields.proposal_box_targets], class_targets,
            sampled, is_mined, note))
    if PredictionFields.class_logits_a in pred:
      losses[LossKeys.box_classification_a] = (
          p.second_stage_classification_loss_weight *
          box_classifier_losses.box_classification_a_loss(
              pred[PredictionFields.class_logits_a], class_targets, sampled,
              is_mined, note))
    if PredictionFields.source_class_probabilities in pred:
      if PredictionFields.distillation_class_logits_s in pred:
        logits_s = pred[PredictionFields.distillation_class_logits_s]
        distilled = pred[PredictionFields.distillation_proposals_valid]
      else:
        logits_s = pred[PredictionFields.class_logits_s]
        distilled = sampled
      losses[LossKeys.distillation] = (
          note.distillation_loss_weight *
          box_classifier_losses.distillation_loss(
              logits_s, pred[PredictionFields.source_class_probabilities],
              distilled, is_mined, note))
    if self.losses:
      losses[LossKeys.regularization] = tf.add_n(
          [tf.cast(l, tf.float32) for l in self.losses])
    losses[LossKeys.total] = tf.add_n(list(losses.values()))
    return losses

  def compute_losses(self, batch, training=True):
    """Loss dict of one training batch (InputFields keys)."""
    images = tf.cast(batch[InputFields.image], tf.float32)
    preprocessed = self._extractor.preprocess(images)
    predictions = self.predict(preprocessed,
                               batch[InputFields.true_image_shape],
                               groundtruth=batch, training=training)
    return self.loss(predictions, batch)

  # -------------------------------------------------------------- postprocess
  def postprocess(self, prediction_dict, true_image_shapes):
    """Detections (DetectionFields) from an inference ``predict`` output.

    Boxes are normalised to ``true_image_shapes``; classes are 1-based label
    ids (float); see ``postprocessing.postprocess_detections``.
    """
    p = self._params
    return postprocessing.postprocess_detections(
        prediction_dict[PredictionFields.proposal_boxes],
        prediction_dict[PredictionFields.num_proposals],
        prediction_dict[PredictionFields.refined_box_encodings],
        self.class_probabilities(prediction_dict), true_image_shapes,
        p.score_threshold, p.iou_threshold, p.max_detections_per_class,
        p.max_total_detections)

  def call(self, images, training=False):
    """Inference: float/uint8 images [B, H, W, 3] in [0, 255] -> detections."""
    preprocessed, true_shapes = self.preprocess(images)
    predictions = self.predict(preprocessed, true_shapes, training=training)
    return self.postprocess(predictions, true_shapes)
