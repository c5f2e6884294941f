"""Every field a pipeline config sets is honoured, or the config is rejected.

The protos keep the OD API's field names so that upstream configs parse; this
module decides, for each field a config *sets* (``ListFields``), one of:

* honoured: the project implements it (``HONOURED``);
* no effect on results (``NoEffect(reason)``): an explicit allow-list of
  implementation or scheduling choices of the OD API that do not change what
  is trained or detected (e.g. ``use_static_shapes``: this project's graphs are
  always static), or features the project leaves out whose absence does not
  change results (e.g. visualisation options); each logs a warning with the
  reason;
* value-dependent: a function of the value that returns None when the value
  is supported (e.g. ``number_of_stages: 2``) and a reason otherwise;
* anything else is rejected: ``ConfigError`` naming ``file:line``, the dotted
  field and the reason.

Rules are looked up by dotted path (repeated-field indices dropped), then by
``MessageType.field``. Sub-messages are only inspected when their own field
is honoured.
"""
import collections

from absl import logging
from google.protobuf import descriptor
from google.protobuf import text_format

from object_detection_note.config.errors import ConfigError
from object_detection_note.data.input import preprocessor

HONOURED = 'honoured'


class NoEffect(str):
  """A field accepted with a warning; the string says why it has no effect."""


_STATIC = NoEffect('this project always builds static-shape graphs; the '
                   'choice of op does not change the results')
_TF1 = NoEffect('a TF1 queue / sync-replica option; TF2 training has none')
_VIS = NoEffect('evaluation export / scheduling option; metrics are '
                'unaffected (evaluation images go to TensorBoard only, per '
                'num_visualizations)')
_NO_MASKS = NoEffect('masks are not predicted (predict_instance_masks is '
                     'false), so mask options have no effect')
_ACTIVATION = NoEffect('the OD API builds these layers without this '
                       'activation too (the RPN conv is ReLU6, the heads are '
                       'linear)')


def _equals(expected, what='supported'):
  def rule(value):
    if value == expected:
      return None
    return 'only %r is %s, got %r' % (expected, what, value)
  return rule


def _false(value):
  return None if not value else 'true is not implemented'


def _unless_true(reason):
  """NoEffect when false; rejected when true."""
  def rule(value):
    return NoEffect(reason) if not value else 'true is not implemented'
  return rule


def _enum(message_type, field_name, allowed):
  enum = message_type.DESCRIPTOR.fields_by_name[field_name].enum_type
  def rule(value):
    name = enum.values_by_number[value].name
    return None if name in allowed else (
        'only %s supported, got %s' % ('/'.join(allowed), name))
  return rule


def _build_rules():
  # Imported here: protos are generated at build time.
  from object_detection_note.protos import image_resizer_pb2
  from object_detection_note.protos import post_processing_pb2
  from object_detection_note.protos import train_pb2

  h = HONOURED
  rules = {
      'TrainEvalPipelineConfig.model': h,
      'TrainEvalPipelineConfig.train_config': h,
      'TrainEvalPipelineConfig.train_input_reader': h,
      'TrainEvalPipelineConfig.eval_config': h,
      'TrainEvalPipelineConfig.eval_input_reader': h,
      'TrainEvalPipelineConfig.note': h,
      'DetectionModel.faster_rcnn': h,
      # --- FasterRcnn.
      'FasterRcnn.number_of_stages': _equals(2),
      'FasterRcnn.num_classes': h,
      'FasterRcnn.image_resizer': h,
      'FasterRcnn.feature_extractor': h,
      'FasterRcnn.first_stage_anchor_generator': h,
      'FasterRcnn.first_stage_atrous_rate': _equals(1),
      'FasterRcnn.first_stage_box_predictor_conv_hyperparams': h,
      'FasterRcnn.first_stage_box_predictor_kernel_size': h,
      'FasterRcnn.first_stage_box_predictor_depth': h,
      'FasterRcnn.first_stage_minibatch_size': h,
      'FasterRcnn.first_stage_positive_balance_fraction': h,
      'FasterRcnn.first_stage_nms_score_threshold': h,
      'FasterRcnn.first_stage_nms_iou_threshold': h,
      'FasterRcnn.first_stage_max_proposals': h,
      'FasterRcnn.first_stage_localization_loss_weight': h,
      'FasterRcnn.first_stage_objectness_loss_weight': h,
      'FasterRcnn.initial_crop_size': h,
      'FasterRcnn.maxpool_kernel_size': h,
      'FasterRcnn.maxpool_stride': h,
      'FasterRcnn.second_stage_box_predictor': h,
      'FasterRcnn.second_stage_batch_size': h,
      'FasterRcnn.second_stage_balance_fraction': h,
      'FasterRcnn.second_stage_post_processing': h,
      'FasterRcnn.second_stage_localization_loss_weight': h,
      'FasterRcnn.second_stage_classification_loss_weight': h,
      'FasterRcnn.second_stage_mask_prediction_loss_weight': _NO_MASKS,
      'FasterRcnn.second_stage_classification_loss': h,
      'FasterRcnn.inplace_batchnorm_update': _STATIC,
      'FasterRcnn.use_matmul_crop_and_resize': NoEffect(
          'the matmul crop computes the same bilinear samples as the '
          'crop_and_resize op used here'),
      'FasterRcnn.clip_anchors_to_image': h,
      'FasterRcnn.use_matmul_gather_in_matcher': _STATIC,
      'FasterRcnn.use_static_balanced_label_sampler': _STATIC,
      'FasterRcnn.use_static_shapes': _STATIC,
      'FasterRcnn.resize_masks': _NO_MASKS,
      'FasterRcnn.use_static_shapes_for_eval': _STATIC,
      'FasterRcnn.use_partitioned_nms_in_first_stage': _STATIC,
      'FasterRcnn.use_combined_nms_in_first_stage': _STATIC,
      'FasterRcnn.return_raw_detections_during_predict': _false,
      'FasterRcnn.output_final_box_features': _false,
      'FasterRcnn.output_final_box_rpn_features': _false,
      'FasterRcnn.odapi_compatible_geometry': h,
      'ClassificationLoss.weighted_softmax': h,
      'WeightedSoftmaxClassificationLoss.anchorwise_output': NoEffect(
          'a loss-reduction layout flag; the per-anchor losses are the same'),
      'WeightedSoftmaxClassificationLoss.logit_scale': _equals(1.0),
      # --- Feature extractor.
      'FasterRcnnFeatureExtractor.type': h,
      'FasterRcnnFeatureExtractor.first_stage_features_stride': h,
      'FasterRcnnFeatureExtractor.batch_norm_trainable': h,
      'FasterRcnnFeatureExtractor.conv_hyperparams': h,
      'FasterRcnnFeatureExtractor.override_base_feature_extractor_hyperparams':
          _false,
      'FasterRcnnFeatureExtractor.pad_to_multiple': NoEffect(
          'used by the OD API only for FPN extractors, which this project '
          'does not have'),
      # --- Hyperparams: what each use honours.
      'Hyperparams.op': h,
      'Hyperparams.regularizer': h,
      'Regularizer.l2_regularizer': h,
      'L2Regularizer.weight': h,
      'Hyperparams.activation': _ACTIVATION,
      'Hyperparams.regularize_depthwise': _unless_true('no depthwise convs'),
      'Hyperparams.force_use_bias': _unless_true('biases are always used'),
      'model.faster_rcnn.first_stage_box_predictor_conv_hyperparams.'
      'initializer': h,
      'model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor.'
      'fc_hyperparams.initializer': h,
      'Initializer.truncated_normal_initializer': h,
      'Initializer.variance_scaling_initializer': h,
      'Initializer.random_normal_initializer': h,
      'TruncatedNormalInitializer.mean': h,
      'TruncatedNormalInitializer.stddev': h,
      'RandomNormalInitializer.mean': h,
      'RandomNormalInitializer.stddev': h,
      'VarianceScalingInitializer.factor': h,
      'VarianceScalingInitializer.uniform': h,
      'VarianceScalingInitializer.mode': h,
      # --- Anchors.
      'AnchorGenerator.grid_anchor_generator': h,
      'GridAnchorGenerator.height': h,
      'GridAnchorGenerator.width': h,
      'GridAnchorGenerator.height_stride': h,
      'GridAnchorGenerator.width_stride': h,
      'GridAnchorGenerator.height_offset': h,
      'GridAnchorGenerator.width_offset': h,
      'GridAnchorGenerator.scales': h,
      'GridAnchorGenerator.aspect_ratios': h,
      'GridAnchorGenerator.octaves': _equals(1),
      # --- Image resizer.
      'ImageResizer.keep_aspect_ratio_resizer': h,
      'ImageResizer.fixed_shape_resizer': h,
      'KeepAspectRatioResizer.min_dimension': h,
      'KeepAspectRatioResizer.max_dimension': h,
      'KeepAspectRatioResizer.pad_to_max_dimension': h,
      'KeepAspectRatioResizer.resize_method': _enum(
          image_resizer_pb2.KeepAspectRatioResizer, 'resize_method',
          ('BILINEAR',)),
      'KeepAspectRatioResizer.convert_to_grayscale': _false,
      'FixedShapeResizer.height': h,
      'FixedShapeResizer.width': h,
      'FixedShapeResizer.resize_method': _enum(
          image_resizer_pb2.FixedShapeResizer, 'resize_method',
          ('BILINEAR',)),
      'FixedShapeResizer.convert_to_grayscale': _false,
      # --- Second stage.
      'BoxPredictor.mask_rcnn_box_predictor': h,
      'MaskRCNNBoxPredictor.fc_hyperparams': h,
      'MaskRCNNBoxPredictor.use_dropout': h,
      'MaskRCNNBoxPredictor.dropout_keep_probability': h,
      'MaskRCNNBoxPredictor.box_code_size': _equals(4),
      'MaskRCNNBoxPredictor.conv_hyperparams': _NO_MASKS,
      'MaskRCNNBoxPredictor.predict_instance_masks': _unless_true(
          'no masks predicted'),
      'MaskRCNNBoxPredictor.mask_prediction_conv_depth': _NO_MASKS,
      'MaskRCNNBoxPredictor.predict_keypoints': _unless_true(
          'no keypoints predicted'),
      'MaskRCNNBoxPredictor.mask_height': _NO_MASKS,
      'MaskRCNNBoxPredictor.mask_width': _NO_MASKS,
      'MaskRCNNBoxPredictor.mask_prediction_num_conv_layers': _NO_MASKS,
      'MaskRCNNBoxPredictor.masks_are_class_agnostic': _NO_MASKS,
      'MaskRCNNBoxPredictor.share_box_across_classes': _false,
      'MaskRCNNBoxPredictor.convolve_then_upsample_masks': _NO_MASKS,
      'PostProcessing.batch_non_max_suppression': h,
      'PostProcessing.score_converter': _enum(
          post_processing_pb2.PostProcessing, 'score_converter',
          ('SOFTMAX',)),
      'PostProcessing.logit_scale': _equals(1.0),
      'BatchNonMaxSuppression.score_threshold': h,
      'BatchNonMaxSuppression.iou_threshold': h,
      'BatchNonMaxSuppression.max_detections_per_class': h,
      'BatchNonMaxSuppression.max_total_detections': h,
      'BatchNonMaxSuppression.use_static_shapes': _STATIC,
      'BatchNonMaxSuppression.use_class_agnostic_nms': _false,
      'BatchNonMaxSuppression.max_classes_per_detection': _equals(1),
      'BatchNonMaxSuppression.soft_nms_sigma': _equals(0.0),
      'BatchNonMaxSuppression.use_partitioned_nms': _STATIC,
      'BatchNonMaxSuppression.use_combined_nms': _STATIC,
      'BatchNonMaxSuppression.change_coordinate_frame': _equals(True),
      'BatchNonMaxSuppression.use_hard_nms': _STATIC,
      'BatchNonMaxSuppression.use_cpu_nms': _STATIC,
      # --- Training.
      'TrainConfig.batch_size': h,
      'TrainConfig.data_augmentation_options': h,
      'TrainConfig.sync_replicas': _TF1,
      'TrainConfig.keep_checkpoint_every_n_hours': NoEffect(
          'checkpoint retention only'),
      'TrainConfig.optimizer': h,
      'TrainConfig.gradient_clipping_by_norm': h,
      'TrainConfig.fine_tune_checkpoint': h,
      'TrainConfig.fine_tune_checkpoint_type': h,
      'TrainConfig.fine_tune_checkpoint_version': _enum(
          train_pb2.TrainConfig, 'fine_tune_checkpoint_version', ('V2',)),
      'TrainConfig.from_detection_checkpoint': _false,
      'TrainConfig.load_all_detection_checkpoint_vars': _false,
      'TrainConfig.run_fine_tune_checkpoint_dummy_computation': NoEffect(
          'variables are always created before a restore'),
      'TrainConfig.num_steps': h,
      'TrainConfig.startup_delay_steps': _TF1,
      'TrainConfig.bias_grad_multiplier': _equals(0.0),
      'TrainConfig.replicas_to_aggregate': _TF1,
      'TrainConfig.batch_queue_capacity': _TF1,
      'TrainConfig.num_batch_queue_threads': _TF1,
      'TrainConfig.prefetch_queue_capacity': _TF1,
      'TrainConfig.merge_multiple_label_boxes': _false,
      'TrainConfig.use_multiclass_scores': _false,
      'TrainConfig.add_regularization_loss': _equals(True),
      'TrainConfig.max_number_of_boxes': h,
      'TrainConfig.unpad_groundtruth_tensors': _STATIC,
      'TrainConfig.retain_original_images': _VIS,
      'TrainConfig.use_bfloat16': h,
      'TrainConfig.use_mixed_float16': h,
      'TrainConfig.summarize_gradients': NoEffect('summaries only'),
      'Optimizer.rms_prop_optimizer': h,
      'Optimizer.momentum_optimizer': h,
      'Optimizer.adam_optimizer': h,
      'Optimizer.use_moving_average': _false,
      'Optimizer.moving_average_decay': NoEffect(
          'no moving average is kept (use_moving_average must be false)'),
      # --- Evaluation.
      'EvalConfig.batch_size': h,
      'EvalConfig.metrics_set': h,
      'EvalConfig.include_metrics_per_category': h,
      'EvalConfig.use_moving_averages': _false,
      'EvalConfig.num_examples': _VIS,
      'EvalConfig.eval_interval_secs': _VIS,
      'EvalConfig.max_evals': _VIS,
      'EvalConfig.num_visualizations': h,
      'EvalConfig.save_graph': _VIS,
      'EvalConfig.visualization_export_dir': _VIS,
      'EvalConfig.eval_master': _VIS,
      'EvalConfig.export_path': _VIS,
      'EvalConfig.min_score_threshold': h,
      'EvalConfig.max_num_boxes_to_visualize': h,
      'EvalConfig.skip_scores': _VIS,
      'EvalConfig.skip_labels': _VIS,
      'EvalConfig.visualize_groundtruth_boxes': h,
      'EvalConfig.groundtruth_box_visualization_color': _VIS,
      'EvalConfig.keep_image_id_for_visualization_export': _VIS,
      'EvalConfig.retain_original_images': _VIS,
      'EvalConfig.retain_original_image_additional_channels': _VIS,
      # --- Input readers.
      'InputReader.name': NoEffect('a name only'),
      'InputReader.label_map_path': h,
      'InputReader.shuffle': h,
      'InputReader.shuffle_buffer_size': h,
      'InputReader.filenames_shuffle_buffer_size': NoEffect(
          'the file list is shuffled whole'),
      'InputReader.num_epochs': h,
      'InputReader.sample_1_of_n_examples': h,
      'InputReader.num_readers': h,
      'InputReader.num_parallel_batches': NoEffect('tf.data AUTOTUNE'),
      'InputReader.num_prefetch_batches': NoEffect('tf.data AUTOTUNE'),
      'InputReader.queue_capacity': _TF1,
      'InputReader.min_after_dequeue': _TF1,
      'InputReader.read_block_length': NoEffect('tf.data AUTOTUNE'),
      'InputReader.prefetch_size': NoEffect('tf.data AUTOTUNE'),
      'InputReader.num_parallel_map_calls': NoEffect('tf.data AUTOTUNE'),
      'InputReader.max_number_of_boxes': h,
      'InputReader.skip_bad_records': h,
      'InputReader.num_additional_channels': _equals(0),
      'InputReader.num_keypoints': _equals(0),
      'InputReader.load_multiclass_scores': _false,
      'InputReader.load_context_features': _false,
      'InputReader.load_context_image_ids': _false,
      'InputReader.load_instance_masks': _false,
      'InputReader.load_dense_pose': _false,
      'InputReader.load_track_id': _false,
      'InputReader.load_keypoint_depth_features': _false,
      'InputReader.include_source_id': NoEffect(
          'image/source_id is always read'),
      'InputReader.tf_record_input_reader': h,
      'TFRecordInputReader.input_path': h,
  }
  for step in preprocessor.SUPPORTED_STEPS:
    rules['PreprocessingStep.' + step] = h
  for name in ('RandomHorizontalFlip', 'RandomVerticalFlip'):
    rules[name + '.probability'] = h
    rules[name + '.keypoint_flip_permutation'] = NoEffect(
        'no keypoints are used')
  for name, fields in (
      ('RandomAdjustBrightness', ('max_delta',)),
      ('RandomAdjustContrast', ('min_delta', 'max_delta')),
      ('RandomAdjustHue', ('max_delta',)),
      ('RandomAdjustSaturation', ('min_delta', 'max_delta')),
      ('RandomRGBtoGray', ('probability',)),
      ('RandomSquareCropByScale', ('max_border', 'scale_min', 'scale_max',
                                   'num_scales')),
      ('RandomScaleCropAndPadToSquare', ('output_size', 'scale_min',
                                         'scale_max'))):
    for field in fields:
      rules['%s.%s' % (name, field)] = h
  for optimizer in ('RMSPropOptimizer', 'MomentumOptimizer', 'AdamOptimizer'):
    rules[optimizer + '.learning_rate'] = h
  for name in ('RMSPropOptimizer.momentum_optimizer_value',
               'RMSPropOptimizer.decay', 'RMSPropOptimizer.epsilon',
               'MomentumOptimizer.momentum_optimizer_value',
               'AdamOptimizer.epsilon'):
    rules[name] = h
  for schedule, fields in (
      ('ConstantLearningRate', ('learning_rate',)),
      ('ExponentialDecayLearningRate', (
          'initial_learning_rate', 'decay_steps', 'decay_factor', 'staircase',
          'burnin_learning_rate', 'burnin_steps', 'min_learning_rate')),
      ('ManualStepLearningRate', ('initial_learning_rate', 'schedule',
                                  'warmup')),
      ('LearningRateSchedule', ('step', 'learning_rate')),
      ('CosineDecayLearningRate', (
          'learning_rate_base', 'total_steps', 'warmup_learning_rate',
          'warmup_steps', 'hold_base_rate_steps'))):
    for field in fields:
      rules['%s.%s' % (schedule, field)] = h
  for kind in ('constant_learning_rate', 'exponential_decay_learning_rate',
               'manual_step_learning_rate', 'cosine_decay_learning_rate'):
    rules['LearningRate.' + kind] = h
  return rules


_RULES = None


def _rules():
  global _RULES
  if _RULES is None:
    _RULES = _build_rules()
  return _RULES


def _note_rule(path):
  """NOTE-RCNN's own block is read whole by the project."""
  return HONOURED if path == 'note' or path.startswith('note.') else None


Finding = collections.namedtuple('Finding', ['path', 'reason', 'is_error'])


def _verdict(path, message, field, value):
  """(is_error, reason) or None for an honoured field."""
  rule = _note_rule(path)
  if rule is None:
    rules = _rules()
    rule = rules.get(path, rules.get('%s.%s' % (message.DESCRIPTOR.name,
                                                field.name)))
  if rule is None:
    return True, 'is not implemented by this project'
  if isinstance(rule, NoEffect):
    return False, 'has no effect: ' + rule
  if rule == HONOURED:
    return None
  outcome = rule(value)
  if outcome is None:
    return None
  if isinstance(outcome, NoEffect):
    return False, 'has no effect: ' + outcome
  return True, outcome


def _is_repeated(field):
  """FieldDescriptor.is_repeated across protobuf versions."""
  is_repeated = getattr(field, 'is_repeated', None)
  if is_repeated is None:
    return field.label == descriptor.FieldDescriptor.LABEL_REPEATED
  return is_repeated() if callable(is_repeated) else bool(is_repeated)


def find_unsupported_fields(message, path=''):
  """Findings for every set field of `message` (recursively).

  Returns:
    list of Finding(path, reason, is_error), in field order.
  """
  findings = []
  for field, value in message.ListFields():
    field_path = path + field.name
    is_message = field.type == descriptor.FieldDescriptor.TYPE_MESSAGE
    repeated = _is_repeated(field)
    if is_message and field.message_type.GetOptions().map_entry:
      values = []
    else:
      values = list(value) if repeated else [value]
    verdict = _verdict(field_path, message, field,
                       None if is_message else value)
    if verdict is not None:
      # Rejected or without effect: its sub-fields are not looked at.
      findings.append(Finding(field_path, verdict[1], verdict[0]))
    elif is_message:
      for child in values:
        findings.extend(find_unsupported_fields(child, field_path + '.'))
  return findings


def field_lines(text):
  """First line (1-based) of each dotted field path in pipeline text."""
  lines = {}
  tokenizer = text_format.Tokenizer(text.splitlines())
  stack = []
  previous = None
  previous_line = 1
  pending = None
  while not tokenizer.AtEnd():
    token = tokenizer.token
    line = tokenizer._line + 1  # pylint: disable=protected-access
    if token == ':' and previous is not None:
      pending = previous
      lines.setdefault('.'.join(stack + [pending]), previous_line)
    elif token in ('{', '<'):
      name = pending if previous == ':' else previous
      lines.setdefault('.'.join(stack + [name]), previous_line)
      stack.append(name)
    elif token in ('}', '>'):
      if stack:
        stack.pop()
    previous, previous_line = token, line
    tokenizer.NextToken()
  return lines


def apply_train_max_number_of_boxes(pipeline):
  """train_config.max_number_of_boxes -> train_input_reader's, if unset.

  The OD API's TF2 training pads groundtruth to
  ``train_config.max_number_of_boxes``; this project reads the input
  reader's field, so the train config's value fills it when it is not set.
  """
  reader = pipeline.train_input_reader
  if (pipeline.train_config.HasField('max_number_of_boxes') and
      not reader.HasField('max_number_of_boxes')):
    reader.max_number_of_boxes = pipeline.train_config.max_number_of_boxes


def check_pipeline_fields(pipeline, path, text=None):
  """Raises ConfigError for unsupported fields; warns for no-effect ones.

  Args:
    pipeline: TrainEvalPipelineConfig.
    path: the config file (for messages; read for line numbers if `text` is
      None and there is something to report).
    text: the config text, if at hand.

  Returns:
    the list of findings (warnings only, when it returns).
  """
  findings = find_unsupported_fields(pipeline)
  if not findings:
    return findings
  if text is None:
    try:
      with open(path) as f:
        text = f.read()
    except (OSError, TypeError):
      text = ''
  try:
    lines = field_lines(text)
  except text_format.ParseError:
    lines = {}
  def where(finding):
    line = lines.get(finding.path)
    return '%s:%s' % (path, line) if line else '%s (override?)' % path
  errors = [f for f in findings if f.is_error]
  for finding in findings:
    if not finding.is_error:
      logging.warning('%s: field %s %s', where(finding), finding.path,
                      finding.reason)
  if errors:
    raise ConfigError('\n'.join(
        '%s: field %s: %s' % (where(f), f.path, f.reason) for f in errors))
  return findings
