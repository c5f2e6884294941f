r"""Generates the synthetic NOTE-RCNN dataset (the default, CPU-sized one).

Writes ``source_train``, ``source_val``, ``seed``, ``image_level`` and
``target_val`` TFRecord shards, ``source_label_map.pbtxt``,
``target_label_map.pbtxt`` and ``manifest.json`` into ``--output_dir``. The
scenes, categories and split sizes are described in
``object_detection_note/data/formats/synthetic_dataset.py`` and ``synthetic_scenes.py``.
Same flags ⇒ byte-identical files.

Example:
  python pipelines/create_synthetic_tfrecords.py --output_dir=data/synthetic \
      --seed=0

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
import dataclasses

from absl import app
from absl import flags
from absl import logging

from object_detection_note.core import cli_errors
from object_detection_note.data.writing import beam_io
from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes

_DEFAULTS = synthetic_scenes.SceneConfig()
# (SceneConfig field, flag type, help) of the scene flags.
_SCENE_FLAGS = (
    ('image_size', 'integer', 'Side of the square images, pixels'),
    ('max_objects', 'integer', 'Most objects per scene'),
    ('mixed_fraction', 'float',
     'Fraction of scenes with both source and target categories'),
    ('min_scale', 'float', 'Smallest object side, fraction of the image side'),
    ('max_scale', 'float', 'Largest object side, fraction of the image side'),
    ('min_visible', 'float',
     'Fraction of every object left visible by the objects drawn over it'),
    ('min_strokes', 'integer', 'Fewest distractor strokes per scene'),
    ('max_strokes', 'integer', 'Most distractor strokes per scene'),
    ('noise_std', 'float', 'Standard deviation of the pixel noise'),
    ('max_decoys', 'integer', 'Most decoys per scene (unlabelled objects '
     "with a target category's colours and texture on another shape)"),
)


def scene_config(flag_values: flags.FlagValues) -> synthetic_scenes.SceneConfig:
  """The ``--preset``'s SceneConfig with the scene flags that are set."""
  overrides = {name: flag_values[name].value for name, _, _ in _SCENE_FLAGS
               if flag_values[name].value is not None}
  return dataclasses.replace(
      synthetic_scenes.SCENE_PRESETS[flag_values.preset], **overrides)


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
  flags.DEFINE_enum(
      'preset', 'default', sorted(synthetic_scenes.SCENE_PRESETS),
      'Scene statistics: "default" (data/synthetic), "noisy" (smaller '
      'objects, heavier occlusion and clutter, decoys: data/synthetic_noisy) '
      'or "paper" (several occluding instances per category, no decoys: '
      'data/synthetic_paper, the paper-regime benchmark). The '
      'scene flags below override single values of the preset.', **fv)
  for name, kind, help_text in _SCENE_FLAGS:
    getattr(flags, 'DEFINE_' + kind)(
        name, None, help_text + ' (default: the preset\'s, %s for '
        '"default").' % getattr(_DEFAULTS, name), **fv)
  flags.DEFINE_integer('num_shards', 1, 'Shards per split.', **fv)
  flags.mark_flag_as_required('output_dir', **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Generates the dataset; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  config = scene_config(f)
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
  cli_errors.run(main, 'create_synthetic_tfrecords',
                 flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
