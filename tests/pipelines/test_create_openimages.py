"""End to end: tiny OpenImages CSVs + JPEGs → image_level set and manifest."""
import glob
import importlib.util
import os

from absl import flags
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec

import converter_fixtures

_PIPELINE = os.path.join(os.path.dirname(__file__), '..', '..', 'pipelines',
                         'create_openimages_tfrecords.py')
_spec = importlib.util.spec_from_file_location('create_openimages_tfrecords',
                                               _PIPELINE)
pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)

TARGET_MAP = converter_fixtures.TARGET_MAP


@pytest.fixture(name='files')
def _files(tmp_path):
  return converter_fixtures.write_openimages(str(tmp_path))


def _run_main(files, *extra):
  flag_values = flags.FlagValues()
  pipeline.define_flags(flag_values)
  argv = flag_values(['prog'] + converter_fixtures.openimages_args(files) +
                     list(extra), known_only=True)
  pipeline.main(argv, flag_values)


def _records(out):
  records = {}
  for path in glob.glob(dataset_writer.split_file_pattern(out,
                                                          Splits.image_level)):
    for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
      record = tf_example_codec.example_to_record(serialized)
      records[record.source_id] = record
  return records


def test_end_to_end_labels_label_maps_manifest(files):
  _run_main(files)
  out = files['out']
  records = _records(out)
  assert sorted(records) == ['img1', 'img5', 'img6']
  assert records['img1'].image_labels.tolist() == [1]
  assert records['img5'].image_labels.tolist() == [1, 2, 3]
  assert records['img5'].image_label_texts == ['cat', 'mouse', 'motorcycle']
  assert records['img6'].image_labels.tolist() == [4]
  for source_id, record in records.items():
    assert record.boxes.shape == (0, 4) and record.hidden_classes.size == 0
    assert record.is_mined == 0
    assert record.width == 10 + int(source_id[-1])
    assert record.image_bytes == open(
        os.path.join(files['images'], source_id + '.jpg'), 'rb').read()
  names = {1: 'cat', 2: 'mouse', 3: 'motorcycle', 4: 'tv', 5: 'zebra'}
  for label_map in (DatasetFiles.target_label_map,
                    DatasetFiles.source_label_map):
    assert label_map_util.get_id_to_name(os.path.join(out, label_map)) == names
  manifest = dataset_writer.read_manifest(out)
  assert list(manifest['splits']) == [Splits.image_level]
  assert manifest['splits'][Splits.image_level]['images'] == 3
  assert manifest['splits'][Splits.image_level]['image_level_labels'] == 5
  assert manifest['splits'][Splits.image_level]['num_shards'] == 2
  stats = manifest['statistics']
  assert {k: stats[k] for k in (
      'images_in_csv', 'images_without_positive_label',
      'images_dropped_without_matched_label', 'images_with_matched_label',
      'images_written', 'images_skipped_unreadable', 'positive_labels',
      'negative_labels_ignored', 'matched_labels',
      'unmatched_labels_dropped')} == {
          'images_in_csv': 6, 'images_without_positive_label': 1,
          'images_dropped_without_matched_label': 2,
          'images_with_matched_label': 3, 'images_written': 3,
          'images_skipped_unreadable': 0, 'positive_labels': 10,
          'negative_labels_ignored': 2, 'matched_labels': 5,
          'unmatched_labels_dropped': 5}
  assert stats['unmatched_openimages_classes'] == [
      {'label_name': '/m/tree', 'display_name': 'Tree', 'labels_dropped': 3},
      {'label_name': '/m/mouse', 'display_name': 'Mouse', 'labels_dropped': 1},
      {'label_name': '/m/veh', 'display_name': 'Vehicle, land',
       'labels_dropped': 1}]
  assert stats['unmatched_target_categories'] == ['zebra']
  assert stats['matched_openimages_classes']['mouse'] == ['Computer mouse']
  assert manifest['parameters']['class_name_map'] == files['name_map']


def test_missing_image_error_and_skip_policies(files):
  os.remove(os.path.join(files['images'], 'img6.jpg'))
  with pytest.raises(Exception, match=r'image img6 not found: .*img6.jpg'):
    _run_main(files)
  _run_main(files, '--invalid_image_policy=skip')
  assert sorted(_records(files['out'])) == ['img1', 'img5']
  stats = dataset_writer.read_manifest(files['out'])['statistics']
  assert stats['images_skipped_unreadable'] == 1
  assert stats['images_written'] == 2


def test_driver_errors(files):
  with open(files['label_map'], 'w') as f:
    f.write('item { name: "cat" id: 1 }\nitem { name: "dog" id: 3 }\n')
  with pytest.raises(ValueError, match=r'coco.pbtxt: ids must be 1..2'):
    _run_main(files)
  with open(files['label_map'], 'w') as f:
    f.write(TARGET_MAP)
  with open(files['labels'], 'w') as f:
    f.write('ImageID,Source,LabelName\nimg1,verification,/m/cat\n')
  with pytest.raises(ValueError, match=r'labels.csv: header .* lacks'):
    _run_main(files)
  with open(files['name_map'], 'w') as f:
    f.write('Tree,plant\n')
  with pytest.raises(ValueError, match=r'names.csv maps .tree. to .plant.'):
    _run_main(files)
