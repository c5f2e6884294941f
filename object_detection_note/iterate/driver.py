"""Runs the whole loop, or one stage, of an iterate run; resumes where it stopped.

``run`` goes source → T^0 → (mine, train, eval) for t = 1..N → report,
skipping every stage whose completion marker exists. ``run_stage`` runs a
single stage so that trainings can be separate accelerator jobs and mining a
Beam job on a CPU fleet; ``stage_commands`` lists those commands.
"""
import os
import shlex

from absl import logging
import tensorflow as tf

from object_detection_note.core import config_util
from object_detection_note.iterate import report
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages

STAGES = ('source', 'mine', 'train', 'eval', 'report')

# Data directories → the converter that writes them.
_CONVERTERS = (
    ('synthetic', 'make data  (or: python pipelines/create_synthetic_tfrecords.py '
                  '--output_dir=data/synthetic --seed=0)'),
    ('coco', 'python pipelines/create_coco17_tfrecords.py --help'),
    ('ilsvrc', 'python pipelines/create_ilsvrc13_tfrecords.py --help'),
    ('openimages', 'python pipelines/create_openimages_tfrecords.py --help'),
)


def _how_to_make(pattern):
  for key, command in _CONVERTERS:
    if key in pattern.lower():
      return command
  return 'one of the converters in pipelines/ (see README "Data")'


def check_data(ctx):
  """Fails early, naming the field and the converter, if data is missing."""
  readers = [('train_input_reader', ctx.configs['train_input_config']),
             ('eval_input_reader[0]', ctx.configs['eval_input_config']),
             ('note.image_level_input_reader',
              ctx.note.image_level_input_reader)]
  for field, reader in readers:
    patterns = list(reader.tf_record_input_reader.input_path)
    config_util.check_input_paths(reader, ctx.pipeline_config_path, field,
                                  _how_to_make(' '.join(patterns)))
  if ctx.source_config_path and not (
      ctx.note.source_detector.checkpoint_dir):
    source = config_util.get_configs_from_pipeline_file(ctx.source_config_path)
    reader = source['train_input_config']
    config_util.check_input_paths(
        reader, ctx.source_config_path, 'train_input_reader',
        _how_to_make(' '.join(reader.tf_record_input_reader.input_path)))


def make_context(pipeline_config_path, model_dir, beam_argv=(),
                 checkpoint_every_n=500, jit_compile=False, export_review=-1,
                 seed=None, strategy=None):
  """The RunContext of a run; ``strategy`` is used by its trainings."""
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
  if configs['note'] is None:
    raise config_util.ConfigError('%s: field note is required by iterate (the '
                                  'NOTE-RCNN loop settings)' %
                                  pipeline_config_path)
  if not configs['eval_input_configs']:
    raise config_util.ConfigError('%s: field eval_input_reader is required' %
                                  pipeline_config_path)
  return stages.RunContext(pipeline_config_path, model_dir, configs,
                           tuple(beam_argv), checkpoint_every_n, jit_compile,
                           export_review, seed, strategy)


def check_run_file(ctx):
  """A model_dir belongs to one config: refuse to mix two runs."""
  with tf.io.gfile.GFile(ctx.pipeline_config_path) as f:
    digest = layout.text_sha256(f.read())
  path = os.path.join(ctx.model_dir, layout.RUN_FILE)
  existing = layout.read_json(path)
  if existing and existing['config_sha256'] != digest:
    raise ValueError(
        '--model_dir %s holds a run of a different config (%s, sha256 %s…); '
        'use a new --model_dir, or delete it to start over' %
        (ctx.model_dir, existing['pipeline_config_path'],
         existing['config_sha256'][:12]))
  if existing and existing.get('seed') != ctx.seed:
    raise ValueError(
        '--model_dir %s holds a run with --seed=%s, not %s; use a new '
        '--model_dir for another seed' % (ctx.model_dir, existing.get('seed'),
                                          ctx.seed))
  if not existing:
    layout.write_json(path, {'pipeline_config_path': ctx.pipeline_config_path,
                             'config_sha256': digest, 'seed': ctx.seed})


def run_stage(ctx, stage, t=None):
  """Runs one stage (see STAGES); ``t`` is required for mine/train/eval."""
  if stage == 'source':
    return stages.source_checkpoint(ctx)
  if stage == 'report':
    return report.write_report(ctx.model_dir, ctx.iterations,
                               command=_iterate_command(ctx))
  if t is None or not 0 <= t <= ctx.iterations:
    raise ValueError('--iteration must be in [0, %d] for --stage=%s' %
                     (ctx.iterations, stage))
  if stage == 'mine':
    if t == 0:
      raise ValueError('iteration 0 (T^0) has no mining stage: it trains on '
                       'the seed set only')
    return stages.mine_iteration(ctx, t)
  if stage == 'train':
    return stages.train_iteration(ctx, t, stages.source_checkpoint(ctx))
  if stage == 'eval':
    metrics = stages.evaluate_iteration(ctx, t)
    stages.finish_iteration(ctx, t)
    return metrics
  raise ValueError('--stage must be one of %s, got %r' % (STAGES, stage))


def run(ctx):
  """The whole loop; returns the report table (markdown)."""
  check_data(ctx)
  check_run_file(ctx)
  source_ckpt = stages.source_checkpoint(ctx)
  for t in range(ctx.iterations + 1):
    marker = os.path.join(layout.iteration_dir(ctx.model_dir, t),
                          layout.MANIFEST)
    if layout.read_json(marker):
      logging.info('== iteration %d already complete, skipping', t)
      continue
    logging.info('==== iteration %d of %d', t, ctx.iterations)
    if t > 0:
      stages.mine_iteration(ctx, t)
    stages.train_iteration(ctx, t, source_ckpt)
    stages.evaluate_iteration(ctx, t)
    stages.finish_iteration(ctx, t)
    report.write_report(ctx.model_dir, ctx.iterations,
                        command=_iterate_command(ctx))
  return report.write_report(ctx.model_dir, ctx.iterations,
                             command=_iterate_command(ctx))


def _iterate_command(ctx, extra=()):
  args = ['python', '-m', 'object_detection_note.iterate',
          '--pipeline_config_path=' + ctx.pipeline_config_path,
          '--model_dir=' + ctx.model_dir] + (
              ['--seed=%d' % ctx.seed] if ctx.seed is not None else []) + list(
                  extra)
  return ' '.join(shlex.quote(a) for a in args)


def stage_commands(ctx):
  """The command of every stage, in order, for running them as separate jobs."""
  commands = [_iterate_command(ctx, ['--stage=source'])]
  for t in range(ctx.iterations + 1):
    if t:
      commands.append(_iterate_command(
          ctx, ['--stage=mine', '--iteration=%d' % t,
                '# + Beam options, e.g. --runner=DataflowRunner']))
    commands.append(_iterate_command(ctx, ['--stage=train',
                                           '--iteration=%d' % t]))
    commands.append(_iterate_command(ctx, ['--stage=eval',
                                           '--iteration=%d' % t]))
  commands.append(_iterate_command(ctx, ['--stage=report']))
  return commands
