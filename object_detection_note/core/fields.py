"""Every string key of the project, in one place.

Groups:
  * ``TfExampleFields``: keys of serialized ``tf.train.Example`` records. The
    OD API keys are kept verbatim so records written by the OD API's dataset
    tools read here and the other way round; NOTE adds ``image/note/*``.
  * ``InputFields``: keys of the tensor dicts produced by the tf.data input
    pipeline (one example, or a batch with a leading batch dimension).
  * ``DetectionFields``: keys of postprocessed detections (OD API names, also
    the SavedModel's output signature).
  * ``PredictionFields``: keys of the raw ``predict`` output of the model.
  * ``LossKeys``: keys of the loss dict (OD API style ``Loss/...`` names).
  * ``Splits``: dataset split names written by the converters.
"""


class TfExampleFields:
  """Keys of a detection ``tf.train.Example`` (OD API + NOTE extensions)."""
  image_encoded = 'image/encoded'
  image_format = 'image/format'
  filename = 'image/filename'
  source_id = 'image/source_id'
  key = 'image/key/sha256'
  height = 'image/height'
  width = 'image/width'
  # Boxes, normalised to [0, 1] by image height/width.
  object_bbox_ymin = 'image/object/bbox/ymin'
  object_bbox_xmin = 'image/object/bbox/xmin'
  object_bbox_ymax = 'image/object/bbox/ymax'
  object_bbox_xmax = 'image/object/bbox/xmax'
  object_class_label = 'image/object/class/label'
  object_class_text = 'image/object/class/text'
  object_is_crowd = 'image/object/is_crowd'
  object_difficult = 'image/object/difficult'
  # Image-level labels (the annotation set A of the paper).
  image_class_label = 'image/class/label'
  image_class_text = 'image/class/text'
  # NOTE: 0 for seed (ground-truth) examples, 1 for mined ones.
  is_mined = 'image/note/is_mined'
  # NOTE: ground-truth boxes stripped from image-level sets. Used only to score
  # mining precision/recall; never read by training.
  hidden_bbox_ymin = 'image/note/hidden/bbox/ymin'
  hidden_bbox_xmin = 'image/note/hidden/bbox/xmin'
  hidden_bbox_ymax = 'image/note/hidden/bbox/ymax'
  hidden_bbox_xmax = 'image/note/hidden/bbox/xmax'
  hidden_class_label = 'image/note/hidden/class/label'
  hidden_class_text = 'image/note/hidden/class/text'
  # NOTE: score of each mined box (for auditing; training ignores it).
  object_score = 'image/note/object/score'


class InputFields:
  """Keys of the input pipeline's tensor dicts.

  Shapes are per example; batching adds a leading ``[batch]`` dimension.
  """
  image = 'image'  # float32 [H, W, 3], raw pixel values in [0, 255].
  original_image_spatial_shape = 'original_image_spatial_shape'  # int32 [2]
  true_image_shape = 'true_image_shape'  # int32 [3]: unpadded resized shape.
  source_id = 'source_id'  # string []
  groundtruth_boxes = 'groundtruth_boxes'  # float32 [max_boxes, 4] normalised
  groundtruth_classes = 'groundtruth_classes'  # int32 [max_boxes], 1-based ids
  groundtruth_weights = 'groundtruth_weights'  # float32 [max_boxes], 1 valid
  num_groundtruth_boxes = 'num_groundtruth_boxes'  # int32 []
  image_level_labels = 'image_level_labels'  # float32 [num_classes] k-hot
  is_mined = 'is_mined'  # float32 []: 1.0 for mined examples.


class DetectionFields:
  """Keys of postprocessed detections (OD API names)."""
  detection_boxes = 'detection_boxes'  # float32 [B, max_det, 4] normalised
  detection_scores = 'detection_scores'  # float32 [B, max_det]
  detection_classes = 'detection_classes'  # float32 [B, max_det] label ids
  num_detections = 'num_detections'  # float32 [B]
  raw_detection_boxes = 'raw_detection_boxes'  # float32 [B, P, 4]
  raw_detection_scores = 'raw_detection_scores'  # float32 [B, P, C+1]
  detection_multiclass_scores = 'detection_multiclass_scores'  # [B, max, C+1]
  # float32 [B, max_det]: row of raw_detection_boxes each detection came from.
  detection_anchor_indices = 'detection_anchor_indices'


class PredictionFields:
  """Keys of the model's ``predict`` output dict."""
  image_shape = 'image_shape'
  anchors = 'anchors'
  rpn_box_encodings = 'rpn_box_encodings'
  rpn_objectness_logits = 'rpn_objectness_logits'
  rpn_objectness_logits_a = 'rpn_objectness_logits_a'
  proposal_boxes = 'proposal_boxes'
  num_proposals = 'num_proposals'
  box_classifier_features = 'box_classifier_features'
  refined_box_encodings = 'refined_box_encodings'
  class_logits = 'class_logits'
  class_logits_a = 'class_logits_a'
  class_logits_s = 'class_logits_s'
  # Training only: targets of the sampled proposals, and the frozen source
  # detector's class distribution on them (distillation).
  proposal_class_targets = 'proposal_class_targets'
  proposal_box_targets = 'proposal_box_targets'
  source_class_probabilities = 'source_class_probabilities'
  # Distillation on all proposals (note.distillation.targets ALL_PROPOSALS):
  # det-cls-s logits on the P proposals and which of them are valid; the
  # source probabilities are then on the same P proposals.
  distillation_class_logits_s = 'distillation_class_logits_s'
  distillation_proposals_valid = 'distillation_proposals_valid'


class LossKeys:
  """Keys of the loss dict, OD API naming."""
  rpn_localization = 'Loss/RPNLoss/localization_loss'
  rpn_objectness = 'Loss/RPNLoss/objectness_loss'
  rpn_objectness_a = 'Loss/RPNLoss/objectness_loss_a'
  box_localization = 'Loss/BoxClassifierLoss/localization_loss'
  box_classification = 'Loss/BoxClassifierLoss/classification_loss'
  box_classification_a = 'Loss/BoxClassifierLoss/classification_loss_a'
  distillation = 'Loss/BoxClassifierLoss/distillation_loss'
  regularization = 'Loss/regularization_loss'
  total = 'Loss/total_loss'


class SummaryKeys:
  """TensorBoard scalars written by training besides the LossKeys."""
  learning_rate = 'learning_rate'
  steps_per_sec = 'steps_per_sec'


class Splits:
  """Dataset split names (file prefixes) written by every converter."""
  source_train = 'source_train'
  source_val = 'source_val'
  seed = 'seed'
  image_level = 'image_level'
  target_val = 'target_val'
  all = (source_train, source_val, seed, image_level, target_val)


class DatasetFiles:
  """File names written beside the split shards."""
  source_label_map = 'source_label_map.pbtxt'
  target_label_map = 'target_label_map.pbtxt'
  manifest = 'manifest.json'


class CategoryFields:
  """Keys of an OD API category dict (label_map_util, COCO-style eval)."""
  id = 'id'
  name = 'name'


class ManifestFields:
  """Keys of a dataset's ``manifest.json`` (data/writing/dataset_writer.py)."""
  format_version = 'format_version'
  label_maps = 'label_maps'
  source_categories = 'source_categories'
  target_categories = 'target_categories'
  parameters = 'parameters'
  statistics = 'statistics'
  splits = 'splits'
  # Per split:
  side = 'side'  # 'source' or 'target': the label map of its class ids.
  images = 'images'
  boxes = 'boxes'
  image_level_labels = 'image_level_labels'
  hidden_boxes = 'hidden_boxes'
  categories = 'categories'  # {name: {images, boxes, ...}}
  num_shards = 'num_shards'
  shards = 'shards'  # [{file, records}]
  file = 'file'
  records = 'records'
  source = 'source'
  target = 'target'


class ExportFields:
  """Layout, signature and input types of an exported model (OD API names)."""
  saved_model_dir = 'saved_model'
  checkpoint_dir = 'checkpoint'
  pipeline_config = 'pipeline.config'
  signature = 'serving_default'
  input_tensor = 'input_tensor'
  # --input_type values of exporter_main_v2.
  image_tensor = 'image_tensor'
  float_image_tensor = 'float_image_tensor'
  encoded_image_string_tensor = 'encoded_image_string_tensor'
  tf_example = 'tf_example'


class InferenceFields:
  """Keys of the JSON files written by ``infer`` (one per image + summary)."""
  summary_file = 'summary.json'
  image = 'image'
  height = 'height'
  width = 'width'
  box_format = 'box_format'
  detections = 'detections'
  num_detections = 'num_detections'
  box = 'box'  # [ymin, xmin, ymax, xmax] in pixels of the input image.
  box_normalized = 'box_normalized'  # the same, normalised to [0, 1].
  score = 'score'
  class_id = 'class_id'
  label = 'label'
  json_file = 'json'
  png_file = 'png'
  # Summary only.
  saved_model_dir = 'saved_model_dir'
  label_map_path = 'label_map_path'
  min_score = 'min_score'
  images = 'images'
  num_images = 'num_images'
  class_counts = 'class_counts'
  seconds = 'seconds'


class BadRecordFields:
  """Keys of a bad-record report (``data/records/record_errors.py``): the
  ``skipped_records.json`` of training and evaluation, and the
  ``skipped_records`` entry of ``mining_metrics.json``."""
  report_file = 'skipped_records.json'
  skipped_records = 'skipped_records'
  count = 'count'  # distinct bad records (file, index) seen
  skip_events = 'skip_events'  # skips, counting re-reads in later epochs
  first = 'first'  # the first few: [{file, record, source_id, problem}]
  by_problem = 'by_problem'  # {problem: count}
  file = 'file'
  record = 'record'
  source_id = 'source_id'
  problem = 'problem'


class DiagnosticsFields:
  """Keys of the loop-health diagnostics (``mining/loop_diagnostics.py``):
  the ``diagnostics`` entry of ``mining_metrics.json`` and of the mining
  manifest, and the per-iteration ``diagnostics_boxes.json``."""
  diagnostics = 'diagnostics'
  boxes_file = 'diagnostics_boxes.json'  # {source_id: [mined class ids]}
  diagnosed_set = 'set'  # AUDIT_SET or IMAGE_LEVEL_SET
  audit_set = 'audit'
  image_level_set = 'image_level'
  model = 'model'
  images = 'images'
  score_threshold = 'score_threshold'
  # Heads whose scores are reported; 'mean' is the mined score.
  det_cls = 'det_cls'
  det_cls_a = 'det_cls_a'
  mean = 'mean'
  heads = (det_cls, det_cls_a, mean)
  # (a) scores of the hidden instances.
  hidden_scores = 'hidden_instance_scores'
  hidden_boxes = 'hidden_boxes'
  covered = 'covered_share'  # share with a proposal at IoU >= match IoU
  median = 'median'
  above_threshold = 'share_above_threshold'
  per_category = 'per_category'
  # (b) background proposals sampled on mined images.
  background = 'background_proposals'
  mined_images = 'mined_images'
  sampled_background = 'sampled_background'
  hidden_target = 'hidden_target'  # share: IoU >= match IoU to a hidden box
  source_object = 'source_object'  # share: to a source-category object
  nothing = 'nothing'  # share: to neither
  # (c) mined boxes, new boxes.
  mined = 'mined'
  new_boxes = 'new_boxes'
  boxes = 'boxes'
  true_positives = 'true_positives'
  precision = 'precision'
  recall = 'recall'
  previous_known = 'previous_known'  # B^{t-1}'s boxes were available
  # (d) consensus.
  consensus = 'consensus'
  fail_det_cls = 'fail_det_cls'
  fail_det_cls_a = 'fail_det_cls_a'
  fail_either = 'fail_either'
