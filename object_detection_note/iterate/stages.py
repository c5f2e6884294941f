"""The stages of the training-mining loop (paper §3.2), each resumable.

  source     train S on the source set (or take note.source_detector's)
  train t    T^0 from S on B0; T^t from T^{t-1} on B0 ∪ B^t
  mine t     B^t = M(A, T^{t-1}, θb), mined afresh from all of A (t ≥ 1)
  eval t     T^t on the target validation set
  finish t   the iteration's manifest (config hash, inputs, counts, checksums)

Every stage checks its completion marker first (see ``run_layout``), so
calling a finished stage again does nothing, and calling an interrupted one
continues it (training resumes from its last checkpoint; mining reruns, its
output being deterministic and written atomically).
"""
import dataclasses
import math
import os
import time
from typing import Optional

from absl import logging
import tensorflow as tf
import tf_keras

from object_detection_note.config import config_util
from object_detection_note.core.fields import DiagnosticsFields
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec
from object_detection_note.evaluation import eval_loop
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stage_stats
from object_detection_note.mining import class_thresholds
from object_detection_note.mining import detectors
from object_detection_note.mining import diagnostics_pass
from object_detection_note.mining import gallery
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.mining import review
from object_detection_note.checkpoints import checkpoint_errors
from object_detection_note.training import distribute_util
from object_detection_note.training import source_model as source_model_lib
from object_detection_note.training import train_loop


@dataclasses.dataclass
class RunContext:
  """One iterate run: its config, directory and execution options."""
  pipeline_config_path: str
  model_dir: str
  configs: dict
  beam_argv: tuple = ()
  checkpoint_every_n: int = 500
  jit_compile: bool = False
  export_review: int = -1  # -1: note.mining.export_review
  seed: Optional[int] = None  # None: unseeded
  strategy: object = None  # tf.distribute strategy of the trainings
  config_override: Optional[str] = None  # text proto merged on the config

  @property
  def note(self):
    return self.configs['note']

  @property
  def iterations(self):
    return self.note.iterations

  @property
  def source_config_path(self):
    if self.note.HasField('source_detector'):
      return self.note.source_detector.pipeline_config_path or None
    return None


def distill_in_iteration(note, t):
  """Distillation schedule: every T^t (iterations 0), or T^t with t ≤ K."""
  if not note.HasField('distillation') or note.distillation.weight <= 0:
    return False
  return note.distillation.iterations == 0 or t <= note.distillation.iterations


def seed_stage(ctx, stage, t=0):
  """Seeds Python, NumPy and TF for one stage when the run has a seed.

  Each stage gets its own seed derived from (run seed, stage, t), so a
  resumed or separately launched stage draws what it would have drawn in
  one uninterrupted run. TF on CPU is not bit-for-bit deterministic, so
  seeded runs agree closely, not exactly.
  """
  if ctx.seed is None:
    return
  offset = {'source': 0, 'train': 1}[stage]
  tf_keras.utils.set_random_seed(ctx.seed * 10007 + t * 2 + offset)


def _timed(name):
  start = time.monotonic()
  return lambda: logging.info('%s done in %.1fs', name,
                              time.monotonic() - start)


# ------------------------------------------------------------------- source
def _given_checkpoint(path):
  """The checkpoint at ``path`` (a directory or a checkpoint prefix), or None."""
  if tf.io.gfile.isdir(path):
    return tf.train.latest_checkpoint(path)
  return path if tf.io.gfile.glob(path + '.index') else None


def source_checkpoint(ctx):
  """Checkpoint of S.

  note.source_detector.checkpoint_dir set: the checkpoint there; when it is
  empty or missing, S is first trained there from
  note.source_detector.pipeline_config_path (so several runs can share one
  S; an interrupted training there resumes). Unset: S is trained into
  <model_dir>/source. No source config either: None (T^0 from scratch).
  """
  note = ctx.note
  given = (note.source_detector.checkpoint_dir
           if note.HasField('source_detector') else '')
  directory = given or layout.source_dir(ctx.model_dir)
  done = layout.read_json(os.path.join(directory, layout.MANIFEST))
  if done:
    return done['checkpoint']
  pending = os.path.join(directory, layout.SOURCE_PENDING)
  if given and not tf.io.gfile.exists(pending):
    latest = _given_checkpoint(given)
    if latest:
      return latest  # trained elsewhere
    if not ctx.source_config_path:
      raise ValueError(
          '%s: field note.source_detector.checkpoint_dir: no checkpoint in %s, '
          'and no note.source_detector.pipeline_config_path to train S there'
          % (ctx.pipeline_config_path, given))
  if not ctx.source_config_path:
    return None
  layout.write_json(pending, {'pipeline_config': ctx.source_config_path})
  logging.info('== source detector S: training into %s', directory)
  finished = _timed('source training')
  seed_stage(ctx, 'source')
  train_loop.train_loop(ctx.source_config_path, directory,
                        checkpoint_every_n=ctx.checkpoint_every_n,
                        jit_compile=ctx.jit_compile, strategy=ctx.strategy)
  finished()
  checkpoint = tf.train.latest_checkpoint(directory)
  if _is_chief(ctx):
    layout.write_json(os.path.join(directory, layout.MANIFEST),
                      {'checkpoint': checkpoint,
                       'pipeline_config': ctx.source_config_path})
    tf.io.gfile.remove(pending)
  return checkpoint


def source_done(ctx):
  """Whether ``source_checkpoint(ctx)`` would return without training S."""
  note = ctx.note
  given = (note.source_detector.checkpoint_dir
           if note.HasField('source_detector') else '')
  directory = given or layout.source_dir(ctx.model_dir)
  if layout.read_json(os.path.join(directory, layout.MANIFEST)):
    return True
  pending = os.path.join(directory, layout.SOURCE_PENDING)
  if given and not tf.io.gfile.exists(pending) and _given_checkpoint(given):
    return True
  return not ctx.source_config_path


def stage_done(ctx, stage, t):
  """Whether stage ``stage`` ('mine', 'train', 'eval') of iteration t is done.

  Training is done when its last checkpoint is at the iteration config's
  num_steps (or the iteration is evaluated).
  """
  directory = layout.iteration_dir(ctx.model_dir, t)
  if layout.read_json(os.path.join(directory, layout.MANIFEST)):
    return True
  if stage == 'mine':
    return bool(layout.read_json(os.path.join(
        layout.mined_dir(ctx.model_dir, t), layout.MANIFEST)))
  evaluated = bool(layout.read_json(os.path.join(
      layout.eval_dir(ctx.model_dir, t), eval_loop.METRICS_FILE)))
  if stage == 'eval' or evaluated:
    return evaluated
  path = layout.pipeline_path(ctx.model_dir, t)
  checkpoint = tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir, t))
  if not checkpoint or not tf.io.gfile.exists(path):
    return False
  steps = config_util.get_configs_from_pipeline_file(path)[
      'train_config'].num_steps
  try:
    return int(checkpoint.rsplit('-', 1)[1]) >= steps
  except ValueError:
    return False


def _is_chief(ctx):
  return ctx.strategy is None or distribute_util.is_chief(ctx.strategy)


def is_chief(ctx):
  """Whether this process writes the run's files (always, but one worker)."""
  return _is_chief(ctx)


# ------------------------------------------------------------------- config
def review_dir(ctx, t):
  return os.path.join(layout.iteration_dir(ctx.model_dir, t), 'review')


def _reviewed_input(ctx, t):
  """Writes the reviewed seed boxes available to T^t; returns (path, n).

  Answers of the review exported at iteration u are used from T^{u+1} on.
  """
  accepted = {}
  for u in range(1, t):
    path = os.path.join(review_dir(ctx, u), review.ANSWERS_CSV)
    if tf.io.gfile.exists(path):
      for source_id, answers in review.read_answers(path).items():
        accepted.setdefault(source_id, []).extend(answers)
  if not accepted:
    return None, 0
  reader = ctx.note.image_level_input_reader
  files = sorted(f for p in reader.tf_record_input_reader.input_path
                 for f in tf.io.gfile.glob(p))
  records = review.reviewed_records(
      files, accepted, label_map_util.get_id_to_name(reader.label_map_path))
  path = os.path.join(layout.iteration_dir(ctx.model_dir, t),
                      'reviewed.tfrecord')
  beam_io.write_tfrecord_atomically(
      path, [tf_example_codec.serialize_record(r) for r in records])
  logging.info('T^%d: %d reviewed images join the seed set', t, len(records))
  return path, len(records)


def _seed_patterns(ctx):
  return list(ctx.configs['train_input_config'].tf_record_input_reader
              .input_path)


def write_iteration_config(ctx, t, source_ckpt):
  """Writes iteration t's exact training config; returns its path.

  Train inputs: B0 (+ B^t); steps: epochs × images / batch size;
  initialisation: S (``detection``: class heads new) for T^0, T^{t-1}
  (``full``) after; distillation only where the schedule says so.
  """
  configs = ctx.configs
  pipeline = config_util.create_pipeline_proto_from_configs(configs)
  reader = pipeline.train_input_reader.tf_record_input_reader
  num_seed = sum(layout.count_records(p) for p in _seed_patterns(ctx))
  num_images = num_seed
  note = pipeline.note
  if t > 0:
    mined = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                          layout.MANIFEST))
    reviewed_path, num_reviewed = _reviewed_input(ctx, t)
    if reviewed_path:
      reader.input_path.append(reviewed_path)
      num_seed += num_reviewed
    num_images = num_seed + mined['images_with_boxes']
    if mined['images_with_boxes']:
      # B^t is read beside the seed set and mixed in (seed_mined_mixing).
      note.mined_input.input_path.append(beam_io.shard_pattern(
          layout.mined_prefix(ctx.model_dir, t)))
      note.mined_input.num_examples = mined['images_with_boxes']
      note.mined_input.num_seed_examples = num_seed
  epochs = (note.epochs_per_iteration if t > 0 or not note.HasField(
      'initial_epochs') else note.initial_epochs)
  batch = pipeline.train_config.batch_size
  pipeline.train_config.num_steps = max(1, math.ceil(epochs * num_images /
                                                     batch))
  if t > 0:
    pipeline.train_config.num_steps = max(pipeline.train_config.num_steps,
                                          note.min_steps_per_iteration)
  if t == 0:
    if source_ckpt:
      pipeline.train_config.fine_tune_checkpoint = source_ckpt
      pipeline.train_config.fine_tune_checkpoint_type = 'detection'
  else:
    pipeline.train_config.fine_tune_checkpoint = tf.train.latest_checkpoint(
        layout.train_dir(ctx.model_dir, t - 1))
    pipeline.train_config.fine_tune_checkpoint_type = 'full'
  if not distill_in_iteration(note, t):
    note.ClearField('distillation')
  if source_ckpt:
    note.source_detector.checkpoint_dir = source_ckpt
  config_util.save_pipeline_config(pipeline, layout.iteration_dir(
      ctx.model_dir, t))
  return layout.pipeline_path(ctx.model_dir, t)


# -------------------------------------------------------------------- train
def train_iteration(ctx, t, source_ckpt):
  """Trains T^t (resuming if interrupted); returns its last checkpoint."""
  path = write_iteration_config(ctx, t, source_ckpt)
  configs = config_util.get_configs_from_pipeline_file(path)
  distill = source_model_lib.distillation_requested(configs['note'])
  logging.info('== T^%d: training %d steps on %s%s', t,
               configs['train_config'].num_steps,
               ', '.join(list(configs['train_input_config']
                              .tf_record_input_reader.input_path) +
                         list(configs['note'].mined_input.input_path)),
               ' with distillation from S' if distill else '')
  finished = _timed('T^%d training' % t)
  seed_stage(ctx, 'train', t)
  # S (when this iteration distills) comes from the iteration config's
  # note.source_detector; train_loop fails if it cannot be restored.
  train_loop.train_loop(path, layout.train_dir(ctx.model_dir, t),
                        checkpoint_every_n=ctx.checkpoint_every_n,
                        jit_compile=ctx.jit_compile, strategy=ctx.strategy)
  finished()
  return tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir, t))


# --------------------------------------------------------------------- mine
def mine_iteration(ctx, t):
  """B^t with T^{t-1}; returns the mining manifest (skips if complete)."""
  directory = layout.mined_dir(ctx.model_dir, t)
  marker = os.path.join(directory, layout.MANIFEST)
  done = layout.read_json(marker)
  if done:
    logging.info('== B^%d: already mined (%d boxes), skipping', t,
                 done['mined_boxes'])
    check_mined_enough(ctx, t, done)
    return done
  note = ctx.note
  reader = note.image_level_input_reader
  patterns = list(reader.tf_record_input_reader.input_path)
  mining = note.mining
  # The FROZEN_T0 control mines every B^t with T^0.
  detector_t = 0 if mining.control == mining.FROZEN_T0 else t - 1
  checkpoint = tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir,
                                                           detector_t))
  detector = detectors.detector_spec(layout.pipeline_path(ctx.model_dir,
                                                          detector_t),
                                     checkpoint_dir=checkpoint,
                                     batch_size=mining.batch_size)
  spec = mining_spec.MiningSpec.from_config(
      mining, label_map_util.get_id_to_name(reader.label_map_path),
      review_dir=review_dir(ctx, t),
      review_count=(ctx.export_review if ctx.export_review >= 0 else
                    mining.export_review),
      total_images=sum(layout.count_records(p) for p in patterns))
  logging.info('== B^%d = M(A, T^%d, %g%s)%s from %s', t, detector_t,
               mining.score_threshold, ', adaptive per class'
               if mining.HasField('adaptive_threshold') else '',
               ' [control %s]' % mining.Control.Name(mining.control)
               if mining.control else '', ', '.join(patterns))
  finished = _timed('mining B^%d' % t)
  metrics = mining_pipeline.run_mining(
      spec, patterns, directory, detector,
      beam_io.pipeline_options(list(ctx.beam_argv)))
  finished()
  diagnostics = diagnostics_pass.diagnose_iteration(
      note, layout.pipeline_path(ctx.model_dir, detector_t), checkpoint,
      directory,
      beam_io.shard_pattern(layout.mined_prefix(ctx.model_dir, t)),
      layout.mined_dir(ctx.model_dir, t - 1) if t > 1 else None, t)
  shards = sorted(tf.io.gfile.glob(beam_io.shard_pattern(
      layout.mined_prefix(ctx.model_dir, t))))
  manifest = {
      'iteration': t, 'detector_checkpoint': checkpoint,
      'control': mining.Control.Name(mining.control),
      'score_threshold': mining.score_threshold, 'input': patterns,
      'images': metrics['images'],
      'images_with_boxes': metrics['images_with_boxes'],
      'mined_boxes': metrics['mined_boxes'],
      'precision': metrics['precision'], 'recall': metrics['recall'],
      'shards': {os.path.basename(s): layout.file_sha256(s) for s in shards},
      'gallery': gallery.write_gallery(beam_io.shard_pattern(
          layout.mined_prefix(ctx.model_dir, t)), directory) is not None,
  }
  warning = class_thresholds.too_few_boxes_message(
      metrics['mined_boxes'], mining.min_mined_boxes, mining.score_threshold,
      metrics['threshold_sweep'])
  if warning:
    manifest['warning'] = warning
  if diagnostics is not None:
    manifest[DiagnosticsFields.diagnostics] = diagnostics
  layout.write_json(marker, manifest)
  logging.info('B^%d: %d boxes on %d/%d images, precision %s, recall %s',
               t, metrics['mined_boxes'], metrics['images_with_boxes'],
               metrics['images'], _ratio_text(metrics['precision']),
               _ratio_text(metrics['recall']))
  check_mined_enough(ctx, t, manifest)
  return manifest


def _ratio_text(value):
  return '—' if value is None else '%.3f' % value


def check_mined_enough(ctx, t, manifest):
  """The too-few-boxes rule (note.mining.min_mined_boxes / too_few_boxes).

  Logs the manifest's warning loudly, or raises with it under STOP; runs on
  resumed iterations too, so a stopped run stops again until the setting
  changes.
  """
  warning = manifest.get('warning')
  if not warning:
    return
  mining = ctx.note.mining
  text = 'B^%d (%s): %s' % (t, ctx.pipeline_config_path, warning)
  if mining.too_few_boxes == mining.STOP:
    raise RuntimeError(text + '\n(note.mining.too_few_boxes: STOP; use WARN '
                       'to train on what was mined)')
  for line in ('!' * 72, text, 'T^%d trains on %s.' % (
      t, 'B0 alone' if not manifest['mined_boxes'] else 'these boxes'),
               '!' * 72):
    logging.warning(line)


# --------------------------------------------------------------------- eval
def evaluate_iteration(ctx, t):
  """Target-val metrics of T^t (skips if already evaluated)."""
  directory = layout.eval_dir(ctx.model_dir, t)
  done = layout.read_json(os.path.join(directory, eval_loop.METRICS_FILE))
  if done:
    return done
  configs = config_util.get_configs_from_pipeline_file(
      layout.pipeline_path(ctx.model_dir, t))
  checkpoint = tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir, t))
  finished = _timed('T^%d evaluation' % t)
  visualizations = eval_loop.side_by_side(configs)
  metrics = eval_loop.evaluate_model(
      eval_loop.restore_for_eval(configs, checkpoint), configs,
      visualizations=visualizations)
  finished()
  visualizations.write(directory, checkpoint_errors.read_step(checkpoint))
  eval_loop.write_metrics(metrics, directory)
  logging.info('T^%d on target val: mAP %.4f, mAP@.5 %.4f', t,
               metrics['DetectionBoxes_Precision/mAP'],
               metrics['DetectionBoxes_Precision/mAP@.50IOU'])
  return metrics


# ------------------------------------------------------------------- finish
def finish_iteration(ctx, t):
  """Writes the iteration manifest (its completion marker)."""
  path = layout.pipeline_path(ctx.model_dir, t)
  with tf.io.gfile.GFile(path) as f:
    config_text = f.read()
  configs = config_util.get_configs_from_pipeline_file(path)
  mined = (layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                         layout.MANIFEST)) if t else None)
  manifest = {
      'iteration': t,
      'config_sha256': layout.text_sha256(config_text),
      'train_inputs': list(configs['train_input_config']
                           .tf_record_input_reader.input_path),
      'mined_inputs': list(configs['note'].mined_input.input_path),
      'num_steps': configs['train_config'].num_steps,
      'distillation': configs['note'].HasField('distillation'),
      'checkpoint': tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir,
                                                                t)),
      'mining': mined,
      'eval': layout.read_json(os.path.join(layout.eval_dir(ctx.model_dir, t),
                                            eval_loop.METRICS_FILE)),
      # Wall time and peak resident memory of each stage (stage_stats).
      'stages': stage_stats.read(ctx.model_dir, t),
  }
  layout.write_json(os.path.join(layout.iteration_dir(ctx.model_dir, t),
                                 layout.MANIFEST), manifest)
  return manifest
