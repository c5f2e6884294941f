"""Quiet output for the binaries: library noise off, progress lines kept.

Every entry point (``object_detection_note/*`` mains, ``iterate``,
``pipelines/*``, ``bench/*``) imports this module FIRST, before TensorFlow
or Apache Beam is imported, so that on import it can:

  * set ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow's and XLA's C++ log lines:
    ``cpu_feature_guard``, ``Could not find cuda drivers``, ``failed call to
    cuInit``, oneDNN notices, ``Local rendezvous is aborting with status:
    OUT_OF_RANGE``, grappler's ``op_level_cost_estimator.cc ... Error in
    PredictCost()``), unless the user set the variable;
  * drop the known Python-logging notices of optional libraries
    (``Failed to import GCSFileSystem``, ``apitools not found``), Beam's
    logged traceback of a user error that the binary reports as one line,
    and the deprecation warnings of the libraries (``warnings`` filters).

Real failures still surface: TensorFlow raises them as Python exceptions,
which the binaries report as one ``<binary>: error: ...`` line
(``core/cli_errors.py``). absl INFO progress lines are untouched.

Everything comes back with ``--verbosity=1`` (or ``-v 1``) on the command
line, or with ``TF_CPP_MIN_LOG_LEVEL`` set in the environment (which then
wins for the C++ lines).
"""
import logging
import os
import re
import sys
import warnings

from absl import logging as absl_logging

from object_detection_note.core import native_stderr

# TensorFlow's C++ log level when quiet: 3 hides INFO, WARNING and ERROR lines
# (grappler's PredictCost and cuInit notices are logged as ERROR).
QUIET_TF_CPP_MIN_LOG_LEVEL = '3'

# Python-logging lines of optional libraries that are not problems here.
NOISE_PATTERNS = (
    r'Failed to import GCSFileSystem',
    r'Failed to import S3FileSystem',
    r'Failed to import AzureBlobStorageFileSystem',
    r'apitools not found',
    r'Local rendezvous is aborting with status: OUT_OF_RANGE',
    r'op_level_cost_estimator',
    r'Creating state cache with size',
    r'Sharding callback duration',
)
_NOISE = re.compile('|'.join(NOISE_PATTERNS))
# TensorFlow's C++ notices, hidden by TF_CPP_MIN_LOG_LEVEL or, for those
# logged through absl directly, by the native stderr filter.
CPP_NOISE_PATTERNS = (
    r'cpu_feature_guard', r'Could not find cuda drivers',
    r'failed call to cuInit', r'oneDNN custom operations are on',
    r'Local rendezvous is aborting', r'Error in PredictCost\(\)',
    r'All log messages before absl::InitializeLog\(\) is called',
)
_CPP_NOISE = re.compile('|'.join(CPP_NOISE_PATTERNS))

# Loggers the notices above are logged on (a logger's filter sees only the
# records logged on it, not those propagated from children); absl's handler,
# which prints what propagates to the root logger, is filtered too.
NOISY_LOGGERS = ('', 'apache_beam.io.filesystems',
                 'apache_beam.runners.worker.statecache', 'tensorflow')

# Library modules whose DeprecationWarning / FutureWarning / UserWarning
# notices are hidden when quiet.
_QUIET_WARNING_MODULES = r'(tensorflow|tf_keras|keras|apache_beam|google|absl|numpy|h5py|pycocotools)(\.|$)'

_VERBOSITY_FLAG = re.compile(r'^--?(verbosity|v)(=(?P<value>-?\d+))?$')


def requested_verbosity(argv=None):
  """The absl ``--verbosity`` / ``-v`` value on the command line (0 if none).

  Read from ``argv`` (default ``sys.argv``) before absl parses flags, so that
  the decision can be made before TensorFlow is imported.
  """
  argv = list(sys.argv if argv is None else argv)
  verbosity = 0
  for i, arg in enumerate(argv[1:], start=1):
    match = _VERBOSITY_FLAG.match(arg)
    if not match:
      continue
    value = match.group('value')
    if value is None and i + 1 < len(argv):
      value = argv[i + 1]
    try:
      verbosity = int(value)
    except (TypeError, ValueError):
      continue
  return verbosity


class NoiseFilter(logging.Filter):
  """Drops log records whose message matches ``NOISE_PATTERNS``."""

  def filter(self, record):
    try:
      message = record.getMessage()
    except (TypeError, ValueError):
      return True
    return not _NOISE.search(message)


class ReportedErrorFilter(logging.Filter):
  """Drops a library's log of an exception that the binary reports itself.

  Beam logs the traceback of an exception raised in a DoFn before it
  re-raises it; when that exception is a user error (a bad record, a
  config or checkpoint error), the binary ends with its one-line message
  (``cli_errors``), so the logged traceback is noise.
  """

  def filter(self, record):
    if not record.exc_info or record.exc_info[1] is None:
      return True
    from object_detection_note.core import cli_errors  # pylint: disable=g-import-not-at-top
    return cli_errors.user_message(record.exc_info[1]) is None


_FILTER = NoiseFilter()
_REPORTED = ReportedErrorFilter()
# Loggers that log exceptions the binaries report as one line.
REPORTING_LOGGERS = ('apache_beam.runners.common',
                     'apache_beam.runners.worker.bundle_processor',
                     'apache_beam.runners.worker.sdk_worker')


def is_noise(line):
  """True if ``line`` is one of the known noise lines (for tests and tools)."""
  return bool(_NOISE.search(line) or _CPP_NOISE.search(line))


def _running_a_binary():
  """True when ``__main__`` is one of the project's entry points (a module
  of this checkout outside any site-packages), not a test runner."""
  main_file = getattr(sys.modules.get('__main__'), '__file__', None) or ''
  main_file = os.path.abspath(main_file)
  project = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  return (main_file.startswith(project + os.sep) and
          'site-packages' not in main_file)


def install(argv=None, environ=None):
  """Applies the quiet settings; returns True if quiet, False if verbose.

  Args:
    argv: command line (default ``sys.argv``); ``--verbosity=1`` or more
      leaves everything as the libraries have it.
    environ: environment to set ``TF_CPP_MIN_LOG_LEVEL`` in (default
      ``os.environ``); a value already there is kept.
  """
  environ = os.environ if environ is None else environ
  if requested_verbosity(argv) >= 1:
    return False
  # A level the user chose (other than the quiet one) keeps the C++ lines.
  user_level = environ.get('TF_CPP_MIN_LOG_LEVEL', QUIET_TF_CPP_MIN_LOG_LEVEL)
  environ.setdefault('TF_CPP_MIN_LOG_LEVEL', QUIET_TF_CPP_MIN_LOG_LEVEL)
  for name in NOISY_LOGGERS:
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
      logger.addFilter(_FILTER)
  handler = absl_logging.get_absl_handler()
  if _FILTER not in handler.filters:
    handler.addFilter(_FILTER)
  for name in REPORTING_LOGGERS:
    logger = logging.getLogger(name)
    if _REPORTED not in logger.filters:
      logger.addFilter(_REPORTED)
  for category in (DeprecationWarning, PendingDeprecationWarning,
                   FutureWarning, UserWarning):
    warnings.filterwarnings('ignore', category=category,
                            module=_QUIET_WARNING_MODULES)
  if (environ is os.environ and user_level == QUIET_TF_CPP_MIN_LOG_LEVEL
      and _running_a_binary()):
    native_stderr.install(is_noise)
  return True


QUIET = install()
