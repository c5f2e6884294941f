"""Wall time and peak resident memory of each stage of an iterate run.

``<model_dir>/iteration_NN/stages.json`` holds, per stage run for iteration
t (the source stage is kept with iteration 0)::

  {"train": {"wall_s": 634.2, "peak_rss_bytes": 7.9e9,
             "measured": "child process"}, ...}

``measured`` says how the peak was taken: ``child process`` (the whole-loop
``iterate`` ran the stage as its own process: the child's VmHWM, see
``stage_process``), ``own process`` (a ``--stage`` run: this process's peak) or
``in-process`` (the highest resident memory sampled while the stage ran in a
process that also ran other stages before it). The iteration manifest copies
the file as its ``stages`` field and the report shows it.
"""
import contextlib
import os
import resource
import threading
import time

from object_detection_note.core import file_io
from object_detection_note.iterate import run_layout as layout

STATS_FILE = 'stages.json'
CHILD = 'child process'
OWN = 'own process'
IN_PROCESS = 'in-process'

# Stages in the order they run within an iteration (source: iteration 0).
ORDER = ('source', 'mine', 'train', 'eval')


def stats_path(model_dir, t):
  return os.path.join(layout.iteration_dir(model_dir, t), STATS_FILE)


def read(model_dir, t):
  """{stage: {'wall_s', 'peak_rss_bytes', 'measured'}} of iteration t."""
  return file_io.read_json(stats_path(model_dir, t)) or {}


def record(model_dir, t, stage, wall_s, peak_rss_bytes, measured):
  """Adds (or replaces) one stage's entry in iteration t's stages.json."""
  stats = read(model_dir, t)
  stats[stage] = {'wall_s': round(float(wall_s), 1),
                  'peak_rss_bytes': int(peak_rss_bytes),
                  'measured': measured}
  file_io.write_json_atomically(stats_path(model_dir, t), stats)
  return stats


def current_rss_bytes():
  """Resident memory of this process now (Linux /proc), else its peak."""
  try:
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
  except (OSError, ValueError, IndexError):
    return own_peak_rss_bytes()


def peak_rss_of(pid='self'):
  """VmHWM of a live process (Linux /proc), in bytes; None if unreadable.

  Unlike ``ru_maxrss``, VmHWM belongs to the process's own address space:
  a child started by fork+exec does not inherit its parent's peak.
  """
  try:
    with open('/proc/%s/status' % pid) as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return None


def own_peak_rss_bytes():
  """Peak resident memory of this process so far (VmHWM, else ru_maxrss)."""
  peak = peak_rss_of('self')
  if peak is None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return peak


class Measurement:
  """Filled in by ``measure``: wall_s and peak_rss_bytes."""
  wall_s = 0.0
  peak_rss_bytes = 0


@contextlib.contextmanager
def measure(sample_every_s=0.5):
  """Wall time and the highest resident memory sampled while the block runs.

  Yields a ``Measurement`` that is filled in when the block exits.
  """
  result = Measurement()
  peak = [current_rss_bytes()]
  stop = threading.Event()

  def sample():
    while not stop.wait(sample_every_s):
      peak[0] = max(peak[0], current_rss_bytes())

  thread = threading.Thread(target=sample, name='rss-sampler', daemon=True)
  start = time.monotonic()
  thread.start()
  try:
    yield result
  finally:
    stop.set()
    thread.join()
    result.wall_s = time.monotonic() - start
    result.peak_rss_bytes = max(peak[0], current_rss_bytes())


def format_bytes(n):
  """1.5e9 → '1.40 GiB'; 3e8 → '286 MiB'."""
  if n is None:
    return '—'
  if n >= 1 << 30:
    return '%.2f GiB' % (n / float(1 << 30))
  return '%d MiB' % round(n / float(1 << 20))
