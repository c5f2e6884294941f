"""Box mining over an image-level set as an Apache Beam pipeline.

  image-level TFRecords ──► ReadValidatedRecords (per file: read, validate,
  batch) ─┬─► Reshuffle ──► BestBoxesFn (detector loaded once per worker;
          │   best box per image-level label) ──► mine_best (threshold θb, or
          │   per-class thresholds computed from all candidates first)
          │     ├─► mined records ─► WriteSortedShards ─┐
          │     └─► per-image stats ─► CombineGlobally ─┤
          └─► Count (good images read) ─────────────────┴─►
      check counts, write mining_metrics.json
  bad records (stop, or skip and count) ──► skipped_records in the metrics

Every record is validated before any detection work
(``record_validation``): a bad one stops the job naming its file, record
and field, or, with ``skip_bad_records``, is skipped and counted in
``mining_metrics.json`` (``skipped_records``).

The last step gathers every branch: it fails with ``MiningCountError`` when
the processed image count differs from the input count or the shards do not
hold every mined record, and ``run_mining`` fails when the runner ended
without writing the metrics or the shards on disk differ from those written.

Every mining option comes in one ``mining_spec.MiningSpec`` (built from
note.mining by ``MiningSpec.from_config``). The detector is described by a
picklable ``DetectorSpec`` and loaded in
``DoFn.setup``, so every worker (DirectRunner processes, Dataflow VMs, ...)
loads it once. Output shards are sorted and written atomically, so the result
does not depend on the runner or the number of workers, and a killed job
leaves no partial shard.

``mining_metrics.json`` holds: images, mined boxes, precision and recall at
θb against the hidden boxes (per category too) and a threshold sweep
(precision vs number of boxes, paper Fig. 6).
"""
import contextlib
import dataclasses
import importlib
import os
import time

from absl import logging
import apache_beam as beam
import numpy as np
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core import stale_files
from object_detection_note.core.fields import BadRecordFields
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec
from object_detection_note.mining import box_mining
from object_detection_note.mining import class_thresholds
from object_detection_note.mining import mining_metrics
from object_detection_note.mining import record_validation
from object_detection_note.mining import review
from object_detection_note.core import progress

METRICS_FILE = 'mining_metrics.json'


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
  """How a worker builds its detector: ``module:function`` and its kwargs.

  The function returns a callable ``detect(list of uint8 [H, W, 3]) -> list
  of dicts`` with numpy ``detection_boxes`` [N, 4] (normalised),
  ``detection_scores`` [N] and ``detection_classes`` [N] (label ids).
  """
  factory: str
  kwargs: tuple = ()

  def load(self):
    module_name, function_name = self.factory.split(':')
    factory = getattr(importlib.import_module(module_name), function_name)
    return factory(**dict(self.kwargs))


@dataclasses.dataclass
class MiningResult:
  """What one image contributes: the mined record (or None) and its stats."""
  source_id: str
  serialized: bytes  # b'' when nothing was mined
  stats: mining_metrics.MiningStats
  sweep_scores: np.ndarray
  sweep_hits: np.ndarray
  review_candidates: list = dataclasses.field(default_factory=list)


def mine_best(record, best, spec, thresholds=None):
  """Applies the threshold to one image's candidates; returns MiningResult.

  Args:
    record: the decoded image-level record.
    best: ``box_mining.MinedBoxes``, the best detection per image-level label
      (no threshold applied).
    spec: ``mining_spec.MiningSpec``; read here: score_threshold (θb),
      id_to_name, iou_threshold (a mined box's IoU to count as a true
      positive), with_review (also list the unmined candidates for human
      review, ``review.candidates_of``) and oracle (the ORACLE control,
      ``box_mining.oracle_boxes``: each candidate box becomes a hidden true
      instance of its class before the threshold).
    thresholds: optional {class id: θ_c} (``class_thresholds``); classes
      missing from it use θb.
  """
  score_threshold, id_to_name = spec.score_threshold, spec.names
  if spec.oracle:
    best = box_mining.oracle_boxes(best, record.hidden_boxes,
                                   record.hidden_classes, record.source_id)
  best_hits = mining_metrics.match_true_positives(
      best.boxes, best.classes, record.hidden_boxes, record.hidden_classes,
      spec.iou_threshold)
  # A zero-area box is no ground truth: training would reject the record.
  keep = class_thresholds.keep_mask(best.classes, best.scores,
                                    score_threshold, thresholds) & (
      best.boxes[:, 2] > best.boxes[:, 0]) & (best.boxes[:, 3] > best.boxes[:, 1])
  mined = box_mining.MinedBoxes(best.boxes[keep], best.classes[keep],
                                best.scores[keep])
  stats = mining_metrics.MiningStats()
  stats.add_image(mined.classes, best_hits[keep], record.hidden_classes)
  out = box_mining.mined_record(record, mined, id_to_name)
  serialized = (tf_example_codec.serialize_record(out)
                if out is not None else b'')
  candidates = (review.candidates_of(record, best, score_threshold, id_to_name)
                if spec.with_review else [])
  return MiningResult(record.source_id, serialized, stats, best.scores,
                      best_hits, candidates)


def mine_record(record, detections, spec, thresholds=None):
  """M for one decoded record and its detections (see ``mine_best``)."""
  best = box_mining.best_box_per_label(
      detections['detection_boxes'], detections['detection_scores'],
      detections['detection_classes'], record.image_labels)
  return mine_best(record, best, spec, thresholds)


class BestBoxesFn(beam.DoFn):
  """Batch of serialized image-level records → (record, best box per label).

  Progress, on any runner: the Beam counter ``mining/images`` and, from each
  worker, a log line after its first batch (with the model loading and
  tracing time) and at least every ``progress.DEFAULT_INTERVAL_S`` seconds
  (a batch longer than that gets a 'still running' line). The mining spec's
  ``total_images`` gives the lines an ETA (exact when one worker mines
  everything, as on the DirectRunner); ``clock`` replaces ``time.monotonic``.
  """

  def __init__(self, detector_spec, spec, clock=None):
    self._spec = detector_spec
    self._total = spec.total_images
    self._clock = clock
    self._detect = None
    self._progress = None
    self._keepalive = None
    self._done = 0
    self._images = beam.metrics.Metrics.counter('mining', 'images')

  def setup(self):
    self._progress = progress.ProgressLogger(
        'mining', total=self._total, unit='images',
        clock=self._clock or time.monotonic, update_name='batch')
    self._keepalive = contextlib.ExitStack()
    self._keepalive.enter_context(self._progress.keepalive())
    self._detect = self._spec.load()

  def teardown(self):
    if self._keepalive is not None:
      self._keepalive.close()
      self._keepalive = None

  def process(self, batch):
    records = [tf_example_codec.example_to_record(s) for s in batch]
    images = [tf.io.decode_image(r.image_bytes, channels=3,
                                 expand_animations=False).numpy()
              for r in records]
    for record, detections in zip(records, self._detect(images)):
      yield record, box_mining.best_box_per_label(
          detections['detection_boxes'], detections['detection_scores'],
          detections['detection_classes'], record.image_labels)
    self._done += len(records)
    self._images.inc(len(records))
    self._progress.update(self._done)


def _scores_by_class(pairs):
  """[(class id, score), ...] → {class id: [scores]}."""
  grouped = {}
  for label, score in pairs:
    grouped.setdefault(int(label), []).append(float(score))
  return grouped


class _StatsCombineFn(beam.CombineFn):
  """Merges MiningStats and the sweep counts of all images."""

  def __init__(self, thresholds):
    self._thresholds = tuple(thresholds)

  def create_accumulator(self):
    return mining_metrics.MiningStats(), np.zeros((len(self._thresholds), 2),
                                                  np.int64)

  def add_input(self, accumulator, result):
    stats, sweep = accumulator
    points = mining_metrics.threshold_sweep_counts(
        result.sweep_scores, result.sweep_hits, self._thresholds)
    sweep = sweep + np.array([[p['mined_boxes'], p['true_positives']]
                              for p in points], np.int64).reshape(-1, 2)
    return stats.merge(result.stats), sweep

  def merge_accumulators(self, accumulators):
    stats, sweep = self.create_accumulator()
    for other_stats, other_sweep in accumulators:
      stats, sweep = stats.merge(other_stats), sweep + other_sweep
    return stats, sweep

  def extract_output(self, accumulator):
    return accumulator


def metrics_dict(stats, sweep, spec, class_score_thresholds=None):
  """JSON-ready mining metrics (precision null where nothing was mined).

  ``sweep``: int [len(spec.sweep), 2] (mined boxes, true positives) per θb
  of ``spec.sweep``; ``class_score_thresholds``: {class id: θ_c} or None.
  """
  id_to_name = spec.names
  summary = stats.summary(id_to_name)
  summary['score_threshold'] = float(spec.score_threshold)
  summary['threshold_sweep'] = [
      {'threshold': float(t), 'mined_boxes': int(n), 'true_positives': int(tp),
       'precision': float(tp) / n if n else None}
      for t, (n, tp) in zip(spec.sweep, sweep)]
  if class_score_thresholds is not None:
    summary['class_score_thresholds'] = {
        id_to_name.get(c, str(c)): v
        for c, v in sorted(class_score_thresholds.items())}
  return summary


class MiningCountError(RuntimeError):
  """Mining lost or duplicated images or mined records (e.g. a faulty runner)."""


# Tags of the outcomes gathered by the last step of the pipeline.
_INPUT, _STATS, _SHARD, _REVIEW = 'input', 'stats', 'shard', 'review'


class _CheckAndWriteMetrics(beam.DoFn):
  """Gathers every outcome, checks the counts, writes mining_metrics.json.

  Input: one list of tagged outcomes: ``(_INPUT, images read)``,
  ``(_STATS, accumulator)``, ``(_SHARD, (file name, records))`` per shard,
  ``(_REVIEW, rows)``. Being the only sink that depends on every branch, it
  also makes runners that compute only the last transform's ancestors run the
  whole pipeline. ``spec``: the job's ``mining_spec.MiningSpec``.
  """

  def __init__(self, path, spec):
    self._path = path
    self._spec = spec

  def process(self, outcomes, bad_records=None,
              class_score_thresholds=None):
    by_tag = {}
    for tag, value in outcomes:
      by_tag.setdefault(tag, []).append(value)
    [input_images] = by_tag.get(_INPUT, [0])
    [(stats, sweep)] = by_tag[_STATS]
    shards = dict(by_tag.get(_SHARD, []))
    if stats.images != input_images:
      raise MiningCountError(
          'mining processed %d images but read %d from the input' %
          (stats.images, input_images))
    written = sum(shards.values())
    if (len(shards) != self._spec.num_shards or
        written != stats.images_with_boxes):
      raise MiningCountError(
          'mining wrote %d records in %d shards, expected %d records (images '
          'with a mined box) in %d shards' % (written, len(shards),
                                             stats.images_with_boxes,
                                             self._spec.num_shards))
    payload = metrics_dict(stats, sweep, self._spec, class_score_thresholds)
    if bad_records is not None:
      payload[BadRecordFields.skipped_records] = bad_records
    payload['input_images'] = int(input_images)
    payload['shards'] = {name: int(n) for name, n in sorted(shards.items())}
    file_io.write_json_atomically(self._path, payload)
    yield payload


def build_mining_pipeline(pipeline, input_pattern, output_prefix,
                          metrics_path, detector_spec, spec):
  """Adds the mining transforms to ``pipeline``.

  Args:
    pipeline: beam.Pipeline.
    input_pattern: glob, or list of globs, of image-level TFRecords (the set
      A); every file matching any of them is mined.
    output_prefix: mined shards are ``<output_prefix>-0000i-of-0000N``.
    metrics_path: where mining_metrics.json is written.
    detector_spec: DetectorSpec of T^{t-1}.
    spec: ``mining_spec.MiningSpec``: θb, label map, shards, batch size, the
      sweep, review export, adaptive per-class thresholds (computed from all
      candidates first, ``class_thresholds.adaptive``), bad-record policy
      (``record_validation``), input size and the ORACLE control.

  Returns:
    PCollection with the metrics dict (one element).
  """
  patterns = ([input_pattern] if isinstance(input_pattern, str)
              else list(input_pattern))
  files = sorted(set(f for p in patterns for f in tf.io.gfile.glob(p)))
  if not files:
    raise ValueError('input_tfrecord: no file matches %s' % patterns)
  inputs = (pipeline
            | 'ListFiles' >> beam.Create(files)
            | 'ReadRecords' >> record_validation.ReadValidatedRecords(
                sorted(spec.names), spec.skip_bad_records,
                spec.batch_size))
  batches = inputs['records']
  outcomes = [batches
              | 'CountInput' >> beam.Map(len)
              | 'SumInput' >> beam.CombineGlobally(sum)
              | 'TagInput' >> beam.Map(lambda n: (_INPUT, n))]
  candidates = (
      batches
      | 'Spread' >> beam.Reshuffle()
      | 'Detect' >> beam.ParDo(BestBoxesFn(detector_spec, spec)))
  mine_kwargs = {}
  metrics_kwargs = {}
  adaptive_threshold = spec.adaptive_threshold
  if adaptive_threshold is not None:
    per_class = beam.pvalue.AsSingleton(
        candidates
        | 'CandidateScores' >> beam.FlatMap(
            lambda rb: zip(rb[1].classes.tolist(), rb[1].scores.tolist()))
        | 'AllScores' >> beam.combiners.ToList()
        | 'ClassThresholds' >> beam.Map(
            lambda pairs, kf, ms: class_thresholds.adaptive(
                _scores_by_class(pairs), spec.score_threshold, kf, ms),
            adaptive_threshold.keep_fraction, adaptive_threshold.min_score))
    mine_kwargs = {'thresholds': per_class}
    metrics_kwargs = {'class_score_thresholds': per_class}
  results = candidates | 'Mine' >> beam.Map(
      lambda candidate, **kwargs: mine_best(*candidate, **kwargs),
      spec=spec, **mine_kwargs)
  if spec.with_review:
    outcomes.append(
        results
        | 'ReviewCandidates' >> beam.FlatMap(lambda r: r.review_candidates)
        | 'MostUncertain' >> beam.combiners.Top.Of(spec.review_count,
                                                   key=lambda sc: sc[0])
        | 'WriteReview' >> beam.Map(lambda top: (
            _REVIEW, len(review.write_review(spec.review_dir, top)))))
  outcomes.append(
      results
      | 'KeepMined' >> beam.Filter(lambda r: bool(r.serialized))
      | 'Key' >> beam.Map(lambda r: (r.source_id, r.serialized))
      | 'WriteMined' >> beam_io.WriteSortedShards(output_prefix,
                                                   spec.num_shards)
      | 'TagShards' >> beam.MapTuple(
          lambda path, n: (_SHARD, (os.path.basename(path), n))))
  outcomes.append(
      results
      | 'CombineStats' >> beam.CombineGlobally(_StatsCombineFn(spec.sweep))
      | 'TagStats' >> beam.Map(lambda accumulator: (_STATS, accumulator)))
  return (outcomes
          | 'FlattenOutcomes' >> beam.Flatten()
          | 'Gather' >> beam.combiners.ToList()
          | 'CheckAndWriteMetrics' >> beam.ParDo(
              _CheckAndWriteMetrics(metrics_path, spec),
              bad_records=beam.pvalue.AsSingleton(inputs['report']),
              **metrics_kwargs))


def run_mining(spec, input_pattern, output_dir, detector_spec,
               pipeline_options=None):
  """Runs the pipeline to completion; returns the metrics dict.

  Args:
    spec: ``mining_spec.MiningSpec`` of the job.
    input_pattern: glob, or list of globs, of image-level TFRecords.
    output_dir: gets ``<spec.output_name>-*`` and ``mining_metrics.json``.
    detector_spec: DetectorSpec of the detector that mines.
    pipeline_options: Beam PipelineOptions (default: the DirectRunner's).
  """
  tf.io.gfile.makedirs(output_dir)
  # Partial shards and Beam's temporary directory of a killed earlier run.
  stale_files.remove_stale_temporaries(output_dir)
  metrics_path = os.path.join(output_dir, METRICS_FILE)
  if tf.io.gfile.exists(metrics_path):  # a previous, interrupted run's
    tf.io.gfile.remove(metrics_path)
  options = pipeline_options or beam_io.pipeline_options([])
  pipeline = beam.Pipeline(options=options)
  with stale_files.tracking_beam_tempdir(pipeline, output_dir), pipeline:
    build_mining_pipeline(pipeline, input_pattern,
                          os.path.join(output_dir, spec.output_name),
                          metrics_path, detector_spec, spec)
  metrics = file_io.read_json(metrics_path)
  if metrics is None:
    raise MiningCountError('the Beam runner finished without writing %s: '
                           'the pipeline did not run to its end' %
                           metrics_path)
  report = metrics.get(BadRecordFields.skipped_records)
  if report and report[BadRecordFields.count]:
    logging.warning('mining skipped %d bad record(s); first: %s',
                    report[BadRecordFields.count], '; '.join(
                        '%s #%d: %s' % (e[BadRecordFields.file],
                                        e[BadRecordFields.record],
                                        e[BadRecordFields.problem])
                        for e in report[BadRecordFields.first][:3]))
  prefix = os.path.join(output_dir, spec.output_name)
  found = {os.path.basename(p) for p in tf.io.gfile.glob(
      beam_io.shard_pattern(prefix))}
  if found != set(metrics['shards']):
    raise MiningCountError('mined shards on disk %s differ from those the '
                           'pipeline wrote %s' % (sorted(found),
                                                  sorted(metrics['shards'])))
  return metrics
