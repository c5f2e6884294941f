"""Imported first by the bench scripts: the package's quiet settings
(``object_detection_note/core/quiet.py``) before TensorFlow is imported.

Also puts the repository root on ``sys.path`` when the package is not
installed, as the scripts themselves do.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # The package, when it is not installed.
  sys.path.append(REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position,unused-import
from object_detection_note.core import quiet
