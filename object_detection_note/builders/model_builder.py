"""DetectionModel proto (+ the pipeline's ``note`` block) → NoteFasterRcnn.

A ``faster_rcnn`` block without a ``note`` block builds a plain Faster R-CNN
(no rpn-cls-a / det-cls-a heads, every head trains on all data). With a
``note`` block the NOTE switches come from it; distillation is on when the
block has a ``distillation`` sub-block with weight > 0 *and* a source model
is given (the iterate driver drops the sub-block for iterations past the
half-distill schedule).

The image size is not part of the model: images reach ``predict`` already
resized and padded by ``data.input.inputs.resize_image`` (training inputs and
``exporter.inference`` use the same function), so the model's own
``preprocess`` only normalises pixels.
"""
from object_detection_note.builders import hyperparams_builder
from object_detection_note.losses import note_rules
from object_detection_note.meta_architectures import note_faster_rcnn
from object_detection_note.models import registry


_l2_weight = hyperparams_builder.l2_weight
# Extractors whose second stage differs under odapi_compatible_geometry.
_SAME_PADDING_SECOND_STAGE = ('faster_rcnn_inception_resnet_v2_keras',)


def _anchor_offset(grid):
  """(y, x) offset if the config sets one, else None (geometry default)."""
  if grid.HasField('height_offset') or grid.HasField('width_offset'):
    return (float(grid.height_offset), float(grid.width_offset))
  return None


def note_switches(note_config, distill):
  """NoteConfig proto (or None) → note_rules.NoteConfig."""
  if note_config is None:
    return note_rules.NAIVE
  weight = 0.0
  if distill and note_config.HasField('distillation'):
    weight = note_config.distillation.weight
  return note_rules.NoteConfig(
      rpn_cls_a=note_config.rpn_cls_a,
      det_cls_a=note_config.det_cls_a,
      mask_mined_background=(note_config.det_cls_a and
                             note_config.mask_mined_background),
      distillation_loss_weight=weight,
      normalize_by_unmasked=(note_config.masked_loss_normalizer ==
                             note_config.UNMASKED),
      mean_objectness_for_training_proposals=(
          note_config.mean_objectness_for_training_proposals),
      distill_all_proposals=(note_config.distillation.targets ==
                             note_config.distillation.ALL_PROPOSALS))


def build_params(frcnn, note_config=None, num_source_classes=0):
  """FasterRcnn proto → NoteFasterRcnnParams (names follow the proto)."""
  if frcnn.first_stage_anchor_generator.WhichOneof(
      'anchor_generator_oneof') not in (None, 'grid_anchor_generator'):
    raise ValueError('model.faster_rcnn.first_stage_anchor_generator: only '
                     'grid_anchor_generator is supported')
  grid = frcnn.first_stage_anchor_generator.grid_anchor_generator
  stride = frcnn.feature_extractor.first_stage_features_stride
  if grid.height_stride != stride or grid.width_stride != stride:
    if frcnn.first_stage_anchor_generator.HasField('grid_anchor_generator'):
      raise ValueError(
          'model.faster_rcnn.first_stage_anchor_generator.grid_anchor_'
          'generator: height_stride/width_stride (%d/%d) must equal '
          'feature_extractor.first_stage_features_stride (%d)' %
          (grid.height_stride, grid.width_stride, stride))
  nms = frcnn.second_stage_post_processing.batch_non_max_suppression
  predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
  defaults = note_faster_rcnn.NoteFasterRcnnParams(num_classes=1)
  note = note_switches(note_config, distill=num_source_classes > 0)
  return note_faster_rcnn.NoteFasterRcnnParams(
      num_classes=frcnn.num_classes,
      image_size=None,
      base_anchor_size=float(grid.height),
      base_anchor_width=float(grid.width),
      anchor_offset=_anchor_offset(grid),
      clip_anchors_to_image=frcnn.clip_anchors_to_image,
      odapi_compatible_geometry=frcnn.odapi_compatible_geometry,
      first_stage_nms_score_threshold=frcnn.first_stage_nms_score_threshold,
      first_stage_box_predictor_weight_decay=_l2_weight(
          frcnn.first_stage_box_predictor_conv_hyperparams),
      first_stage_box_predictor_initializer=(
          hyperparams_builder.initializer_spec(
              frcnn.first_stage_box_predictor_conv_hyperparams)),
      second_stage_box_predictor_initializer=(
          hyperparams_builder.initializer_spec(predictor.fc_hyperparams)),
      anchor_scales=tuple(grid.scales) or defaults.anchor_scales,
      anchor_aspect_ratios=(tuple(grid.aspect_ratios) or
                            defaults.anchor_aspect_ratios),
      first_stage_box_predictor_depth=frcnn.first_stage_box_predictor_depth,
      first_stage_box_predictor_kernel_size=(
          frcnn.first_stage_box_predictor_kernel_size),
      first_stage_minibatch_size=frcnn.first_stage_minibatch_size,
      first_stage_positive_balance_fraction=(
          frcnn.first_stage_positive_balance_fraction),
      first_stage_nms_iou_threshold=frcnn.first_stage_nms_iou_threshold,
      first_stage_max_proposals=frcnn.first_stage_max_proposals,
      first_stage_localization_loss_weight=(
          frcnn.first_stage_localization_loss_weight),
      first_stage_objectness_loss_weight=(
          frcnn.first_stage_objectness_loss_weight),
      initial_crop_size=frcnn.initial_crop_size or defaults.initial_crop_size,
      maxpool_kernel_size=frcnn.maxpool_kernel_size or 1,
      maxpool_stride=frcnn.maxpool_stride or 1,
      second_stage_batch_size=frcnn.second_stage_batch_size,
      second_stage_balance_fraction=frcnn.second_stage_balance_fraction,
      use_dropout=predictor.use_dropout,
      dropout_keep_probability=predictor.dropout_keep_probability,
      second_stage_localization_loss_weight=(
          frcnn.second_stage_localization_loss_weight),
      second_stage_classification_loss_weight=(
          frcnn.second_stage_classification_loss_weight),
      head_weight_decay=_l2_weight(predictor.fc_hyperparams),
      score_threshold=nms.score_threshold,
      iou_threshold=nms.iou_threshold,
      max_detections_per_class=nms.max_detections_per_class,
      max_total_detections=nms.max_total_detections,
      note=note,
      num_source_classes=num_source_classes if note.distillation_loss_weight
      else 0)


def build(model_config, is_training, note_config=None, source_model=None):
  """Builds the detector described by a DetectionModel proto.

  Args:
    model_config: DetectionModel proto with a faster_rcnn block.
    is_training: training mode (batch-norm freezing, dropout).
    note_config: the pipeline's NoteConfig proto, or None for plain Faster
      R-CNN.
    source_model: frozen source detector S for distillation (a NoteFasterRcnn
      restored from S's checkpoint), or None.

  Returns:
    NoteFasterRcnn (unbuilt: variables appear on the first call).
  """
  if model_config.WhichOneof('model') != 'faster_rcnn':
    raise ValueError('model: only faster_rcnn is supported')
  frcnn = model_config.faster_rcnn
  extractor_config = frcnn.feature_extractor
  geometry = {}
  if (frcnn.odapi_compatible_geometry and
      extractor_config.type in _SAME_PADDING_SECOND_STAGE):
    geometry['second_stage_same_padding'] = True
  extractor = registry.build_feature_extractor(
      extractor_config.type, is_training=is_training,
      first_stage_features_stride=extractor_config.first_stage_features_stride,
      batch_norm_trainable=extractor_config.batch_norm_trainable,
      weight_decay=_l2_weight(extractor_config.conv_hyperparams), **geometry)
  num_source_classes = (source_model.params.num_classes
                        if source_model is not None else 0)
  params = build_params(frcnn, note_config, num_source_classes)
  return note_faster_rcnn.NoteFasterRcnn(
      params, extractor,
      source_model=source_model if params.note.distillation_loss_weight
      else None)
