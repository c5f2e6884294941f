"""Dataset writer: shards, label maps and manifest, deterministic."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import beam_io
from object_detection_note.data.writing import dataset_splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec
from object_detection_note.data.records.tf_example_codec import DetectionRecord

SOURCE_NAMES = ['person', 'dog']
TARGET_NAMES = ['zebra', 'kite', 'oven']


def _record(source_id, classes, texts):
  n = len(classes)
  return DetectionRecord(
      image_bytes=('pixels-' + source_id).encode(), source_id=source_id,
      height=8, width=8, boxes=np.tile([[0.1, 0.2, 0.5, 0.6]], (n, 1)),
      classes=classes, class_texts=texts)


def _splits():
  return {
      Splits.source_train: [_record('s%02d' % i, [1, 2, 2], ['person', 'dog',
                                                             'dog'])
                            for i in range(7)],
      Splits.seed: [_record('t1', [3], ['oven'])],
      Splits.image_level: [dataset_splits.to_image_level(
          _record('t2', [1, 1, 2], ['zebra', 'zebra', 'kite']))],
  }


def _write(output_dir, splits=None, num_shards=2, parameters=None):
  dataset_writer.write_dataset(
      splits or _splits(), output_dir, SOURCE_NAMES, TARGET_NAMES,
      parameters=parameters or {'seed': 3}, statistics={'crowd': 1},
      num_shards=num_shards)


def _read_split(output_dir, split):
  files = sorted(tf.io.gfile.glob(
      dataset_writer.split_file_pattern(output_dir, split)))
  return files, [[tf_example_codec.example_to_record(r)
                  for r in tf.data.TFRecordDataset(f).as_numpy_iterator()]
                 for f in files]


def test_writes_sorted_shards_label_maps_and_manifest(tmp_path):
  out = str(tmp_path / 'data')
  _write(out)
  files, shards = _read_split(out, Splits.source_train)
  assert [os.path.basename(f) for f in files] == [
      'source_train.tfrecord-00000-of-00002',
      'source_train.tfrecord-00001-of-00002']
  for shard in shards:
    ids = [r.source_id for r in shard]
    assert ids == sorted(ids)
  records = sorted((r for s in shards for r in s), key=lambda r: r.source_id)
  assert [r.source_id for r in records] == ['s%02d' % i for i in range(7)]
  assert records[0].image_bytes == b'pixels-s00'
  assert records[0].classes.tolist() == [1, 2, 2]
  _, shards = _read_split(out, Splits.image_level)
  image_level = [r for s in shards for r in s]
  assert len(shards) == 2 and len(image_level) == 1
  assert image_level[0].image_labels.tolist() == [1, 2]
  assert image_level[0].hidden_classes.tolist() == [1, 1, 2]

  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.source_label_map)) == {1: 'person',
                                                            2: 'dog'}
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.target_label_map)) == {
          1: 'zebra', 2: 'kite', 3: 'oven'}

  manifest = dataset_writer.read_manifest(out)
  assert manifest['parameters'] == {'seed': 3}
  assert manifest['statistics'] == {'crowd': 1}
  assert manifest['target_categories'][2] == {'id': 3, 'name': 'oven'}
  assert sorted(manifest['splits']) == sorted(_splits())
  train = manifest['splits'][Splits.source_train]
  assert (train['side'], train['images'], train['boxes'],
          train['image_level_labels'], train['hidden_boxes']) == (
              'source', 7, 21, 0, 0)
  assert train['categories']['dog'] == {
      'images': 7, 'boxes': 14, 'image_level_labels': 0, 'hidden_boxes': 0}
  assert sum(s['records'] for s in train['shards']) == 7
  level = manifest['splits'][Splits.image_level]
  assert (level['images'], level['boxes'], level['image_level_labels'],
          level['hidden_boxes']) == (1, 0, 2, 3)
  assert level['categories']['zebra'] == {
      'images': 1, 'boxes': 0, 'image_level_labels': 1, 'hidden_boxes': 2}
  with open(os.path.join(out, DatasetFiles.manifest)) as f:
    text = f.read()
  assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + '\n'
  # Nothing temporary left behind.
  assert not [f for f in os.listdir(out) if '.tmp-' in f]


def test_same_inputs_give_identical_bytes_and_stale_shards_go(tmp_path):
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  _write(a)
  splits = _splits()
  splits = {k: v[::-1] for k, v in splits.items()}  # Input order is irrelevant.
  _write(b, splits)
  names = sorted(os.listdir(a))
  assert names == sorted(os.listdir(b))
  for name in names:
    with open(os.path.join(a, name), 'rb') as fa, open(
        os.path.join(b, name), 'rb') as fb:
      assert fa.read() == fb.read(), name
  # Rewriting with one shard removes the two-shard files of the split.
  _write(a, num_shards=1)
  files, _ = _read_split(a, Splits.source_train)
  assert [os.path.basename(f) for f in files] == [
      'source_train.tfrecord-00000-of-00001']
  manifest = dataset_writer.read_manifest(a)
  assert manifest['splits'][Splits.seed]['shards'] == [
      {'file': 'seed.tfrecord-00000-of-00001', 'records': 1}]


def test_class_id_outside_label_map_fails(tmp_path):
  splits = {Splits.seed: [_record('bad', [4], ['x'])]}
  with pytest.raises(Exception, match='outside the label map 1..3'):
    _write(str(tmp_path / 'bad'), splits)


def test_unknown_split_rejected(tmp_path):
  with pytest.raises(ValueError, match='unknown split'):
    _write(str(tmp_path / 'x'), {'train': [_record('a', [1], ['person'])]})


def test_pipeline_options_default_to_local_runner():
  options = beam_io.pipeline_options(['--direct_num_workers=2'])
  assert options.get_all_options()['runner'] == 'FnApiRunner'
  assert options.get_all_options()['direct_num_workers'] == 2
  explicit = beam_io.pipeline_options(['--runner=DirectRunner'])
  assert explicit.get_all_options()['runner'] == 'DirectRunner'
  assert dataset_writer.split_file_pattern('/d', 'seed') == (
      beam_io.shard_pattern('/d/seed.tfrecord'))


def test_dict_of_pcollections_input_and_duplicate_ids(tmp_path):
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / 'dict')
  splits = _splits()
  with beam.Pipeline(options=beam_io.pipeline_options([])) as p:
    inputs = {s: p | 'Create_' + s >> beam.Create(rs)
              for s, rs in splits.items()}
    computed = p | 'Stats' >> beam.Create([{'bad_files': 2}])
    _ = inputs | dataset_writer.WriteDetectionDataset(
        out, SOURCE_NAMES, TARGET_NAMES, statistics=computed, num_shards={
            Splits.source_train: 3, Splits.seed: 1, Splits.image_level: 1})
  manifest = dataset_writer.read_manifest(out)
  assert manifest['statistics'] == {'bad_files': 2}
  assert manifest['splits'][Splits.source_train]['num_shards'] == 3
  assert manifest['splits'][Splits.source_train]['images'] == 7
  assert manifest['splits'][Splits.seed]['boxes'] == 1
  duplicated = {Splits.seed: [_record('t1', [3], ['oven']),
                              _record('t1', [2], ['kite'])]}
  with pytest.raises(Exception, match="source_id 't1' appears twice"):
    _write(str(tmp_path / 'dup'), duplicated)
