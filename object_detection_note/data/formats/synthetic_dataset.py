"""The synthetic dataset: scenes of ``synthetic_scenes`` split like COCO (§4.2).

Two pools of scenes are generated: ``train`` (pool 0) and ``val`` (pool 1).
The split functions of ``dataset_splits`` then apply the paper's COCO rules:

  * ``source_train``: source view of the train pool;
  * ``source_val``: source view of the val pool;
  * ``seed``: ``seed_images_per_category`` (average) target-view train images
    per target category, boxes kept (B0);
  * ``image_level``: the other target-view train images, boxes moved to
    ``image/note/hidden/*`` (A);
  * ``target_val``: target view of the val pool.

Defaults (CPU demo sized; each a flag of ``pipelines/
create_synthetic_tfrecords.py``): 720 train and 180 val scenes of 128x128 px
PNG with 1-8 objects, 20% of scenes mixing source and target categories, and
4 seed images drawn per target category (24 in all; as seed images often show
several target categories, 7-13 of them contain a given category), so T^0 is
clearly imperfect. With ``--seed=0`` this gives 417 source_train (1574
boxes), 102 source_val, 24 seed (111 boxes), 405 image_level (635 image-level
labels, 1530 hidden boxes) and 119 target_val images, ~36 MB, in about a
minute on one CPU core.

Annotations are computed first, in the driver (``build_annotation_splits``,
cheap: no pixels); the pixels are rendered afterwards per record
(``attach_image``), so Beam workers render in parallel. Every image is a pure
function of ``(seed, pool, index)``: same arguments ⇒ byte-identical output.
"""
import dataclasses
from typing import Dict, List, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np

from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import record_errors
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.data.records import tf_example_codec
from object_detection_note.data.records.tf_example_codec import DetectionRecord

POOLS = ('train', 'val')
TRAIN_POOL = 0
VAL_POOL = 1
_PREFIX = 'synthetic'


def source_id(pool: int, index: int) -> str:
  return '%s-%s-%06d' % (_PREFIX, POOLS[pool], index)


def parse_source_id(value: str):
  """Inverse of ``source_id``: returns ``(pool, index)``."""
  prefix, pool, index = value.split('-')
  if prefix != _PREFIX:
    raise ValueError('not a synthetic source id: %r' % value)
  return POOLS.index(pool), int(index)


def annotation_record(seed: int, pool: int, index: int,
                      config: synthetic_scenes.SceneConfig) -> DetectionRecord:
  """Annotation-only record of one scene (no pixels; global category ids)."""
  objects = synthetic_scenes.scene_layout(seed, pool, index, config)
  size = float(config.image_size)
  boxes = np.asarray([o.box for o in objects], np.float32).reshape(-1, 4)
  classes = [o.category_id for o in objects]
  return DetectionRecord(
      image_bytes=b'',
      source_id=source_id(pool, index),
      height=config.image_size,
      width=config.image_size,
      image_format='png',
      filename=source_id(pool, index) + '.png',
      boxes=boxes / size,
      classes=classes,
      class_texts=[synthetic_scenes.CATEGORIES[c - 1].name for c in classes])


def attach_image(record: DetectionRecord, seed: int,
                 config: synthetic_scenes.SceneConfig) -> DetectionRecord:
  """``record`` with its scene rendered and encoded as PNG.

  Raises:
    ValueError: the encoded image does not decode (``record_errors``'
      decode check, as mining and the COCO/ILSVRC converters check theirs).
  """
  pool, index = parse_source_id(record.source_id)
  pixels, _ = synthetic_scenes.render_scene(seed, pool, index, config)
  image_bytes = tf_example_codec.encode_image(pixels, 'png')
  problem = record_errors.image_problem(image_bytes)
  if problem:
    raise ValueError('synthetic scene %s (%s): %s' % (
        record.source_id, record.filename, problem))
  return dataclasses.replace(record, image_bytes=image_bytes)


def build_annotation_splits(
    seed: int, num_train_images: int, num_val_images: int,
    seed_images_per_category: float,
    config: synthetic_scenes.SceneConfig) -> Dict[str, List[DetectionRecord]]:
  """Annotation-only records of every split, with side label-map ids.

  Source splits use ids ``1..6`` of ``SOURCE_NAMES``; target splits ids
  ``1..6`` of ``TARGET_NAMES``.
  """
  pools = [[annotation_record(seed, pool, i, config) for i in range(n)]
           for pool, n in ((TRAIN_POOL, num_train_images),
                           (VAL_POOL, num_val_images))]
  source_ids = synthetic_scenes.SOURCE_IDS
  target_ids = synthetic_scenes.TARGET_IDS
  return dataset_splits.paper_splits(
      pools[TRAIN_POOL], pools[VAL_POOL], source_ids, target_ids,
      seed_images_per_category, seed)


def scene_parameters(config: synthetic_scenes.SceneConfig) -> Dict:
  """``config`` as a dict for the manifest.

  Fields of ``LATER_SCENE_FIELDS`` are left out at their neutral value, so
  datasets made before they existed keep byte-identical manifests.
  """
  out = dataclasses.asdict(config)
  for name, neutral in synthetic_scenes.LATER_SCENE_FIELDS.items():
    if out[name] == neutral:
      del out[name]
  return out


def _both_sides(splits, source_split, target_splits):
  source = {r.source_id for r in splits[source_split]}
  target = {r.source_id for s in target_splits for r in splits[s]}
  return len(source & target)


def create_dataset(output_dir: str,
                   seed: int = 0,
                   num_train_images: int = 720,
                   num_val_images: int = 180,
                   seed_images_per_category: float = 4.0,
                   config: synthetic_scenes.SceneConfig = (
                       synthetic_scenes.SceneConfig()),
                   num_shards: int = 1,
                   options: Optional[PipelineOptions] = None) -> None:
  """Generates the synthetic dataset into ``output_dir`` with Beam.

  See the module docstring for the splits; ``dataset_writer`` for the files.
  """
  splits = build_annotation_splits(seed, num_train_images, num_val_images,
                                   seed_images_per_category, config)
  parameters = {
      'seed': seed,
      'num_train_images': num_train_images,
      'num_val_images': num_val_images,
      'seed_images_per_category': seed_images_per_category,
      'num_shards': num_shards,
      'scene_config': scene_parameters(config),
  }
  statistics = {
      'train_images_on_both_sides': _both_sides(
          splits, Splits.source_train, (Splits.seed, Splits.image_level)),
      'val_images_on_both_sides': _both_sides(
          splits, Splits.source_val, (Splits.target_val,)),
  }
  options = options or beam_io.pipeline_options([])
  pairs = [(split, r) for split in sorted(splits) for r in splits[split]]
  with beam.Pipeline(options=options) as pipeline:
    _ = (pipeline
         | 'CreateRecords' >> beam.Create(pairs)
         | 'Render' >> beam.MapTuple(
             lambda split, r: (split, attach_image(r, seed, config)))
         | 'WriteDataset' >> dataset_writer.WriteDetectionDataset(
             output_dir, synthetic_scenes.SOURCE_NAMES,
             synthetic_scenes.TARGET_NAMES, parameters=parameters,
             statistics=statistics, num_shards=num_shards,
             splits=sorted(splits)))
