"""Which categories are source and which target: from flags, a file, or a
dataset's default.

A split is given by names (as the dataset's annotations spell them):

  * ``source_names`` only: those are source, every other category target;
  * ``target_names`` only: those are target, every other category source;
  * both: exactly those, disjoint; categories in neither are left out;
  * neither: ``default_source`` (e.g. the 20 PASCAL VOC names for COCO),
    restricted to the names the dataset has.

A split file is JSON: ``{"source": [names...], "target": [names...]}`` with
either list optional. Every name must exist in the dataset; a split that
leaves a side empty is an error.
"""
import difflib
import json
from typing import Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf


def read_split_file(path: str) -> Tuple[Optional[list], Optional[list]]:
  """``(source names or None, target names or None)`` from a JSON file."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('category split file not found: %s' % path)
  with tf.io.gfile.GFile(path) as f:
    try:
      content = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError('%s: not JSON: %s' % (path, e)) from e
  if not isinstance(content, dict) or not set(content) <= {'source', 'target'}:
    raise ValueError('%s: expected {"source": [...], "target": [...]} (either '
                     'optional), got keys %s' % (
                         path, sorted(content) if isinstance(content, dict)
                         else type(content).__name__))
  for key, names in content.items():
    if not isinstance(names, list) or not all(isinstance(n, str)
                                              for n in names):
      raise ValueError('%s: field %s must be a list of category names' %
                       (path, key))
  return content.get('source'), content.get('target')


def _check_known(names, known, origin, side):
  unknown = [n for n in names if n not in known]
  if unknown:
    hints = []
    for name in unknown:
      close = difflib.get_close_matches(name, sorted(known), n=1)
      hints.append('%r%s' % (name, ' (did you mean %r?)' % close[0]
                             if close else ''))
    raise ValueError('%s: %s categories not in the dataset: %s' %
                     (origin, side, ', '.join(hints)))


def resolve(dataset_names: Sequence[str],
            source_names: Optional[Sequence[str]] = None,
            target_names: Optional[Sequence[str]] = None,
            default_source: Sequence[str] = (),
            origin: str = 'category split') -> Tuple[list, list]:
  """``(source names, target names)`` in the dataset's order.

  Args:
    dataset_names: every category name of the dataset, in its order.
    source_names, target_names: the requested sides (see module docstring).
    default_source: the source side when neither is given.
    origin: what the names came from (flag or file), for error messages.

  Raises:
    ValueError: unknown names, overlapping sides, or an empty side.
  """
  known = list(dataset_names)
  if source_names is None and target_names is None:
    source_names = [n for n in default_source if n in known]
    missing = [n for n in default_source if n not in known]
    if missing:
      logging.warning('default source categories missing from the dataset '
                      '(left out): %s', missing)
    origin = 'default split'
  if source_names is not None:
    _check_known(source_names, known, origin, 'source')
  if target_names is not None:
    _check_known(target_names, known, origin, 'target')
  if source_names is not None and target_names is not None:
    both = sorted(set(source_names) & set(target_names))
    if both:
      raise ValueError('%s: categories on both sides: %s' % (origin, both))
  source = set(source_names) if source_names is not None else (
      set(known) - set(target_names))
  target = set(target_names) if target_names is not None else (
      set(known) - source)
  for side, names in (('source', source), ('target', target)):
    if not names:
      raise ValueError(
          '%s leaves no %s category (dataset categories: %s); name them with '
          '--source_categories / --target_categories or '
          '--category_split_file' % (origin, side, known))
  return [n for n in known if n in source], [n for n in known if n in target]
