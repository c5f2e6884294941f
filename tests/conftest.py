"""Test-wide settings: quiet TF logs, deterministic seeds."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
