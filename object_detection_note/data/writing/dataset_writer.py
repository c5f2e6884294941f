"""The shared last step of every dataset converter: shards, label maps, manifest.

``WriteDetectionDataset`` takes a dict ``{split name: PCollection of
DetectionRecord}``, or one PCollection of ``(split name, DetectionRecord)``
pairs (split names from ``core.fields.Splits``), and writes into
``output_dir``:

  * ``<split>.tfrecord-00000-of-0000N`` shards of serialized
    ``tf.train.Example`` records, sorted by ``source_id`` within each shard,
    with the shard assignment, naming, atomic writes and bounded memory of
    ``beam_io.WriteSortedShardsById`` (one transform serves all splits); stale
    shards of the same split left by an earlier run with another shard count
    are removed;
  * ``source_label_map.pbtxt`` and ``target_label_map.pbtxt``: each side
    numbers its own categories ``1..N`` in the given name order (a side with
    no category names gets no label map and no ``label_maps`` entry);
  * ``manifest.json``, written last (so its presence means the dataset is
    complete), atomically, with sorted keys::

      {
        "format_version": 1,
        "label_maps": {"source": "source_label_map.pbtxt", "target": ...},
        "source_categories": [{"id": 1, "name": "person"}, ...],
        "target_categories": [...],
        "parameters": {...},   # the converter's content-defining flags
        "statistics": {...},   # converter-specific counts (e.g. crowd boxes)
        "splits": {
          "<split>": {
            "side": "source" | "target",
            "images": int, "boxes": int,
            "image_level_labels": int, "hidden_boxes": int,
            "categories": {"<name>": {"images": int, "boxes": int,
                                      "image_level_labels": int,
                                      "hidden_boxes": int}},
            "num_shards": int,
            "shards": [{"file": "<split>.tfrecord-00000-of-00001",
                        "records": int}, ...]}}}

    A category's ``images`` counts the images having at least one box,
    image-level label or hidden box of it.

Same inputs ⇒ byte-identical files, whatever the runner or worker count. All
I/O goes through ``tf.io.gfile``. Class ids of ``source_*`` splits must be
ids of the source label map, those of the other splits ids of the target one;
an id outside ``1..N`` fails the pipeline with an error naming the record.
"""
import collections
import contextlib
import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from absl import logging
import apache_beam as beam
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core import stale_files
from object_detection_note.core.fields import CategoryFields
from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import ManifestFields as M
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec
from object_detection_note.core import progress

SOURCE = M.source
TARGET = M.target
# Which label map numbers the classes of each split.
SPLIT_SIDE = {
    Splits.source_train: SOURCE,
    Splits.source_val: SOURCE,
    Splits.seed: TARGET,
    Splits.image_level: TARGET,
    Splits.target_val: TARGET,
}
MANIFEST_FORMAT_VERSION = 1
# Runner used when the command line names none. Beam's 'DirectRunner' first
# tries to download a Prism binary from the internet; 'FnApiRunner' is the
# in-process engine DirectRunner falls back to, without that download.
_COUNT_KEYS = (M.images, M.boxes, M.image_level_labels, M.hidden_boxes)


def split_prefix(output_dir: str, split: str) -> str:
  """Shard prefix of a split: ``<output_dir>/<split>.tfrecord``."""
  return os.path.join(output_dir, split + '.tfrecord')


def split_file_pattern(output_dir: str, split: str) -> str:
  """Glob of every shard of a split (for input readers)."""
  return beam_io.shard_pattern(split_prefix(output_dir, split))


def _zero_counts():
  return dict.fromkeys(_COUNT_KEYS, 0)


def record_stats(record: tf_example_codec.DetectionRecord,
                 names: Sequence[str]) -> Dict[str, Any]:
  """Counts of one record, with per-category counts keyed by name.

  Args:
    record: a record whose class ids are label-map ids ``1..len(names)``.
    names: category names of the record's label map, id ``i`` → ``names[i-1]``.

  Returns:
    ``{'images': 1, 'boxes': n, 'image_level_labels': n, 'hidden_boxes': n,
    'categories': {name: counts dict}}``.

  Raises:
    ValueError: if a class id is outside ``1..len(names)``.
  """
  stats = _zero_counts()
  stats[M.images] = 1
  per_category = collections.defaultdict(_zero_counts)
  columns = ((M.boxes, record.classes),
             (M.image_level_labels, record.image_labels),
             (M.hidden_boxes, record.hidden_classes))
  for key, ids in columns:
    stats[key] = int(ids.size)
    for class_id in ids.tolist():
      if not 1 <= class_id <= len(names):
        raise ValueError(
            'record %r has %s class id %d outside the label map 1..%d' %
            (record.source_id, key, class_id, len(names)))
      per_category[names[class_id - 1]][key] += 1
  for counts in per_category.values():
    counts[M.images] = 1
  stats[M.categories] = dict(per_category)
  return stats


def merge_stats(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
  """Sum of two ``record_stats`` results (new dict)."""
  merged = {k: a[k] + b[k] for k in _COUNT_KEYS}
  categories = {}
  for name in set(a[M.categories]) | set(b[M.categories]):
    x = a[M.categories].get(name, _zero_counts())
    y = b[M.categories].get(name, _zero_counts())
    categories[name] = {k: x[k] + y[k] for k in _COUNT_KEYS}
  merged[M.categories] = categories
  return merged


def empty_stats() -> Dict[str, Any]:
  stats = _zero_counts()
  stats[M.categories] = {}
  return stats


class _SumStats(beam.CombineFn):

  def create_accumulator(self):
    return empty_stats()

  def add_input(self, accumulator, stats):
    return merge_stats(accumulator, stats)

  def merge_accumulators(self, accumulators):
    total = empty_stats()
    for accumulator in accumulators:
      total = merge_stats(total, accumulator)
    return total

  def extract_output(self, accumulator):
    return accumulator


def manifest_json(manifest: Mapping[str, Any]) -> str:
  """Deterministic JSON text of a manifest (sorted keys, trailing newline)."""
  return json.dumps(manifest, sort_keys=True, indent=2) + '\n'


def read_manifest(output_dir: str) -> Dict[str, Any]:
  with tf.io.gfile.GFile(os.path.join(output_dir, DatasetFiles.manifest)) as f:
    return json.load(f)


def _category_list(names):
  return [{CategoryFields.id: i + 1, CategoryFields.name: n}
          for i, n in enumerate(names)]


class _Finalize(beam.DoFn):
  """Writes label maps and the manifest once every shard is written."""

  def __init__(self, output_dir, source_names, target_names, parameters,
               statistics, num_shards):
    self._output_dir = output_dir
    self._source_names = list(source_names)
    self._target_names = list(target_names)
    self._parameters = dict(parameters)
    self._statistics = dict(statistics)
    self._num_shards = dict(num_shards)

  def _remove_stale_shards(self, split, written):
    pattern = split_file_pattern(self._output_dir, split)
    for path in tf.io.gfile.glob(pattern):
      if os.path.basename(path) not in written:
        logging.info('Removing stale shard %s', path)
        tf.io.gfile.remove(path)

  def process(self, tagged, computed_statistics=None):
    statistics = dict(self._statistics)
    statistics.update(computed_statistics or {})
    stats = {split: empty_stats() for split in self._num_shards}
    shards = {split: [] for split in self._num_shards}
    for item in tagged:
      if item[0] == 'stats':
        stats[item[1]] = item[2]
      else:
        shards[item[1]].append({M.file: item[2], M.records: item[3]})
    splits = {}
    for split in sorted(self._num_shards):
      files = sorted(shards[split], key=lambda s: s[M.file])
      written = sum(s[M.records] for s in files)
      if written != stats[split][M.images]:
        raise RuntimeError('split %s: %d records written but %d counted' %
                           (split, written, stats[split][M.images]))
      self._remove_stale_shards(split, {s[M.file] for s in files})
      entry = dict(stats[split])
      entry.update({M.side: SPLIT_SIDE[split],
                    M.num_shards: self._num_shards[split], M.shards: files})
      splits[split] = entry
    # Imported here so that building a pipeline needs no proto modules.
    from object_detection_note.data.records import label_map_util  # pylint: disable=g-import-not-at-top
    label_maps = {}
    for side, names, file_name in (
        (SOURCE, self._source_names, DatasetFiles.source_label_map),
        (TARGET, self._target_names, DatasetFiles.target_label_map)):
      if names:  # A side without categories has no label map.
        label_map_util.write_label_map(
            os.path.join(self._output_dir, file_name), names)
        label_maps[side] = file_name
    manifest = {
        M.format_version: MANIFEST_FORMAT_VERSION,
        M.label_maps: label_maps,
        M.source_categories: _category_list(self._source_names),
        M.target_categories: _category_list(self._target_names),
        M.parameters: self._parameters,
        M.statistics: statistics,
        M.splits: splits,
    }
    path = os.path.join(self._output_dir, DatasetFiles.manifest)
    file_io.write_atomically(path, manifest_json(manifest))
    logging.info('Wrote %s', path)
    yield path


class _SplitShardPath:
  """Picklable ``(split, shard index)`` → shard path."""

  def __init__(self, output_dir, num_shards):
    self._output_dir = output_dir
    self._num_shards = dict(num_shards)

  def __call__(self, shard_id):
    split, index = shard_id
    return beam_io.shard_path(split_prefix(self._output_dir, split), index,
                              self._num_shards[split])


def _keyed_example(split, record, num_shards):
  """``((split, shard index), (source_id, serialized example))``."""
  index = beam_io.stable_shard(record.source_id, num_shards[split])
  # deterministic=True sorts the feature map: same bytes in every process.
  serialized = tf_example_codec.record_to_example(record).SerializeToString(
      deterministic=True)
  return (split, index), (record.source_id, serialized)


class _LogProgress(beam.DoFn):
  """Passes elements through; logs how many went by, by time.

  Each worker logs its own count: after its first element and at least
  every ``progress.DEFAULT_INTERVAL_S`` seconds (a 'still running' line when
  no element came for that long); the Beam counter ``<namespace>/records``
  sums them on any runner. ``clock`` replaces ``time.monotonic``.
  """

  def __init__(self, name, clock=None):
    self._name = name
    self._clock = clock
    self._progress = None
    self._keepalive = None
    self._count = 0
    self._records = beam.metrics.Metrics.counter('dataset_writer', 'records')

  def setup(self):
    self._progress = progress.ProgressLogger(
        self._name, unit='records', clock=self._clock or time.monotonic)
    self._keepalive = contextlib.ExitStack()
    self._keepalive.enter_context(self._progress.keepalive())

  def teardown(self):
    if self._keepalive is not None:
      self._keepalive.close()
      self._keepalive = None

  def process(self, element):
    self._count += 1
    self._records.inc()
    self._progress.update(self._count)
    yield element


class WriteDetectionDataset(beam.PTransform):
  """Split records → dataset directory (shards, label maps, manifest).

  Input, either:
    * a dict ``{split: PCollection[DetectionRecord]}``; or
    * one PCollection of ``(split, DetectionRecord)`` pairs, with the split
      names given by ``splits`` (cheaper: a fixed number of pipeline stages,
      however many splits).

  Shards follow ``beam_io.WriteSortedShardsById``: a record goes to shard
  ``beam_io.stable_shard(source_id, num_shards)``, every shard is written
  (empty ones too) sorted by ``source_id``, atomically, in bounded memory
  (the streaming merge of sorted runs), named
  ``<split>.tfrecord-00000-of-0000N``. All splits share one transform. A
  ``source_id`` seen twice in a split fails the pipeline.

  Output: a PCollection with the single manifest path, emitted after every
  shard and both label maps are written.
  """

  def __init__(self,
               output_dir: str,
               source_names: Sequence[str],
               target_names: Sequence[str],
               parameters: Optional[Mapping[str, Any]] = None,
               statistics: Union[None, Mapping[str, Any],
                                 beam.PCollection] = None,
               num_shards: Union[int, Mapping[str, int]] = 1,
               splits: Optional[Sequence[str]] = None):
    """Configures the writer.

    Args:
      output_dir: directory (local or any ``tf.io.gfile`` scheme); created.
      source_names: source category names; label-map id ``i`` is
        ``source_names[i-1]``.
      target_names: target category names, numbered the same way.
      parameters: JSON-serialisable content-defining converter parameters,
        copied into the manifest.
      statistics: JSON-serialisable extra counts, copied into the manifest:
        a dict, or a PCollection holding one dict computed by the pipeline
        (read as a side input, so the manifest is still written once, last).
      num_shards: shards per split, one int for all or a ``{split: int}``.
      splits: the split names, required when the input is one PCollection of
        ``(split, record)`` pairs (a listed split with no record is written
        as empty shards); ignored for dict input.
    """
    super().__init__()
    self._output_dir = output_dir
    self._source_names = list(source_names)
    self._target_names = list(target_names)
    for side, names in ((SOURCE, self._source_names),
                        (TARGET, self._target_names)):
      if len(set(names)) != len(names):
        raise ValueError('duplicate %s category names: %s' % (side, names))
    self._parameters = dict(parameters or {})
    if isinstance(statistics, beam.PCollection):
      self._statistics, self._computed_statistics = {}, statistics
    else:
      self._statistics = dict(statistics or {})
      self._computed_statistics = None
    self._num_shards = num_shards
    self._splits = list(splits) if splits is not None else None
    # Fail at construction, not after the pipeline ran, if not serialisable.
    manifest_json({'p': self._parameters, 's': self._statistics})

  def _shards_for(self, split):
    if isinstance(self._num_shards, Mapping):
      n = int(self._num_shards[split])
    else:
      n = int(self._num_shards)
    if n < 1:
      raise ValueError('num_shards must be >= 1, got %d for %s' % (n, split))
    return n

  def expand(self, pvalue):
    if isinstance(pvalue, Mapping):
      splits = sorted(pvalue)
      pairs = [
          pvalue[split] | 'Tag_' + split >> beam.Map(
              lambda r, split=split: (split, r)) for split in splits
      ] | 'FlattenSplits' >> beam.Flatten()
    else:
      if self._splits is None:
        raise ValueError('splits= is required for a (split, record) input')
      splits = sorted(set(self._splits))
      pairs = pvalue
    unknown = sorted(set(splits) - set(Splits.all))
    if unknown:
      raise ValueError('unknown split names %s; expected some of %s' %
                       (unknown, Splits.all))
    tf.io.gfile.makedirs(self._output_dir)
    stale_files.remove_stale_temporaries(self._output_dir)  # killed runs
    num_shards = {s: self._shards_for(s) for s in splits}
    names = {
        s: (self._source_names
            if SPLIT_SIDE[s] == SOURCE else self._target_names)
        for s in splits
    }

    def split_stats(split, record):
      if split not in names:
        raise ValueError('record %r has split %r, not one of %s' %
                         (record.source_id, split, splits))
      return split, record_stats(record, names[split])

    stats = (
        pairs
        | 'Stats' >> beam.MapTuple(split_stats)
        | 'SumStats' >> beam.CombinePerKey(_SumStats())
        | 'TagStats' >> beam.MapTuple(lambda split, s: ('stats', split, s)))
    shards = (
        pairs
        | 'Serialize' >> beam.MapTuple(
            lambda split, record, n=num_shards: _keyed_example(
                split, record, n))
        | 'Progress' >> beam.ParDo(_LogProgress(
            'converting into %s' % self._output_dir))
        | 'WriteShards' >> beam_io.WriteSortedShardsById(
            [(s, i) for s in splits for i in range(num_shards[s])],
            _SplitShardPath(self._output_dir, num_shards))
        | 'TagShards' >> beam.MapTuple(
            lambda shard_id, path, count: ('shard', shard_id[0],
                                           os.path.basename(path), count)))
    return (
        (stats, shards)
        | 'FlattenAll' >> beam.Flatten()
        | 'Gather' >> beam.combiners.ToList()
        | 'Finalize' >> beam.ParDo(
            _Finalize(self._output_dir, self._source_names,
                      self._target_names, self._parameters, self._statistics,
                      num_shards),
            computed_statistics=(
                beam.pvalue.AsSingleton(self._computed_statistics)
                if self._computed_statistics is not None else None)))


def write_dataset(records_by_split: Mapping[str, Sequence[
    tf_example_codec.DetectionRecord]],
                  output_dir: str,
                  source_names: Sequence[str],
                  target_names: Sequence[str],
                  parameters: Optional[Mapping[str, Any]] = None,
                  statistics: Optional[Mapping[str, Any]] = None,
                  num_shards: Union[int, Mapping[str, int]] = 1,
                  options=None) -> None:
  """Runs ``WriteDetectionDataset`` on in-memory record lists."""
  options = options or beam_io.pipeline_options([])
  pairs = [(split, r) for split in sorted(records_by_split)
           for r in records_by_split[split]]
  with beam.Pipeline(options=options) as pipeline:
    _ = (pipeline
         | 'CreateRecords' >> beam.Create(pairs, reshuffle=False)
         | 'WriteDataset' >> WriteDetectionDataset(
             output_dir, source_names, target_names, parameters, statistics,
             num_shards, splits=list(records_by_split)))
