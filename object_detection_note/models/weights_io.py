"""Loads classification (ImageNet-style) weights into a backbone model.

Only local (or ``gs://``) files are read; nothing is ever downloaded (a
missing Keras application file's error names the command that fetches it,
``models.pretrained_weights``).

Supported files:
  * ``.h5`` / ``.hdf5``: Keras HDF5 weights (``model.save_weights``, or the
    ``keras.applications`` ``*_notop.h5`` files) or whole-model HDF5 files.
    Loaded by layer name when every weighted layer of the backbone has its
    name in the file; otherwise in layer order (what ``keras.applications``
    itself does with its own files, whose auto-generated layer names may be
    numbered differently).
  * ``.keras``: Keras v3 archives (layer order, as Keras supports).
  * anything else: a TF checkpoint prefix, written either by
    ``model.save_weights(prefix)`` (object graph rooted at the model) or by
    ``tf.train.Checkpoint(<key>=model).save`` (e.g. the OD API's
    ``feature_extractor`` key).
"""

import os
import tempfile

from absl import logging
import h5py
import tensorflow as tf
import tf_keras

from object_detection_note.models import pretrained_weights

_H5_SUFFIXES = ('.h5', '.hdf5')
_KERAS_ROOT_KEY = 'layer_with_weights-0'


def _h5_weighted_layer_names(path: str):
  """Names of the layers that hold weights in a Keras HDF5 file."""
  with h5py.File(path, 'r') as f:
    group = f['model_weights'] if 'layer_names' not in f.attrs else f
    names = []
    for raw in group.attrs['layer_names']:
      name = raw.decode('utf8') if isinstance(raw, bytes) else str(raw)
      if len(group[name].attrs.get('weight_names', [])):
        names.append(name)
    return names


def _localize(path: str, tmp_dir: str) -> str:
  """Copies a non-local file to `tmp_dir` (h5py reads local files only)."""
  if os.path.exists(path):
    return path
  local = os.path.join(tmp_dir, os.path.basename(path))
  tf.io.gfile.copy(path, local, overwrite=True)
  return local


def _load_h5(model: tf_keras.Model, path: str) -> None:
  """Loads an HDF5 weight file by name if possible, else in layer order."""
  file_names = set(_h5_weighted_layer_names(path))
  model_names = [l.name for l in model.layers if l.weights]
  missing = [n for n in model_names if n not in file_names]
  if not missing:
    model.load_weights(path, by_name=True)
    logging.info('Loaded %d layers by name from %s', len(model_names), path)
    return
  if len(file_names) != len(model_names):
    raise ValueError(
        f'{path}: holds weights of {len(file_names)} layers, model '
        f'{model.name} has {len(model_names)}; names missing from the file '
        f'include {missing[:5]}. Is it a weight file of the same backbone '
        '(include_top=False)?')
  model.load_weights(path, by_name=False)
  logging.info('Loaded %d layers in layer order from %s (names differ)',
               len(model_names), path)


def _checkpoint_root_key(prefix: str):
  """'' if the checkpoint is rooted at a Keras model, else its model key."""
  keys = [name for name, _ in tf.train.list_variables(prefix)]
  if any(k.startswith(_KERAS_ROOT_KEY + '/') for k in keys):
    return ''
  for key in keys:
    parts = key.split('/')
    if len(parts) > 1 and parts[1] == _KERAS_ROOT_KEY:
      return parts[0]
  raise ValueError(
      f'{prefix}: TF checkpoint holds no Keras model weights (no '
      f'"{_KERAS_ROOT_KEY}" entries).')


def _load_checkpoint(model: tf_keras.Model, prefix: str) -> None:
  """Restores a TF checkpoint of a Keras model (root or under one key)."""
  key = _checkpoint_root_key(prefix)
  if not key:
    status = model.load_weights(prefix)
  else:
    status = tf.train.Checkpoint(**{key: model}).restore(prefix)
  status.expect_partial()
  status.assert_existing_objects_matched()
  logging.info('Restored TF checkpoint %s (key %r)', prefix, key or '<root>')


def _not_found(path):
  """The missing-file error; names the command that fetches a known file."""
  hint = pretrained_weights.how_to_get(path)
  return ValueError(f'Weight file not found: {path}' +
                    (f' ({hint})' if hint else ''))


def load_backbone_weights(model: tf_keras.Model, path: str) -> None:
  """Loads weights from `path` into `model`; see module docstring.

  Args:
    model: the backbone (functional Keras model).
    path: weight file, or TF checkpoint prefix.

  Raises:
    ValueError: the file does not exist or does not fit the model.
  """
  lower = path.lower()
  if lower.endswith(_H5_SUFFIXES):
    if not tf.io.gfile.exists(path):
      raise _not_found(path)
    with tempfile.TemporaryDirectory() as tmp_dir:
      _load_h5(model, _localize(path, tmp_dir))
    return
  if lower.endswith('.keras'):
    if not tf.io.gfile.exists(path):
      raise _not_found(path)
    model.load_weights(path)
    return
  if not tf.io.gfile.exists(path + '.index'):
    raise ValueError(
        f'{path}: neither a .h5/.hdf5/.keras file nor a TF checkpoint prefix '
        f'(no {path}.index).')
  _load_checkpoint(model, path)
