"""core/native_stderr.py: C++ lines written straight to file descriptor 2
are filtered; everything else, Python's stderr included, arrives in order,
also the message of sys.exit at the very end."""
import os
import subprocess
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

_SCRIPT = r'''
import os, sys
from object_detection_note.core import native_stderr
assert native_stderr.install(lambda line: 'NOISE' in line)
os.write(2, b'W0000 NOISE from C++\nkept from C++\n')
print('kept from Python', file=sys.stderr)
os.write(2, b'partial NOISE line')
os.write(2, b' ends here\nlast kept')
os.write(2, b' line\n')
sys.exit('binary: error: the last line')
'''


def test_noise_lines_are_dropped_and_the_rest_kept_in_order():
  run = subprocess.run([sys.executable, '-c', _SCRIPT], capture_output=True,
                       text=True, cwd=_ROOT,
                       env=dict(os.environ, PYTHONPATH=_ROOT), check=False)
  assert run.returncode == 1
  assert run.stderr.splitlines() == [
      'kept from C++', 'kept from Python', 'last kept line',
      'binary: error: the last line']


def test_quiet_installs_it_only_for_the_project_binaries():
  from object_detection_note.core import quiet  # pylint: disable=g-import-not-at-top
  # Under a test runner __main__ is the runner: fd 2 stays the runner's.
  assert not quiet._running_a_binary()  # pylint: disable=protected-access
