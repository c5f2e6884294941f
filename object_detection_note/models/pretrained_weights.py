"""The Keras applications' ImageNet weight files the configs fine-tune from.

``WEIGHT_FILES`` names, per backbone, the ``include_top=False`` weight file
that ``tf_keras.applications`` itself downloads: file name, URL and the
hash it checks (``tf_keras/src/applications/inception_resnet_v2.py`` and
``resnet.py``). ``fetch`` puts that file at ``<output_dir>/<file name>``:

  * a file already there with the right hash is kept (nothing downloaded);
  * otherwise ``tf_keras.utils.get_file`` fetches it into Keras' own cache
    (``~/.keras/models``; a cached copy with the right hash is reused) and
    the file is copied to the target under a temporary name, then renamed;
  * where the URL cannot be reached, ``PretrainedError`` says which file
    (name, URL, hash) to copy where.

``how_to_get(path)`` is the hint that a missing-weights error carries.
"""
import dataclasses
import os
import shutil
import uuid

from absl import logging
import tf_keras
from tf_keras.src.applications import resnet as keras_resnet
from tf_keras.src.utils import data_utils

COMMAND = 'python -m object_detection_note.pretrained'
MAKE_TARGET = 'make pretrained'
DEFAULT_OUTPUT_DIR = 'pretrained'


@dataclasses.dataclass(frozen=True)
class WeightFile:
  """One downloadable weight file.

  Attributes:
    file_name: the name Keras gives it (and the configs refer to).
    url: where Keras downloads it from.
    file_hash: md5 (32 hex digits) or sha256 (64) of the file, as Keras
      checks it.
  """
  file_name: str
  url: str
  file_hash: str


_IRV2_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/'
             'inception_resnet_v2/')
_IRV2_NOTOP = 'inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5'


def _resnet(name):
  file_name = name + '_weights_tf_dim_ordering_tf_kernels_notop.h5'
  return WeightFile(file_name, keras_resnet.BASE_WEIGHTS_PATH + file_name,
                    keras_resnet.WEIGHTS_HASHES[name][1])


# --model value -> weight file (the feature extractors' Keras applications).
WEIGHT_FILES = {
    'inception_resnet_v2': WeightFile(
        _IRV2_NOTOP, _IRV2_URL + _IRV2_NOTOP,
        'd19885ff4a710c122648d3b5c3b684e4'),
    'resnet50': _resnet('resnet50'),
    'resnet101': _resnet('resnet101'),
}


class PretrainedError(RuntimeError):
  """The weights could not be fetched; says what to copy where."""


def command(model, output_dir=DEFAULT_OUTPUT_DIR):
  """The shell command that fetches ``model``'s weights into ``output_dir``."""
  return '%s --model=%s --output_dir=%s' % (COMMAND, model, output_dir)


def model_of(path):
  """The WEIGHT_FILES key whose file name is ``path``'s base name, or None."""
  name = os.path.basename(path)
  for model, weight_file in WEIGHT_FILES.items():
    if weight_file.file_name == name:
      return model
  return None


def how_to_get(path):
  """What to run to get the weight file ``path`` ('' for an unknown file)."""
  model = model_of(path)
  if model is None:
    return ''
  output_dir = os.path.dirname(path) or '.'
  how = command(model, output_dir)
  if model == 'inception_resnet_v2' and os.path.normpath(output_dir) == (
      DEFAULT_OUTPUT_DIR):
    how = '%s (or %s)' % (MAKE_TARGET, how)
  return 'the Keras ImageNet weights of %s; get them with: %s' % (model, how)


def has_hash(path, file_hash):
  """Whether ``path`` exists and its md5/sha256 is ``file_hash``."""
  return os.path.isfile(path) and data_utils.validate_file(path, file_hash)


def _copy_atomically(source, target):
  temporary = '%s.tmp-%s' % (target, uuid.uuid4().hex)
  try:
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def _hash_name(file_hash):
  return 'md5' if len(file_hash) == 32 else 'sha256'


def _copy_instructions(weight_file, target, cache_dir):
  cache = os.path.join(cache_dir or os.path.join(
      os.path.expanduser('~'), '.keras'), 'models', weight_file.file_name)
  return ('copy the file %s (from %s, %s %s) to %s (or into Keras\' cache as '
          '%s) and run this command again' % (
              weight_file.file_name, weight_file.url,
              _hash_name(weight_file.file_hash), weight_file.file_hash,
              target, cache))


def fetch(weight_file, output_dir, cache_dir=None):
  """Puts ``weight_file`` at ``<output_dir>/<file_name>``; returns its path.

  Args:
    weight_file: a WeightFile (``WEIGHT_FILES[model]``).
    output_dir: local directory (created).
    cache_dir: Keras' cache root (default ``~/.keras``), as
      ``tf_keras.utils.get_file`` takes it.

  Raises:
    PretrainedError: not there, not downloadable (no network, wrong hash).
  """
  target = os.path.join(output_dir, weight_file.file_name)
  if has_hash(target, weight_file.file_hash):
    logging.info('%s is already there (hash %s): nothing to download',
                 target, weight_file.file_hash)
    return target
  if os.path.exists(target):
    logging.warning('%s does not have the hash %s; fetching it again',
                    target, weight_file.file_hash)
  os.makedirs(output_dir, exist_ok=True)
  if cache_dir:  # get_file falls back to /tmp/.keras if it is not writable
    os.makedirs(cache_dir, exist_ok=True)
  try:
    cached = tf_keras.utils.get_file(
        weight_file.file_name, weight_file.url, cache_subdir='models',
        file_hash=weight_file.file_hash, cache_dir=cache_dir)
  except Exception as error:  # get_file raises a bare Exception  # pylint: disable=broad-except
    reason = str(error).strip().splitlines()[0] if str(error) else (
        type(error).__name__)
    # get_file's message repeats the URL: 'URL fetch failure on <url>: ...'.
    reason = reason.replace('URL fetch failure on %s: ' % weight_file.url,
                            '').replace('None -- ', '')
    raise PretrainedError('could not download %s (%s); %s' % (
        weight_file.url, reason,
        _copy_instructions(weight_file, target, cache_dir))) from None
  if not has_hash(cached, weight_file.file_hash):
    raise PretrainedError('%s does not have the hash %s; %s' % (
        cached, weight_file.file_hash,
        _copy_instructions(weight_file, target, cache_dir)))
  _copy_atomically(cached, target)
  logging.info('wrote %s (from %s, hash %s)', target, cached,
               weight_file.file_hash)
  return target
