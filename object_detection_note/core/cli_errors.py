"""One-line errors for the binaries: ``<binary>: error: <message>``, exit 1.

Failures caused by the user's input (config, bad records, checkpoints,
weight files, missing files) end a binary's run with one line on stderr,
not a traceback; the traceback comes back with ``--verbosity=1``.

Bad records reach the binaries in three forms, all turned into the line
``bad record in <file>: record #i (source_id ...): <field>: <problem> (<what
to do>)``:

  * ``record_errors.BadRecordError`` (Python checks: mining, converters);
  * ``tf.errors.InvalidArgumentError`` whose message embeds that text
    (``safe_records.checked_map``'s assertion inside tf.data, training and
    evaluation: ``{{function_node ...}} assertion failed: [bad record in
    ...] [[{{node ...}}]]``);
  * a Beam ``RuntimeError`` wrapping a BadRecordError as text
    (``...BadRecordError: bad record in ... [while running '...']``).

Usage: decorate a binary's ``main`` with ``@cli_errors.one_line_errors(
'mine_boxes')``, or run it with ``cli_errors.run(main, 'mine_boxes', ...)``.
"""
import functools
import re
import sys
import traceback

from absl import app
from absl import logging

_BAD_RECORD = 'bad record in '
# Exception type names (the classes live in modules that import TensorFlow;
# matching by name keeps this module light and free of import cycles).
_USER_ERROR_NAMES = frozenset((
    'ConfigError', 'BadRecordError', 'CheckpointError', 'EvaluationError',
    'ExportError', 'WeightFileError', 'InvalidAnnotationError',
    'PreflightError', 'DuplicateKeyError', 'HeadMismatchError',
    'PretrainedError', 'TFRecordReadError', 'StageFailed'))
# tf.errors raised for missing or unreadable files (messages name the path).
_TF_FILE_ERROR_NAMES = frozenset(('NotFoundError', 'PermissionDeniedError'))
# Messages of plain ValueError / OSError that are input problems.
_USER_MESSAGE_STARTS = ('Weight file not found', 'fine_tune_checkpoint',
                        'train_config.fine_tune_checkpoint',
                        'input_tfrecord: no file matches', '--model_dir',
                        '--iteration', '--stage', 'iteration 0')
# ... and weight-file errors (models/weights_io.py), found in the message.
_USER_MESSAGE_PARTS = ('neither a .h5/.hdf5/.keras file',
                       'TF checkpoint holds no Keras model weights',
                       'names missing from the file')


def _chain(error):
  """``error`` and the exceptions it was raised from / during, outermost first."""
  seen = []
  while error is not None and error not in seen:
    seen.append(error)
    error = error.__cause__ or error.__context__
  return seen


def _bad_record_text(text):
  """The ``bad record in ...`` message embedded in ``text``, or None."""
  start = text.find(_BAD_RECORD)
  if start < 0:
    return None
  line = text[start:].splitlines()[0]
  # Beam appends where it ran: " [while running 'Mine/Detect']".
  line = line.split(" [while running '")[0]
  # tf.debugging.Assert prints its data as "[<message>]".
  if text[:start].rstrip().endswith('assertion failed: [') or (
      text[start - 1:start] == '['):
    if line.endswith(']'):
      line = line[:-1]
  return line.strip()


def user_message(error):
  """The message of a user-input failure, or None for a bug.

  One line, except for errors that list several problems one per line
  (PreflightError, a config with several unsupported fields).

  Args:
    error: the exception that ended the run.
  """
  for link in _chain(error):
    name = type(link).__name__
    text = str(link)
    if name in _USER_ERROR_NAMES:
      # The whole message: some list several problems, one per line.
      return text.strip() or name
    bad = _bad_record_text(text)
    if bad:
      return bad
    if isinstance(link, (FileNotFoundError, PermissionError)):
      # "[Errno 2] No such file or directory: 'x'" or the raiser's message.
      return (text.strip() or repr(link)).splitlines()[0]
    if name in _TF_FILE_ERROR_NAMES and re.search(
        r'No such file|Permission denied', text):
      # TF's file errors: "<path>; No such file or directory" (not, e.g., a
      # missing op kernel, also a NotFoundError).
      return text.strip().splitlines()[0]
    if isinstance(link, ValueError) and (
        text.startswith(_USER_MESSAGE_STARTS) or
        any(part in text for part in _USER_MESSAGE_PARTS)):
      return text.strip().splitlines()[0]
  return None


def show_traceback():
  """True when the user asked for tracebacks (``--verbosity=1`` or more)."""
  try:
    return logging.get_verbosity() >= logging.DEBUG
  except Exception:  # pylint: disable=broad-except
    return False


def exit_message(binary, error):
  """``<binary>: error: <message>`` for a user error, else None.

  With ``--verbosity=1`` the traceback is written to stderr first.
  """
  message = user_message(error)
  if message is None:
    return None
  if show_traceback():
    traceback.print_exception(type(error), error, error.__traceback__,
                              file=sys.stderr)
  return '%s: error: %s' % (binary, message)


def one_line_errors(binary):
  """Decorator of a binary's ``main``: a user error ends it with
  ``SystemExit('<binary>: error: <message>')`` (printed to stderr, exit
  status 1); any other exception propagates with its traceback."""
  def decorate(main):
    @functools.wraps(main)
    def guarded_main(*args, **kwargs):
      try:
        return main(*args, **kwargs)
      except Exception as error:  # pylint: disable=broad-except
        message = exit_message(binary, error)
        if message is None:
          raise
        sys.exit(message)
    return guarded_main
  return decorate


def run(main, binary, **kwargs):
  """``absl.app.run(main, **kwargs)`` with one-line user errors."""
  app.run(one_line_errors(binary)(main), **kwargs)
