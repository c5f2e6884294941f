"""Dataset split rules of the paper (§4.2), as pure functions.

Every converter (synthetic, COCO 2017, ILSVRC 2013, OpenImages v4) builds its
splits with these functions, so the rules live in one place:

  * ``split_source_target``: one image, two views. An image with boxes of
    source and of target categories is used on both sides; each side keeps only
    the boxes of its own categories; an image with no box of a side is not on
    that side.
  * ``sample_seed``: picks the seed ground-truth images B0 per target category;
    the rest of the target images become the image-level set A.
  * ``to_image_level``: strips the boxes of an image of A; they are kept as
    ``hidden_*`` annotations only to score mining.
  * ``remap_classes``: renumbers class ids (e.g. COCO category ids to the
    1..N ids of a side's own label map).

The functions take and return ``tf_example_codec.DetectionRecord`` objects and
never touch pixels: ``image_bytes`` may be ``b''`` (annotation-only records)
and is copied through unchanged. Nothing here does I/O or imports TensorFlow.
Input records are never modified; outputs are new records. Output order
follows input order, so results depend only on the inputs and the seed.
"""
import dataclasses
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import numpy as np

from object_detection_note.core.fields import Splits
from object_detection_note.data.records.tf_example_codec import DetectionRecord

ImagesPerCategory = Union[float, int, Tuple[int, int]]


def _keep_boxes(record: DetectionRecord, keep: np.ndarray) -> DetectionRecord:
  """Copy of ``record`` with only the boxes where the bool mask ``keep`` holds."""
  texts = record.class_texts
  return dataclasses.replace(
      record,
      boxes=record.boxes[keep],
      classes=record.classes[keep],
      class_texts=[t for t, k in zip(texts, keep) if k] if texts else [],
      box_scores=(record.box_scores[keep]
                  if record.box_scores.size == keep.size else
                  record.box_scores))


def split_source_target(
    records: Iterable[DetectionRecord], source_ids: Iterable[int],
    target_ids: Iterable[int]
) -> Tuple[List[DetectionRecord], List[DetectionRecord]]:
  """Splits box-annotated records into a source view and a target view.

  Args:
    records: records whose ``classes`` / ``class_texts`` hold all boxes of the
      image (class ids in any id space shared with ``source_ids`` and
      ``target_ids``).
    source_ids: class ids of the source categories.
    target_ids: class ids of the target categories; must not overlap
      ``source_ids``. Boxes of classes in neither set are dropped.

  Returns:
    ``(source_records, target_records)``. A record is on a side iff it has at
    least one box of that side's classes; on each side it keeps only those
    boxes (with their texts and scores). Class ids are left unchanged (use
    ``remap_classes`` to renumber them).

  Raises:
    ValueError: if a class id is both source and target.
  """
  source = np.asarray(sorted(set(int(i) for i in source_ids)), np.int64)
  target = np.asarray(sorted(set(int(i) for i in target_ids)), np.int64)
  both = np.intersect1d(source, target)
  if both.size:
    raise ValueError('class ids %s are both source and target' % both.tolist())
  source_records, target_records = [], []
  for record in records:
    in_source = np.isin(record.classes, source)
    in_target = np.isin(record.classes, target)
    if in_source.any():
      source_records.append(_keep_boxes(record, in_source))
    if in_target.any():
      target_records.append(_keep_boxes(record, in_target))
  return source_records, target_records


def _per_category_quotas(category_ids: Sequence[int],
                         images_per_category: ImagesPerCategory,
                         rng: np.random.Generator) -> Dict[int, int]:
  """Number of seed images to draw for each category.

  A float/int average ``a`` gives ``round(a * C)`` images in total for ``C``
  categories: every category gets ``floor(a)``, and the remainder goes, one
  each, to categories chosen at random. A ``(low, high)`` tuple draws each
  category's count uniformly from ``low..high`` inclusive.
  """
  num = len(category_ids)
  if isinstance(images_per_category, (tuple, list)):
    low, high = (int(v) for v in images_per_category)
    if not 0 <= low <= high:
      raise ValueError('images_per_category range must satisfy 0 <= min <= '
                       'max, got %s' % (images_per_category,))
    counts = rng.integers(low, high + 1, size=num)
  else:
    average = float(images_per_category)
    if average < 0:
      raise ValueError('images_per_category must be >= 0, got %s' % average)
    total = int(round(average * num))
    base = min(int(np.floor(average)), total // max(num, 1))
    counts = np.full(num, base, np.int64)
    extra = rng.permutation(num)[:total - base * num]
    counts[extra] += 1
  return {cid: int(n) for cid, n in zip(category_ids, counts)}


def sample_seed(
    records: Iterable[DetectionRecord], category_ids: Iterable[int],
    images_per_category: ImagesPerCategory, seed: int
) -> Tuple[List[DetectionRecord], List[DetectionRecord]]:
  """Draws the seed images B0 per category; the rest become the pool for A.

  Counting rule (how images with several categories count): every seed image
  is drawn *for exactly one* category and counts once, for that category only.
  Its boxes of every category are kept (a seed image is fully annotated), so
  the number of seed images *containing* a category can exceed the number
  drawn for it. Hence ``len(seed_records) == sum of per-category quotas`` and,
  for a float average ``a`` with enough images, ``len(seed_records) ==
  round(a * C)``: the paper's "average number of annotated images per
  category" is ``len(seed_records) / C``.

  Procedure (deterministic given ``seed``; independent of input order):
    1. Quotas: a float average ``a`` gives every category ``floor(a)`` images
       and one more to ``round(a * C) - C * floor(a)`` random categories, so
       every category gets >= 1 when ``a >= 1``. A ``(min, max)`` tuple (the
       ILSVRC rule "10-20 images per category") draws each quota uniformly
       from ``min..max``.
    2. Categories are visited from the rarest (fewest candidate images) to
       the most common, ties by id, so images of rare categories are not used
       up by common ones. Each category draws its quota from its not yet
       chosen images, in a random order fixed by ``(seed, category id)`` over
       images sorted by ``source_id``.
    3. Shortfalls (a category with fewer free images than its quota) are only
       topped up for a float average, where the total is what matters: the
       missing images are drawn one at a time, round-robin over categories in
       a seeded random order, from categories that still have free images.

  Args:
    records: target-side records (boxes of target categories only); their
      ``source_id`` values must be unique.
    category_ids: the target category ids to sample for.
    images_per_category: float/int average, or ``(min, max)`` tuple.
    seed: integer seed.

  Returns:
    ``(seed_records, rest_records)``: a partition of ``records``, each in
    input order. Records with no box of ``category_ids`` are never drawn.

  Raises:
    ValueError: on duplicate source ids or invalid ``images_per_category``.
  """
  records = list(records)
  category_ids = sorted(set(int(c) for c in category_ids))
  ids = [r.source_id for r in records]
  if len(set(ids)) != len(ids):
    raise ValueError('sample_seed needs unique source_id values')
  rng = np.random.default_rng([int(seed), 0])
  quotas = _per_category_quotas(category_ids, images_per_category, rng)

  order = sorted(range(len(records)), key=lambda i: ids[i])
  candidates = {c: [] for c in category_ids}
  for i in order:
    for c in set(records[i].classes.tolist()):
      if c in candidates:
        candidates[c].append(i)
  # Random order of each category's candidates, fixed by (seed, category).
  queues = {}
  for c in category_ids:
    perm = np.random.default_rng([int(seed), 1, c]).permutation(
        len(candidates[c]))
    queues[c] = [candidates[c][j] for j in perm]

  chosen = set()
  cursor = {c: 0 for c in category_ids}

  def draw(c):
    queue = queues[c]
    while cursor[c] < len(queue):
      index = queue[cursor[c]]
      cursor[c] += 1
      if index not in chosen:
        chosen.add(index)
        return True
    return False

  deficit = 0
  for c in sorted(category_ids, key=lambda c: (len(candidates[c]), c)):
    for _ in range(quotas[c]):
      if not draw(c):
        deficit += 1
  if not isinstance(images_per_category, (tuple, list)):
    round_robin = [category_ids[i]
                   for i in rng.permutation(len(category_ids))]
    while deficit and round_robin:
      for c in list(round_robin):
        if not deficit:
          break
        if draw(c):
          deficit -= 1
        else:
          round_robin.remove(c)

  seed_records = [r for i, r in enumerate(records) if i in chosen]
  rest_records = [r for i, r in enumerate(records) if i not in chosen]
  return seed_records, rest_records


def to_image_level(record: DetectionRecord) -> DetectionRecord:
  """An image of A: boxes moved to ``hidden_*``, image-level labels kept.

  ``image_labels`` are the sorted unique box classes; ``image_label_texts``
  hold the text of the first box of each class (empty if the record has no
  texts). No boxes or box scores remain and ``is_mined`` is 0.
  """
  labels = np.unique(record.classes).astype(np.int64)
  texts = []
  if record.class_texts:
    first = {}
    for c, t in zip(record.classes.tolist(), record.class_texts):
      first.setdefault(c, t)
    texts = [first[c] for c in labels.tolist()]
  return dataclasses.replace(
      record,
      boxes=np.zeros((0, 4), np.float32),
      classes=np.zeros((0,), np.int64),
      class_texts=[],
      box_scores=np.zeros((0,), np.float32),
      image_labels=labels,
      image_label_texts=texts,
      is_mined=0,
      hidden_boxes=record.boxes.copy(),
      hidden_classes=record.classes.copy(),
      hidden_class_texts=list(record.class_texts))


def remap_classes(record: DetectionRecord,
                  id_map: Mapping[int, int]) -> DetectionRecord:
  """Renumbers box, image-level and hidden class ids with ``id_map``.

  Texts are unchanged. Every id present must be a key of ``id_map``.

  Raises:
    KeyError: naming the first class id missing from ``id_map``.
  """

  def remap(values):
    try:
      return np.asarray([id_map[int(v)] for v in values], np.int64)
    except KeyError as e:
      raise KeyError('class id %s of %r is not in the id map' %
                     (e.args[0], record.source_id)) from None

  return dataclasses.replace(
      record,
      classes=remap(record.classes),
      image_labels=remap(record.image_labels),
      hidden_classes=remap(record.hidden_classes))


def contiguous_id_map(category_ids: Sequence[int]) -> Dict[int, int]:
  """Maps category ids, in the given order, to label-map ids ``1..N``."""
  return {int(c): i + 1 for i, c in enumerate(category_ids)}


def paper_splits(train_records: Sequence[DetectionRecord],
                 val_records: Sequence[DetectionRecord],
                 source_ids: Sequence[int], target_ids: Sequence[int],
                 seed_images: Union[float, Tuple[int, int]],
                 seed: int) -> Dict[str, List[DetectionRecord]]:
  """The five splits of paper §4.2 from train and val annotation records.

  ``source_train``/``source_val``: source side of train/val (source boxes
  only); ``seed``: ``sample_seed`` over the target side of train;
  ``image_level``: the rest of the target side of train, boxes hidden;
  ``target_val``: target side of val. Class ids are renumbered to each
  side's label map (``1..len(source_ids)``, ``1..len(target_ids)``).
  """
  train_source, train_target = split_source_target(train_records, source_ids,
                                                   target_ids)
  val_source, val_target = split_source_target(val_records, source_ids,
                                               target_ids)
  seed_records, rest = sample_seed(train_target, target_ids, seed_images, seed)
  image_level = [to_image_level(r) for r in rest]
  source_map = contiguous_id_map(source_ids)
  target_map = contiguous_id_map(target_ids)

  def remap(records, id_map):
    return [remap_classes(r, id_map) for r in records]
  return {
      Splits.source_train: remap(train_source, source_map),
      Splits.source_val: remap(val_source, source_map),
      Splits.seed: remap(seed_records, target_map),
      Splits.image_level: remap(image_level, target_map),
      Splits.target_val: remap(val_target, target_map),
  }
