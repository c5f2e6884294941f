"""One-line user errors: the three forms a bad record takes, other user
errors, and bugs left as tracebacks; the quiet settings."""
import logging
import os

import pytest
import tensorflow as tf

from object_detection_note.core import cli_errors
from object_detection_note.config import config_util
from object_detection_note.config import preflight
from object_detection_note.core import quiet
from object_detection_note.data.records import record_errors

_LOCATED = ('bad record in /d/a.tfrecord: record #3 (source_id img_7): '
            'image/object/bbox: box coordinate outside [0, 1] (set '
            'skip_bad_records: true in the input reader to skip and count '
            'such records)')


def test_bad_record_error_is_its_message():
  error = record_errors.BadRecordError('/d/a.tfrecord', 3, 'img_7',
                                       record_errors.BOX_RANGE)
  assert cli_errors.user_message(error) == _LOCATED


def test_tf_data_assertion_is_unwrapped():
  # As tf.data raises it from safe_records.checked_map's assertion.
  error = tf.errors.InvalidArgumentError(
      None, None,
      '{{function_node __wrapped__IteratorGetNext_output_types_9_device_/job:'
      'localhost/replica:0/task:0/device:CPU:0}} assertion failed: [%s]\n'
      '\t [[{{node Assert/AssertGuard/Assert}}]] [Op:IteratorGetNext] name: '
      % _LOCATED)
  assert cli_errors.user_message(error) == _LOCATED


def test_real_tf_assertion_is_unwrapped():
  """The message of a real tf.debugging.Assert failure inside tf.data."""
  dataset = tf.data.Dataset.from_tensors(0).map(_asserting)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    list(dataset)
  assert cli_errors.user_message(error.value) == _LOCATED


def _asserting(x):
  check = tf.debugging.Assert(x > 0, [tf.constant(_LOCATED)])
  with tf.control_dependencies([check]):
    return tf.identity(x)


def test_beam_wrapped_error_is_unwrapped():
  error = RuntimeError(
      "object_detection_note.data.records.record_errors.BadRecordError: %s "
      "[while running 'ReadRecords/Validate']" % _LOCATED)
  assert cli_errors.user_message(error) == _LOCATED


def test_error_raised_from_a_user_error_is_unwrapped():
  try:
    try:
      raise config_util.ConfigError('p.config:3:1: field x is required')
    except config_util.ConfigError as cause:
      raise RuntimeError('stage failed') from cause
  except RuntimeError as error:
    assert cli_errors.user_message(error) == (
        'p.config:3:1: field x is required')


def test_preflight_error_keeps_its_block():
  error = preflight.PreflightError([preflight.Problem('a missing', 'do b')])
  assert cli_errors.user_message(error).splitlines() == [
      '1 problem(s) found before the run started (nothing was built):',
      '  a missing', '    fix: do b']


def test_bugs_are_not_user_errors():
  assert cli_errors.user_message(KeyError('x')) is None
  assert cli_errors.user_message(ValueError('shapes differ')) is None


def test_guarded_main_exits_with_one_line():
  @cli_errors.one_line_errors('tool')
  def main(unused_argv):
    raise FileNotFoundError('COCO annotation file not found: /a.json')
  with pytest.raises(SystemExit) as exit_info:
    main([])
  assert exit_info.value.code == ('tool: error: COCO annotation file not '
                                  'found: /a.json')

  @cli_errors.one_line_errors('tool')
  def buggy(unused_argv):
    raise KeyError('bug')
  with pytest.raises(KeyError):
    buggy([])


@pytest.mark.parametrize('argv, verbosity', [
    (['prog'], 0), (['prog', '--verbosity=1'], 1), (['prog', '-v', '2'], 2),
    (['prog', '--v=1'], 1), (['prog', '--verbosity', '-1'], -1),
    (['prog', '--pipeline_config_path=v'], 0)])
def test_requested_verbosity(argv, verbosity):
  assert quiet.requested_verbosity(argv) == verbosity


def test_install_sets_the_level_unless_set_or_verbose():
  environ = {}
  assert quiet.install(['prog'], environ)
  assert environ == {'TF_CPP_MIN_LOG_LEVEL': '3'}
  environ = {'TF_CPP_MIN_LOG_LEVEL': '0'}
  quiet.install(['prog'], environ)
  assert environ == {'TF_CPP_MIN_LOG_LEVEL': '0'}
  environ = {}
  assert not quiet.install(['prog', '--verbosity=1'], environ)
  assert environ == {}


def test_noise_filter_drops_only_known_lines():
  record = logging.LogRecord(
      'apache_beam.io.filesystems', logging.WARNING, __file__, 1,
      'Failed to import GCSFileSystem; loading of this filesystem will be '
      'skipped. Error details: %s', ('x',), None)
  assert not quiet.NoiseFilter().filter(record)
  record.msg, record.args = 'mined %d boxes', (5,)
  assert quiet.NoiseFilter().filter(record)
  assert 'TF_CPP_MIN_LOG_LEVEL' in os.environ


def test_weight_file_errors_are_user_errors():
  assert cli_errors.user_message(ValueError(
      'Weight file not found: pretrained/irv2_notop.h5')) == (
          'Weight file not found: pretrained/irv2_notop.h5')
  assert cli_errors.user_message(ValueError(
      'w.bin: neither a .h5/.hdf5/.keras file nor a TF checkpoint prefix '
      '(no w.bin.index).')).startswith('w.bin: neither')


def test_tf_file_errors_but_not_missing_kernels():
  error = tf.errors.NotFoundError(None, None,
                                  '/d/x.tfrecord; No such file or directory')
  assert cli_errors.user_message(error) == (
      '/d/x.tfrecord; No such file or directory')
  assert cli_errors.user_message(tf.errors.NotFoundError(
      None, None, "No registered 'Foo' OpKernel for CPU devices")) is None
