r"""NOTE-RCNN benchmark: training step time, mining and evaluation throughput.

  python bench/run_bench.py [--sections=train,mining,eval] \
    [--settings=irv2_320,irv2_600x1024,tiny] [--variants=plain,note,distill] \
    [--steps=3] [--warmup=1] [--quick] [--output_dir=bench/results] \
    [--peer_python=PEER_VENV/bin/python --peer_rounds=3]

With ``--peer_python`` (a venv built by
/work/shared/odapi-reference/peer_setup.sh), the IRv2 settings are also
timed side by side with the upstream OD API's own step in alternating rounds
(``peer_compare``): per round, wall and CPU s/step of both and their ratios,
in bench.json (``peer_comparison``) and bench.md.

Writes ``<output_dir>/bench.json`` and ``<output_dir>/bench.md`` (atomically,
after every measurement, so an interrupted run keeps what it measured).
Every measurement runs in its own subprocess (this script with ``--worker``),
so its peak RSS is its own and one failure does not stop the others. Run from
the repository root (``make bench`` does); needs ``data/synthetic`` for the
mining and evaluation sections (``make data``).

``--quick`` is a smoke run (about 10 minutes on 2 cores): IRv2 320×320 and
tiny only, one timed step, mining over one copy of the image-level set. The
full run takes about 25 minutes on 2 cores.
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # The package, when it is not installed.
  sys.path.append(REPO_ROOT)

from object_detection_note.core import file_io  # pylint: disable=g-import-not-at-top,wrong-import-position
import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
import peer_compare  # pylint: disable=g-import-not-at-top,wrong-import-position
import report  # pylint: disable=g-import-not-at-top,wrong-import-position
import utilisation  # pylint: disable=g-import-not-at-top,wrong-import-position

SECTIONS = ('train', 'mining', 'eval')
SETTINGS = ('irv2_320', 'irv2_600x1024', 'tiny')
VARIANTS = ('plain', 'note', 'distill')
QUICK_SETTINGS = ('irv2_320', 'tiny')

flags.DEFINE_list('sections', list(SECTIONS), 'Parts to run: %s.' %
                  ', '.join(SECTIONS))
flags.DEFINE_list('settings', list(SETTINGS), 'Training settings: %s.' %
                  ', '.join(SETTINGS))
flags.DEFINE_list('variants', list(VARIANTS), 'Training variants: %s.' %
                  ', '.join(VARIANTS))
flags.DEFINE_integer('steps', None, 'Timed steps per training case (default '
                     '3, or 2 for irv2_600x1024; 1 with --quick; tiny always '
                     'gets at least 5).')
flags.DEFINE_integer('warmup', 1, 'Untimed steps before timing (the first '
                     'traces and optimises the graph).')
flags.DEFINE_bool('quick', False, 'Smoke run: irv2_320 and tiny, 1 timed '
                  'step (3 for tiny), mining over one copy of the set.')
flags.DEFINE_list('mining_workers', ['1', '2'], 'Beam worker counts to time.')
flags.DEFINE_integer('mining_copies', 4, 'Copies of the image-level set '
                     'mined (1 with --quick).')
flags.DEFINE_bool('jit_compile', False, 'Compile training steps with XLA.')
flags.DEFINE_enum('policy', None, ['float32', 'mixed_bfloat16',
                                   'mixed_float16'],
                  'Precision policy of the trained models (default: the '
                  'configs\', float32).')
flags.DEFINE_integer('intra_op_threads', 0, 'TF intra-op threads (0: TF '
                     'default).')
flags.DEFINE_integer('inter_op_threads', 0, 'TF inter-op threads (0: TF '
                     'default).')
flags.DEFINE_integer('case_timeout', 1800, 'Seconds before a measurement '
                     'subprocess is stopped and recorded as failed.')
flags.DEFINE_bool('render', False, 'Only recompute the ratios and rewrite '
                  'bench.json/bench.md from the bench.json in --output_dir.')
flags.DEFINE_string('peer_python', None, 'Python of a peer venv holding the '
                    'upstream OD API (peer_setup.sh): also time its IRv2 step '
                    'beside the project\'s, in alternating rounds.')
flags.DEFINE_integer('peer_rounds', 3, 'Rounds of the side-by-side timing '
                     '(each: one project run, one OD API run).')
flags.DEFINE_string('output_dir', os.path.join(REPO_ROOT, 'bench', 'results'),
                    'Where bench.json and bench.md go.')
# Internal: one measurement in this process.
flags.DEFINE_string('worker', None, 'Internal: train:<case>, mining, eval '
                    'or peak.')
flags.DEFINE_string('worker_output', None, 'Internal: JSON result path.')

FLAGS = flags.FLAGS


# ---------------------------------------------------------------- worker side
def _configure_threads():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if FLAGS.intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(
        FLAGS.intra_op_threads)
  if FLAGS.inter_op_threads:
    tf.config.threading.set_inter_op_parallelism_threads(
        FLAGS.inter_op_threads)


def run_worker(task, output_path):
  """Runs one measurement and writes its JSON result."""
  _configure_threads()
  with machine.TreeRssSampler() as sampler:
    if task.startswith('train:'):
      import train_bench  # pylint: disable=g-import-not-at-top
      case = task.split(':', 1)[1]
      result = train_bench.run_case(case, FLAGS.steps, FLAGS.warmup,
                                    FLAGS.jit_compile, FLAGS.policy)
    elif task == 'mining':
      import throughput_bench  # pylint: disable=g-import-not-at-top
      result = throughput_bench.run_mining(
          tuple(int(n) for n in FLAGS.mining_workers), FLAGS.mining_copies)
    elif task == 'eval':
      import throughput_bench  # pylint: disable=g-import-not-at-top
      result = throughput_bench.run_eval()
    elif task == 'peak':
      import flops  # pylint: disable=g-import-not-at-top
      result = {dtype: flops.peak_flops(dtype)
                for dtype in ('float32', 'bfloat16')}
    else:
      raise ValueError('unknown worker task %r' % task)
  result['peak_rss_mib'] = machine.peak_rss_mib()
  # With worker subprocesses (Beam), the sum over the process tree.
  result['peak_tree_rss_mib'] = sampler.peak_mib
  file_io.write_atomically(output_path, json.dumps(result, indent=1))


# ---------------------------------------------------------------- parent side
def _steps_for(setting):
  if FLAGS.steps:
    steps = FLAGS.steps
  elif FLAGS.quick:
    steps = 1
  else:
    steps = 2 if setting == 'irv2_600x1024' else 3
  if setting == 'tiny':
    return max(steps, 3 if FLAGS.quick else 5)
  return steps


def _run_subprocess(task, steps):
  """Runs ``task`` in a child process; returns its result or an error dict."""
  with tempfile.TemporaryDirectory(prefix='bench_') as tmp:
    output = os.path.join(tmp, 'result.json')
    command = [sys.executable, os.path.abspath(__file__),
               '--worker=%s' % task, '--worker_output=%s' % output,
               '--steps=%d' % steps, '--warmup=%d' % FLAGS.warmup,
               '--jit_compile=%s' % FLAGS.jit_compile,
               '--intra_op_threads=%d' % FLAGS.intra_op_threads,
               '--inter_op_threads=%d' % FLAGS.inter_op_threads,
               '--mining_workers=%s' % ','.join(FLAGS.mining_workers),
               '--mining_copies=%d' % (1 if FLAGS.quick else
                                       FLAGS.mining_copies)]
    if FLAGS.policy:
      command.append('--policy=%s' % FLAGS.policy)
    start = time.perf_counter()
    try:
      completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True,
                                 text=True, timeout=FLAGS.case_timeout,
                                 check=False)
    except subprocess.TimeoutExpired:
      return {'error': 'timed out after %d s' % FLAGS.case_timeout}
    elapsed = time.perf_counter() - start
    if completed.returncode != 0 or not os.path.exists(output):
      return {'error': 'exit code %d\n%s' % (completed.returncode,
                                              completed.stderr[-3000:])}
    with open(output) as f:
      result = json.load(f)
  result['process_seconds'] = elapsed
  return result


def _write_results(results):
  """Adds the ratios, then rewrites bench.json and bench.md."""
  utilisation.add_utilisation(results)
  if results.get('train'):
    results['ratios'] = report.ratios(results['train'])
    results['reference'] = report.reference_comparison(
        results['train'], results['machine']['usable_cpus'])
  file_io.write_atomically(os.path.join(FLAGS.output_dir, 'bench.json'),
                           json.dumps(results, indent=1, sort_keys=False))
  file_io.write_atomically(
      os.path.join(FLAGS.output_dir, 'bench.md'),
      report.markdown(results) + utilisation.markdown(results) +
      peer_compare.markdown(results.get('peer_comparison')))


def _save(results):
  results['load_avg_end'] = machine.load_average()
  _write_results(results)


def _check_flags():
  for name, values, known in (('sections', FLAGS.sections, SECTIONS),
                              ('settings', FLAGS.settings, SETTINGS),
                              ('variants', FLAGS.variants, VARIANTS)):
    unknown = sorted(set(values) - set(known))
    if unknown:
      raise app.UsageError('--%s: unknown %s (known: %s)' % (
          name, ', '.join(unknown), ', '.join(known)))
  needs_data = {'mining', 'eval'} & set(FLAGS.sections)
  manifest = os.path.join(REPO_ROOT, 'data', 'synthetic', 'manifest.json')
  if needs_data and not os.path.exists(manifest):
    raise app.UsageError('%s needs data/synthetic: run `make data` first' %
                         ' and '.join(sorted(needs_data)))


def _run_peer_comparison(results, settings):
  """Alternating project / OD API rounds per IRv2 setting (see peer_compare)."""
  comparison = results.setdefault('peer_comparison', {})
  for setting in settings:
    if setting not in peer_compare.PEER_SETTINGS:
      continue
    steps = _steps_for(setting)
    block = comparison[setting] = {'rounds': []}
    for index in range(FLAGS.peer_rounds):
      order = ('project', 'odapi') if index % 2 == 0 else ('odapi',
                                                            'project')
      load_before = machine.load_average()
      outcome = {}
      for side in order:
        logging.info('side by side %s round %d: %s (load %s)', setting,
                     index + 1, side, machine.load_average())
        if side == 'project':
          outcome[side] = _run_subprocess('train:%s/plain' % setting, steps)
        else:
          outcome[side] = peer_compare.run_peer(
              FLAGS.peer_python, setting, steps, FLAGS.warmup,
              FLAGS.case_timeout)
      block['rounds'].append(peer_compare.round_record(
          index + 1, order, outcome['project'], outcome['odapi'],
          load_before, machine.load_average()))
      block['summary'] = peer_compare.summary(block['rounds'])
      _save(results)


def main(argv):
  del argv
  os.chdir(REPO_ROOT)
  if FLAGS.worker:
    run_worker(FLAGS.worker, FLAGS.worker_output)
    return
  if FLAGS.render:
    with open(os.path.join(FLAGS.output_dir, 'bench.json')) as f:
      results = json.load(f)
    _write_results(results)
    return
  _check_flags()
  settings = [s for s in FLAGS.settings
              if not FLAGS.quick or s in QUICK_SETTINGS]
  results = {
      'schema_version': 1,
      'created': datetime.datetime.now().astimezone().isoformat(
          timespec='seconds'),
      'command': ['bench/run_bench.py'] + sys.argv[1:],
      'machine': machine.describe(),
      'load_avg_start': machine.load_average(),
      'options': {'sections': FLAGS.sections, 'settings': settings,
                  'variants': FLAGS.variants, 'warmup': FLAGS.warmup,
                  'quick': FLAGS.quick, 'jit_compile': FLAGS.jit_compile,
                  'policy': FLAGS.policy,
                  'mining_workers': FLAGS.mining_workers,
                  'peer_python': FLAGS.peer_python,
                  'peer_rounds': FLAGS.peer_rounds},
  }
  # The machine's matmul peak per dtype, for the utilisation of each case.
  results['peak'] = _run_subprocess('peak', 1)
  _save(results)
  if 'train' in FLAGS.sections:
    results['train'] = {}
    for setting in settings:
      for variant in FLAGS.variants:
        case = '%s/%s' % (setting, variant)
        logging.info('training step: %s (load %s)', case,
                     machine.load_average())
        results['train'][case] = _run_subprocess('train:' + case,
                                                 _steps_for(setting))
        logging.info('  -> %s', results['train'][case].get(
            'median_s', results['train'][case].get('error')))
        _save(results)
  if FLAGS.peer_python:
    _run_peer_comparison(results, settings)
  for section in ('mining', 'eval'):
    if section in FLAGS.sections:
      logging.info('%s throughput (load %s)', section, machine.load_average())
      results[section] = _run_subprocess(section, 1)
      _save(results)
  _save(results)
  print(report.markdown(results), flush=True)
  logging.info('wrote %s', os.path.join(FLAGS.output_dir, 'bench.md'))


if __name__ == '__main__':
  app.run(main)
