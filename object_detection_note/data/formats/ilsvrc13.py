"""ILSVRC 2013 DET: categories, split lists, box XML files, the paper's split.

NOTE-RCNN's ILSVRC 2013 protocol (paper §4.2, after LSDA / R-CNN): the 200 DET
categories in alphabetical order, the first 100 source and the rest target;
val1 augmented with train images for training, val2 for validation
(``assign_splits``). The Beam pipeline is ``pipelines/create_ilsvrc13_tfrecords``.

Category order: by name, case-insensitively, ties by WordNet id. This is the
devkit's ``ILSVRC2013_DET_ID`` order (accordion, airplane, ..., iPod, isopod,
..., zebra) that LSDA takes "the first 100" from. While parsing, class ids are
"global" (1..200 in that order); each side's label map then numbers its own
categories 1..100 in the same order.

Boxes: XML corners are inclusive pixel indices whose first pixel has index
``pixel_index_base`` (1 in PASCAL VOC, the format the devkit names; the devkit
does not state it, so it is a parameter). Pixel ``i`` covers the continuous
interval ``[i - base, i - base + 1)``, hence::

  xmin_n = (xmin - base) / width      xmax_n = (xmax - base + 1) / width

and likewise for y. A box outside the image by at most ``clip_tolerance``
pixels is clipped and counted. Any other problem (empty box, box further out,
unknown WordNet id, missing or malformed XML, missing or unreadable image,
``<size>`` unlike the image) is an ``InvalidAnnotationError`` naming the file;
callers raise it, or with ``skip_invalid`` drop the box (box problems) or the
image (file problems) and count the reason.
"""
import collections
import csv
import dataclasses
import io
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple
import xml.etree.ElementTree as ElementTree

from absl import logging
import numpy as np
import tensorflow as tf

from object_detection_note.data.writing import dataset_splits
from object_detection_note.data.records import tf_example_codec

Synset = collections.namedtuple('Synset', ['wnid', 'name'])

IMAGE_EXTENSIONS = ('.JPEG', '.jpg', '.jpeg', '.JPG', '.png', '.PNG')
_TRAIN_IMAGE_NAME = re.compile(r'^(n\d+)_\d+$')
_WNID = re.compile(r'^n\d{8}$')

# Reasons counted by the ``skip`` policy (keys of ``ParsedImage.problems``).
PROBLEM_UNKNOWN_WNID = 'boxes_unknown_wnid'
PROBLEM_BOX_OUTSIDE = 'boxes_outside_image'
PROBLEM_EMPTY_BOX = 'boxes_empty'
PROBLEM_BAD_FILE = 'images_bad_annotation_or_image'
PROBLEM_CLIPPED = 'boxes_clipped'


class InvalidAnnotationError(ValueError):
  """A problem with one annotation or image file; the message names the file.

  Attributes:
    reason: one of the ``PROBLEM_*`` keys.
  """

  def __init__(self, message: str, reason: str):
    super().__init__(message)
    self.reason = reason


# ---------------------------------------------------------------- categories


def read_synsets(path: str) -> List[Synset]:
  """Reads the DET categories from ``meta_det.mat`` or a text/CSV list.

  Text format: one category a line, ``wnid name`` (whitespace after the WordNet
  id; the rest of the line is the name, spaces allowed) or ``wnid,name`` (CSV).
  Blank lines and lines starting with ``#`` are ignored; a header line whose
  first field is not a WordNet id (e.g. ``wnid,name``) is skipped.

  ``.mat`` files are the devkit's ``meta_det.mat``: its ``synsets`` struct
  array, keeping the leaf entries (``num_children == 0`` when that field
  exists, i.e. the 200 DET categories, not the hierarchy's inner nodes).

  Returns:
    The synsets in file order (use ``sort_synsets`` for the protocol order).

  Raises:
    ValueError: naming ``path`` on a malformed line, duplicate WordNet id or
      name, or an empty list.
  """
  if path.lower().endswith('.mat'):
    synsets = _read_meta_det_mat(path)
  else:
    with tf.io.gfile.GFile(path, 'r') as f:
      synsets = _parse_synset_lines(f.read().splitlines(), path)
  if not synsets:
    raise ValueError('%s: no categories found' % path)
  for field in ('wnid', 'name'):
    counts = collections.Counter(getattr(s, field) for s in synsets)
    duplicates = sorted(k for k, n in counts.items() if n > 1)
    if duplicates:
      raise ValueError('%s: duplicate category %s %s' % (path, field,
                                                          duplicates))
  return synsets


def _parse_synset_lines(lines: Sequence[str], path: str) -> List[Synset]:
  synsets = []
  for number, line in enumerate(lines, start=1):
    line = line.strip()
    if not line or line.startswith('#'):
      continue
    fields = next(csv.reader([line])) if ',' in line else []
    if not fields or not _WNID.match(fields[0].strip()):
      fields = line.split(None, 1)  # "wnid name", names may hold commas.
    fields = [f.strip() for f in fields]
    if not _WNID.match(fields[0]):
      if number == next(i for i, l in enumerate(lines, start=1)
                        if l.strip() and not l.strip().startswith('#')):
        continue  # A header line.
      raise ValueError('%s:%d: expected "wnid name", got %r' %
                       (path, number, line))
    if len(fields) < 2 or not fields[1]:
      raise ValueError('%s:%d: category %s has no name' %
                       (path, number, fields[0]))
    synsets.append(Synset(fields[0], fields[1]))
  return synsets


def _mat_field(entry, name):
  value = getattr(entry, name)
  if isinstance(value, np.ndarray):
    value = value.item() if value.size == 1 else value
  return value


def _read_meta_det_mat(path: str) -> List[Synset]:
  """Leaf synsets of a devkit ``meta_det.mat``, sorted by their DET id."""
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  with tf.io.gfile.GFile(path, 'rb') as f:
    try:
      mat = scipy_io.loadmat(io.BytesIO(f.read()), squeeze_me=True,
                             struct_as_record=False)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError('%s: not a readable .mat file: %s' % (path, e)) from e
  if 'synsets' not in mat:
    raise ValueError('%s: no "synsets" array (keys: %s)' %
                     (path, sorted(k for k in mat if not k.startswith('__'))))
  entries = np.atleast_1d(mat['synsets'])
  fields = entries[0]._fieldnames  # pylint: disable=protected-access
  if 'WNID' not in fields or 'name' not in fields:
    raise ValueError('%s: synsets lack WNID/name fields (have %s)' %
                     (path, fields))
  id_field = next((f for f in fields if f.endswith('_DET_ID')), None)
  kept = []
  for index, entry in enumerate(entries):
    if 'num_children' in fields and int(_mat_field(entry, 'num_children')):
      continue
    det_id = int(_mat_field(entry, id_field)) if id_field else index
    kept.append((det_id, Synset(str(_mat_field(entry, 'WNID')).strip(),
                                str(_mat_field(entry, 'name')).strip())))
  kept.sort(key=lambda item: item[0])
  return [synset for _, synset in kept]


def sort_synsets(synsets: Sequence[Synset]) -> List[Synset]:
  """Protocol order: by name, case-insensitively, then WordNet id."""
  ordered = sorted(synsets, key=lambda s: (s.name.casefold(), s.wnid))
  if list(ordered) != list(synsets):
    logging.info('Categories re-sorted alphabetically by name (input order '
                 'differed; first: %s).', ordered[0].name)
  return ordered


def split_categories(
    synsets: Sequence[Synset],
    num_source: int) -> Tuple[List[Synset], List[Synset]]:
  """First ``num_source`` categories in protocol order are source, rest target.

  Raises:
    ValueError: when either side would be empty.
  """
  ordered = sort_synsets(synsets)
  if not 0 < num_source < len(ordered):
    raise ValueError('num_source=%d must be in [1, %d) for %d categories' %
                     (num_source, len(ordered), len(ordered)))
  return ordered[:num_source], ordered[num_source:]


# ---------------------------------------------------------------- image lists


def read_image_list(path: str) -> List[str]:
  """Image names of a split list (val1.txt, val2.txt, train list...).

  One image a line; the first whitespace-separated field is the name (a second
  field such as the devkit's image index is ignored). A known image extension
  is removed. Names may be paths relative to the image directory
  (``ILSVRC2013_train/n01443537/n01443537_10007``).

  Raises:
    ValueError: naming ``path`` when a name is listed twice.
  """
  with tf.io.gfile.GFile(path, 'r') as f:
    lines = f.read().splitlines()
  names = []
  seen = {}
  for number, line in enumerate(lines, start=1):
    fields = line.split()
    if not fields or fields[0].startswith('#'):
      continue
    name = strip_image_extension(fields[0])
    if name in seen:
      raise ValueError('%s:%d: image %s already listed on line %d' %
                       (path, number, name, seen[name]))
    seen[name] = number
    names.append(name)
  return names


def strip_image_extension(name: str) -> str:
  for ext in IMAGE_EXTENSIONS:
    if name.endswith(ext):
      return name[:-len(ext)]
  return name


def source_id_of(name: str) -> str:
  """``image/source_id`` of a listed image: its base name, no extension."""
  return os.path.basename(name)


def find_file(root: str, name: str,
              extensions: Sequence[str]) -> Optional[str]:
  """``<root>/<name><ext>`` for the first existing extension, else None.

  ``n02672831_11478`` is also looked for in its synset's folder
  (``n02672831/n02672831_11478``), the ILSVRC2013_DET_train layout.
  """
  match = _TRAIN_IMAGE_NAME.match(name)
  for candidate in [name] + ([match.group(1) + '/' + name] if match else []):
    for ext in extensions:
      path = os.path.join(root, candidate + ext)
      if tf.io.gfile.exists(path):
        return path
  return None


# ---------------------------------------------------------------- XML boxes


@dataclasses.dataclass
class PixelBox:
  """One ``<object>``: WordNet id and inclusive pixel-index corners."""
  wnid: str
  xmin: float
  ymin: float
  xmax: float
  ymax: float


@dataclasses.dataclass
class Annotation:
  """One XML file: ``<size>`` and its objects."""
  width: int
  height: int
  objects: List[PixelBox]


def _text(element, tag, path, context):
  child = element.find(tag)
  if child is None or child.text is None or not child.text.strip():
    raise InvalidAnnotationError('%s: %s has no <%s>' % (path, context, tag),
                                 PROBLEM_BAD_FILE)
  return child.text.strip()


def _number(element, tag, path, context):
  text = _text(element, tag, path, context)
  try:
    return float(text)
  except ValueError:
    raise InvalidAnnotationError(  # pylint: disable=raise-missing-from
        '%s: %s <%s> is not a number: %r' % (path, context, tag, text),
        PROBLEM_BAD_FILE)


def parse_annotation_xml(xml_bytes: bytes, path: str) -> Annotation:
  """Parses a PASCAL-style ILSVRC annotation.

  Expected: ``<annotation><size><width/><height/></size>`` and zero or more
  ``<object><name>wnid</name><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox>``.

  Raises:
    InvalidAnnotationError: naming ``path`` for malformed XML or missing /
      non-numeric fields.
  """
  try:
    root = ElementTree.fromstring(xml_bytes)
  except ElementTree.ParseError as e:
    raise InvalidAnnotationError('%s: malformed XML: %s' % (path, e),
                                 PROBLEM_BAD_FILE) from e
  size = root.find('size')
  if size is None:
    raise InvalidAnnotationError('%s: no <size> element' % path,
                                 PROBLEM_BAD_FILE)
  width = _number(size, 'width', path, '<size>')
  height = _number(size, 'height', path, '<size>')
  if width <= 0 or height <= 0 or width != int(width) or height != int(height):
    raise InvalidAnnotationError(
        '%s: invalid image size %gx%g' % (path, width, height),
        PROBLEM_BAD_FILE)
  objects = []
  for index, obj in enumerate(root.findall('object')):
    context = 'object %d' % index
    wnid = _text(obj, 'name', path, context)
    bndbox = obj.find('bndbox')
    if bndbox is None:
      raise InvalidAnnotationError('%s: %s has no <bndbox>' % (path, context),
                                   PROBLEM_BAD_FILE)
    objects.append(PixelBox(
        wnid, *(_number(bndbox, tag, path, context)
                for tag in ('xmin', 'ymin', 'xmax', 'ymax'))))
  return Annotation(int(width), int(height), objects)


def pixel_box_to_normalized(
    box: PixelBox, width: int, height: int, pixel_index_base: int,
    clip_tolerance: float, path: str) -> Tuple[np.ndarray, bool]:
  """Inclusive pixel box → normalised ``(ymin, xmin, ymax, xmax)``.

  See the module docstring for the convention.

  Returns:
    float32 ``[4]`` box in ``[0, 1]`` and whether it had to be clipped.

  Raises:
    InvalidAnnotationError: for an empty box or one outside the image by more
      than ``clip_tolerance`` pixels.
  """
  x0 = box.xmin - pixel_index_base
  y0 = box.ymin - pixel_index_base
  x1 = box.xmax - pixel_index_base + 1
  y1 = box.ymax - pixel_index_base + 1
  description = '%s: box %s (%g, %g, %g, %g) in a %dx%d image' % (
      path, box.wnid, box.xmin, box.ymin, box.xmax, box.ymax, width, height)
  if box.xmax < box.xmin or box.ymax < box.ymin:
    raise InvalidAnnotationError(description + ' is empty (max < min)',
                                 PROBLEM_EMPTY_BOX)
  overshoot = max(-x0, -y0, x1 - width, y1 - height)
  if overshoot > clip_tolerance:
    raise InvalidAnnotationError(
        '%s lies outside the image by %g pixels (tolerance %g)' %
        (description, overshoot, clip_tolerance), PROBLEM_BOX_OUTSIDE)
  cx0, cx1 = max(x0, 0.), min(x1, float(width))
  cy0, cy1 = max(y0, 0.), min(y1, float(height))
  if cx1 <= cx0 or cy1 <= cy0:
    raise InvalidAnnotationError(description + ' is empty after clipping',
                                 PROBLEM_EMPTY_BOX)
  normalized = np.array([cy0 / height, cx0 / width, cy1 / height, cx1 / width],
                        np.float32)
  return normalized, overshoot > 0


# ---------------------------------------------------------------- records


@dataclasses.dataclass
class ParsedImage:
  """Annotation-only record of one listed image and what parsing dropped.

  ``record`` has no image bytes yet (they are read once the split is known)
  and its classes are global ids (1-based positions over all categories in
  protocol order). ``problems`` counts the ``PROBLEM_*`` reasons.
  """
  record: Optional[tf_example_codec.DetectionRecord]
  image_path: str
  problems: Dict[str, int]
  reencode: bool = False


def parse_image(name: str, image_dir: str, annotation_dir: str,
                wnid_to_id: Dict[str, int], id_to_name: Dict[int, str],
                pixel_index_base: int = 1, clip_tolerance: float = 1.,
                skip_invalid: bool = False) -> ParsedImage:
  """Finds, parses and checks the annotation and image of a listed image.

  The image header is read (not decoded) to check that ``<size>`` matches it.

  Args:
    name: listed image name (see ``read_image_list``).
    image_dir / annotation_dir: roots the name is resolved under.
    wnid_to_id: WordNet id → global 1-based category id.
    id_to_name: global id → category name (the record's class texts).
    pixel_index_base / clip_tolerance: see ``pixel_box_to_normalized``.
    skip_invalid: drop and count invalid boxes / images instead of raising.

  Returns:
    A ``ParsedImage``; its ``record`` is None when the image was skipped.

  Raises:
    InvalidAnnotationError: on any problem when ``skip_invalid`` is False.
  """
  problems = collections.Counter()
  try:
    annotation_path = find_file(annotation_dir, name, ('.xml',))
    if annotation_path is None:
      raise InvalidAnnotationError(
          'no annotation %s.xml under %s' % (name, annotation_dir),
          PROBLEM_BAD_FILE)
    image_path = find_file(image_dir, name, IMAGE_EXTENSIONS)
    if image_path is None:
      raise InvalidAnnotationError(
          'no image %s.{%s} under %s' %
          (name, ','.join(e[1:] for e in IMAGE_EXTENSIONS), image_dir),
          PROBLEM_BAD_FILE)
    with tf.io.gfile.GFile(annotation_path, 'rb') as f:
      annotation = parse_annotation_xml(f.read(), annotation_path)
    (image_width, image_height), reencode = read_image_header(image_path)
    if (image_width, image_height) != (annotation.width, annotation.height):
      raise InvalidAnnotationError(
          '%s: <size> %dx%d differs from the image %s (%dx%d)' %
          (annotation_path, annotation.width, annotation.height, image_path,
           image_width, image_height), PROBLEM_BAD_FILE)
  except InvalidAnnotationError as e:
    if not skip_invalid:
      raise
    logging.warning('Skipping image %s: %s', name, e)
    problems[e.reason] += 1
    return ParsedImage(None, '', dict(problems))

  boxes, classes = [], []
  for box in annotation.objects:
    try:
      if box.wnid not in wnid_to_id:
        raise InvalidAnnotationError(
            '%s: unknown WordNet id %s (not one of the %d categories)' %
            (annotation_path, box.wnid, len(wnid_to_id)),
            PROBLEM_UNKNOWN_WNID)
      normalized, clipped = pixel_box_to_normalized(
          box, annotation.width, annotation.height, pixel_index_base,
          clip_tolerance, annotation_path)
    except InvalidAnnotationError as e:
      if not skip_invalid:
        raise
      logging.warning('Skipping a box: %s', e)
      problems[e.reason] += 1
      continue
    if clipped:
      problems[PROBLEM_CLIPPED] += 1
    boxes.append(normalized)
    classes.append(wnid_to_id[box.wnid])
  record = tf_example_codec.DetectionRecord(
      image_bytes=b'', source_id=source_id_of(name),
      height=annotation.height, width=annotation.width,
      filename=os.path.basename(image_path),
      boxes=np.stack(boxes) if boxes else np.zeros((0, 4), np.float32),
      classes=classes, class_texts=[id_to_name[c] for c in classes])
  return ParsedImage(record, image_path, dict(problems), reencode)


def assign_splits(
    augmented_val1: Sequence[tf_example_codec.DetectionRecord],
    val2: Sequence[tf_example_codec.DetectionRecord],
    source_ids: Sequence[int], target_ids: Sequence[int],
    seed_images: Tuple[int, int] = (10, 20),
    seed: int = 0) -> Dict[str, List[tf_example_codec.DetectionRecord]]:
  """The paper's ILSVRC 2013 splits from annotation-only records.

  * ``source_train``: augmented-val1 images with a source box, source boxes;
  * ``source_val``: val2 images with a source box, source boxes;
  * ``seed``: ``seed_images`` = (min, max) images drawn per target category
    (each quota uniform in min..max) from the augmented-val1 images with a
    target box, target boxes kept;
  * ``image_level``: the other augmented-val1 target-side images, boxes moved
    to ``hidden_*``;
  * ``target_val``: val2 images with a target box, target boxes.

  Args:
    augmented_val1 / val2: records with global class ids.
    source_ids / target_ids: global ids of each side, in label-map order.
    seed_images: (min, max) seed images per target category.
    seed: seed of the seed-image draw.

  Returns:
    ``{split: records}`` with class ids renumbered to each side's label map
    (``1..len(source_ids)`` and ``1..len(target_ids)``).
  """
  return dataset_splits.paper_splits(
      augmented_val1, val2, source_ids, target_ids, tuple(seed_images), seed)


# ---------------------------------------------------------------- pixels
# Kept as stored when TF decodes them as they are: JPEG or PNG, RGB or grey.
_KEPT_FORMATS = {'JPEG': 'jpeg', 'PNG': 'png'}
_KEPT_MODES = ('RGB', 'L')


def read_image_header(path: str) -> Tuple[Tuple[int, int], bool]:
  """``((width, height), reencode)`` from the header, pixels not decoded.

  ``reencode`` is True for files ``tf.io.decode_image`` would reject or decode
  wrongly (CMYK or palette JPEGs, other formats, e.g. the PNGs named .JPEG in
  ImageNet); ``read_image_bytes`` re-encodes those as RGB JPEG.

  Raises:
    InvalidAnnotationError: naming an unreadable image file.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      with Image.open(f) as image:
        keep = image.format in _KEPT_FORMATS and image.mode in _KEPT_MODES
        return image.size, not keep
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise InvalidAnnotationError('%s: unreadable image: %s' % (path, e),
                                 PROBLEM_BAD_FILE) from e


def read_image_bytes(path: str) -> Tuple[bytes, str, int, int, bool]:
  """Encoded image for ``image/encoded``.

  Returns:
    ``(bytes, format, width, height, reencoded)``: the file's own bytes for a
    JPEG/PNG in RGB or grey, else the pixels converted to RGB and encoded as
    JPEG (quality 95), with ``reencoded`` True.

  Raises:
    InvalidAnnotationError: naming an unreadable image file.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      data = f.read()
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      if image.format in _KEPT_FORMATS and image.mode in _KEPT_MODES:
        image.load()  # decodes: a corrupt or truncated file fails here
        return data, _KEPT_FORMATS[image.format], width, height, False
      buffer = io.BytesIO()
      image.convert('RGB').save(buffer, format='JPEG', quality=95)
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise InvalidAnnotationError('%s: unreadable image: %s' % (path, e),
                                 PROBLEM_BAD_FILE) from e
  return buffer.getvalue(), 'jpeg', width, height, True
