"""Fixtures of the training tests: one tiny synthetic dataset per session."""
import pytest

import training_test_utils as utils


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """Directory of the 64x64 synthetic splits and label maps."""
  return utils.make_tiny_dataset(str(tmp_path_factory.mktemp('tiny_data')))
