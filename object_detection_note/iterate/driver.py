"""Runs the whole loop, or one stage, of an iterate run; resumes where it stopped.

``run`` goes source → T^0 → (mine, train, eval) for t = 1..N → report,
skipping every stage whose completion marker exists. ``run_stage`` runs a
single stage so that trainings can be separate accelerator jobs and mining a
Beam job on a CPU fleet; ``stage_commands`` lists those commands.
"""
import os
import shlex
import sys
import time

from absl import logging
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.config import errors
from object_detection_note.config import preflight
from object_detection_note.iterate import report
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import run_plan
from object_detection_note.iterate import stage_process
from object_detection_note.iterate import stage_stats
from object_detection_note.iterate import stages
from object_detection_note.core import progress

STAGES = ('source', 'mine', 'train', 'eval', 'report')

def preflight_problems(ctx):
  """Every missing file of the whole run, as ``preflight.Problem`` list.

  Checked: the input patterns and label maps of the target config (train,
  eval, note.image_level_input_reader) and its fine_tune_checkpoint; S's
  checkpoint when note.source_detector.checkpoint_dir names one, else S's
  config (inputs, fine_tune_checkpoint / pretrained weights) when S is still
  to be trained; a writable model_dir.
  """
  seen = set()
  path = ctx.pipeline_config_path
  problems = preflight.pipeline_problems(ctx.configs, path, seen=seen)
  if ctx.note.HasField('image_level_input_reader'):
    problems += preflight.reader_problems(
        ctx.note.image_level_input_reader, path,
        'note.image_level_input_reader', seen)
  problems += _source_problems(ctx, seen)
  problems += preflight.model_dir_problems(ctx.model_dir)
  return problems


def _source_problems(ctx, seen):
  """Problems of S: its checkpoint, or what training it needs."""
  given = (ctx.note.source_detector.checkpoint_dir
           if ctx.note.HasField('source_detector') else '')
  directory = given or layout.source_dir(ctx.model_dir)
  if layout.read_json(os.path.join(directory, layout.MANIFEST)) or (
      given and preflight.checkpoint_exists(given)):
    return []  # S is trained already
  field = 'note.source_detector'
  if given and not ctx.source_config_path:
    return [preflight.Problem(
        '%s: %s.checkpoint_dir: no checkpoint in %s, and no %s.'
        'pipeline_config_path to train S there' % (ctx.pipeline_config_path,
                                                   field, given, field),
        'train S first (python -m object_detection_note.model_main_tf2 '
        '--pipeline_config_path=<S config> --model_dir=%s), or set %s.'
        'pipeline_config_path' % (given, field))]
  if not ctx.source_config_path:
    return []
  if not tf.io.gfile.exists(ctx.source_config_path):
    return [preflight.Problem(
        '%s: %s.pipeline_config_path: %s not found' % (
            ctx.pipeline_config_path, field, ctx.source_config_path),
        'correct the path, or set %s.checkpoint_dir to a trained S' % field)]
  source = config_util.get_configs_from_pipeline_file(ctx.source_config_path)
  # S is trained (not evaluated) by the run: its train input and weights.
  return preflight.pipeline_problems(source, ctx.source_config_path,
                                     evaluate=False, seen=seen)


def check_data(ctx):
  """The preflight: raises PreflightError listing every missing file of the
  run (see ``preflight_problems``), each with the command that fixes it."""
  preflight.check(preflight_problems(ctx))


def make_context(pipeline_config_path, model_dir, beam_argv=(),
                 checkpoint_every_n=500, jit_compile=False, export_review=-1,
                 seed=None, strategy=None, config_override=None):
  """The RunContext of a run; ``strategy`` is used by its trainings.

  ``config_override``: text proto merged on top of the pipeline config (as
  the exporter's --config_override), e.g. a shorter ``note`` block.
  """
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path,
                                                       config_override)
  if configs['note'] is None:
    raise errors.ConfigError('%s: field note is required by iterate (the '
                                  'NOTE-RCNN loop settings)' %
                                  pipeline_config_path)
  if not configs['eval_input_configs']:
    raise errors.ConfigError('%s: field eval_input_reader is required' %
                                  pipeline_config_path)
  return stages.RunContext(pipeline_config_path, model_dir, configs,
                           tuple(beam_argv), checkpoint_every_n, jit_compile,
                           export_review, seed, strategy,
                           config_override or None)


def check_run_file(ctx):
  """A model_dir belongs to one config: refuse to mix two runs."""
  with tf.io.gfile.GFile(ctx.pipeline_config_path) as f:
    text = f.read()
  if ctx.config_override:  # a run with another override is another run
    text += '\n# --config_override\n' + ctx.config_override
  digest = layout.text_sha256(text)
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


def _stage_complete(ctx, stage, t):
  if stage == 'source':
    return stages.source_done(ctx)
  return stages.stage_done(ctx, stage, t)


def _log_stage_time(stage, t, wall_s, peak_rss_bytes, measured):
  label = 'S' if stage == 'source' else (
      'B^%d' % t if stage == 'mine' else 'T^%d' % t)
  logging.info('== stage %s %s: %s wall, peak resident memory %s (%s)', stage,
               label, progress.format_duration(wall_s),
               stage_stats.format_bytes(peak_rss_bytes), measured)


def run_stage(ctx, stage, t=None, measured=stage_stats.OWN):
  """Runs one stage (see STAGES); ``t`` is required for mine/train/eval.

  Records the stage's wall time and peak resident memory in the iteration's
  ``stage_stats`` (the source stage with iteration 0) unless the stage was
  already complete: ``measured`` is ``stage_stats.OWN`` when this process
  runs only this stage (peak: the process's own), ``stage_stats.IN_PROCESS``
  inside a whole-loop process (peak: sampled while the stage ran).
  """
  if stage == 'report':
    return report.write_report(ctx.model_dir, ctx.iterations,
                               command=_iterate_command(ctx))
  if stage not in STAGES:
    raise ValueError('--stage must be one of %s, got %r' % (STAGES, stage))
  if stage != 'source' and (t is None or not 0 <= t <= ctx.iterations):
    raise ValueError('--iteration must be in [0, %d] for --stage=%s' %
                     (ctx.iterations, stage))
  if stage == 'mine' and t == 0:
    raise ValueError('iteration 0 (T^0) has no mining stage: it trains on '
                     'the seed set only')
  complete = _stage_complete(ctx, stage, t)
  with stage_stats.measure() as measurement:
    if stage == 'source':
      result = stages.source_checkpoint(ctx)
    elif stage == 'mine':
      result = stages.mine_iteration(ctx, t)
    elif stage == 'train':
      result = stages.train_iteration(ctx, t, stages.source_checkpoint(ctx))
    else:
      result = stages.evaluate_iteration(ctx, t)
  if not complete and stages.is_chief(ctx):
    peak = (stage_stats.own_peak_rss_bytes() if measured == stage_stats.OWN
            else measurement.peak_rss_bytes)
    stage_stats.record(ctx.model_dir, t or 0, stage, measurement.wall_s, peak,
                       measured)
    _log_stage_time(stage, t, measurement.wall_s, peak, measured)
  if stage == 'eval':
    stages.finish_iteration(ctx, t)
  return result


def child_command(ctx, stage, t=None, extra_flags=()):
  """argv of a child process that runs one stage of this run.

  ``extra_flags``: flags of this process to pass on (e.g. the strategy's).
  """
  args = [sys.executable, '-m', 'object_detection_note.iterate',
          '--pipeline_config_path=' + ctx.pipeline_config_path,
          '--model_dir=' + ctx.model_dir, '--stage=' + stage,
          '--checkpoint_every_n=%d' % ctx.checkpoint_every_n,
          '--jit_compile=%s' % str(bool(ctx.jit_compile)).lower(),
          '--export_review=%d' % ctx.export_review]
  if t is not None:
    args.append('--iteration=%d' % t)
  if ctx.seed is not None:
    args.append('--seed=%d' % ctx.seed)
  if ctx.config_override:
    args.append('--config_override=' + ctx.config_override)
  return args + list(extra_flags) + list(ctx.beam_argv)


def _run_in_child(ctx, stage, t, extra_flags):
  """Runs a stage as a child process; records its wall time and peak."""
  argv = child_command(ctx, stage, t, extra_flags)
  logging.info('== running %s', ' '.join(shlex.quote(a) for a in argv[1:]))
  result = stage_process.run_child(argv, env=stage_process.same_package_env())
  if result.returncode:
    raise stage_process.StageFailed(
        'stage %s%s failed (exit status %d; its output is above); run '
        'iterate again to resume from it' % (
            stage, '' if t is None else ' of iteration %d' % t,
            result.returncode))
  # The child recorded its own peak at the end of the stage; the parent's
  # readings cover its whole life but may miss its last moments.
  own = stage_stats.read(ctx.model_dir, t or 0).get(stage) or {}
  peak = max(result.peak_rss_bytes, own.get('peak_rss_bytes', 0))
  stage_stats.record(ctx.model_dir, t or 0, stage, result.wall_s, peak,
                     stage_stats.CHILD)
  _log_stage_time(stage, t, result.wall_s, peak, stage_stats.CHILD)
  if stage == 'eval':
    stages.finish_iteration(ctx, t)  # again, with the child's measurement
  return result.wall_s


def _run_measured(ctx, stage, t, stage_processes, extra_flags):
  """Runs a stage in a child or in this process; returns its wall time."""
  if stage_processes:
    return _run_in_child(ctx, stage, t, extra_flags)
  start = time.monotonic()
  run_stage(ctx, stage, t, measured=stage_stats.IN_PROCESS)
  return time.monotonic() - start


def run(ctx, stage_processes=False, extra_flags=()):
  """The whole loop; returns the report table (markdown).

  With ``stage_processes`` each stage runs as its own child process (the
  ``--stage`` commands of ``stage_commands``, plus ``extra_flags``), so that
  memory stays flat across iterations; otherwise all run in this process.
  Logs the plan first, and each stage's wall time, peak memory and the ETA
  of the rest of the run as stages finish.
  """
  check_data(ctx)
  check_run_file(ctx)
  plan = run_plan.make_plan(ctx, not stages.source_done(ctx),
                            lambda stage, t: stages.stage_done(ctx, stage, t))
  for line in run_plan.plan_lines(plan):
    logging.info('%s', line)
  tracker = run_plan.Tracker(plan)

  def run_and_track(stage, t):
    wall_s = _run_measured(ctx, stage, t, stage_processes, extra_flags)
    mined_fraction = None
    if stage == 'mine':
      mined = layout.read_json(os.path.join(
          layout.mined_dir(ctx.model_dir, t), layout.MANIFEST))
      mined_fraction = mined['images_with_boxes'] / max(1, mined['images'])
    tracker.finished(stage, t, wall_s, run_plan.actual_size(ctx, stage, t),
                     mined_fraction)
    logging.info('%s', tracker.status())

  if not stages.source_done(ctx):
    run_and_track('source', None)
  for t in range(ctx.iterations + 1):
    marker = os.path.join(layout.iteration_dir(ctx.model_dir, t),
                          layout.MANIFEST)
    if layout.read_json(marker):
      logging.info('== iteration %d already complete, skipping', t)
      continue
    logging.info('==== iteration %d of %d', t, ctx.iterations)
    for stage in ('mine', 'train', 'eval'):
      if stage == 'mine' and t == 0:
        continue
      if stages.stage_done(ctx, stage, t):
        if stage == 'mine':  # logs its counts and the too-few-boxes rule
          stages.mine_iteration(ctx, t)
        continue
      run_and_track(stage, t)
    stages.finish_iteration(ctx, t)
    report.write_report(ctx.model_dir, ctx.iterations,
                        command=_iterate_command(ctx))
  return report.write_report(ctx.model_dir, ctx.iterations,
                             command=_iterate_command(ctx))


def _iterate_command(ctx, extra=()):
  args = ['python', '-m', 'object_detection_note.iterate',
          '--pipeline_config_path=' + ctx.pipeline_config_path,
          '--model_dir=' + ctx.model_dir] + (
              ['--seed=%d' % ctx.seed] if ctx.seed is not None else []) + (
                  ['--config_override=' + ctx.config_override]
                  if ctx.config_override else []) + list(extra)
  return ' '.join(shlex.quote(a) for a in args)


BEAM_OPTIONS_COMMENT = ('# mining commands take Apache Beam options after '
                        'them, e.g. --runner=DataflowRunner --project=... '
                        '--temp_location=gs://...')


def stage_commands(ctx, train_flags=()):
  """The command of every stage, in order, for running them as separate jobs.

  Every line is a shell command (arguments shlex-quoted) or a ``#`` comment.
  ``train_flags`` (e.g. ``--use_tpu``, ``--tpu_name=x``, ``--num_workers=2``)
  go on the training stages (source, train); the run's Beam options
  (``ctx.beam_argv``) on the mining stages, or, when there are none, a
  comment says where they go.
  """
  common = []
  if ctx.checkpoint_every_n != 500:
    common.append('--checkpoint_every_n=%d' % ctx.checkpoint_every_n)
  if ctx.jit_compile:
    common.append('--jit_compile')
  train = common + list(train_flags)
  mine = (['--export_review=%d' % ctx.export_review]
          if ctx.export_review != -1 else []) + list(ctx.beam_argv)
  commands = [_iterate_command(ctx, ['--stage=source'] + train)]
  if ctx.iterations and not ctx.beam_argv:
    commands.append(BEAM_OPTIONS_COMMENT)
  for t in range(ctx.iterations + 1):
    if t:
      commands.append(_iterate_command(
          ctx, ['--stage=mine', '--iteration=%d' % t] + mine))
    commands.append(_iterate_command(ctx, ['--stage=train',
                                           '--iteration=%d' % t] + train))
    commands.append(_iterate_command(ctx, ['--stage=eval',
                                           '--iteration=%d' % t]))
  commands.append(_iterate_command(ctx, ['--stage=report']))
  return commands
