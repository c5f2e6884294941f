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
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import ctypes
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
from google.protobuf import text_format
import tf_keras

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # The package, when it is not installed.
  sys.path.append(REPO_ROOT)

import ablation_report  # pylint: disable=g-import-not-at-top,wrong-import-position
import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.config import config_util  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.core import file_io  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.iterate import driver  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.iterate import report  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.iterate import run_layout  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.iterate import stages  # pylint: disable=g-import-not-at-top,wrong-import-position

VARIANT_KEYS = tuple(key for key, _ in ablation_report.VARIANTS)
# The data directory the configs of configs/ablation/ name.
CONFIG_DATA_DIR = os.path.join('data', 'synthetic')
SOURCE_SEED = 0

flags.DEFINE_list('variants', list(VARIANT_KEYS), 'Variants to run, in this '
                  'order: %s.' % ', '.join(VARIANT_KEYS))
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
flags.DEFINE_string('data_dir', CONFIG_DATA_DIR, 'Dataset of the runs: every '
                    'path under %s/ in the variant and source configs is '
                    'read from here instead (e.g. data/synthetic_noisy; use '
                    'a separate --runs_dir).' % CONFIG_DATA_DIR)
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


# ---------------------------------------------------------------- worker side
def run_worker(kind, config_path, model_dir, seed):
  """Trains S into ``model_dir`` (kind 'source') or runs one variant."""
  _stop_with_parent()
  tf_keras.utils.set_random_seed(seed)
  if kind == 'source':
    # stages.source_checkpoint trains S into <model_dir>/source when the
    # config names no checkpoint_dir.
    configs = config_util.get_configs_from_pipeline_file(config_path)
    configs['note'].source_detector.ClearField('checkpoint_dir')
    ctx = stages.RunContext(config_path, os.path.dirname(model_dir), configs)
    logging.info('S: %s', stages.source_checkpoint(ctx))
    return
  ctx = driver.make_context(config_path, model_dir, seed=seed)
  print(driver.run(ctx))


# ---------------------------------------------------------------- parent side
def _elapsed(start):
  return ablation_report.duration(time.monotonic() - start)


def _say(start, text):
  print('[%s] %s' % (_elapsed(start), text), flush=True)


class Plan:
  """The variant configs to run, the source detector and the shared budget."""

  def __init__(self, variants, configs_dir, runs_dir, config_override,
               source_steps, data_dir=CONFIG_DATA_DIR):
    self.runs_dir = runs_dir
    pipelines = {}
    for variant in variants:
      path = os.path.join(configs_dir, variant + '.config')
      pipeline = _with_data_dir(config_util.read_pipeline_config(
          path, config_override or None), data_dir, path)
      config_util.validate_pipeline(pipeline, path)
      if not pipeline.HasField('note') or not (
          pipeline.note.source_detector.checkpoint_dir):
        raise app.UsageError('%s: field note.source_detector.checkpoint_dir '
                             'is required (the shared S)' % path)
      pipelines[variant] = (path, pipeline)
    checkpoint_dirs = {p.note.source_detector.checkpoint_dir
                       for _, p in pipelines.values()}
    source_configs = {p.note.source_detector.pipeline_config_path
                      for _, p in pipelines.values()}
    if len(checkpoint_dirs) != 1 or len(source_configs) != 1:
      raise app.UsageError('%s: every variant must name the same '
                           'note.source_detector (checkpoint_dir %s, '
                           'pipeline_config_path %s)' % (
                               configs_dir, sorted(checkpoint_dirs),
                               sorted(source_configs)))
    budgets = {v: self._budget_key(p) for v, (_, p) in pipelines.items()}
    if len(set(budgets.values())) != 1:
      raise app.UsageError('%s: the variants differ in budget (train_config, '
                           'inputs, iterations, epochs, mining): %s' % (
                               configs_dir, ', '.join(sorted(budgets))))
    self.source_config = source_configs.pop()
    own_source = os.path.join(runs_dir, 'source')
    other_data = os.path.normpath(data_dir) != os.path.normpath(
        CONFIG_DATA_DIR)
    derived = bool(config_override or source_steps or other_data) or (
        os.path.normpath(checkpoint_dirs.pop()) != os.path.normpath(own_source))
    self.source_dir = own_source
    source_pipeline = _with_data_dir(config_util.read_pipeline_config(
        self.source_config), data_dir, self.source_config)
    if source_steps or other_data:
      if source_steps:
        source_pipeline.train_config.num_steps = source_steps
      self.source_config = os.path.join(runs_dir, 'configs', 'source.config')
      file_io.write_atomically(self.source_config,
                               config_util.pipeline_to_text(source_pipeline))
    self.source_steps = source_pipeline.train_config.num_steps
    self.configs = {}
    for variant, (path, pipeline) in pipelines.items():
      if derived:
        pipeline.note.source_detector.checkpoint_dir = own_source
        pipeline.note.source_detector.pipeline_config_path = self.source_config
        path = os.path.join(runs_dir, 'configs', variant + '.config')
        file_io.write_atomically(path, config_util.pipeline_to_text(pipeline))
      self.configs[variant] = path
    self.pipelines = {v: p for v, (_, p) in pipelines.items()}
    self.iterations = next(iter(self.pipelines.values())).note.iterations

  @staticmethod
  def _budget_key(pipeline):
    note = pipeline.note
    return '|'.join(text_format.MessageToString(m, as_one_line=True) for m in (
        pipeline.train_config, pipeline.train_input_reader,
        pipeline.eval_input_reader[0], note.mining,
        note.image_level_input_reader)) + '|%d|%s|%s|%d' % (
            note.iterations, note.initial_epochs, note.epochs_per_iteration,
            note.min_steps_per_iteration)

  def variant_settings(self):
    out = {}
    for variant, pipeline in self.pipelines.items():
      note = pipeline.note
      if not note.HasField('distillation') or note.distillation.weight <= 0:
        distill = 'no'
      elif note.distillation.iterations == 0:
        distill = 'every T^t (weight %g)' % note.distillation.weight
      else:
        distill = 'T^0..T^%d (weight %g)' % (note.distillation.iterations,
                                             note.distillation.weight)
      out[variant] = {
          'label': ablation_report.LABELS[variant],
          'config': self.configs[variant],
          'rpn_cls_a': note.rpn_cls_a, 'det_cls_a': note.det_cls_a,
          'mask_mined_background': note.mask_mined_background,
          'distillation': distill,
      }
    return out

  def budget(self, dataset):
    pipeline = next(iter(self.pipelines.values()))
    note = pipeline.note
    train = pipeline.train_config
    seed_images = (dataset['splits'].get('seed') or {}).get('images') or 0
    initial_epochs = _float(note.initial_epochs if note.HasField(
        'initial_epochs') else note.epochs_per_iteration)
    return {
        'iterations': note.iterations,
        'initial_epochs': initial_epochs,
        'initial_steps': max(1, math.ceil(initial_epochs * seed_images /
                                          train.batch_size)),
        'epochs_per_iteration': _float(note.epochs_per_iteration),
        'min_steps_per_iteration': note.min_steps_per_iteration,
        'batch_size': train.batch_size,
        'learning_rate': text_format.MessageToString(
            train.optimizer, as_one_line=True),
        'score_threshold': _float(note.mining.score_threshold),
        'mining_batch_size': note.mining.batch_size,
        'image_level_images': (dataset['splits'].get('image_level') or
                               {}).get('images'),
        'source_config': self.source_config,
        'source_steps': self.source_steps,
    }


def _with_data_dir(pipeline, data_dir, path):
  """``pipeline`` with every ``"data/synthetic/..."`` path under ``data_dir``.

  A config whose paths are under ``data_dir`` already (and none under
  data/synthetic/) is returned as it is (configs/ablation_paper/).
  Raises UsageError (naming ``path``) when another data directory is asked
  for and the config names no path under data/synthetic/.
  """
  if os.path.normpath(data_dir) == os.path.normpath(CONFIG_DATA_DIR):
    return pipeline
  text = config_util.pipeline_to_text(pipeline)
  old = '"%s/' % CONFIG_DATA_DIR
  if old not in text and '"%s/' % os.path.normpath(data_dir) in text:
    return pipeline  # The config names data_dir already.
  if old not in text:
    raise app.UsageError('%s: --data_dir=%s given, but no input path or label '
                         'map of the config is under %s/' % (
                             path, data_dir, CONFIG_DATA_DIR))
  return config_util.parse_pipeline_text(
      text.replace(old, '"%s/' % os.path.normpath(data_dir)), path)


def _float(value):
  """A float32 proto field as the decimal it was written as (0.9, not 0.8999…)."""
  return float('%.6g' % value)


def _ratio(value):
  """'0.912', or '—' where undefined (e.g. precision of 0 mined boxes)."""
  return '—' if value is None else '%.3f' % value


def _timing_path(runs_dir, seed, variant):
  return os.path.join(runs_dir, str(seed), variant + '.timing.json')


def _run_state(plan, seed, variant, error=None):
  """The ``runs[variant][seed]`` entry from the run directory."""
  model_dir = os.path.join(plan.runs_dir, str(seed), variant)
  rows, _ = report.collect(model_dir, plan.iterations)
  timing = file_io.read_json(_timing_path(plan.runs_dir, seed, variant)) or {}
  if error:
    status = 'failed'
  elif len(rows) == plan.iterations + 1:
    status = 'complete'
  else:
    status = 'partial' if rows else 'pending'
  state = {'model_dir': model_dir, 'status': status, 'rows': rows,
           'seconds': timing.get('seconds'),
           'iteration_seconds': timing.get('iteration_seconds', {}),
           'invocations': timing.get('invocations', 0)}
  if error:
    state['error'] = error
  return state


def _worker_command(kind, config_path, model_dir, seed):
  return [sys.executable, os.path.abspath(__file__), '--worker=' + kind,
          '--worker_config=' + config_path, '--worker_model_dir=' + model_dir,
          '--worker_seed=%d' % seed]


class _Progress:
  """Reports the stages of one run as their files appear."""

  def __init__(self, plan, model_dir, name, start, timing):
    self._plan = plan
    self._dir = model_dir
    self._name = name
    self._start = start
    self._timing = timing
    self._seen = set()
    self._mark = time.monotonic()
    self.poll(announce=False)

  def _event(self, key, path):
    if key in self._seen or not os.path.exists(path):
      return None
    self._seen.add(key)
    return path

  def poll(self, announce=True):
    layout = run_layout
    for t in range(self._plan.iterations + 1):
      if t:
        path = self._event(('mined', t), os.path.join(
            layout.mined_dir(self._dir, t), layout.MANIFEST))
        if path and announce:
          m = file_io.read_json(path)
          _say(self._start, '%s: B^%d mined: %d boxes on %d images, precision '
               '%s, recall %s%s' % (
                   self._name, t, m['mined_boxes'], m['images_with_boxes'],
                   _ratio(m.get('precision')), _ratio(m.get('recall')),
                   ' (WARNING: %s)' % m['warning'].splitlines()[0]
                   if m.get('warning') else ''))
      path = self._event(('train', t), layout.pipeline_path(self._dir, t))
      if path and announce:
        pipeline = config_util.read_pipeline_config(path)
        _say(self._start, '%s: T^%d training %d steps%s' % (
            self._name, t, pipeline.train_config.num_steps,
            ' with distillation' if pipeline.note.HasField('distillation')
            else ''))
      path = self._event(('done', t), os.path.join(
          layout.iteration_dir(self._dir, t), layout.MANIFEST))
      if path and announce:
        now = time.monotonic()
        self._timing['iteration_seconds'][str(t)] = now - self._mark
        self._mark = now
        evaluation = file_io.read_json(path).get('eval') or {}
        _say(self._start, '%s: T^%d done in %s: mAP %.4f, mAP@.5 %.4f' % (
            self._name, t, ablation_report.duration(
                self._timing['iteration_seconds'][str(t)]),
            evaluation.get(report.MAP, float('nan')),
            evaluation.get(report.MAP50, float('nan'))))


def _stop_with_parent():
  """Asks for SIGTERM when the parent dies, even by SIGKILL (Linux)."""
  try:
    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def _interrupt_on_sigterm():
  """SIGTERM stops the parent like Ctrl-C: the current run is terminated."""
  def handler(signum, frame):
    del signum, frame
    raise KeyboardInterrupt('SIGTERM')
  signal.signal(signal.SIGTERM, handler)


def _run_subprocess(command, log_path, on_poll):
  """Runs ``command`` with its output appended to ``log_path``; exit code."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, 'a') as log:
    log.write('\n==== %s %s\n' % (datetime.datetime.now().isoformat(
        timespec='seconds'), ' '.join(command)))
    log.flush()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
      while process.poll() is None:
        time.sleep(FLAGS.poll_seconds)
        on_poll()
    finally:
      if process.poll() is None:
        process.terminate()
        process.wait()
  on_poll()
  return process.returncode


def _log_tail(path, lines=15):
  with open(path) as f:
    return ''.join(f.readlines()[-lines:])


def train_source(plan, start):
  """Trains S unless its marker exists; returns the seconds spent (or None)."""
  marker = os.path.join(plan.source_dir, 'manifest.json')
  timing_path = os.path.join(plan.runs_dir, 'source.timing.json')
  timing = file_io.read_json(timing_path) or {'seconds': 0.0, 'invocations': 0}
  if file_io.read_json(marker):
    return timing.get('seconds') or None
  _say(start, 'S: training %d steps into %s (log: %s/source.log)' % (
      plan.source_steps, plan.source_dir, plan.runs_dir))
  begin = time.monotonic()
  variant = next(iter(plan.configs))
  code = -1
  try:
    code = _run_subprocess(
        _worker_command('source', plan.configs[variant], plan.source_dir,
                        SOURCE_SEED),
        os.path.join(plan.runs_dir, 'source.log'), lambda: None)
  finally:
    timing['seconds'] += time.monotonic() - begin
    timing['invocations'] += 1
    file_io.write_json_atomically(timing_path, timing)
  if code != 0 or not file_io.read_json(marker):
    raise RuntimeError('training S failed (exit code %d):\n%s' % (
        code, _log_tail(os.path.join(plan.runs_dir, 'source.log'))))
  _say(start, 'S: done in %s' % ablation_report.duration(
      time.monotonic() - begin))
  return timing['seconds']


def run_variant(plan, seed, variant, start, name):
  """Runs (or resumes) one variant for one seed; returns an error or None."""
  model_dir = os.path.join(plan.runs_dir, str(seed), variant)
  timing_path = _timing_path(plan.runs_dir, seed, variant)
  timing = file_io.read_json(timing_path) or {'seconds': 0.0, 'invocations': 0,
                                       'iteration_seconds': {}}
  timing.setdefault('iteration_seconds', {})
  previous = timing['seconds']
  begin = time.monotonic()
  progress = _Progress(plan, model_dir, name, start, timing)

  def on_poll():
    progress.poll()
    timing['seconds'] = previous + time.monotonic() - begin
    file_io.write_json_atomically(timing_path, timing)

  log_path = os.path.join(plan.runs_dir, str(seed), variant + '.log')
  timing['invocations'] += 1
  code = _run_subprocess(_worker_command('variant', plan.configs[variant],
                                         model_dir, int(seed)),
                         log_path, on_poll)
  if code != 0:
    return 'exit code %d; end of %s:\n%s' % (code, log_path,
                                             _log_tail(log_path))
  return None


def _results_skeleton(plan, seeds, variants, dataset):
  return {
      'schema_version': 1,
      'created': datetime.datetime.now().astimezone().isoformat(
          timespec='seconds'),
      'command': ['bench/run_ablation.py'] + sys.argv[1:],
      'via_make': bool(os.environ.get('MAKELEVEL')),
      'machine': machine.describe(),
      'load_avg_start': machine.load_average(),
      'seeds': seeds,
      'variants': variants,
      'variant_settings': plan.variant_settings(),
      'budget': plan.budget(dataset),
      'dataset': dataset,
      'source': {'checkpoint_dir': plan.source_dir, 'seconds': None},
      'runs': {v: {str(s): _run_state(plan, s, v) for s in seeds}
               for v in variants},
  }


def _save(results, start):
  results['load_avg_end'] = machine.load_average()
  results['invocation_seconds'] = time.monotonic() - start
  results['total_seconds'] = ((results['source'].get('seconds') or 0.0) + sum(
      r.get('seconds') or 0.0 for v in results['runs'].values()
      for r in v.values()))
  ablation_report.write_results(results, FLAGS.output_dir,
                                FLAGS.results_name)


def control_settings(control, runs_dir, config_override):
  """``(runs_dir, config_override)`` of a ``--control`` run.

  'none' leaves both as they are; a control merges
  ``note { mining { control: ORACLE | FROZEN_T0 } }`` into the override and
  suffixes the runs directory, so control runs never resume normal ones.
  """
  if control == 'none':
    return runs_dir, config_override
  return (os.path.normpath(runs_dir) + '_' + control,
          (config_override + ' ' if config_override else '') +
          'note { mining { control: %s } }' % control.upper())


def _check_flags():
  unknown = sorted(set(FLAGS.variants) - set(VARIANT_KEYS))
  if unknown:
    raise app.UsageError('--variants: unknown %s (known: %s)' % (
        ', '.join(unknown), ', '.join(VARIANT_KEYS)))
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
  order = [v for v in VARIANT_KEYS if v in FLAGS.variants]
  return order, seeds


def main(argv):
  del argv
  os.chdir(REPO_ROOT)
  if FLAGS.worker:
    run_worker(FLAGS.worker, FLAGS.worker_config, FLAGS.worker_model_dir,
               FLAGS.worker_seed)
    return
  if FLAGS.render:
    with open(os.path.join(FLAGS.output_dir,
                           FLAGS.results_name + '.json')) as f:
      ablation_report.write_results(json.load(f), FLAGS.output_dir,
                                    FLAGS.results_name)
    return
  variants, seeds = _check_flags()
  _interrupt_on_sigterm()
  start = time.monotonic()
  runs_dir, override = control_settings(FLAGS.control, FLAGS.runs_dir,
                                        FLAGS.config_override)
  if FLAGS.control != 'none':
    FLAGS.results_name += '_' + FLAGS.control
  plan = Plan(variants, FLAGS.configs_dir, runs_dir, override,
              FLAGS.source_steps, FLAGS.data_dir)
  with open(os.path.join(FLAGS.data_dir, 'manifest.json')) as f:
    dataset = ablation_report.dataset_parameters(json.load(f))
  dataset['data_dir'] = os.path.normpath(FLAGS.data_dir)
  results = _results_skeleton(plan, seeds, variants, dataset)
  _say(start, 'ablation: variants %s, seeds %s, %d iterations each; results '
       'in %s' % (', '.join(variants), ', '.join(map(str, seeds)),
                  plan.iterations, FLAGS.output_dir))
  results['source']['seconds'] = train_source(plan, start)
  _save(results, start)
  failures = 0
  total = len(variants) * len(seeds)
  for seed_index, seed in enumerate(seeds):
    for index, variant in enumerate(variants):
      state = results['runs'][variant][str(seed)]
      name = 'seed %d %s (%d/%d)' % (seed, ablation_report.LABELS[variant],
                                     seed_index * len(variants) + index + 1,
                                     total)
      if state['status'] == 'complete':
        _say(start, '%s: complete, skipped' % name)
        continue
      _say(start, '%s: %s' % (name, 'resuming after T^%d' % (
          len(state['rows']) - 1) if state['rows'] else 'starting'))
      error = None
      try:
        error = run_variant(plan, seed, variant, start, name)
      finally:
        results['runs'][variant][str(seed)] = _run_state(plan, seed, variant,
                                                         error)
        _save(results, start)
      if error:
        failures += 1
        _say(start, '%s: FAILED (%s)' % (name, error.splitlines()[0]))
      else:
        _say(start, '%s: done, %s in all' % (
            name, ablation_report.duration(
                results['runs'][variant][str(seed)]['seconds'])))
  _say(start, 'wrote %s' % os.path.join(FLAGS.output_dir,
                                        FLAGS.results_name + '.md'))
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
