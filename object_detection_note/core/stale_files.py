"""Cleaning up what killed runs leave behind, at the start of the next run.

A run killed mid-write leaves:

  * ``<name>.tmp-<32 hex>`` files or directories of atomic writes
    (``file_io.temporary_path``, the exporter's staging directory);
  * ``ckpt-<N>_temp`` directories of a checkpoint save that did not finish;
  * Beam's local temporary directory (``beam-pipeline-temp*`` in the system
    temp dir), which a pipeline removes only when it ends normally.

``remove_stale_temporaries(directory)`` removes the first two kinds in a
directory; ``tracking_beam_tempdir`` notes a pipeline's temporary directory in
the output directory while it runs, so that the next run in the same output
directory removes it if the pipeline was killed. A directory is assumed to
be used by one run at a time (as every output directory of this project is).
"""
import contextlib
import os
import re

from absl import logging
import tensorflow as tf

from object_detection_note.core import file_io

_ATOMIC_TEMPORARY = re.compile(r'.+\.tmp-[0-9a-f]{32}$')
_CHECKPOINT_TEMPORARY = re.compile(r'.+-\d+_temp$')
BEAM_TEMPDIR_MARKER = '.beam_tempdir-'


def _remove(path):
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
  else:
    tf.io.gfile.remove(path)


def remove_stale_temporaries(directory, names_like=(_ATOMIC_TEMPORARY,
                                                    _CHECKPOINT_TEMPORARY)):
  """Removes temporaries of killed runs directly in ``directory``.

  Also removes Beam temporary directories noted by ``tracking_beam_tempdir``.

  Returns:
    sorted list of the paths removed.
  """
  if not tf.io.gfile.isdir(directory):
    return []
  removed = []
  for name in tf.io.gfile.listdir(directory):
    name = name.rstrip('/')
    path = os.path.join(directory, name)
    if name.startswith(BEAM_TEMPDIR_MARKER):
      with tf.io.gfile.GFile(path) as f:
        beam_dir = f.read().strip()
      if beam_dir and tf.io.gfile.exists(beam_dir):
        tf.io.gfile.rmtree(beam_dir)
        removed.append(beam_dir)
      tf.io.gfile.remove(path)
    elif any(pattern.match(name) for pattern in names_like):
      _remove(path)
      removed.append(path)
  if removed:
    logging.info('removed %d temporary file(s) of an earlier killed run: %s',
                 len(removed), ', '.join(sorted(removed)[:5]))
  return sorted(removed)


def remove_stale_siblings(path):
  """Removes ``<path>.tmp-<hex>`` siblings of ``path`` (e.g. an export's
  staging directories); returns the paths removed."""
  path = path.rstrip('/')
  parent, base = os.path.split(path)
  pattern = re.compile(re.escape(base) + r'\.tmp-[0-9a-f]{32}$')
  return remove_stale_temporaries(parent or '.', names_like=(pattern,))


@contextlib.contextmanager
def tracking_beam_tempdir(pipeline, directory):
  """Notes ``pipeline.local_tempdir`` in ``directory`` while the block runs.

  Use around ``with pipeline:`` (the pipeline runs when that block exits).
  Beam removes its directory itself when the run ends, even with an error;
  the note matters only if the process is killed.
  """
  tempdir = getattr(pipeline, 'local_tempdir', None)
  marker = os.path.join(directory, BEAM_TEMPDIR_MARKER + str(os.getpid()))
  if tempdir:
    file_io.write_atomically(marker, tempdir)
  try:
    yield
  finally:
    if tempdir and tf.io.gfile.exists(marker):
      tf.io.gfile.remove(marker)
