r"""NOTE-RCNN ablation (paper §4.3) on the synthetic dataset.

  python bench/run_ablation.py [--variants=naive,det_a,...] [--seeds=0,1,2] \
    [--output_dir=bench/results] [--runs_dir=runs/ablation]

Trains the source detector S once (seed 0) into the ``note.source_detector.
checkpoint_dir`` of ``configs/ablation/*.config``, then runs the iterate loop
(``object_detection_note.iterate.driver.run``: T^0, then mine / train / eval
for t = 1..N) of every variant and seed into ``<runs_dir>/<seed>/<variant>``
and writes ``<output_dir>/ablation.{json,md,png}`` (see ablation_report.py)
after every finished variant. Run it again after an interruption: S and
finished iterations are not redone (the driver resumes per run directory).

Each run is a subprocess (this script with ``--worker``) seeded with
``tf_keras.utils.set_random_seed(seed)`` (Python, NumPy, TensorFlow) and runs the loop
with ``iterate --seed`` semantics (each training seeded from the seed and t); its log
goes to ``<runs_dir>/<seed>/<variant>.log``, progress lines to stdout.
Accumulated wall time per run is kept in ``<runs_dir>/<seed>/<variant>.
timing.json`` so that resumed runs report their whole time.

``--config_override`` (text proto merged into every variant config) and
``--source_steps`` give a smoke run with a small budget; they, or a
``--runs_dir`` other than the configs' own, make the script write derived
configs into ``<runs_dir>/configs/`` pointing at ``<runs_dir>/source``.
Run from the repository root (``make ablation`` does); needs data/synthetic.

The parts: ``ablation_configs`` (variant configs, overrides, controls),
``ablation_schedule`` (which run is next, resume, the results dict),
``ablation_workers`` (the worker processes), ``ablation_progress``
(progress lines) and ``ablation_report`` (tables and plots).
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import json
import os
import time

from absl import app
from absl import flags

import ablation_configs
import ablation_progress
import ablation_report
import ablation_schedule
import ablation_workers

flags.DEFINE_list('variants', list(ablation_configs.VARIANT_KEYS),
                  'Variants to run, in this order: %s.' %
                  ', '.join(ablation_configs.VARIANT_KEYS))
flags.DEFINE_list('seeds', ['0'], 'Training seeds; with several, the tables '
                  'give mean ± std over seeds.')
flags.DEFINE_string('output_dir', os.path.join('bench', 'results'),
                    'Where ablation.json, ablation.md and ablation.png go.')
flags.DEFINE_string('runs_dir', os.path.join('runs', 'ablation'),
                    'Run directories: <runs_dir>/<seed>/<variant>.')
flags.DEFINE_string('configs_dir', os.path.join('configs', 'ablation'),
                    'Directory of the <variant>.config files.')
flags.DEFINE_string('config_override', '', 'Text proto merged into every '
                    'variant config, e.g. "note { iterations: 1 }" (smoke '
                    'runs; use a separate --runs_dir).')
flags.DEFINE_string('data_dir', ablation_configs.CONFIG_DATA_DIR,
                    'Dataset of the runs: every path under %s/ in the variant '
                    'and source configs is read from here instead (e.g. '
                    'data/synthetic_noisy; use a separate --runs_dir).' %
                    ablation_configs.CONFIG_DATA_DIR)
flags.DEFINE_string('results_name', 'ablation', 'Base name of the result '
                    'files: <output_dir>/<results_name>.{json,md,png}.')
flags.DEFINE_enum('control', 'none', ['none', 'oracle', 'frozen_t0'],
                  'Control runs (note.mining.control, merged into every '
                  'variant config): "oracle": each mined box is replaced by '
                  'a hidden true instance of its class (precision 1, false '
                  'negatives kept); "frozen_t0": every B^t is mined by T^0. '
                  'Runs and results get the suffix _<control> '
                  '(<runs_dir>_oracle, <results_name>_oracle).')
flags.DEFINE_integer('source_steps', 0, 'Training steps of S (0: its '
                     "config's num_steps).")
flags.DEFINE_float('poll_seconds', 2.0, 'Seconds between progress checks.')
flags.DEFINE_bool('render', False, 'Only rewrite ablation.md and ablation.png '
                  'from the ablation.json in --output_dir.')
# Internal: one run in this process.
flags.DEFINE_enum('worker', None, ['source', 'variant'], 'Internal.')
flags.DEFINE_string('worker_config', None, 'Internal: variant config.')
flags.DEFINE_string('worker_model_dir', None, 'Internal: run directory.')
flags.DEFINE_integer('worker_seed', 0, 'Internal: training seed.')

FLAGS = flags.FLAGS


def _check_flags():
  unknown = sorted(set(FLAGS.variants) - set(ablation_configs.VARIANT_KEYS))
  if unknown:
    raise app.UsageError('--variants: unknown %s (known: %s)' % (
        ', '.join(unknown), ', '.join(ablation_configs.VARIANT_KEYS)))
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    raise app.UsageError('--seeds: integers, got %s' % FLAGS.seeds) from None
  if not seeds or len(set(seeds)) != len(seeds):
    raise app.UsageError('--seeds: distinct integers, got %s' % FLAGS.seeds)
  manifest = os.path.join(FLAGS.data_dir, 'manifest.json')
  if not os.path.exists(manifest):
    raise app.UsageError('%s is missing: run `make data` (or `make '
                         'data-noisy` for data/synthetic_noisy) first' %
                         manifest)
  order = [v for v in ablation_configs.VARIANT_KEYS if v in FLAGS.variants]
  return order, seeds


def main(argv):
  del argv
  os.chdir(ablation_workers.REPO_ROOT)
  if FLAGS.worker:
    ablation_workers.run_worker(FLAGS.worker, FLAGS.worker_config,
                                FLAGS.worker_model_dir, FLAGS.worker_seed)
    return
  if FLAGS.render:
    with open(os.path.join(FLAGS.output_dir,
                           FLAGS.results_name + '.json')) as f:
      ablation_report.write_results(json.load(f), FLAGS.output_dir,
                                    FLAGS.results_name)
    return
  variants, seeds = _check_flags()
  ablation_workers.interrupt_on_sigterm()
  start = time.monotonic()
  runs_dir, override = ablation_configs.control_settings(
      FLAGS.control, FLAGS.runs_dir, FLAGS.config_override)
  if FLAGS.control != 'none':
    FLAGS.results_name += '_' + FLAGS.control
  plan = ablation_configs.Plan(variants, FLAGS.configs_dir, runs_dir,
                               override, FLAGS.source_steps, FLAGS.data_dir)
  with open(os.path.join(FLAGS.data_dir, 'manifest.json')) as f:
    dataset = ablation_report.dataset_parameters(json.load(f))
  dataset['data_dir'] = os.path.normpath(FLAGS.data_dir)
  results = ablation_schedule.results_skeleton(plan, seeds, variants,
                                               dataset)

  def save():
    ablation_schedule.save_results(results, start, FLAGS.output_dir,
                                   FLAGS.results_name)
  ablation_progress.say(start, 'ablation: variants %s, seeds %s, %d '
                        'iterations each; results in %s' % (
                            ', '.join(variants), ', '.join(map(str, seeds)),
                            plan.iterations, FLAGS.output_dir))
  results['source']['seconds'] = ablation_workers.train_source(
      plan, start, FLAGS.poll_seconds)
  save()
  failures = ablation_schedule.run_all(plan, results, start,
                                       FLAGS.poll_seconds, save)
  ablation_progress.say(start, 'wrote %s' % os.path.join(
      FLAGS.output_dir, FLAGS.results_name + '.md'))
  if failures:
    raise SystemExit('%d run(s) failed; see the logs under %s' % (
        failures, FLAGS.runs_dir))


def _main(argv):
  try:
    main(argv)
  except KeyboardInterrupt:
    print('interrupted; run the same command again to resume', flush=True)
    raise SystemExit(130) from None


if __name__ == '__main__':
  app.run(_main)
