"""Test-wide settings and fixtures."""
import logging
import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


@pytest.fixture
def absl_log(caplog):
  """``caplog`` that also sees absl logging at INFO.

  Once any test has run an absl binary, absl installs its own handler and
  stops propagating to the root logger that ``caplog`` listens on; attaching
  the capture handler to the 'absl' logger itself keeps tests independent of
  that order.
  """
  logger = logging.getLogger('absl')
  previous_level = logger.level
  logger.addHandler(caplog.handler)
  logger.setLevel(logging.INFO)
  caplog.set_level(logging.INFO)
  yield caplog
  logger.removeHandler(caplog.handler)
  logger.setLevel(previous_level)


def pytest_configure(config):
  config.addinivalue_line(
      'markers', 'slow: minutes-long test, run by `make test-slow` (or '
      '`pytest -m slow`), not by `make test`')


def pytest_collection_modifyitems(config, items):
  """Slow tests run only when selected with ``-m slow``."""
  if 'slow' in (config.getoption('markexpr') or ''):
    return
  skip = pytest.mark.skip(reason='slow: run with `make test-slow`')
  for item in items:
    if 'slow' in item.keywords:
      item.add_marker(skip)
