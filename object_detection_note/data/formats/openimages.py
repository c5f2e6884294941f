"""OpenImages v4 image-level labels as the image-level set A (paper §4.2).

The paper's largest run: all of COCO is the seed set B0 and the 1.74M
OpenImages v4 train images, with their image-level labels only, are A. This
module holds the pure parts of that conversion; the streaming Beam pipeline is
``pipelines/create_openimages_tfrecords``.

Inputs (OpenImages v4 files):
  * ``train-annotations-human-imagelabels.csv``: header
    ``ImageID,Source,LabelName,Confidence``; columns are found by name. Only
    ``Confidence == 1`` (human-verified positive) labels count; 0 (verified
    absent) labels are ignored.
  * ``class-descriptions.csv``: ``LabelName,DisplayName`` rows (MID → name),
    no header in v4 (a header row is skipped if present).

Class matching (OpenImages class → target label-map id), in this order:
  1. an explicit class-name map row whose first column is the class's MID
     (``/m/04_sv``) or its display name, case-insensitively: the class maps to
     the target category named in the second column (matched against label-map
     ``name`` and ``display_name``, case-insensitively), or to nothing when
     that column is empty (to stop a wrong automatic match, e.g. the animal
     "Mouse" for COCO's computer "mouse");
  2. otherwise the class's display name equal, case-insensitively, to a
     target category's ``name`` or ``display_name``.
Several OpenImages classes may map to one target category.
"""
import collections
import csv
import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from object_detection_note.data.formats import ilsvrc13
from object_detection_note.data.records import tf_example_codec

IMAGE_ID = 'ImageID'
LABEL_NAME = 'LabelName'
CONFIDENCE = 'Confidence'
POSITIVE_CONFIDENCE = 1.0
IMAGE_EXTENSION = '.jpg'
NAME_MAP_HEADER = ('openimages_class', 'target_class')

# Per-image count keys (summed into the manifest's statistics).
IMAGES_IN_CSV = 'images_in_csv'
IMAGES_WITHOUT_POSITIVE_LABEL = 'images_without_positive_label'
IMAGES_WITHOUT_MATCHED_LABEL = 'images_dropped_without_matched_label'
IMAGES_WITH_MATCHED_LABEL = 'images_with_matched_label'
POSITIVE_LABELS = 'positive_labels'
NEGATIVE_LABELS = 'negative_labels_ignored'
MATCHED_LABELS = 'matched_labels'
UNMATCHED_LABELS = 'unmatched_labels_dropped'
COUNT_KEYS = (IMAGES_IN_CSV, IMAGES_WITHOUT_POSITIVE_LABEL,
              IMAGES_WITHOUT_MATCHED_LABEL, IMAGES_WITH_MATCHED_LABEL,
              POSITIVE_LABELS, NEGATIVE_LABELS, MATCHED_LABELS,
              UNMATCHED_LABELS)


def _csv_rows(path: str):
  """``(line number, fields)`` of the non-blank rows of a CSV file."""
  with tf.io.gfile.GFile(path, 'r') as f:
    for number, fields in enumerate(csv.reader(f), start=1):
      if fields and any(field.strip() for field in fields):
        yield number, [field.strip() for field in fields]


def read_class_descriptions(path: str) -> Dict[str, str]:
  """``{MID: display name}`` from ``class-descriptions.csv``.

  Raises:
    ValueError: naming the file and line of a row without two fields or of a
      MID listed twice.
  """
  descriptions = {}
  for number, fields in _csv_rows(path):
    if number == 1 and fields[:2] == [LABEL_NAME, 'DisplayName']:
      continue
    if len(fields) < 2 or not fields[0] or not fields[1]:
      raise ValueError('%s:%d: expected "LabelName,DisplayName", got %s' %
                       (path, number, fields))
    if fields[0] in descriptions:
      raise ValueError('%s:%d: class %s is described twice' %
                       (path, number, fields[0]))
    descriptions[fields[0]] = fields[1]
  return descriptions


def read_class_name_map(path: str) -> Dict[str, str]:
  """Explicit matches: ``{MID or casefolded display name: casefolded target}``.

  Rows: ``openimages_class,target_class`` (header optional); an empty target
  means "match nothing".

  Raises:
    ValueError: naming the file and line of a malformed or repeated row.
  """
  name_map = {}
  for number, fields in _csv_rows(path):
    if number == 1 and tuple(fields[:2]) == NAME_MAP_HEADER:
      continue
    if len(fields) not in (1, 2) or not fields[0]:
      raise ValueError('%s:%d: expected "openimages_class,target_class", '
                       'got %s' % (path, number, fields))
    key = _key(fields[0])
    if key in name_map:
      raise ValueError('%s:%d: %r is mapped twice' % (path, number, fields[0]))
    name_map[key] = fields[1].casefold() if len(fields) == 2 else ''
  return name_map


def _key(openimages_class: str) -> str:
  return (openimages_class if openimages_class.startswith('/')
          else openimages_class.casefold())


@dataclasses.dataclass
class TargetCategory:
  """One item of the target label map."""
  id: int
  name: str
  display_name: str = ''


@dataclasses.dataclass
class ClassMatch:
  """Result of ``match_classes``.

  Attributes:
    mid_to_target: OpenImages MID → target label-map id (matched classes).
    target_sources: target name → sorted display names of its classes.
    unmatched_targets: names of target categories no class maps to.
  """
  mid_to_target: Dict[str, int]
  target_sources: Dict[str, List[str]]
  unmatched_targets: List[str]


def match_classes(descriptions: Mapping[str, str],
                  targets: Sequence[TargetCategory],
                  name_map: Optional[Mapping[str, str]] = None,
                  name_map_path: str = '<class name map>') -> ClassMatch:
  """Matches OpenImages classes to target categories (module docstring).

  Raises:
    ValueError: if the name map names a target category that does not exist,
      or two target categories share a name or display name.
  """
  by_name = {}
  for target in targets:
    for name in {target.name.casefold(), target.display_name.casefold()} - {''}:
      if by_name.setdefault(name, target.id) != target.id:
        raise ValueError('target categories %d and %d are both named %r' %
                         (by_name[name], target.id, name))
  name_map = dict(name_map or {})
  for key, target_name in sorted(name_map.items()):
    if target_name and target_name not in by_name:
      raise ValueError('%s maps %r to %r, which is not a target category '
                       '(targets: %s)' % (name_map_path, key, target_name,
                                          sorted(by_name)))
  mid_to_target = {}
  for mid, display_name in descriptions.items():
    explicit = name_map.get(mid, name_map.get(display_name.casefold()))
    if explicit is not None:
      if explicit:
        mid_to_target[mid] = by_name[explicit]
    elif display_name.casefold() in by_name:
      mid_to_target[mid] = by_name[display_name.casefold()]
  id_to_name = {t.id: t.name for t in targets}
  sources = collections.defaultdict(list)
  for mid, target_id in mid_to_target.items():
    sources[id_to_name[target_id]].append(descriptions[mid])
  return ClassMatch(
      mid_to_target=mid_to_target,
      target_sources={k: sorted(v) for k, v in sorted(sources.items())},
      unmatched_targets=[t.name for t in targets if t.name not in sources])


def label_columns(header: str, path: str) -> Tuple[int, int, int]:
  """Indices of ImageID, LabelName and Confidence in a CSV header line.

  Raises:
    ValueError: naming ``path`` when a column is missing.
  """
  names = [f.strip().lstrip('\ufeff') for f in next(csv.reader([header]), [])]
  missing = [c for c in (IMAGE_ID, LABEL_NAME, CONFIDENCE) if c not in names]
  if missing:
    raise ValueError('%s: header %r lacks columns %s' % (path, header, missing))
  return tuple(names.index(c) for c in (IMAGE_ID, LABEL_NAME, CONFIDENCE))


def parse_label_line(line: str, columns: Tuple[int, int, int],
                     path: str) -> Optional[Tuple[str, str, bool]]:
  """One CSV row → ``(image_id, mid, is_positive)``, None for a blank line.

  Raises:
    ValueError: naming ``path`` and quoting the row when it is malformed.
  """
  if not line.strip():
    return None
  fields = next(csv.reader([line]))
  try:
    image_id, mid, confidence = (fields[i].strip() for i in columns)
    positive = float(confidence) == POSITIVE_CONFIDENCE
  except (IndexError, ValueError):
    raise ValueError('%s: malformed label row %r (expected columns %s)' %  # pylint: disable=raise-missing-from
                     (path, line, dict(zip((IMAGE_ID, LABEL_NAME, CONFIDENCE),
                                           columns))))
  if not image_id or not mid:
    raise ValueError('%s: label row %r has an empty ImageID or LabelName' %
                     (path, line))
  return image_id, mid, positive


def summarize_image(
    labels: Sequence[Tuple[str, bool]], mid_to_target: Mapping[str, int]
) -> Tuple[List[int], Dict[str, int], Dict[str, int]]:
  """Target labels of one image from its ``(mid, is_positive)`` rows.

  Returns:
    ``(target_ids, counts, unmatched)``: sorted unique target ids of the
    positive labels; counts keyed by ``COUNT_KEYS`` for this image; and
    ``{mid: n}`` for the positive labels with no target category.
  """
  positives = sorted({mid for mid, positive in labels if positive})
  target_ids = sorted({mid_to_target[m] for m in positives
                       if m in mid_to_target})
  unmatched = {m: 1 for m in positives if m not in mid_to_target}
  counts = dict.fromkeys(COUNT_KEYS, 0)
  counts[IMAGES_IN_CSV] = 1
  counts[IMAGES_WITHOUT_POSITIVE_LABEL] = int(not positives)
  counts[IMAGES_WITHOUT_MATCHED_LABEL] = int(bool(positives) and not target_ids)
  counts[IMAGES_WITH_MATCHED_LABEL] = int(bool(target_ids))
  counts[POSITIVE_LABELS] = len(positives)
  counts[NEGATIVE_LABELS] = sum(1 for _, positive in labels if not positive)
  counts[MATCHED_LABELS] = len(positives) - len(unmatched)
  counts[UNMATCHED_LABELS] = len(unmatched)
  return target_ids, counts, unmatched


def image_record(image_id: str, target_ids: Sequence[int],
                 target_names: Mapping[int, str],
                 image_dir: str) -> tf_example_codec.DetectionRecord:
  """The image-level record of ``<image_dir>/<image_id>.jpg``.

  No boxes and no hidden boxes (OpenImages boxes are not used); the pixels
  are kept as stored unless they need re-encoding (``ilsvrc13.read_image_bytes``).

  Raises:
    ilsvrc13.InvalidAnnotationError: naming a missing or unreadable image.
  """
  path = os.path.join(image_dir, image_id + IMAGE_EXTENSION)
  if not tf.io.gfile.exists(path):
    raise ilsvrc13.InvalidAnnotationError(
        'OpenImages image %s not found: %s' % (image_id, path),
        ilsvrc13.PROBLEM_BAD_FILE)
  data, image_format, width, height, _ = ilsvrc13.read_image_bytes(path)
  return tf_example_codec.DetectionRecord(
      image_bytes=data, source_id=image_id, height=height, width=width,
      image_format=image_format, filename=image_id + IMAGE_EXTENSION,
      image_labels=list(target_ids),
      image_label_texts=[target_names[i] for i in target_ids])
