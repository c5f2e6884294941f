r"""Converts ILSVRC 2013 DET into NOTE-RCNN's 100 → 100 category dataset.

Paper §4.2 (the LSDA setting): the 200 DET categories sorted alphabetically
by name, the first 100 source and the other 100 target; val1 augmented with
train images (``--train_augment_list``) for training, val2 for validation:

  * ``source_train``: augmented-val1 images with a source box (source boxes);
  * ``source_val``: val2 images with a source box (source boxes);
  * ``seed``: ``--seed_images_min``..``--seed_images_max`` images drawn per
    target category from augmented val1 (target boxes);
  * ``image_level``: the other augmented-val1 target-side images, their boxes
    moved to ``image/note/hidden/*``;
  * ``target_val``: val2 images with a target box (target boxes).

Writes the shards, ``source_label_map.pbtxt``, ``target_label_map.pbtxt`` and
``manifest.json`` (its ``statistics`` count images per list, images with no
category box, clipped and skipped boxes/images, re-encoded images) into
``--output_dir``. Box and category rules: ``object_detection_note/data/formats/ilsvrc13.py``.

Invalid annotations (``--invalid_annotation_policy``): ``error`` (default)
stops on the first one with a message naming the file; ``skip`` drops the box
(unknown WordNet id, box outside the image or empty) or the image (missing,
malformed or inconsistent XML or image), logs it and counts it in the manifest.

Example (R-CNN's val1/val2 lists in the devkit's data/det_lists):
  python pipelines/create_ilsvrc13_tfrecords.py \
      --devkit_dir=ILSVRC13/ILSVRC2013_devkit \
      --val_image_dir=ILSVRC13/ILSVRC2013_DET_val \
      --val_annotation_dir=ILSVRC13/ILSVRC2013_DET_bbox_val \
      --train_image_dir=ILSVRC13/ILSVRC2013_DET_train \
      --train_annotation_dir=ILSVRC13/ILSVRC2013_DET_bbox_train \
      --train_augment_list=ILSVRC13/train1k.txt --output_dir=data/ilsvrc13

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
import collections
import dataclasses
import os
from typing import Any, Dict, Optional

from absl import app
from absl import flags
from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from object_detection_note.core import cli_errors
from object_detection_note.core import file_io
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.formats import ilsvrc13

VAL1 = 'val1'
VAL2 = 'val2'
TRAIN_AUGMENT = 'train_augment'
ERROR = 'error'
SKIP = 'skip'
_STATS = 'stats'


def _read_lists(lists):
  """``{origin: names}``; raises if an image (source id) is listed twice."""
  names = {origin: ilsvrc13.read_image_list(path)
           for origin, path in lists.items()}
  first = {}
  for origin, path in lists.items():
    for name in names[origin]:
      source_id = ilsvrc13.source_id_of(name)
      if source_id in first and first[source_id] != origin:
        raise ValueError('image %s is listed in both %s and %s (%s)' %
                         (source_id, lists[first[source_id]], path, name))
      first.setdefault(source_id, origin)
  return names


def _split_all(items, source_ids, target_ids, seed_images, seed):
  """All ``(origin, ParsedImage)`` → ``(split, record, path)`` + statistics."""
  items = sorted(items, key=lambda item: (
      item[1].record.source_id if item[1].record else '', item[0]))
  problems = collections.Counter(
      {key: 0 for key in (ilsvrc13.PROBLEM_CLIPPED,
                          ilsvrc13.PROBLEM_UNKNOWN_WNID,
                          ilsvrc13.PROBLEM_BOX_OUTSIDE,
                          ilsvrc13.PROBLEM_EMPTY_BOX,
                          ilsvrc13.PROBLEM_BAD_FILE)})
  listed = collections.Counter()
  no_boxes = collections.Counter()
  by_origin = collections.defaultdict(list)
  paths, reencode = {}, {}
  for origin, parsed in items:
    listed[origin] += 1
    problems.update(parsed.problems)
    if parsed.record is None:
      continue
    if not parsed.record.classes.size:
      no_boxes[origin] += 1
    by_origin[origin].append(parsed.record)
    paths[parsed.record.source_id] = parsed.image_path
    reencode[parsed.record.source_id] = parsed.reencode
  splits = ilsvrc13.assign_splits(
      by_origin[VAL1] + by_origin[TRAIN_AUGMENT], by_origin[VAL2],
      source_ids, target_ids, seed_images, seed)
  written = set()
  for split, records in splits.items():
    for record in records:
      written.add(record.source_id)
      yield split, record, paths[record.source_id]
  origins = (VAL1, VAL2, TRAIN_AUGMENT)
  yield beam.pvalue.TaggedOutput(_STATS, {
      'images_listed': {o: listed[o] for o in origins},
      'images_without_category_boxes': {o: no_boxes[o] for o in origins},
      'images_reencoded_as_rgb_jpeg': sum(reencode[i] for i in written),
      'annotation_problems': dict(problems),
  })


def _attach_image(record, image_path):
  """``record`` with its pixels (re-encoded as RGB JPEG when needed)."""
  data, image_format, width, height, _ = ilsvrc13.read_image_bytes(image_path)
  if (width, height) != (record.width, record.height):
    raise ValueError('%s is %dx%d but was %dx%d when parsed' %
                     (image_path, width, height, record.width, record.height))
  return dataclasses.replace(record, image_bytes=data,
                             image_format=image_format)


def _add_statistics(manifest_path: str, statistics: Dict[str, Any]) -> str:
  """Adds the converter's counts to ``statistics`` of the written manifest."""
  manifest = dataset_writer.read_manifest(os.path.dirname(manifest_path))
  manifest['statistics'].update(statistics)
  file_io.write_atomically(
      manifest_path, dataset_writer.manifest_json(manifest))
  return manifest_path


def create_dataset(output_dir: str,
                   synsets_file: str,
                   val_image_dir: str,
                   val_annotation_dir: str,
                   val1_list: str,
                   val2_list: str,
                   train_image_dir: Optional[str] = None,
                   train_annotation_dir: Optional[str] = None,
                   train_augment_list: Optional[str] = None,
                   num_source_categories: int = 100,
                   seed_images_min: int = 10,
                   seed_images_max: int = 20,
                   seed: int = 0,
                   pixel_index_base: int = 1,
                   clip_tolerance_pixels: float = 1.0,
                   invalid_annotation_policy: str = ERROR,
                   num_shards: int = 10,
                   options: Optional[PipelineOptions] = None) -> None:
  """Runs the conversion (see the module docstring) with Beam.

  Lists, categories and the split are checked in the driver before the
  pipeline starts; XML files and image headers are parsed in parallel, the
  split is drawn in one step from the annotation-only records, and images are
  read in parallel once their split is known.

  Raises:
    ValueError: on inconsistent arguments, categories or lists, and (policy
      ``error``) on the first invalid annotation, naming its file.
  """
  if invalid_annotation_policy not in (ERROR, SKIP):
    raise ValueError('invalid_annotation_policy must be %r or %r, got %r' %
                     (ERROR, SKIP, invalid_annotation_policy))
  if not 0 <= seed_images_min <= seed_images_max:
    raise ValueError('need 0 <= seed_images_min (%d) <= seed_images_max (%d)'
                     % (seed_images_min, seed_images_max))
  if train_augment_list and not (train_image_dir and train_annotation_dir):
    raise ValueError('train_augment_list needs train_image_dir and '
                     'train_annotation_dir')
  source, target = ilsvrc13.split_categories(
      ilsvrc13.read_synsets(synsets_file), num_source_categories)
  ordered = source + target
  wnid_to_id = {s.wnid: i + 1 for i, s in enumerate(ordered)}
  id_to_name = {i + 1: s.name for i, s in enumerate(ordered)}
  source_ids = list(range(1, len(source) + 1))
  target_ids = list(range(len(source) + 1, len(ordered) + 1))
  lists = {VAL1: val1_list, VAL2: val2_list}
  roots = {VAL1: (val_image_dir, val_annotation_dir),
           VAL2: (val_image_dir, val_annotation_dir)}
  if train_augment_list:
    lists[TRAIN_AUGMENT] = train_augment_list
    roots[TRAIN_AUGMENT] = (train_image_dir, train_annotation_dir)
  names = _read_lists(lists)
  logging.info('ILSVRC 2013: %s images listed; source %s..%s, target %s..%s',
               {o: len(n) for o, n in names.items()}, source[0].name,
               source[-1].name, target[0].name, target[-1].name)
  parameters = {
      'synsets_file': synsets_file, 'val_image_dir': val_image_dir,
      'val_annotation_dir': val_annotation_dir, 'val1_list': val1_list,
      'val2_list': val2_list, 'train_image_dir': train_image_dir,
      'train_annotation_dir': train_annotation_dir,
      'train_augment_list': train_augment_list,
      'num_source_categories': num_source_categories,
      'category_order': 'name, case-insensitive',
      'seed_images_min': seed_images_min, 'seed_images_max': seed_images_max,
      'seed': seed, 'pixel_index_base': pixel_index_base,
      'clip_tolerance_pixels': clip_tolerance_pixels,
      'invalid_annotation_policy': invalid_annotation_policy,
      'num_shards': num_shards,
  }
  parse_options = dict(
      wnid_to_id=wnid_to_id, id_to_name=id_to_name,
      pixel_index_base=pixel_index_base, clip_tolerance=clip_tolerance_pixels,
      skip_invalid=invalid_annotation_policy == SKIP)

  def parse(origin_and_name):
    origin, name = origin_and_name
    image_dir, annotation_dir = roots[origin]
    return origin, ilsvrc13.parse_image(name, image_dir, annotation_dir,
                                        **parse_options)

  options = options or beam_io.pipeline_options([])
  with beam.Pipeline(options=options) as pipeline:
    split_out = (
        pipeline
        | 'Lists' >> beam.Create(sorted(lists.items()))
        | 'ReadLists' >> beam.FlatMapTuple(
            lambda origin, path: [(origin, name) for name in
                                  ilsvrc13.read_image_list(path)])
        | 'SpreadNames' >> beam.Reshuffle()
        | 'ParseAnnotations' >> beam.Map(parse)
        | 'Gather' >> beam.combiners.ToList()
        | 'Split' >> beam.FlatMap(
            _split_all, source_ids, target_ids,
            (seed_images_min, seed_images_max), seed).with_outputs(
                _STATS, main='records'))
    by_split = {
        split: (split_out.records
                | 'Select_' + split >> beam.Filter(
                    lambda item, split=split: item[0] == split)
                | 'Spread_' + split >> beam.Reshuffle()
                | 'ReadImages_' + split >> beam.MapTuple(
                    lambda _, record, path: _attach_image(record, path)))
        for split in Splits.all
    }
    _ = (by_split
         | 'Write' >> dataset_writer.WriteDetectionDataset(
             output_dir, [s.name for s in source], [s.name for s in target],
             parameters=parameters, num_shards=num_shards)
         | 'AddStatistics' >> beam.Map(
             _add_statistics,
             beam.pvalue.AsSingleton(split_out[_STATS])))


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this binary's flags (called by ``__main__`` and by tests)."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string(
      'devkit_dir', None, 'ILSVRC2013_devkit; supplies defaults for '
      '--synsets_file (data/meta_det.mat) and --val1_list / --val2_list '
      '(data/det_lists/val1.txt, val2.txt, as in R-CNN).', **fv)
  flags.DEFINE_string(
      'synsets_file', None, 'The DET categories: meta_det.mat, or a text/CSV '
      'list of "wnid name" lines.', **fv)
  flags.DEFINE_string('val_image_dir', None, 'ILSVRC2013_DET_val.', **fv)
  flags.DEFINE_string('val_annotation_dir', None,
                      'ILSVRC2013_DET_bbox_val (one XML per image).', **fv)
  flags.DEFINE_string('val1_list', None, 'Images of val1, one a line.', **fv)
  flags.DEFINE_string('val2_list', None, 'Images of val2, one a line.', **fv)
  flags.DEFINE_string('train_image_dir', None, 'ILSVRC2013_DET_train.', **fv)
  flags.DEFINE_string('train_annotation_dir', None,
                      'ILSVRC2013_DET_bbox_train.', **fv)
  flags.DEFINE_string(
      'train_augment_list', None, 'Train images added to val1 (so that each '
      'class has ~1000 boxes), one a line; names like n02672831_11478 are '
      'also looked for in their synset folder.', **fv)
  flags.DEFINE_string('output_dir', None,
                      'Directory for shards, label maps, manifest.', **fv)
  flags.DEFINE_integer('num_source_categories', 100,
                       'The first N categories in alphabetical order are '
                       'source, the rest target.', **fv)
  flags.DEFINE_integer('seed_images_min', 10,
                       'Fewest seed images per target category.', **fv)
  flags.DEFINE_integer('seed_images_max', 20,
                       'Most seed images per target category.', **fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the seed-image sampling.', **fv)
  flags.DEFINE_integer('pixel_index_base', 1,
                       'Index of the first pixel in XML boxes (1: PASCAL).',
                       **fv)
  flags.DEFINE_float('clip_tolerance_pixels', 1.0,
                     'Boxes outside the image by at most this are clipped.',
                     **fv)
  flags.DEFINE_enum('invalid_annotation_policy', ERROR, [ERROR, SKIP],
                    'error: stop on the first invalid annotation; skip: drop '
                    'and count it.', **fv)
  flags.DEFINE_integer('num_shards', 10, 'Shards per split.', **fv)
  flags.mark_flags_as_required(
      ['val_image_dir', 'val_annotation_dir', 'output_dir'], **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the converter; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  devkit_data = os.path.join(f.devkit_dir, 'data') if f.devkit_dir else None
  defaults = {
      'synsets_file': 'meta_det.mat',
      'val1_list': os.path.join('det_lists', 'val1.txt'),
      'val2_list': os.path.join('det_lists', 'val2.txt'),
  }
  paths = {}
  for name, default in defaults.items():
    paths[name] = f[name].value or (
        os.path.join(devkit_data, default) if devkit_data else None)
    if not paths[name]:
      raise app.UsageError('--%s (or --devkit_dir) is required' % name)
  create_dataset(
      f.output_dir, paths['synsets_file'], f.val_image_dir,
      f.val_annotation_dir, paths['val1_list'], paths['val2_list'],
      train_image_dir=f.train_image_dir,
      train_annotation_dir=f.train_annotation_dir,
      train_augment_list=f.train_augment_list,
      num_source_categories=f.num_source_categories,
      seed_images_min=f.seed_images_min, seed_images_max=f.seed_images_max,
      seed=f.seed, pixel_index_base=f.pixel_index_base,
      clip_tolerance_pixels=f.clip_tolerance_pixels,
      invalid_annotation_policy=f.invalid_annotation_policy,
      num_shards=f.num_shards,
      options=beam_io.pipeline_options(argv[1:]))
  logging.info('ILSVRC 2013 NOTE-RCNN dataset written to %s', f.output_dir)


if __name__ == '__main__':
  define_flags()
  cli_errors.run(main, 'create_ilsvrc13_tfrecords',
                 flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
