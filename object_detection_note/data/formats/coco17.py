"""COCO 2017 split into VOC (source) and non-VOC (target) categories (§4.2).

The 20 PASCAL VOC categories, by COCO name, are the source categories; every
other category (60 in COCO 2017) is a target category. Any other
COCO-format dataset works too: its split comes from category names
(``category_split``: flags or a JSON file), and by default the VOC names it
has are source and the rest target. Splits:

  * ``source_train``: train2017 images with a VOC box, VOC boxes only;
  * ``source_val``: val2017 images with a VOC box, VOC boxes only;
  * ``seed``: train2017 target-side images drawn by
    ``dataset_splits.sample_seed`` (average ``seed_images_per_category`` images
    per target category; paper sizes 12, 33, 55, 76, 96), target boxes only;
  * ``image_level``: the other train2017 target-side images, boxes moved to
    ``image/note/hidden/*``;
  * ``target_val``: val2017 images with a non-VOC box, non-VOC boxes only.

An image with boxes of both kinds is on both sides (paper §4.2).

Annotation policy:
  * boxes: COCO ``[x, y, w, h]`` pixels → normalised ``(ymin, xmin, ymax,
    xmax)``, clipped to the image; boxes empty after clipping are dropped.
  * ``iscrowd`` annotations are dropped: they are neither training boxes nor
    image-level labels nor hidden boxes (a crowd region is not one object, and
    mining keeps one box per label). Unlike the OD API's
    ``create_coco_tf_record`` (which keeps them flagged ``is_crowd``), an
    evaluation on ``target_val`` therefore does not ignore detections on crowd
    regions. The manifest's ``statistics`` count crowd, clipped and dropped
    boxes per annotation file.
  * ``source_id`` is the COCO image id as a string (like the OD API);
    ``filename`` is the COCO ``file_name``.

Label maps: each side numbers its categories ``1..N`` in COCO category-id
order (source: person=1 ... tv=20).

The split is computed from the annotation files in the driver; the Beam
pipeline then reads the JPEGs (``tf.io.gfile``, so ``gs://`` works) and writes
the dataset with ``dataset_writer``. The driver passes the annotation-only
records to the pipeline with ``beam.Create``.
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
from PIL import Image
import tensorflow as tf

from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.formats import category_split
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records.tf_example_codec import DetectionRecord

VOC_CATEGORY_NAMES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'boat', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'bottle', 'chair',
    'couch', 'potted plant', 'dining table', 'tv')
PAPER_SEED_SIZES = (12, 33, 55, 76, 96)
# Which annotation file (and image directory) each split comes from.
TRAIN = 'train'
VAL = 'val'
SPLIT_SOURCE = {
    Splits.source_train: TRAIN,
    Splits.seed: TRAIN,
    Splits.image_level: TRAIN,
    Splits.source_val: VAL,
    Splits.target_val: VAL,
}


def load_annotations(path: str) -> Dict[str, Any]:
  """Parsed COCO instances JSON (``tf.io.gfile``)."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('COCO annotation file not found: %s' % path)
  with tf.io.gfile.GFile(path, 'r') as f:
    return json.load(f)


def split_categories(
    coco: Mapping[str, Any],
    source_names: Optional[Sequence[str]] = None,
    target_names: Optional[Sequence[str]] = None,
    origin: str = 'category split',
) -> Tuple[List[Tuple[int, str]], List[Tuple[int, str]]]:
  """``(source, target)`` lists of ``(coco id, name)``, sorted by COCO id.

  Without names, the source side is the 20 VOC categories the data has
  (paper §4.2) and the target side the rest; see ``category_split.resolve``
  for explicit splits.

  Raises:
    ValueError: unknown names, overlapping sides or an empty side.
  """
  categories = sorted((int(c['id']), c['name']) for c in coco['categories'])
  source, target = category_split.resolve(
      [n for _, n in categories], source_names, target_names,
      default_source=VOC_CATEGORY_NAMES, origin=origin)
  return ([(i, n) for i, n in categories if n in source],
          [(i, n) for i, n in categories if n in target])


def coco_box_to_normalized(bbox: Sequence[float], height: int,
                           width: int) -> Tuple[np.ndarray, bool]:
  """COCO ``[x, y, w, h]`` pixels → clipped ``[ymin, xmin, ymax, xmax]``.

  Returns:
    ``(box, clipped)``: float32 ``[4]`` in ``[0, 1]``, and whether clipping
    changed it.
  """
  x, y, w, h = (float(v) for v in bbox)
  raw = np.asarray([y / height, x / width, (y + h) / height, (x + w) / width],
                   np.float64)
  box = np.clip(raw, 0.0, 1.0)
  return box.astype(np.float32), bool(np.any(box != raw))


def records_from_coco(
    coco: Mapping[str, Any]) -> Tuple[List[DetectionRecord], Dict[str, int]]:
  """Annotation-only records (COCO category ids) of every image, by image id.

  Returns:
    ``(records, statistics)``: one record per image (images without any kept
    box included, with no boxes), and counts ``images``, ``annotations``,
    ``crowd_boxes_dropped``, ``clipped_boxes``, ``empty_boxes_dropped``,
    ``images_without_boxes``.
  """
  names = {int(c['id']): c['name'] for c in coco['categories']}
  by_image = {}
  for ann in coco.get('annotations', []):
    by_image.setdefault(int(ann['image_id']), []).append(ann)
  stats = dict.fromkeys(('images', 'annotations', 'crowd_boxes_dropped',
                         'clipped_boxes', 'empty_boxes_dropped',
                         'images_without_boxes'), 0)
  records = []
  for image in sorted(coco['images'], key=lambda im: int(im['id'])):
    height, width = int(image['height']), int(image['width'])
    boxes, classes = [], []
    annotations = sorted(by_image.get(int(image['id']), []),
                         key=lambda a: int(a.get('id', 0)))
    for ann in annotations:
      stats['annotations'] += 1
      if ann.get('iscrowd', 0):
        stats['crowd_boxes_dropped'] += 1
        continue
      box, clipped = coco_box_to_normalized(ann['bbox'], height, width)
      if box[2] <= box[0] or box[3] <= box[1]:
        stats['empty_boxes_dropped'] += 1
        continue
      stats['clipped_boxes'] += int(clipped)
      boxes.append(box)
      classes.append(int(ann['category_id']))
    stats['images'] += 1
    stats['images_without_boxes'] += int(not boxes)
    records.append(DetectionRecord(
        image_bytes=b'', source_id=str(image['id']), height=height,
        width=width, image_format='jpeg', filename=image['file_name'],
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4), classes=classes,
        class_texts=[names[c] for c in classes]))
  return records, stats


def build_annotation_splits(
    train_coco: Mapping[str, Any], val_coco: Mapping[str, Any],
    seed_images_per_category: float, seed: int,
    source_names: Optional[Sequence[str]] = None,
    target_names: Optional[Sequence[str]] = None,
    origin: str = 'category split',
) -> Tuple[Dict[str, List[DetectionRecord]], List[str], List[str], Dict[str,
                                                                        Any]]:
  """Annotation-only split records with side label-map ids.

  Returns:
    ``(splits, source_names, target_names, statistics)``.

  Raises:
    ValueError: if train and val categories differ, or the category split
      is invalid (``split_categories``).
  """
  source, target = split_categories(train_coco, source_names, target_names,
                                    origin)
  if (source, target) != split_categories(val_coco, source_names,
                                          target_names, origin):
    raise ValueError('train and val annotation files list different '
                     'categories')
  source_ids = [i for i, _ in source]
  target_ids = [i for i, _ in target]
  train_records, train_stats = records_from_coco(train_coco)
  val_records, val_stats = records_from_coco(val_coco)
  splits = dataset_splits.paper_splits(
      train_records, val_records, source_ids, target_ids,
      seed_images_per_category, seed)
  statistics = {TRAIN: train_stats, VAL: val_stats}
  return splits, [n for _, n in source], [n for _, n in target], statistics


def attach_image(record: DetectionRecord, image_dir: str) -> DetectionRecord:
  """``record`` with the bytes of ``<image_dir>/<filename>``.

  Raises:
    FileNotFoundError: naming the missing image file.
    ValueError: if the file is not a JPEG of the annotated size.
  """
  path = os.path.join(image_dir, record.filename)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError('COCO image file not found: %s (image id %s)' %
                            (path, record.source_id))
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    with Image.open(tf.io.gfile.GFile(path, 'rb')) as image:
      if image.format != 'JPEG':
        raise ValueError('%s is %s, expected JPEG' % (path, image.format))
      if image.size != (record.width, record.height):
        raise ValueError('%s is %dx%d but annotated %dx%d (w x h)' %
                         ((path,) + image.size + (record.width,
                                                  record.height)))
      image.load()  # decodes: a corrupt or truncated JPEG fails here
  except OSError as error:  # PIL's errors for unreadable image data
    raise ValueError('COCO image file %s (image id %s): image/encoded does '
                     'not decode: %s' % (path, record.source_id,
                                         error)) from None
  return dataclasses.replace(record, image_bytes=data)


def create_dataset(output_dir: str,
                   train_annotations_file: str,
                   val_annotations_file: str,
                   train_image_dir: str,
                   val_image_dir: str,
                   seed_images_per_category: float = 12.0,
                   seed: int = 0,
                   num_shards: int = 10,
                   options: Optional[PipelineOptions] = None,
                   source_categories: Optional[Sequence[str]] = None,
                   target_categories: Optional[Sequence[str]] = None,
                   split_origin: str = 'category split') -> None:
  """Converts COCO-format data into the NOTE-RCNN dataset layout with Beam.

  ``source_categories`` / ``target_categories``: the category split by name
  (``category_split``); both None = the paper's VOC / non-VOC split.
  """
  splits, source_names, target_names, statistics = build_annotation_splits(
      load_annotations(train_annotations_file),
      load_annotations(val_annotations_file), seed_images_per_category, seed,
      source_categories, target_categories, split_origin)
  image_dirs = {TRAIN: train_image_dir, VAL: val_image_dir}
  parameters = {
      'train_annotations_file': train_annotations_file,
      'val_annotations_file': val_annotations_file,
      'train_image_dir': train_image_dir,
      'val_image_dir': val_image_dir,
      'seed_images_per_category': seed_images_per_category,
      'seed': seed,
      'num_shards': num_shards,
      'source_categories': source_names,
      'target_categories': target_names,
  }
  options = options or beam_io.pipeline_options([])
  pairs = [(split, r) for split in sorted(splits) for r in splits[split]]
  with beam.Pipeline(options=options) as pipeline:
    _ = (pipeline
         | 'CreateRecords' >> beam.Create(pairs)
         | 'ReadImages' >> beam.MapTuple(
             lambda split, r: (split, attach_image(
                 r, image_dirs[SPLIT_SOURCE[split]])))
         | 'WriteDataset' >> dataset_writer.WriteDetectionDataset(
             output_dir, source_names, target_names, parameters=parameters,
             statistics=statistics, num_shards=num_shards,
             splits=sorted(splits)))
