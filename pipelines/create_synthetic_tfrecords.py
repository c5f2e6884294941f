r"""Generates the synthetic NOTE-RCNN dataset (the default, CPU-sized one).

Writes ``source_train``, ``source_val``, ``seed``, ``image_level`` and
``target_val`` TFRecord shards, ``source_label_map.pbtxt``,
``target_label_map.pbtxt`` and ``manifest.json`` into ``--output_dir``. The
scenes, categories and split sizes are described in
``object_detection_note/data/synthetic_dataset.py`` and ``synthetic_scenes.py``.
Same flags ⇒ byte-identical files.

Example:
  python pipelines/create_synthetic_tfrecords.py --output_dir=data/synthetic \
      --seed=0

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
from absl import app
from absl import flags
from absl import logging

from object_detection_note.data import beam_io
from object_detection_note.data import synthetic_dataset
from object_detection_note.data import synthetic_scenes

_DEFAULTS = synthetic_scenes.SceneConfig()


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this binary's flags (called by ``__main__`` and by tests)."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string('output_dir', None,
                      'Directory for shards, label maps, manifest.', **fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the scenes and of the seed-image '
                       'sampling.', **fv)
  flags.DEFINE_integer(
      'num_train_images', 720,
      'Scenes of the train pool (source_train, seed, image_level).', **fv)
  flags.DEFINE_integer(
      'num_val_images', 180,
      'Scenes of the val pool (source_val, target_val).', **fv)
  flags.DEFINE_float(
      'seed_images_per_category', 4.0,
      'Average number of seed images drawn per target category.', **fv)
  flags.DEFINE_integer('image_size', _DEFAULTS.image_size,
                       'Side of the square images, pixels.', **fv)
  flags.DEFINE_integer('max_objects', _DEFAULTS.max_objects,
                       'Most objects per scene.', **fv)
  flags.DEFINE_float(
      'mixed_fraction', _DEFAULTS.mixed_fraction,
      'Fraction of scenes with both source and target categories.', **fv)
  flags.DEFINE_integer('num_shards', 1, 'Shards per split.', **fv)
  flags.mark_flag_as_required('output_dir', **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Generates the dataset; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  config = synthetic_scenes.SceneConfig(
      image_size=f.image_size, max_objects=f.max_objects,
      mixed_fraction=f.mixed_fraction)
  synthetic_dataset.create_dataset(
      f.output_dir,
      seed=f.seed,
      num_train_images=f.num_train_images,
      num_val_images=f.num_val_images,
      seed_images_per_category=f.seed_images_per_category,
      config=config,
      num_shards=f.num_shards,
      options=beam_io.pipeline_options(argv[1:]))
  logging.info('Synthetic dataset written to %s', f.output_dir)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
