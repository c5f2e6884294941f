r"""The NOTE-RCNN training-mining loop (paper §3.2, Fig. 1).

  python -m object_detection_note.iterate \
    --pipeline_config_path=configs/synthetic.config --model_dir=runs/synthetic

runs S → T^0 → (mine B^t, train T^t, evaluate) for t = 1..N and writes
report.{md,json,png}; run it again after an interruption and it continues
where it stopped. One stage at a time (e.g. each training as its own TPU job,
mining as a Beam job):

  python -m object_detection_note.iterate ... --stage=mine --iteration=2 \
      --runner=DataflowRunner --project=... --temp_location=gs://...
  python -m object_detection_note.iterate ... --print_commands

Trainings take model_main_tf2's strategy flags: --use_tpu/--tpu_name
(TPUStrategy) or --num_workers > 1 (MultiWorkerMirroredStrategy, one process
per worker with its TF_CONFIG, only with --stage=train or --stage=source):

  python -m object_detection_note.iterate ... --stage=train --iteration=2 \
      --num_workers=2          # on every worker, each with its TF_CONFIG

Unknown flags are passed to Apache Beam (mining).

A whole run first checks every file it will need (inputs, label maps,
checkpoints, pretrained weights, a writable --model_dir) and lists all that
are missing, each with the command that fixes it. Errors end the run with
one line ``iterate: error: ...``; ``--verbosity=1`` adds the traceback.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
from absl import app
from absl import flags
from absl import logging

from object_detection_note.core import cli_errors
from object_detection_note.iterate import driver
from object_detection_note.training import distribute_util

flags.DEFINE_string('pipeline_config_path', None, 'Pipeline config with a '
                    'note block.')
flags.DEFINE_string('model_dir', None, 'Run directory (local or gs://).')
flags.DEFINE_enum('stage', None, list(driver.STAGES), 'Run only this stage.')
flags.DEFINE_integer('iteration', None, 'Iteration t of --stage.')
flags.DEFINE_boolean('print_commands', False, 'Print the command of every '
                     'stage and exit.')
flags.DEFINE_integer('checkpoint_every_n', 500, 'Steps between checkpoints.')
flags.DEFINE_boolean('jit_compile', False, 'Compile train steps with XLA.')
flags.DEFINE_integer('export_review', -1, 'Per iteration, export the K most '
                     'uncertain unmined candidates to <iteration>/review for '
                     'human review; accepted answers (review/answers.csv) '
                     'join the seed set from the next iteration on. '
                     '-1: note.mining.export_review.')
flags.DEFINE_boolean('use_tpu', False, 'Train on a TPU (TPUStrategy).')
flags.DEFINE_string('tpu_name', None, 'TPU name / address for TPUStrategy.')
flags.DEFINE_integer('num_workers', 1, 'Training workers; > 1 uses '
                     'MultiWorkerMirroredStrategy (with --stage=train or '
                     '--stage=source; TF_CONFIG names the cluster).')

flags.DEFINE_boolean('stage_processes', True, 'Whole loop: run each stage '
                     'as its own child process (the --stage commands of '
                     '--print_commands), so memory stays flat across '
                     'iterations; false: all stages in this process (for '
                     'debugging).')
flags.DEFINE_string('config_override', '', 'Text proto merged on top of the '
                    'pipeline config, e.g. a smoke run: \'note { iterations: 2 '
                    'initial_epochs: 1 epochs_per_iteration: 1 }\'. A run '
                    'directory keeps the override it started with.')

# Stages that train, and so may run on several workers.
_TRAINING_STAGES = ('train', 'source')

flags.DEFINE_integer('seed', None, 'Seed of the run: each training (S, T^t) '
                     'seeds Python, NumPy and TF from it and t. Unset: '
                     'unseeded. A model_dir keeps the seed it started with.')


def _strategy_flags(f):
  """iterate's strategy flags as given, for the printed training commands."""
  flags_given = []
  if f.use_tpu:
    flags_given.append('--use_tpu')
  if f.tpu_name:
    flags_given.append('--tpu_name=' + f.tpu_name)
  if f.num_workers != 1:
    flags_given.append('--num_workers=%d' % f.num_workers)
  return flags_given


@cli_errors.one_line_errors('iterate')
def main(argv):
  flags.mark_flag_as_required('pipeline_config_path')
  flags.mark_flag_as_required('model_dir')
  f = flags.FLAGS
  if f.num_workers > 1 and f.stage not in _TRAINING_STAGES and (
      not f.print_commands):
    raise app.UsageError(
        '--num_workers=%d needs --stage=train or --stage=source (mining and '
        'evaluation are not multi-worker jobs; run the stages one at a time)'
        % f.num_workers)
  in_children = not f.stage and f.stage_processes
  ctx = driver.make_context(f.pipeline_config_path, f.model_dir,
                            beam_argv=argv[1:],
                            checkpoint_every_n=f.checkpoint_every_n,
                            jit_compile=f.jit_compile,
                            export_review=f.export_review, seed=f.seed,
                            config_override=f.config_override or None)
  if f.print_commands:
    print('\n'.join(driver.stage_commands(ctx, _strategy_flags(f))))
    return
  if not f.stage:
    driver.check_data(ctx)  # the preflight, before any model is built
  if not in_children and (f.stage in _TRAINING_STAGES or not f.stage):
    ctx.strategy = distribute_util.choose_strategy(f.use_tpu, f.tpu_name,
                                                   f.num_workers)
  if f.stage:
    driver.run_stage(ctx, f.stage, f.iteration)
    return
  child_flags = _strategy_flags(f) + (
      ['--verbosity=%d' % f.verbosity] if f.verbosity else [])
  table = driver.run(ctx, stage_processes=f.stage_processes,
                     extra_flags=child_flags)
  logging.info('report written to %s/report.md', f.model_dir)
  print(table)


if __name__ == '__main__':
  app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
