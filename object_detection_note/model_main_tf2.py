r"""Trains or evaluates a detector, with the OD API's ``model_main_tf2`` flags.

Training:
  python -m object_detection_note.model_main_tf2 \
    --pipeline_config_path=configs/synthetic_source.config \
    --model_dir=runs/source --num_train_steps=1500

Evaluation of the checkpoints in --checkpoint_dir (once, or continuously
until --eval_timeout seconds pass without a new checkpoint):
  python -m object_detection_note.model_main_tf2 \
    --pipeline_config_path=... --model_dir=runs/source \
    --checkpoint_dir=runs/source

Distribution: --use_tpu/--tpu_name → TPUStrategy; --num_workers > 1 →
MultiWorkerMirroredStrategy; otherwise MirroredStrategy over the local GPUs
(or the default strategy on a CPU-only machine).

Multi-worker: start the same command on every worker, each with its own
TF_CONFIG (cluster + task) and one shared --model_dir; the chief (worker 0)
writes checkpoints, summaries and pipeline.config there, the others into
temporary per-worker directories that are removed when training ends:
  TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]},
              "task": {"type": "worker", "index": 0}}' \
  python -m object_detection_note.model_main_tf2 --num_workers=2 ...

Distillation: a config whose note block asks for it trains with the source
detector S of note.source_detector (pipeline_config_path, checkpoint_dir);
if S cannot be built the run stops with an error naming the field.

Before anything is built, every file the run needs (inputs, label maps,
fine_tune_checkpoint or pretrained weights, a writable --model_dir) is
checked and all missing ones are listed together. Errors end the run with
one line ``model_main_tf2: error: ...``; ``--verbosity=1`` adds the
traceback.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
from absl import app
from absl import flags
from absl import logging

from object_detection_note.core import cli_errors
from object_detection_note.config import config_util
from object_detection_note.config import preflight
from object_detection_note.evaluation import eval_loop
from object_detection_note.training import distribute_util
from object_detection_note.training import train_loop

flags.DEFINE_string('pipeline_config_path', None, 'Path to pipeline config.')
flags.DEFINE_string('model_dir', None, 'Directory for checkpoints, summaries '
                    'and eval results.')
flags.DEFINE_integer('num_train_steps', None, 'Number of train steps '
                     '(default: train_config.num_steps).')
flags.DEFINE_integer('sample_1_of_n_eval_examples', None, 'Evaluate one of '
                     'every n eval input examples.')
flags.DEFINE_string('checkpoint_dir', None, 'If set, evaluate the checkpoints '
                    'in this directory instead of training.')
flags.DEFINE_integer('eval_timeout', 3600, 'Seconds to wait for a new '
                     'checkpoint in continuous evaluation; 0 evaluates the '
                     'latest checkpoint once.')
flags.DEFINE_boolean('use_tpu', False, 'Train on a TPU (TPUStrategy).')
flags.DEFINE_string('tpu_name', None, 'TPU name / address for TPUStrategy.')
flags.DEFINE_integer('num_workers', 1, 'Workers; > 1 uses '
                     'MultiWorkerMirroredStrategy.')
flags.DEFINE_integer('checkpoint_every_n', 1000, 'Steps between checkpoints.')
flags.DEFINE_integer('checkpoint_max_to_keep', 7, 'Checkpoints to keep.')
flags.DEFINE_boolean('record_summaries', True, 'Write TensorBoard summaries.')
flags.DEFINE_boolean('jit_compile', False, 'Compile the train step with XLA.')
flags.DEFINE_integer('steps_per_loop', 1, 'Training steps per call of the '
                     'compiled function (one host round trip per call; > 1 '
                     'keeps TPUs busy). Calls end at logging, checkpoint '
                     'and evaluation steps.')
flags.DEFINE_integer('eval_every_n', 0, 'If > 0, evaluate in-process every n '
                     'steps during training (and at the end).')
flags.DEFINE_boolean('allow_partial_restore', False, 'With --checkpoint_dir: '
                     'evaluate a checkpoint whose NOTE heads (rpn-cls-a, '
                     'det-cls-a) differ from the config\'s model (dropped, '
                     'or started from the plain heads), with a warning.')
flags.DEFINE_multi_string('config_override', None, 'Text proto merged on top '
                          'of the pipeline config, e.g. '
                          '"train_config { batch_size: 2 }".')


def _preflight(override):
  """Lists every missing file of this run at once (PreflightError)."""
  path = flags.FLAGS.pipeline_config_path
  configs = config_util.get_configs_from_pipeline_file(path, override or None)
  evaluating = bool(flags.FLAGS.checkpoint_dir)
  problems = preflight.pipeline_problems(
      configs, path, train=not evaluating,
      evaluate=evaluating or flags.FLAGS.eval_every_n > 0)
  problems += preflight.model_dir_problems(flags.FLAGS.model_dir)
  preflight.check(problems)


@cli_errors.one_line_errors('model_main_tf2')
def main(unused_argv):
  flags.mark_flag_as_required('pipeline_config_path')
  flags.mark_flag_as_required('model_dir')
  override = '\n'.join(flags.FLAGS.config_override or [])
  if flags.FLAGS.sample_1_of_n_eval_examples:
    override += ('\neval_input_reader { sample_1_of_n_examples: %d }' %
                 flags.FLAGS.sample_1_of_n_eval_examples)
  _preflight(override)
  if flags.FLAGS.checkpoint_dir:
    eval_loop.evaluate_checkpoints(
        flags.FLAGS.pipeline_config_path, flags.FLAGS.model_dir,
        flags.FLAGS.checkpoint_dir, timeout=flags.FLAGS.eval_timeout,
        config_override=override or None,
        allow_partial_restore=flags.FLAGS.allow_partial_restore)
    return
  strategy = distribute_util.choose_strategy(flags.FLAGS.use_tpu, flags.FLAGS.tpu_name,
                             flags.FLAGS.num_workers)
  result = train_loop.train_loop(
        flags.FLAGS.pipeline_config_path, flags.FLAGS.model_dir,
        num_train_steps=flags.FLAGS.num_train_steps,
        checkpoint_every_n=flags.FLAGS.checkpoint_every_n,
        checkpoint_max_to_keep=flags.FLAGS.checkpoint_max_to_keep,
        record_summaries=flags.FLAGS.record_summaries, strategy=strategy,
        jit_compile=flags.FLAGS.jit_compile, config_override=override or None,
        eval_every_n=flags.FLAGS.eval_every_n,
        steps_per_loop=flags.FLAGS.steps_per_loop)
  logging.info('training finished at step %d', result['step'])


if __name__ == '__main__':
  app.run(main)
