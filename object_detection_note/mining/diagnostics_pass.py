"""The loop-health diagnostics pass of one iteration (``loop_diagnostics``).

After B^t = M(A, T^{t-1}, θb) is mined, T^{t-1} runs once more over the
diagnosed images: the audit set (note.mining.audit_input_reader, true boxes
as object boxes) when configured, else the images of A carrying hidden
boxes. Per image it gives the inference proposals, each box-classifier
head's softmax on them and the detections.

Which mined boxes: on A, the boxes of B^t as written (what T^t trains on;
each box's per-head scores are read at the proposal of the same-class
detection overlapping it most); on the audit set, the boxes the mining rule
(best box per image-level label, score > θ_c) keeps from these detections.

Background composition (b) uses T^{t-1}'s RPN and the training's proposal
target assignment and sampler on the mined images with their mined boxes as
groundtruth: T^{t-1} is the model T^t's training starts from, so these are
the proposals its first steps sample; T^t's own proposals exist only after
the training they describe. Hidden boxes are only compared with the
sampled proposals here; training never reads them nor the audit set.

The summary goes into mining_metrics.json under ``diagnostics``; the mined
classes per image go to ``diagnostics_boxes.json`` beside it, read by the
next iteration for the new-box precision.
"""
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.config import config_util
from object_detection_note.core import file_io
from object_detection_note.core.fields import DiagnosticsFields as D
from object_detection_note.core.fields import PredictionFields
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import tf_example_codec
from object_detection_note.evaluation import eval_loop
from object_detection_note.meta_architectures import second_stage
from object_detection_note.mining import box_mining
from object_detection_note.mining import class_thresholds
from object_detection_note.mining import loop_diagnostics
from object_detection_note.mining import mining_metrics


def _files(reader, field):
  patterns = list(reader.tf_record_input_reader.input_path)
  files = sorted(set(f for p in patterns for f in tf.io.gfile.glob(p)))
  if not files:
    raise ValueError('%s.tf_record_input_reader.input_path: no file matches '
                     '%s' % (field, patterns))
  return files


def iterate_diagnosed_records(files, valid_class_ids, audit, max_images=0,
                              skip_bad_records=False):
  """Decoded records to diagnose, with their true boxes as hidden boxes.

  Audit records: object boxes become hidden boxes and image-level labels
  default to their classes. Records of A without hidden boxes are passed
  over. A bad record raises ``record_errors.BadRecordError`` naming the
  file, the record index and the problem, or is passed over with
  ``skip_bad_records`` (note.mining.skip_bad_records, as mining does).

  Yields:
    tf_example_codec.DetectionRecord, at most ``max_images`` (0: all).
  """
  count = 0
  for path in files:
    for index, serialized in enumerate(
        tf.data.TFRecordDataset(path).as_numpy_iterator()):
      record, source_id, problem = record_errors.decode_checked(
          serialized, valid_class_ids, tf_example_codec.example_to_record)
      if problem and skip_bad_records:
        continue
      if problem:
        raise record_errors.BadRecordError(path, index, source_id, problem,
                                           'diagnostics read this record')
      if audit:
        if not len(record.image_labels):
          record.image_labels = np.unique(record.classes)
        record.hidden_boxes, record.hidden_classes = (record.boxes,
                                                      record.classes)
      elif not len(record.hidden_classes):
        continue
      yield record
      count += 1
      if max_images and count >= max_images:
        return


def _read_mined(pattern):
  """{source_id: MinedBoxes} of the B^t shards."""
  files = sorted(tf.io.gfile.glob(pattern))
  mined = {}
  if files:
    for serialized in tf.data.TFRecordDataset(files).as_numpy_iterator():
      record = tf_example_codec.example_to_record(serialized)
      mined[record.source_id] = box_mining.MinedBoxes(
          record.boxes, record.classes, record.box_scores)
  return mined


def _class_thresholds(metrics, id_to_name):
  """{class id: θ_c} from mining_metrics.json's adaptive thresholds."""
  by_name = (metrics or {}).get('class_score_thresholds') or {}
  name_to_id = {name: i for i, name in id_to_name.items()}
  return {name_to_id[n]: float(v) for n, v in by_name.items()
          if n in name_to_id}


class ModelRunner:
  """T^{t-1} on one image: proposals, per-head softmax, detections."""

  def __init__(self, pipeline_config_path, checkpoint):
    configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
    self.model = eval_loop.restore_for_eval(configs, checkpoint)
    self._resizer = configs['model'].faster_rcnn.image_resizer
    self._run = tf.function(self._forward, reduce_retracing=True)

  def _forward(self, images):
    resized, true_shapes = inference.resize_batch(images, self._resizer)
    preprocessed, _ = self.model.preprocess(resized)
    predictions = self.model.predict(preprocessed, true_shapes,
                                     training=False)
    detections = self.model.postprocess(predictions, true_shapes)
    heads = self.model.head_class_probabilities(predictions)
    return (predictions[PredictionFields.proposal_boxes],
            predictions[PredictionFields.num_proposals], true_shapes,
            {k: v for k, v in heads.items() if v is not None}, detections)

  def __call__(self, image):
    """uint8 [H, W, 3] → dict of numpy arrays for one image.

    Keys: proposals_abs [P, 4] (padded-frame pixels, valid rows),
    proposals [P, 4] normalised to the image, true_shape [3], heads {det_cls,
    det_cls_a (or None), mean: [P, C + 1]}, detections (box_mining arrays
    plus detection_anchor_indices [N]).
    """
    proposals, num, true_shapes, heads, detections = self._run(
        tf.constant(image[np.newaxis]))
    n = int(num[0])
    true_shape = true_shapes[0].numpy()
    scale = np.array([true_shape[0], true_shape[1]] * 2, np.float64)
    proposals_abs = proposals[0, :n].numpy()
    det_cls = heads[D.det_cls][0, :n].numpy()
    det_cls_a = (heads[D.det_cls_a][0, :n].numpy() if D.det_cls_a in heads
                 else None)
    count = int(detections['num_detections'][0])
    return {
        'proposals_abs': proposals_abs,
        'proposals': proposals_abs / scale,
        'true_shape': true_shape,
        'heads': {D.det_cls: det_cls, D.det_cls_a: det_cls_a,
                  D.mean: loop_diagnostics.mean_head(det_cls, det_cls_a)},
        'detection_boxes': detections['detection_boxes'][0, :count].numpy(),
        'detection_scores': detections['detection_scores'][0, :count].numpy(),
        'detection_classes': detections['detection_classes'][0, :count]
                             .numpy().astype(np.int64),
        'detection_anchor_indices': detections['detection_anchor_indices'][
            0, :count].numpy().astype(np.int64),
    }

  def sample_background(self, outputs, mined):
    """(b) sampler on one image: sampled boxes normalised, targets, valid."""
    p = self.model.params
    h, w = outputs['true_shape'][:2]
    scale = np.array([h, w, h, w], np.float32)
    proposals = outputs['proposals_abs']
    if not len(proposals):
      return np.zeros((0, 4)), np.zeros((0,), np.int32), np.zeros((0,))
    gt = np.asarray(mined.boxes, np.float32).reshape(-1, 4) * scale
    samples = second_stage.sample_proposals(
        tf.constant(proposals[np.newaxis], tf.float32),
        tf.ones([1, len(proposals)], tf.bool),
        tf.constant(gt[np.newaxis]),
        tf.constant(np.asarray(mined.classes, np.int32)[np.newaxis]),
        p.second_stage_batch_size, p.second_stage_balance_fraction,
        p.second_stage_positive_iou_threshold)
    return (samples['boxes'][0].numpy() / scale,
            samples['class_targets'][0].numpy(), samples['valid'][0].numpy())


def mined_head_scores(outputs, mined):
  """Per-head scores of mined boxes at their detection's proposal (d).

  Each mined box is matched to the detection of its class with the highest
  IoU (the detection it was mined from when the box comes from these
  outputs); the heads' probabilities of that class on the detection's
  proposal are its scores. A box with no same-class detection scores 0.

  Returns:
    {head: float [K] or None}.
  """
  classes = np.asarray(mined.classes, np.int64).reshape(-1)
  det_classes = outputs['detection_classes']
  proposal = np.full(len(classes), -1, np.int64)
  if len(classes) and len(det_classes):
    ious = mining_metrics.iou_matrix(mined.boxes, outputs['detection_boxes'])
    for i, label in enumerate(classes):
      same = np.where(det_classes == label, ious[i], -1.0)
      j = int(np.argmax(same))
      if same[j] >= 0:
        proposal[i] = outputs['detection_anchor_indices'][j]
  scores = {}
  for head, probabilities in outputs['heads'].items():
    if probabilities is None:
      scores[head] = None
      continue
    values = np.zeros(len(classes), np.float64)
    ok = proposal >= 0
    values[ok] = probabilities[proposal[ok], classes[ok]]
    scores[head] = values
  return scores


def _threshold_array(classes, score_threshold, thresholds):
  return np.array([thresholds.get(int(c), score_threshold)
                   for c in np.asarray(classes).reshape(-1)], np.float64)


def diagnose(records, runner, score_threshold, thresholds, mined_by_image,
             previous_by_image, iou_threshold=0.5):
  """Runs the diagnostics over ``records``.

  Args:
    records: iterable of DetectionRecords with hidden boxes.
    runner: callable like ``ModelRunner`` (image → outputs dict) with a
      ``sample_background(outputs, mined)`` method.
    score_threshold: θb; thresholds: {class id: θ_c} overrides.
    mined_by_image: {source_id: MinedBoxes} (B^t), or None to mine each
      record from the runner's detections with the mining rule.
    previous_by_image: {source_id: [class ids]} of B^{t-1}, or None when
      unknown (new-box figures are then None).
    iou_threshold: note.mining.match_iou_threshold.

  Returns:
    (DiagnosticsStats, {source_id: [mined class ids]}).
  """
  stats = loop_diagnostics.DiagnosticsStats(
      previous_known=previous_by_image is not None)
  mined_classes = {}
  for record in records:
    image = tf.io.decode_image(record.image_bytes, channels=3,
                               expand_animations=False).numpy()
    outputs = runner(image)
    stats.images += 1
    scores, covered = loop_diagnostics.best_proposal_scores(
        outputs['proposals'], outputs['heads'], record.hidden_boxes,
        record.hidden_classes, iou_threshold)
    stats.add_hidden(record.hidden_classes, scores, covered,
                     _threshold_array(record.hidden_classes, score_threshold,
                                      thresholds))
    if mined_by_image is None:
      best = box_mining.best_box_per_label(
          outputs['detection_boxes'], outputs['detection_scores'],
          outputs['detection_classes'], record.image_labels)
      keep = class_thresholds.keep_mask(
          best.classes, best.scores, score_threshold, thresholds) & (
              best.boxes[:, 2] > best.boxes[:, 0]) & (
                  best.boxes[:, 3] > best.boxes[:, 1])
      mined = box_mining.MinedBoxes(best.boxes[keep], best.classes[keep],
                                    best.scores[keep])
    else:
      mined = mined_by_image.get(record.source_id, box_mining.MinedBoxes(
          np.zeros((0, 4), np.float32), np.zeros((0,), np.int64),
          np.zeros((0,), np.float32)))
    hits = mining_metrics.match_true_positives(
        mined.boxes, mined.classes, record.hidden_boxes,
        record.hidden_classes, iou_threshold)
    is_new = loop_diagnostics.new_box_mask(
        mined.classes, (previous_by_image or {}).get(record.source_id, []))
    head_scores = mined_head_scores(outputs, mined)
    fail_cls, fail_cls_a = loop_diagnostics.consensus_failures(
        head_scores[D.det_cls], head_scores[D.det_cls_a],
        _threshold_array(mined.classes, score_threshold, thresholds))
    stats.add_mined(mined.classes, hits, is_new, fail_cls, fail_cls_a)
    if len(mined):
      mined_classes[record.source_id] = sorted(int(c) for c in mined.classes)
      boxes, targets, valid = runner.sample_background(outputs, mined)
      stats.add_background(*loop_diagnostics.background_composition(
          boxes, targets, valid, record.hidden_boxes, iou_threshold))
  return stats, mined_classes


def diagnose_iteration(note, pipeline_config_path, checkpoint, mined_dir,
                       mined_pattern, previous_mined_dir, iteration):
  """The diagnostics of iteration t; adds them to mining_metrics.json.

  Args:
    note: NoteConfig proto of the run.
    pipeline_config_path, checkpoint: T^{t-1}.
    mined_dir: B^t's directory (mining_metrics.json is updated there and
      diagnostics_boxes.json written).
    mined_pattern: glob of B^t's shards.
    previous_mined_dir: B^{t-1}'s directory, or None at t = 1.
    iteration: t.

  Returns:
    the diagnostics dict, or None when disabled or nothing has true boxes.
  """
  mining = note.mining
  if not mining.diagnostics.enabled:
    return None
  audit = mining.HasField('audit_input_reader')
  reader = mining.audit_input_reader if audit else note.image_level_input_reader
  field = ('note.mining.audit_input_reader' if audit
           else 'note.image_level_input_reader')
  id_to_name = label_map_util.get_id_to_name(reader.label_map_path)
  if audit and id_to_name != label_map_util.get_id_to_name(
      note.image_level_input_reader.label_map_path):
    raise ValueError(
        'note.mining.audit_input_reader.label_map_path: %s differs from '
        'note.image_level_input_reader.label_map_path %s (the audit set must '
        'use the target label map)' % (
            reader.label_map_path,
            note.image_level_input_reader.label_map_path))
  metrics_path = os.path.join(mined_dir, 'mining_metrics.json')
  metrics = file_io.read_json(metrics_path)
  started = time.monotonic()
  records = iterate_diagnosed_records(_files(reader, field), sorted(id_to_name),
                                      audit, mining.diagnostics.max_images,
                                      mining.skip_bad_records)
  first = next(records, None)
  if first is None:
    logging.info('B^%d: no hidden boxes and no audit set, no diagnostics',
                 iteration)
    return None
  if previous_mined_dir is None:
    previous = {}  # B^0 is empty: every box of B^1 is new.
  else:
    previous = file_io.read_json(os.path.join(previous_mined_dir,
                                              D.boxes_file))
  runner = ModelRunner(pipeline_config_path, checkpoint)

  def all_records():
    yield first
    yield from records
  stats, mined_classes = diagnose(
      all_records(), runner, mining.score_threshold,
      _class_thresholds(metrics, id_to_name),
      None if audit else _read_mined(mined_pattern), previous,
      mining.match_iou_threshold)
  summary = stats.summary(id_to_name)
  summary[D.diagnosed_set] = D.audit_set if audit else D.image_level_set
  summary[D.model] = 'T^%d' % (iteration - 1)
  summary[D.score_threshold] = float(mining.score_threshold)
  file_io.write_json_atomically(os.path.join(mined_dir, D.boxes_file),
                                mined_classes)
  if metrics is not None:
    metrics[D.diagnostics] = summary
    file_io.write_json_atomically(metrics_path, metrics)
  logging.info('B^%d diagnostics (%s, %d images, %.1fs): new-box precision %s, '
               'consensus fail det-cls %s / det-cls-a %s, background '
               'proposals on hidden instances %s', iteration,
               summary[D.diagnosed_set], summary[D.images],
               time.monotonic() - started, *(_text(v) for v in (
                   summary[D.new_boxes][D.precision],
                   summary[D.consensus][D.fail_det_cls],
                   summary[D.consensus][D.fail_det_cls_a],
                   summary[D.background][D.hidden_target])))
  return summary


def _text(value):
  return '—' if value is None else '%.3f' % value
