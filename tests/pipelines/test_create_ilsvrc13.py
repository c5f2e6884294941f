"""End to end: tiny ILSVRC 2013 tree → the five splits, label maps, manifest."""
import glob
import importlib.util
import io
import os

from absl import flags
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec

import converter_fixtures

_PIPELINE = os.path.join(os.path.dirname(__file__), '..', '..', 'pipelines',
                         'create_ilsvrc13_tfrecords.py')
_spec = importlib.util.spec_from_file_location('create_ilsvrc13_tfrecords',
                                               _PIPELINE)
pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)

W, H = converter_fixtures.ILSVRC_W, converter_fixtures.ILSVRC_H
IPOD, ZEBRA = converter_fixtures.IPOD, converter_fixtures.ZEBRA
TRAIN, CMYK = converter_fixtures.ILSVRC_TRAIN, converter_fixtures.CMYK
_xml = converter_fixtures.annotation_xml


@pytest.fixture(name='tree')
def _tree(tmp_path):
  return converter_fixtures.write_ilsvrc(str(tmp_path))


def _run_main(tree, *extra):
  flag_values = flags.FlagValues()
  pipeline.define_flags(flag_values)
  argv = flag_values(['prog'] + converter_fixtures.ilsvrc_args(tree) +
                     list(extra), known_only=True)
  assert argv[:2] == ['prog', '--runner=FnApiRunner']  # Beam options.
  pipeline.main(argv, flag_values)


def _read_split(out, split):
  records = []
  for path in sorted(glob.glob(dataset_writer.split_file_pattern(out, split))):
    for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
      records.append(tf_example_codec.example_to_record(serialized))
  return {r.source_id: r for r in records}


def test_end_to_end_splits_boxes_label_maps_manifest(tree):
  _run_main(tree)
  out = tree['out']
  splits = {s: _read_split(out, s) for s in Splits.all}
  assert sorted(splits[Splits.source_train]) == ['v1', 'v5']
  assert sorted(splits[Splits.source_val]) == ['v7', 'v8']
  assert sorted(splits[Splits.target_val]) == ['v7']
  target_train = sorted(list(splits[Splits.seed]) +
                        list(splits[Splits.image_level]))
  assert target_train == sorted(['v1', 'v2', 'v3', 'v4'] + list(TRAIN))
  assert len(splits[Splits.seed]) == 2  # One image per target category.
  # Side label maps, alphabetical, case-insensitive.
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.source_label_map)) == {1: 'apple',
                                                            2: 'Bear'}
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.target_label_map)) == {1: 'iPod',
                                                            2: 'zebra'}
  # Boxes: source side of v1 keeps apple (left half) only, with source ids.
  v1 = splits[Splits.source_train]['v1']
  assert v1.classes.tolist() == [1] and v1.class_texts == ['apple']
  np.testing.assert_allclose(v1.boxes, [[0., 0., 1., 0.5]])
  v7 = splits[Splits.target_val]['v7']
  assert v7.classes.tolist() == [2] and v7.class_texts == ['zebra']
  assert splits[Splits.source_val]['v7'].classes.tolist() == [2]
  # Image-level images: no boxes, labels, hidden boxes with target ids.
  for source_id, record in splits[Splits.image_level].items():
    assert record.boxes.shape == (0, 4) and record.is_mined == 0
    assert record.hidden_classes.size and record.image_labels.size
    assert set(record.image_labels.tolist()) == set(
        record.hidden_classes.tolist())
    if source_id == 'v4':
      assert record.image_labels.tolist() == [2]
      np.testing.assert_allclose(record.hidden_boxes,
                                 [[0, 0, 1, .5], [0, 0, 1, 1]])
  for record in splits[Splits.seed].values():
    assert record.classes.size and not record.hidden_classes.size
  # Train images come from their synset folder, pixels intact.
  train = {**splits[Splits.seed], **splits[Splits.image_level]}[IPOD + '_1']
  assert train.filename == IPOD + '_1.JPEG'
  assert train.image_format == 'jpeg' and (train.height, train.width) == (H, W)
  with Image.open(io.BytesIO(train.image_bytes)) as image:
    assert image.size == (W, H)
  v5 = splits[Splits.source_train][CMYK]
  with Image.open(io.BytesIO(v5.image_bytes)) as image:
    assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (W, H))
  manifest = dataset_writer.read_manifest(out)
  stats = manifest['statistics']
  assert stats['images_listed'] == {'val1': 6, 'val2': 2, 'train_augment': 2}
  assert stats['images_without_category_boxes'] == {
      'val1': 1, 'val2': 0, 'train_augment': 0}
  assert stats['images_reencoded_as_rgb_jpeg'] == 1
  assert set(stats['annotation_problems'].values()) == {0}
  assert manifest['splits'][Splits.seed]['images'] == 2
  assert manifest['splits'][Splits.image_level]['images'] == 4
  assert manifest['splits'][Splits.source_train]['num_shards'] == 2
  assert manifest['parameters']['seed_images_min'] == 1
  assert manifest['parameters']['synsets_file'] == tree['synsets']


def test_skip_policy_counts_and_error_policy_names_file(tree):
  with open(os.path.join(tree['val_ann'], 'v2.xml'), 'w') as f:
    f.write('<annotation><size>')  # Malformed.
  with open(os.path.join(tree['val_ann'], 'v3.xml'), 'w') as f:
    f.write(_xml([('n00000099', 1, 1, 2, 2), (ZEBRA, 1, 1, W + 9, H)]))
  with pytest.raises(Exception, match=r'v2.xml: malformed XML'):
    _run_main(tree)
  assert not os.path.exists(os.path.join(tree['out'],
                                         DatasetFiles.manifest))
  _run_main(tree, '--invalid_annotation_policy=skip')
  out = tree['out']
  stats = dataset_writer.read_manifest(out)['statistics']
  assert stats['annotation_problems'] == {
      'boxes_clipped': 0, 'boxes_unknown_wnid': 1, 'boxes_outside_image': 1,
      'boxes_empty': 0, 'images_bad_annotation_or_image': 1}
  assert stats['images_listed']['val1'] == 6
  assert stats['images_without_category_boxes']['val1'] == 2  # v3, v6.
  target = {**_read_split(out, Splits.seed),
            **_read_split(out, Splits.image_level)}
  assert 'v2' not in target and 'v3' not in target


def test_driver_checks_lists_and_flags(tree):
  with open(tree['val2'], 'a') as f:
    f.write('v1 9\n')
  with pytest.raises(ValueError, match=r'v1 is listed in both .*val1.txt'):
    _run_main(tree)
  with pytest.raises(ValueError, match='train_augment_list needs'):
    pipeline.create_dataset(tree['out'], tree['synsets'], tree['val_img'],
                            tree['val_ann'], tree['val1'], tree['val2'],
                            train_augment_list=tree['train_list'])
