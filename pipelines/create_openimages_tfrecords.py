r"""Converts OpenImages v4 image-level labels into NOTE-RCNN's set A.

Paper §4.2: the seed set B0 is all of COCO (written by the COCO converter) and
the OpenImages v4 train images, with image-level labels only, are the
image-level set A. This writes into ``--output_dir``:

  * ``image_level`` shards: one record per image with at least one positive
    (``Confidence == 1``) label matched to ``--target_label_map``; the labels
    are ``image/class/label`` ids of that label map; no boxes, no hidden boxes
    (OpenImages boxes are not used). Images with no matched label are dropped.
  * ``target_label_map.pbtxt``: the target label map's names, ids 1..N (its
    ids must already be 1..N, so that the seed set's ids are these);
    ``source_label_map.pbtxt``: ``--source_label_map``, by default the target
    one (with all of COCO as B0, the detector starting the loop knows the same
    categories).
  * ``manifest.json``; its ``statistics`` count images and labels read,
    matched and dropped, and list every OpenImages class with positive labels
    that matched no target category, with its dropped-label count, plus the
    target categories no class matched. The log repeats the largest ones.

Class matching rules: ``object_detection_note/data/formats/openimages.py``.

The label CSV is streamed (``ReadFromText``, grouped by ImageID), never loaded
into one dict; only the class lists live in the driver.

Example:
  python pipelines/create_openimages_tfrecords.py \
      --image_labels_csv=oid/train-annotations-human-imagelabels.csv \
      --class_descriptions_csv=oid/class-descriptions.csv \
      --image_dir=oid/train --target_label_map=data/coco_all/target_label_map.pbtxt \
      --class_name_map=configs/openimages_to_coco.csv \
      --output_dir=data/openimages_v4 --num_shards=256 --runner=DataflowRunner ...

Flags this script does not know are Beam pipeline options (``--runner``,
``--direct_num_workers``, Dataflow options, ...). Without ``--runner`` the
pipeline runs locally in-process (Beam's FnApiRunner).
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
import os
from typing import Any, Dict, List, Mapping, Optional

from absl import app
from absl import flags
from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import tensorflow as tf

from object_detection_note.core import cli_errors
from object_detection_note.core import file_io
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.formats import ilsvrc13
from object_detection_note.data.records import label_map_util
from object_detection_note.data.formats import openimages

ERROR = 'error'
SKIP = 'skip'
IMAGES_SKIPPED = 'images_skipped_unreadable'
_COUNTS = 'counts'
_UNMATCHED = 'unmatched'
_LOGGED_CLASSES = 20


def read_targets(path: str) -> List[openimages.TargetCategory]:
  """Target categories of a label map, by id; ids must be 1..N.

  Raises:
    ValueError: naming ``path`` when the ids are not 1..N.
  """
  label_map = label_map_util.load_label_map(path)
  items = sorted(label_map.item, key=lambda item: item.id)
  ids = [item.id for item in items]
  if ids != list(range(1, len(ids) + 1)):
    raise ValueError(
        '%s: ids must be 1..%d (found %s); renumber the label map and the '
        'seed set the same way' % (path, len(ids), ids))
  return [openimages.TargetCategory(item.id, item.name, item.display_name)
          for item in items]


def _label_files(pattern: str) -> Dict[str, tuple]:
  """``{file: (image, label, confidence) column indices}`` from each header."""
  paths = sorted(tf.io.gfile.glob(pattern))
  if not paths:
    raise ValueError('no file matches --image_labels_csv=%s' % pattern)
  columns = {}
  for path in paths:
    with tf.io.gfile.GFile(path, 'r') as f:
      columns[path] = openimages.label_columns(f.readline(), path)
  if len(set(columns.values())) > 1:
    raise ValueError('label CSV files have different column orders: %s' %
                     columns)
  return columns


class _SumCounts(beam.CombineFn):
  """Sums ``{'counts': {key: int}, 'unmatched': {mid: int}}`` dicts."""

  def create_accumulator(self):
    return {_COUNTS: {}, _UNMATCHED: {}}

  def add_input(self, accumulator, element):
    for part in (_COUNTS, _UNMATCHED):
      target = accumulator[part]
      for key, value in element.get(part, {}).items():
        target[key] = target.get(key, 0) + value
    return accumulator

  def merge_accumulators(self, accumulators):
    total = self.create_accumulator()
    for accumulator in accumulators:
      self.add_input(total, accumulator)
    return total

  def extract_output(self, accumulator):
    return accumulator


class _SummarizeImage(beam.DoFn):
  """``(image_id, [(mid, positive)])`` → ``(image_id, target ids)`` + counts."""

  def __init__(self, mid_to_target):
    self._mid_to_target = mid_to_target

  def process(self, element):
    image_id, labels = element
    target_ids, counts, unmatched = openimages.summarize_image(
        list(labels), self._mid_to_target)
    yield beam.pvalue.TaggedOutput(_COUNTS, {_COUNTS: counts,
                                             _UNMATCHED: unmatched})
    if target_ids:
      yield image_id, target_ids


class _ReadImage(beam.DoFn):
  """``(image_id, target ids)`` → DetectionRecord (or a counted skip)."""

  def __init__(self, target_names, image_dir, skip_invalid):
    self._target_names = target_names
    self._image_dir = image_dir
    self._skip_invalid = skip_invalid

  def process(self, element):
    image_id, target_ids = element
    try:
      yield openimages.image_record(image_id, target_ids, self._target_names,
                                    self._image_dir)
    except ilsvrc13.InvalidAnnotationError as e:
      if not self._skip_invalid:
        raise
      logging.warning('Skipping image: %s', e)
      yield beam.pvalue.TaggedOutput(_COUNTS, {_COUNTS: {IMAGES_SKIPPED: 1}})


def report_statistics(totals: Mapping[str, Any], descriptions: Mapping[str,
                                                                       str],
                      match: openimages.ClassMatch) -> Dict[str, Any]:
  """Manifest statistics from the summed counts; logs the unmatched classes."""
  counts = dict.fromkeys(openimages.COUNT_KEYS + (IMAGES_SKIPPED,), 0)
  counts.update(totals[_COUNTS])
  unmatched = sorted(totals[_UNMATCHED].items(), key=lambda kv: (-kv[1], kv[0]))
  unmatched_classes = [
      {'label_name': mid, 'display_name': descriptions.get(mid, ''),
       'labels_dropped': n} for mid, n in unmatched]
  counts['images_written'] = (counts[openimages.IMAGES_WITH_MATCHED_LABEL] -
                              counts[IMAGES_SKIPPED])
  logging.info('OpenImages: %s', counts)
  logging.info('%d OpenImages classes with positive labels matched no target '
               'category; largest: %s', len(unmatched_classes),
               ', '.join('%s (%s): %d' % (c['display_name'], c['label_name'],
                                          c['labels_dropped'])
                         for c in unmatched_classes[:_LOGGED_CLASSES]))
  statistics = dict(counts)
  statistics.update(
      unmatched_openimages_classes=unmatched_classes,
      unmatched_target_categories=match.unmatched_targets,
      matched_openimages_classes=match.target_sources)
  return statistics


def _add_statistics(manifest_path, totals, descriptions, match):
  manifest = dataset_writer.read_manifest(os.path.dirname(manifest_path))
  manifest['statistics'].update(report_statistics(totals, descriptions, match))
  file_io.write_atomically(
      manifest_path, dataset_writer.manifest_json(manifest))
  return manifest_path


def create_dataset(output_dir: str,
                   image_labels_csv: str,
                   class_descriptions_csv: str,
                   image_dir: str,
                   target_label_map: str,
                   class_name_map: Optional[str] = None,
                   source_label_map: Optional[str] = None,
                   invalid_image_policy: str = ERROR,
                   num_shards: int = 10,
                   options: Optional[PipelineOptions] = None) -> None:
  """Runs the conversion (see the module docstring) with Beam.

  Raises:
    ValueError: on bad class lists, label maps or CSV headers (before the
      pipeline starts), on a malformed label row, and (policy ``error``) on a
      missing or unreadable image, naming the file.
  """
  if invalid_image_policy not in (ERROR, SKIP):
    raise ValueError('invalid_image_policy must be %r or %r, got %r' %
                     (ERROR, SKIP, invalid_image_policy))
  targets = read_targets(target_label_map)
  sources = read_targets(source_label_map or target_label_map)
  descriptions = openimages.read_class_descriptions(class_descriptions_csv)
  name_map = (openimages.read_class_name_map(class_name_map)
              if class_name_map else {})
  match = openimages.match_classes(descriptions, targets, name_map,
                                   class_name_map or '<class name map>')
  logging.info('Matched %d OpenImages classes to %d of %d target categories; '
               'no match for: %s', len(match.mid_to_target),
               len(targets) - len(match.unmatched_targets), len(targets),
               match.unmatched_targets)
  label_files = _label_files(image_labels_csv)
  target_names = {t.id: t.name for t in targets}
  parameters = {
      'image_labels_csv': image_labels_csv,
      'class_descriptions_csv': class_descriptions_csv,
      'image_dir': image_dir, 'target_label_map': target_label_map,
      'class_name_map': class_name_map,
      'source_label_map': source_label_map or target_label_map,
      'positive_confidence': openimages.POSITIVE_CONFIDENCE,
      'invalid_image_policy': invalid_image_policy, 'num_shards': num_shards,
  }

  options = options or beam_io.pipeline_options([])
  with beam.Pipeline(options=options) as pipeline:
    rows = [
        pipeline
        | 'Read_%d' % i >> beam.io.ReadFromText(path, skip_header_lines=1)
        | 'Parse_%d' % i >> beam.FlatMap(
            lambda line, c=columns, p=path: [
                row for row in [openimages.parse_label_line(line, c, p)] if row])
        for i, (path, columns) in enumerate(sorted(label_files.items()))]
    per_image = (
        rows
        | 'FlattenFiles' >> beam.Flatten()
        | 'KeyByImage' >> beam.MapTuple(
            lambda image_id, mid, positive: (image_id, (mid, positive)))
        | 'GroupByImage' >> beam.GroupByKey()
        | 'Summarize' >> beam.ParDo(
            _SummarizeImage(match.mid_to_target)).with_outputs(
                _COUNTS, main='images'))
    read = (
        per_image.images
        | 'ReadImages' >> beam.ParDo(
            _ReadImage(target_names, image_dir,
                       invalid_image_policy == SKIP)).with_outputs(
                           _COUNTS, main='records'))
    totals = (
        (per_image[_COUNTS], read[_COUNTS])
        | 'FlattenCounts' >> beam.Flatten()
        | 'SumCounts' >> beam.CombineGlobally(_SumCounts()))
    _ = (
        {Splits.image_level: read.records}
        | 'Write' >> dataset_writer.WriteDetectionDataset(
            output_dir, [s.name for s in sources], [t.name for t in targets],
            parameters=parameters, num_shards=num_shards)
        | 'AddStatistics' >> beam.Map(
            _add_statistics, beam.pvalue.AsSingleton(totals), descriptions,
            match))


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this binary's flags (called by ``__main__`` and by tests)."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string(
      'image_labels_csv', None, 'train-annotations-human-imagelabels.csv '
      '(ImageID,Source,LabelName,Confidence); a glob of several files works.',
      **fv)
  flags.DEFINE_string('class_descriptions_csv', None,
                      'class-descriptions.csv (LabelName,DisplayName).', **fv)
  flags.DEFINE_string('image_dir', None, 'Directory of <ImageID>.jpg.', **fv)
  flags.DEFINE_string(
      'target_label_map', None, 'Label map of the seed set (e.g. COCO); '
      'OpenImages display names are matched to its names case-insensitively.',
      **fv)
  flags.DEFINE_string(
      'class_name_map', None, 'Optional CSV "openimages_class,target_class" '
      '(MID or display name → target name; empty target: no match).', **fv)
  flags.DEFINE_string('source_label_map', None,
                      'Source categories; default: --target_label_map.', **fv)
  flags.DEFINE_string('output_dir', None,
                      'Directory for shards, label maps, manifest.', **fv)
  flags.DEFINE_enum('invalid_image_policy', ERROR, [ERROR, SKIP],
                    'error: stop on a missing/unreadable image; skip: drop '
                    'and count it.', **fv)
  flags.DEFINE_integer('num_shards', 10, 'Shards of the image_level split.',
                       **fv)
  flags.mark_flags_as_required(
      ['image_labels_csv', 'class_descriptions_csv', 'image_dir',
       'target_label_map', 'output_dir'], **fv)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the converter; ``argv[1:]`` are Beam pipeline options."""
  f = flag_values
  create_dataset(
      f.output_dir, f.image_labels_csv, f.class_descriptions_csv, f.image_dir,
      f.target_label_map, class_name_map=f.class_name_map,
      source_label_map=f.source_label_map,
      invalid_image_policy=f.invalid_image_policy, num_shards=f.num_shards,
      options=beam_io.pipeline_options(argv[1:]))
  logging.info('OpenImages image-level set written to %s', f.output_dir)


if __name__ == '__main__':
  define_flags()
  cli_errors.run(main, 'create_openimages_tfrecords',
                 flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
