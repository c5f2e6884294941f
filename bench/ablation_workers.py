"""The ablation's worker processes: S and every variant run as a child.

The parent starts ``run_ablation.py --worker=source|variant`` (``worker_
command``) with its output appended to a log, polls it (progress lines,
accumulated wall time in ``<runs_dir>/<seed>/<variant>.timing.json``) and
terminates it when interrupted; the child (``run_worker``) asks to be
stopped when the parent dies, seeds Python, NumPy and TensorFlow, and runs
the iterate loop (or trains S).
"""
import ctypes
import datetime
import os
import signal
import subprocess
import sys
import time

from absl import logging
import tf_keras

import ablation_progress
import ablation_report
from object_detection_note.config import config_util
from object_detection_note.core import file_io
from object_detection_note.iterate import driver
from object_detection_note.iterate import stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_SCRIPT = os.path.join(REPO_ROOT, 'bench', 'run_ablation.py')
SOURCE_SEED = 0


def run_worker(kind, config_path, model_dir, seed):
  """Trains S into ``model_dir`` (kind 'source') or runs one variant."""
  stop_with_parent()
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


def timing_path(runs_dir, seed, variant):
  """Accumulated wall time of one run (``<runs_dir>/<seed>/<variant>.
  timing.json``)."""
  return os.path.join(runs_dir, str(seed), variant + '.timing.json')


def worker_command(kind, config_path, model_dir, seed):
  """The command line of one worker process (run_ablation.py --worker)."""
  return [sys.executable, WORKER_SCRIPT, '--worker=' + kind,
          '--worker_config=' + config_path, '--worker_model_dir=' + model_dir,
          '--worker_seed=%d' % seed]


def stop_with_parent():
  """Asks for SIGTERM when the parent dies, even by SIGKILL (Linux)."""
  try:
    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def interrupt_on_sigterm():
  """SIGTERM stops the parent like Ctrl-C: the current run is terminated."""
  def handler(signum, frame):
    del signum, frame
    raise KeyboardInterrupt('SIGTERM')
  signal.signal(signal.SIGTERM, handler)


def run_subprocess(command, log_path, on_poll, poll_seconds):
  """Runs ``command`` with its output appended to ``log_path``; exit code.

  ``on_poll()`` is called every ``poll_seconds`` while it runs, and once at
  the end.
  """
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, 'a') as log:
    log.write('\n==== %s %s\n' % (datetime.datetime.now().isoformat(
        timespec='seconds'), ' '.join(command)))
    log.flush()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
      while process.poll() is None:
        time.sleep(poll_seconds)
        on_poll()
    finally:
      if process.poll() is None:
        process.terminate()
        process.wait()
  on_poll()
  return process.returncode


def log_tail(path, lines=15):
  with open(path) as f:
    return ''.join(f.readlines()[-lines:])


def train_source(plan, start, poll_seconds):
  """Trains S unless its marker exists; returns the seconds spent (or None)."""
  marker = os.path.join(plan.source_dir, 'manifest.json')
  timing_file = os.path.join(plan.runs_dir, 'source.timing.json')
  timing = file_io.read_json(timing_file) or {'seconds': 0.0, 'invocations': 0}
  if file_io.read_json(marker):
    return timing.get('seconds') or None
  ablation_progress.say(start, 'S: training %d steps into %s (log: '
                        '%s/source.log)' % (plan.source_steps, plan.source_dir,
                                            plan.runs_dir))
  begin = time.monotonic()
  variant = next(iter(plan.configs))
  code = -1
  try:
    code = run_subprocess(
        worker_command('source', plan.configs[variant], plan.source_dir,
                       SOURCE_SEED),
        os.path.join(plan.runs_dir, 'source.log'), lambda: None, poll_seconds)
  finally:
    timing['seconds'] += time.monotonic() - begin
    timing['invocations'] += 1
    file_io.write_json_atomically(timing_file, timing)
  if code != 0 or not file_io.read_json(marker):
    raise RuntimeError('training S failed (exit code %d):\n%s' % (
        code, log_tail(os.path.join(plan.runs_dir, 'source.log'))))
  ablation_progress.say(start, 'S: done in %s' % ablation_report.duration(
      time.monotonic() - begin))
  return timing['seconds']


def run_variant(plan, seed, variant, start, name, poll_seconds):
  """Runs (or resumes) one variant for one seed; returns an error or None."""
  model_dir = os.path.join(plan.runs_dir, str(seed), variant)
  timing_file = timing_path(plan.runs_dir, seed, variant)
  timing = file_io.read_json(timing_file) or {'seconds': 0.0, 'invocations': 0,
                                              'iteration_seconds': {}}
  timing.setdefault('iteration_seconds', {})
  previous = timing['seconds']
  begin = time.monotonic()
  progress = ablation_progress.Progress(plan, model_dir, name, start, timing)

  def on_poll():
    progress.poll()
    timing['seconds'] = previous + time.monotonic() - begin
    file_io.write_json_atomically(timing_file, timing)

  log_path = os.path.join(plan.runs_dir, str(seed), variant + '.log')
  timing['invocations'] += 1
  code = run_subprocess(worker_command('variant', plan.configs[variant],
                                       model_dir, int(seed)),
                        log_path, on_poll, poll_seconds)
  if code != 0:
    return 'exit code %d; end of %s:\n%s' % (code, log_path,
                                             log_tail(log_path))
  return None
