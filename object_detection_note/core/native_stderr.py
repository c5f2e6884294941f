"""A filter on the process's own stderr (file descriptor 2) for C++ log lines.

Some of TensorFlow's C++ components log through absl directly (format
``W0000 00:00:... op_level_cost_estimator.cc:699] Error in PredictCost() ...``,
preceded by ``WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR``); ``TF_CPP_MIN_LOG_LEVEL`` does not reach them, and
there is no Python switch for absl's C++ log level. ``install`` routes file
descriptor 2 through a pipe whose reader thread forwards every line to the
original stderr except those ``is_noise`` matches; Python's own writes to
``sys.stderr`` pass through the same pipe, so order is kept. At exit the pipe
is drained before the process ends.

Only binaries install it (``core/quiet.py`` when the process runs one of the
project's entry points), never a test runner, whose own stderr capture swaps
file descriptor 2.
"""
import atexit
import os
import sys
import threading

_installed = None


def install(is_noise):
  """Filters fd 2 through ``is_noise(line: str) -> bool``; idempotent.

  Returns:
    True if the filter is (now) installed.
  """
  global _installed
  if _installed is not None:
    return True
  try:
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
  except OSError:
    return False

  def forward():
    pending = b''
    while True:
      try:
        chunk = os.read(read_end, 65536)
      except OSError:
        break
      if not chunk:
        break
      pending += chunk
      *lines, pending = pending.split(b'\n')
      kept = [line for line in lines
              if not is_noise(line.decode('utf8', 'replace'))]
      if kept:
        os.write(original, b'\n'.join(kept) + b'\n')
    if pending and not is_noise(pending.decode('utf8', 'replace')):
      os.write(original, pending)
    os.close(read_end)

  thread = threading.Thread(target=forward, name='native-stderr-filter',
                            daemon=True)
  thread.start()
  _installed = (original, thread)
  atexit.register(_drain)
  return True


def _drain():
  """Restores fd 2 (closing this process's write end) and waits for the
  reader to forward what is left."""
  if _installed is None:
    return
  original, thread = _installed
  try:
    sys.stderr.flush()
  except (OSError, ValueError):
    pass
  os.dup2(original, 2)
  thread.join(timeout=5)
