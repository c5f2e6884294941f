r"""Converts COCO 2017 into NOTE-RCNN's VOC → non-VOC dataset (paper §4.2).

Writes ``source_train``, ``source_val``, ``seed``, ``image_level`` and
``target_val`` TFRecord shards, both label maps and ``manifest.json`` into
``--output_dir``; see ``object_detection_note/data/coco17.py`` for the split
and annotation rules (crowd boxes are dropped and counted).

Example:
  python pipelines/create_coco17_tfrecords.py \
      --train_annotations_file=coco/annotations/instances_train2017.json \
      --val_annotations_file=coco/annotations/instances_val2017.json \
      --train_image_dir=coco/train2017 --val_image_dir=coco/val2017 \
      --output_dir=data/coco17_seed12 --seed_images_per_category=12

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
from absl import app
from absl import flags
from absl import logging

from object_detection_note.data import beam_io
from object_detection_note.data import coco17


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
  flags.mark_flags_as_required([
      'train_annotations_file', 'val_annotations_file', 'train_image_dir',
      'val_image_dir', 'output_dir'
  ], **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the converter; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  coco17.create_dataset(
      f.output_dir,
      train_annotations_file=f.train_annotations_file,
      val_annotations_file=f.val_annotations_file,
      train_image_dir=f.train_image_dir,
      val_image_dir=f.val_image_dir,
      seed_images_per_category=f.seed_images_per_category,
      seed=f.seed,
      num_shards=f.num_shards,
      options=beam_io.pipeline_options(argv[1:]))
  logging.info('COCO 2017 NOTE-RCNN dataset written to %s', f.output_dir)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
