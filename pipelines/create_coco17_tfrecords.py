r"""Converts COCO 2017 into NOTE-RCNN's VOC → non-VOC dataset (paper §4.2),
or any COCO-format dataset with a category split given by name.

Writes ``source_train``, ``source_val``, ``seed``, ``image_level`` and
``target_val`` TFRecord shards, both label maps and ``manifest.json`` into
``--output_dir``; see ``object_detection_note/data/formats/coco17.py`` for the split
and annotation rules (crowd boxes are dropped and counted).

Example:
  python pipelines/create_coco17_tfrecords.py \
      --train_annotations_file=coco/annotations/instances_train2017.json \
      --val_annotations_file=coco/annotations/instances_val2017.json \
      --train_image_dir=coco/train2017 --val_image_dir=coco/val2017 \
      --output_dir=data/coco17_seed12 --seed_images_per_category=12

  Another COCO-format dataset, its own split:
  python pipelines/create_coco17_tfrecords.py ... \
      --source_categories=cat,dog --output_dir=data/mine   # rest: target
  (or --category_split_file=split.json with {"source": [...], "target": [...]})

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
from absl import app
from absl import flags
from absl import logging

from object_detection_note.core import cli_errors
from object_detection_note.data.writing import beam_io
from object_detection_note.data.formats import category_split
from object_detection_note.data.formats import coco17


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this binary's flags (called by ``__main__`` and by tests)."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string('train_annotations_file', None,
                      'instances_train2017.json.', **fv)
  flags.DEFINE_string('val_annotations_file', None,
                      'instances_val2017.json.', **fv)
  flags.DEFINE_string('train_image_dir', None,
                      'Directory of the train2017 JPEGs.', **fv)
  flags.DEFINE_string('val_image_dir', None,
                      'Directory of the val2017 JPEGs.', **fv)
  flags.DEFINE_string('output_dir', None,
                      'Directory for shards, label maps, manifest.', **fv)
  flags.DEFINE_float(
      'seed_images_per_category', 12.0,
      'Average number of seed images per target category (paper: 12, 33, '
      '55, 76, 96).', **fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the seed-image sampling.', **fv)
  flags.DEFINE_integer('num_shards', 10, 'Shards per split.', **fv)
  flags.DEFINE_list(
      'source_categories', None, 'Source category names (comma-separated); '
      'every other category is target unless --target_categories is given. '
      'Default: the 20 PASCAL VOC names the data has (paper §4.2).', **fv)
  flags.DEFINE_list(
      'target_categories', None, 'Target category names; every other '
      'category is source unless --source_categories is given.', **fv)
  flags.DEFINE_string(
      'category_split_file', None, 'JSON {"source": [names], "target": '
      '[names]} (either optional), instead of the two flags above.', **fv)
  flags.mark_flags_as_required([
      'train_annotations_file', 'val_annotations_file', 'train_image_dir',
      'val_image_dir', 'output_dir'
  ], **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the converter; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  source, target = f.source_categories, f.target_categories
  origin = '--source_categories/--target_categories'
  if f.category_split_file:
    if source is not None or target is not None:
      raise app.UsageError('--category_split_file replaces --source_categories '
                           'and --target_categories: give one or the other')
    source, target = category_split.read_split_file(f.category_split_file)
    origin = f.category_split_file
  coco17.create_dataset(
      f.output_dir,
      train_annotations_file=f.train_annotations_file,
      val_annotations_file=f.val_annotations_file,
      train_image_dir=f.train_image_dir,
      val_image_dir=f.val_image_dir,
      seed_images_per_category=f.seed_images_per_category,
      seed=f.seed,
      num_shards=f.num_shards,
      options=beam_io.pipeline_options(argv[1:]),
      source_categories=source, target_categories=target,
      split_origin=origin)
  logging.info('COCO 2017 NOTE-RCNN dataset written to %s', f.output_dir)


if __name__ == '__main__':
  define_flags()
  cli_errors.run(main, 'create_coco17_tfrecords',
                 flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
