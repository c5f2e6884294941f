r"""Stall bench: host-side file work idle and beside two busy CPU loops.

  python bench/stall_bench.py [--quick] [--parts=data,converters,merge,mining] \
    [--output_dir=bench/results] [--render]

(``make bench-stall``). Parts:

* ``data``: ``make data`` into a temporary DATA_DIR, idle and then beside two
  busy loops (``while True: pass`` processes this script starts and always
  stops, also on an error, Ctrl-C or SIGTERM); wall time, CPU time of the
  ``make`` process tree (``resource.getrusage(RUSAGE_CHILDREN)``) and whether
  the loaded run wrote the same shard bytes as the idle one. ``--quick``
  runs the synthetic converter directly on 120 + 30 scenes instead.
* ``converters``: each dataset converter binary (COCO 2017, ILSVRC 2013,
  Open Images: ``pipelines/create_*_tfrecords.py``) as a subprocess on the
  inputs its tests use (``tests/pipelines/converter_fixtures.py``), idle and
  beside the busy loops; wall time, CPU time and whether both runs wrote the
  same shard bytes. The synthetic converter is the ``data`` part.
* ``merge``: 128 run files x 6 records of 50 KB merged into one shard with
  ``sorted_runs.merge_runs`` (the plain TFRecord reader), and the same merge
  reading each run with one tf.data iterator (the reader it replaced, kept
  here only as the comparison), idle and beside the busy loops; each merge
  runs in a child process, killed and recorded as stalled after
  ``--merge_timeout`` seconds.
* ``mining``: the mining stage (``mining_pipeline.run_mining``, one in-process
  Beam worker) run 5 times in this one process over the image-level split
  written by the ``data`` part, with the tiny model of
  ``configs/synthetic.config`` (freshly initialised weights, as in
  ``throughput_bench``); each time and max/min (the bar is <= 2).

Every measurement records the 1-minute load average before and after (the
machine may be shared). Writes ``<output_dir>/stall.json`` and ``stall.md``
atomically after every part.
"""
import contextlib
import datetime
import filecmp
import glob
import heapq
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's package first, also before an installed one (the measured
# code must be the code beside this script).
sys.path.insert(0, REPO_ROOT)

import quiet_first  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position  # before TensorFlow
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection_note.config import config_util  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.core import file_io  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.data.writing import beam_io  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.data.records import label_map_util  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.data.writing import sorted_runs  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.mining import detectors  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.mining import mining_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection_note.mining import mining_spec  # pylint: disable=g-import-not-at-top,wrong-import-position
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'pipelines'))
import converter_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
import throughput_bench  # pylint: disable=g-import-not-at-top,wrong-import-position

PARTS = ('data', 'converters', 'merge', 'mining')
FLAGS = flags.FLAGS


def define_flags():
  """This binary's flags (defined when run, not on import)."""
  flags.DEFINE_list('parts', list(PARTS),
                    'Parts to run: %s.' % ', '.join(PARTS))
  flags.DEFINE_bool('quick', False, 'Smaller data part (the converter on 120 + '
                    '30 scenes instead of make data).')
  flags.DEFINE_integer('busy_loops', 2,
                       'Busy CPU loops beside the loaded runs.')
  flags.DEFINE_integer('mining_runs', 5, 'Mining stages run in one process.')
  flags.DEFINE_integer('data_timeout', 1800, 'Seconds before a data or '
                       'converter run is stopped and recorded as timed out.')
  flags.DEFINE_integer('merge_timeout', 240, 'Seconds before a merge is '
                       'killed and recorded as stalled.')
  flags.DEFINE_bool('render', False, 'Only rewrite stall.md from the '
                    'stall.json in --output_dir.')
  flags.DEFINE_string('output_dir', os.path.join(REPO_ROOT, 'bench', 'results'),
                      'Where stall.json and stall.md go.')


NUM_RUNS, RECORDS_PER_RUN, RECORD_BYTES = 128, 6, 50_000


@contextlib.contextmanager
def busy_loops(count):
  """Runs ``count`` busy Python loops for the duration of the block.

  They are stopped (terminated, then killed) on every exit from the block:
  normal, exception, KeyboardInterrupt; SIGTERM is turned into SystemExit
  for the block's duration so that it also stops them.
  """
  previous = signal.signal(signal.SIGTERM,
                           lambda *_: sys.exit('stopped by SIGTERM'))
  loops = []
  try:
    for _ in range(count):
      loops.append(subprocess.Popen(
          [sys.executable, '-c', 'while True: pass'],
          stdin=subprocess.DEVNULL))
    time.sleep(1.0)  # let them reach full speed
    yield [p.pid for p in loops]
  finally:
    for process in loops:
      process.terminate()
    for process in loops:
      try:
        process.wait(timeout=5)
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    signal.signal(signal.SIGTERM, previous)


def _cpu(who):
  usage = resource.getrusage(who)
  return usage.ru_utime + usage.ru_stime


def timed(fn, *args):
  """Runs ``fn(*args)``; returns (its result, timing dict)."""
  load_before = machine.load_average()
  self_cpu, child_cpu = _cpu(resource.RUSAGE_SELF), _cpu(
      resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  result = fn(*args)
  wall = time.perf_counter() - start
  return result, {
      'wall_s': round(wall, 2),
      'cpu_s': round(_cpu(resource.RUSAGE_SELF) - self_cpu, 2),
      'children_cpu_s': round(_cpu(resource.RUSAGE_CHILDREN) - child_cpu, 2),
      'load_avg_before': load_before,
      'load_avg_after': machine.load_average(),
  }


# ------------------------------------------------------------------ data
def _data_command(data_dir, quick):
  if quick:
    return [os.path.join(REPO_ROOT, '.venv', 'bin', 'python'),
            os.path.join(REPO_ROOT, 'pipelines',
                         'create_synthetic_tfrecords.py'),
            '--output_dir=' + data_dir, '--num_train_images=120',
            '--num_val_images=30']
  return ['make', '-C', REPO_ROOT, 'data', 'DATA_DIR=' + data_dir]


def _run_data(data_dir, quick, timeout):
  return _run_command(_data_command(data_dir, quick), timeout)


def _run_command(command, timeout):
  """Runs ``command`` from the repository root; 'ok' or what went wrong."""
  try:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO_ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    completed = subprocess.run(command, cwd=REPO_ROOT,
                               env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=timeout,
                               check=False)
  except subprocess.TimeoutExpired:
    return 'timed out after %d s' % timeout
  if completed.returncode:
    return 'exit %d: %s' % (completed.returncode,
                            completed.stderr.decode()[-500:])
  return 'ok'


def _same_shards(dir_a, dir_b):
  names = sorted(os.path.basename(p)
                 for p in glob.glob(os.path.join(dir_a, '*.tfrecord-*')))
  return bool(names) and all(
      filecmp.cmp(os.path.join(dir_a, n), os.path.join(dir_b, n),
                  shallow=False) for n in names)


def data_part(work_dir, quick, loops, timeout):
  """``make data`` idle and beside ``loops`` busy loops."""
  out = {'command': ' '.join(_data_command('<tmp>/DATA_DIR', quick)).replace(
      REPO_ROOT, '.')}
  idle_dir = os.path.join(work_dir, 'data_idle')
  status, out['idle'] = timed(_run_data, idle_dir, quick, timeout)
  out['idle']['status'] = status
  loaded_dir = os.path.join(work_dir, 'data_loaded')
  with busy_loops(loops):
    status, out['loaded'] = timed(_run_data, loaded_dir, quick, timeout)
  out['loaded']['status'] = status
  out['loaded_shards_identical_to_idle'] = _same_shards(idle_dir, loaded_dir)
  out['loaded_over_idle_wall'] = round(
      out['loaded']['wall_s'] / out['idle']['wall_s'], 2)
  shutil.rmtree(loaded_dir, ignore_errors=True)
  return out, idle_dir


# ------------------------------------------------------------ converters
def _converter_run(name, root, timeout):
  """Writes ``name``'s test inputs under ``root`` and times its binary."""
  script, write_inputs, converter_args = converter_fixtures.CONVERTERS[name]
  os.makedirs(root)
  paths = write_inputs(root)
  command = [sys.executable, os.path.join(REPO_ROOT, 'pipelines', script)
            ] + converter_args(paths)
  status, timing = timed(_run_command, command, timeout)
  timing['status'] = status
  return timing, paths['out']


def converters_part(work_dir, loops, timeout):
  """Each converter on its test inputs, idle and beside ``loops`` loops."""
  out = {}
  for name in sorted(converter_fixtures.CONVERTERS):
    idle, idle_out = _converter_run(
        name, os.path.join(work_dir, name + '_idle'), timeout)
    with busy_loops(loops):
      loaded, loaded_out = _converter_run(
          name, os.path.join(work_dir, name + '_loaded'), timeout)
    out[name] = {
        'command': 'python pipelines/%s <tests/pipelines/converter_fixtures '
                   'inputs>' % converter_fixtures.CONVERTERS[name][0],
        'idle': idle, 'loaded': loaded,
        'loaded_over_idle_wall': round(loaded['wall_s'] / idle['wall_s'], 2),
        'loaded_shards_identical_to_idle': _same_shards(idle_out, loaded_out)}
    logging.info('converter %s: %.1f s idle, %.1f s loaded', name,
                 idle['wall_s'], loaded['wall_s'])
  return out


# ----------------------------------------------------------------- merge
def read_run_tf_data(path):
  """The reader ``sorted_runs.read_run`` replaced (one tf.data iterator per
  run file); kept only as this bench's comparison."""
  records = tf.data.TFRecordDataset(path).as_numpy_iterator()
  for key in records:
    yield key.decode('utf8'), next(records)


def merge_runs_tf_data(run_paths, shard_path):
  """``sorted_runs.merge_runs`` reading each run with ``read_run_tf_data``."""
  merged = heapq.merge(*[read_run_tf_data(p) for p in sorted(run_paths)],
                       key=lambda kv: kv[0])
  count = 0
  with tf.io.TFRecordWriter(shard_path) as writer:
    for _, value in merged:
      writer.write(value)
      count += 1
  return count


# reader name -> merge function (run paths, shard path) -> records written
MERGERS = {'tfrecord_reader': sorted_runs.merge_runs,
           'tf_data_per_run': merge_runs_tf_data}


def _write_runs(directory):
  shard = os.path.join(directory, 'shard')
  paths = []
  for run in range(NUM_RUNS):
    pairs = [('%05d-%d' % (run, i), bytes([run % 256, i]) * (RECORD_BYTES // 2))
             for i in range(RECORDS_PER_RUN)]
    paths.append(sorted_runs.run_path(shard, run))
    sorted_runs.write_run(paths[-1], pairs)
  return shard, paths


def _merge_child(name, paths, shard, ready, output):
  """Runs in a child process: signals that its imports are done, merges
  with reader ``name`` and writes its timing dict to ``output``."""
  ready.set()
  count, timing = timed(MERGERS[name], paths, shard)
  timing['records'] = count
  file_io.write_json_atomically(output, timing)


def _merge_case(work_dir, name, loops, timeout):
  """One merge with reader ``name`` in a child process, beside ``loops``
  busy loops; a merge not done after ``timeout`` s is killed and recorded
  as stalled (the old reader can wait for minutes on a shared machine)."""
  directory = tempfile.mkdtemp(dir=work_dir)
  shard, paths = _write_runs(directory)
  output = os.path.join(directory, 'timing.json')
  context = multiprocessing.get_context('spawn')
  ready = context.Event()
  child = context.Process(target=_merge_child,
                          args=(name, paths, shard, ready, output))
  with busy_loops(loops) if loops else contextlib.nullcontext():
    child.start()
    while not ready.wait(1.0):  # its imports
      if not child.is_alive():
        raise RuntimeError('merge child (%s) exited with %s before it '
                           'started' % (name, child.exitcode))
    load_before = machine.load_average()
    child.join(timeout)
    if child.is_alive():
      child.kill()
      child.join()
      timing = {'status': 'killed: not done after %d s' % timeout,
                'wall_s': float(timeout), 'cpu_s': None,
                'children_cpu_s': 0.0, 'load_avg_before': load_before,
                'load_avg_after': machine.load_average()}
    elif child.exitcode:
      raise RuntimeError('merge child (%s) failed with exit code %s' % (
          name, child.exitcode))
    else:
      timing = dict(file_io.read_json(output), status='ok')
  shutil.rmtree(directory)
  return timing


def merge_part(work_dir, loops, timeout):
  """Both readers, idle and loaded."""
  out = {'runs': NUM_RUNS, 'records_per_run': RECORDS_PER_RUN,
         'record_bytes': RECORD_BYTES}
  for name in MERGERS:
    out[name] = {'idle': _merge_case(work_dir, name, 0, timeout),
                 'loaded': _merge_case(work_dir, name, loops, timeout)}
  return out


# ---------------------------------------------------------------- mining
def mining_part(work_dir, data_dir, runs):
  """The mining stage ``runs`` times in this process."""
  config = throughput_bench.CONFIG
  configs = config_util.get_configs_from_pipeline_file(config)
  checkpoint = throughput_bench.write_random_checkpoint(configs, work_dir)
  mining = configs['note'].mining
  batch_size = mining.batch_size or 8
  spec = detectors.detector_spec(config, checkpoint, batch_size=batch_size)
  id_to_name = label_map_util.get_id_to_name(
      os.path.join(data_dir, 'target_label_map.pbtxt'))
  pattern = os.path.join(data_dir, 'image_level.tfrecord-*')
  options = mining_spec.MiningSpec(id_to_name, mining.score_threshold,
                                   num_shards=mining.num_shards or 1,
                                   batch_size=batch_size)
  times = []
  for run in range(runs):
    metrics, timing = timed(
        mining_pipeline.run_mining, options, pattern,
        os.path.join(work_dir, 'mined_%d' % run), spec,
        beam_io.pipeline_options([]))
    timing['images'] = metrics['images']
    times.append(timing)
    logging.info('mining run %d: %.1f s', run, timing['wall_s'])
  walls = [t['wall_s'] for t in times]
  return {'config': config, 'input': pattern.replace(work_dir, '<tmp>'),
          'runs': times, 'max_over_min_wall': round(max(walls) / min(walls),
                                                    2)}


def _scheduling_group():
  """This process's CFS autogroup and its nice value (Linux), or None.

  With autogroups on, the scheduler shares the CPU between sessions first,
  so other sessions' jobs on a shared machine take a share of it whatever
  this bench does; starting the bench in its own session with a lower
  autogroup nice (``setsid bash -c 'echo -10 > /proc/$$/autogroup; exec
  ...'``, as root) gives it and its busy loops the CPU of a quiet machine.
  """
  try:
    with open('/proc/self/autogroup') as f:
      return f.read().strip()
  except OSError:
    return None


# ---------------------------------------------------------------- report
def _load(values):
  return '%.2f' % values[0] if values else '?'


def _row(name, t):
  if t['cpu_s'] is None:  # killed before it reported
    return '| %s | > %.0f | ? | ? | ? | %s | %s |' % (
        name, t['wall_s'], _load(t['load_avg_before']),
        _load(t['load_avg_after']))
  cpu = t['cpu_s'] + t['children_cpu_s']
  return '| %s | %.1f | %.1f | %.1f | %s | %s | %s |' % (
      name, t['wall_s'], t['cpu_s'], t['children_cpu_s'],
      '%.2f' % (cpu / t['wall_s']) if t['wall_s'] else '?',
      _load(t['load_avg_before']), _load(t['load_avg_after']))


def markdown(results):
  """The stall.md text of ``results``."""
  lines = ['# Stall bench', '',
           'Produced by `%s` on %s (%s); %d busy loops beside the loaded runs; '
           'scheduling group: %s.'
           % (results['command'], results['date'],
              results['machine'].get('cpu_model', '?'), results['busy_loops'],
              results.get('scheduling_group') or 'unknown'),
           '', '"idle": without this bench\'s busy loops (the machine may be '
           'shared: see the load average before and after each run); '
           '"loaded": beside %d busy loops.' % results['busy_loops'],
           '"CPU / wall": the cores the run kept busy on average. A run that '
           'waits (a stall) shows wall time growing with CPU / wall falling '
           'far below the share the scheduler gives it; a CPU-bound run '
           'beside the loops keeps its CPU time and its wall time grows by '
           'the time-sharing factor (about 1.5x for a one-thread run beside '
           '2 loops on 2 idle cores, more when the machine is shared).',
           '', '| run | wall s | CPU s (self) | CPU s (children) | '
           'CPU / wall | load 1 min before | after |',
           '|---|---|---|---|---|---|---|']
  data = results.get('data')
  if data:
    lines.append(_row('data idle (%s)' % data['idle']['status'], data['idle']))
    lines.append(_row('data loaded (%s)' % data['loaded']['status'],
                      data['loaded']))
  converters = results.get('converters', {})
  for name, runs in sorted(converters.items()):
    for load in ('idle', 'loaded'):
      lines.append(_row('%s converter %s (%s)' % (name, load,
                                                  runs[load]['status']),
                        runs[load]))
  merge = results.get('merge')
  if merge:
    for name in ('tfrecord_reader', 'tf_data_per_run'):
      for load in ('idle', 'loaded'):
        lines.append(_row('merge %d runs, %s, %s (%s)' % (
            merge['runs'], name, load,
            merge[name][load].get('status', 'ok')), merge[name][load]))
  mining = results.get('mining')
  if mining:
    for i, t in enumerate(mining['runs']):
      lines.append(_row('mining run %d (%d images)' % (i, t['images']), t))
  lines.append('')
  if data:
    lines.append('- data: loaded / idle wall = %.2f; loaded shards identical '
                 'to idle: %s (`%s`)' % (
                     data['loaded_over_idle_wall'],
                     data['loaded_shards_identical_to_idle'], data['command']))
  for name, runs in sorted(converters.items()):
    lines.append('- %s converter: loaded / idle wall = %.2f; loaded shards '
                 'identical to idle: %s (`%s`)' % (
                     name, runs['loaded_over_idle_wall'],
                     runs['loaded_shards_identical_to_idle'], runs['command']))
  if mining:
    cpus = [t['cpu_s'] for t in mining['runs']]
    lines.append('- mining: max / min wall over %d runs in one process = %.2f '
                 '(bar: <= 2); max / min CPU = %.2f' % (
                     len(mining['runs']), mining['max_over_min_wall'],
                     max(cpus) / min(cpus)))
  return '\n'.join(lines) + '\n'


def _write(results, output_dir):
  file_io.write_json_atomically(os.path.join(output_dir, 'stall.json'), results)
  file_io.write_atomically(os.path.join(output_dir, 'stall.md'),
                           markdown(results))


def main(argv):
  del argv
  if FLAGS.render:
    results = file_io.read_json(os.path.join(FLAGS.output_dir, 'stall.json'))
    _write(results, FLAGS.output_dir)
    print(markdown(results))
    return
  unknown = set(FLAGS.parts) - set(PARTS)
  if unknown:
    raise app.UsageError('--parts: unknown %s (choose from %s)' % (
        ', '.join(sorted(unknown)), ', '.join(PARTS)))
  if 'mining' in FLAGS.parts and 'data' not in FLAGS.parts:
    raise app.UsageError('--parts: mining needs the data part\'s output')
  results = {
      'command': 'python bench/stall_bench.py ' + ' '.join(sys.argv[1:]),
      'date': datetime.datetime.now(datetime.timezone.utc).strftime(
          '%Y-%m-%d %H:%M UTC'),
      'machine': machine.describe(),
      'busy_loops': FLAGS.busy_loops, 'quick': FLAGS.quick,
      'scheduling_group': _scheduling_group()}
  with tempfile.TemporaryDirectory(prefix='stall_bench_') as work_dir:
    data_dir = None
    if 'data' in FLAGS.parts:
      results['data'], data_dir = data_part(work_dir, FLAGS.quick,
                                            FLAGS.busy_loops,
                                            FLAGS.data_timeout)
      _write(results, FLAGS.output_dir)
    if 'converters' in FLAGS.parts:
      results['converters'] = converters_part(work_dir, FLAGS.busy_loops,
                                              FLAGS.data_timeout)
      _write(results, FLAGS.output_dir)
    if 'merge' in FLAGS.parts:
      results['merge'] = merge_part(work_dir, FLAGS.busy_loops,
                                    FLAGS.merge_timeout)
      _write(results, FLAGS.output_dir)
    if 'mining' in FLAGS.parts:
      results['mining'] = mining_part(work_dir, data_dir, FLAGS.mining_runs)
      _write(results, FLAGS.output_dir)
  print(markdown(results))


if __name__ == '__main__':
  define_flags()
  app.run(main)
