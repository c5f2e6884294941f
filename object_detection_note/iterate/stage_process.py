"""Runs one iterate stage as a child process; measures its wall time and peak.

Each stage in its own process keeps the loop's memory flat: whatever a
stage leaves behind (models, traced graphs, datasets, Beam state) goes with
its process.

The child's peak resident memory: ``os.wait4``'s ``ru_maxrss`` when it is
above this process's own peak (``ru_maxrss``) at the fork; otherwise the
child's VmHWM, read from /proc while it runs. (On Linux a child's
``ru_maxrss`` starts from what its parent held at the fork, which survives
fork and exec, so a large parent would hide a smaller child's own peak.)
"""
import dataclasses
import os
import resource
import subprocess
import threading
import time

from object_detection_note.iterate import stage_stats


# ru_maxrss this much above the parent's resident memory is the child's own.
_INHERITED_MARGIN = 16 << 20


class StageFailed(RuntimeError):
  """A stage's child process exited with a non-zero status."""


@dataclasses.dataclass
class ChildResult:
  """Outcome of a child: exit code, wall seconds, peak RSS in bytes."""
  returncode: int
  wall_s: float
  peak_rss_bytes: int


def same_package_env():
  """This environment, with this process's copy of the package first on the
  child's PYTHONPATH (so a child imports the code its parent runs)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [root] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
  return env


def run_child(argv, env=None, sample_every_s=0.2):
  """Runs ``argv`` (stdout/stderr shared with this process) to its end.

  Returns:
    ChildResult.
  """
  start = time.monotonic()
  # What the child may inherit: at most this process's own ru_maxrss.
  inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  child = subprocess.Popen(argv, env=env)  # pylint: disable=consider-using-with
  peak = [None]
  stop = threading.Event()

  def sample():
    while True:
      reading = stage_stats.peak_rss_of(child.pid)
      if reading is not None:
        peak[0] = max(peak[0] or 0, reading)
      if stop.wait(sample_every_s):
        return

  sampler = threading.Thread(target=sample, name='child-rss', daemon=True)
  sampler.start()
  try:
    _, status, usage = os.wait4(child.pid, 0)
  except BaseException:
    child.kill()
    child.wait()
    raise
  finally:
    stop.set()
    sampler.join()
  child.returncode = os.waitstatus_to_exitcode(status)
  max_rss = usage.ru_maxrss * 1024
  if peak[0] is None or max_rss > inherited + _INHERITED_MARGIN:
    peak[0] = max_rss  # the child's own peak (or all there is)
  return ChildResult(child.returncode, time.monotonic() - start, peak[0])
