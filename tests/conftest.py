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
