"""End to end: tiny COCO 2017 fixture → the five splits, label maps, manifest."""
import glob
import importlib.util
import json
import os

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec

import converter_fixtures

_PIPELINE = os.path.join(os.path.dirname(__file__), '..', '..', 'pipelines',
                         'create_coco17_tfrecords.py')
_spec = importlib.util.spec_from_file_location('create_coco17_tfrecords',
                                               _PIPELINE)
pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)

W, H = converter_fixtures.COCO_W, converter_fixtures.COCO_H


@pytest.fixture(name='coco')
def _coco(tmp_path):
  return converter_fixtures.write_coco(str(tmp_path))


def _run_main(coco, *extra):
  flag_values = flags.FlagValues()
  pipeline.define_flags(flag_values)
  argv = flag_values(['prog'] + converter_fixtures.coco_args(coco) +
                     list(extra), known_only=True)
  assert argv == ['prog', '--runner=FnApiRunner']
  pipeline.main(argv, flag_values)


def _read_split(out, split):
  records = []
  for path in sorted(glob.glob(dataset_writer.split_file_pattern(out, split))):
    for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
      records.append(tf_example_codec.example_to_record(serialized))
  return {r.source_id: r for r in records}


def test_end_to_end_splits_boxes_label_maps_manifest(coco):
  _run_main(coco)
  out = coco['out']
  splits = {s: _read_split(out, s) for s in Splits.all}
  assert sorted(splits[Splits.source_train]) == ['1', '2']
  assert sorted(splits[Splits.source_val]) == ['10', '12']
  assert sorted(splits[Splits.target_val]) == ['10', '11']
  train_target = sorted(list(splits[Splits.seed]) +
                        list(splits[Splits.image_level]), key=int)
  assert train_target == ['1', '3', '4', '5', '6', '7', '8']
  assert len(splits[Splits.seed]) == 4  # round(1.0 * 4 target categories)

  # Image 1 has both sides: person (crowd dropped) / zebra.
  person = splits[Splits.source_train]['1']
  assert person.classes.tolist() == [1] and person.class_texts == ['person']
  np.testing.assert_allclose(person.boxes, [[0, 0, 12 / H, 16 / W]])
  assert splits[Splits.source_train]['2'].classes.tolist() == [11]  # dog
  with open(os.path.join(coco['train_dir'], '000000000002.jpg'), 'rb') as f:
    assert splits[Splits.source_train]['2'].image_bytes == f.read()
  assert splits[Splits.source_train]['2'].image_format == 'jpeg'
  oven = splits[Splits.target_val]['10']
  assert oven.classes.tolist() == [4] and oven.class_texts == ['oven']
  np.testing.assert_allclose(oven.boxes, [[4 / H, 8 / W, 12 / H, 24 / W]])

  target_of = {'1': [('zebra', [6 / H, 4 / W, 16 / H, 12 / W])],
               '5': [('kite', [20 / H, 28 / W, 1.0, 1.0])]}
  for image_id, expected in target_of.items():
    if image_id in splits[Splits.image_level]:
      r = splits[Splits.image_level][image_id]
      assert r.boxes.shape == (0, 4) and r.is_mined == 0
      assert r.image_label_texts == [n for n, _ in expected]
      assert r.hidden_class_texts == [n for n, _ in expected]
      np.testing.assert_allclose(r.hidden_boxes, [b for _, b in expected],
                                 atol=1e-6)
    else:
      r = splits[Splits.seed][image_id]
      assert r.class_texts == [n for n, _ in expected]
      np.testing.assert_allclose(r.boxes, [b for _, b in expected], atol=1e-6)
  for r in splits[Splits.image_level].values():
    assert r.classes.size == 0 and r.hidden_classes.size > 0
    assert r.image_labels.tolist() == sorted(set(r.hidden_classes.tolist()))

  source_map = label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.source_label_map))
  assert source_map[1] == 'person' and source_map[20] == 'tv'
  assert len(source_map) == 20
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.target_label_map)) == {
          1: 'zebra', 2: 'giraffe', 3: 'kite', 4: 'oven'}

  manifest = dataset_writer.read_manifest(out)
  assert manifest['parameters']['seed_images_per_category'] == 1.0
  assert manifest['statistics']['train']['crowd_boxes_dropped'] == 1
  assert manifest['statistics']['train']['clipped_boxes'] == 1
  assert manifest['statistics']['train']['images_without_boxes'] == 1
  level = manifest['splits'][Splits.image_level]
  assert level['images'] == 3 and level['boxes'] == 0
  assert level['hidden_boxes'] == sum(
      r.hidden_classes.size for r in splits[Splits.image_level].values())
  assert manifest['splits'][Splits.source_train]['boxes'] == 2
  assert manifest['splits'][Splits.target_val]['categories']['oven'][
      'boxes'] == 1
  for split in Splits.all:
    assert manifest['splits'][split]['num_shards'] == 2


def test_missing_image_file_is_named(coco):
  os.remove(os.path.join(coco['val_dir'], '000000000011.jpg'))
  with pytest.raises(Exception, match='000000000011.jpg'):
    _run_main(coco)
  # Nothing claims completion.
  assert not os.path.exists(os.path.join(coco['out'], DatasetFiles.manifest))


def test_split_from_a_file_on_non_coco_categories(coco, tmp_path):
  """Category names of any COCO-format dataset, split by a JSON file."""
  split_file = tmp_path / 'split.json'
  split_file.write_text(json.dumps({'source': ['zebra', 'giraffe'],
                                    'target': ['kite', 'oven']}))
  _run_main(coco, '--category_split_file=%s' % split_file)
  out = coco['out']
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.source_label_map)) == {
          1: 'zebra', 2: 'giraffe'}
  assert label_map_util.get_id_to_name(
      os.path.join(out, DatasetFiles.target_label_map)) == {
          1: 'kite', 2: 'oven'}
  manifest = dataset_writer.read_manifest(out)
  assert manifest['parameters']['source_categories'] == ['zebra', 'giraffe']
  # VOC categories are in neither side: image 2 (dog only) is left out.
  assert '2' not in _read_split(out, Splits.source_train)
  assert sorted(_read_split(out, Splits.source_train)) == ['1', '3', '4', '7',
                                                           '8']


def test_split_flags_errors_name_the_problem(coco):
  with pytest.raises(ValueError, match=r"--source_categories/--target_"
                     r"categories: source categories not in the dataset: "
                     r"'zebr' \(did you mean 'zebra'\?\)"):
    _run_main(coco, '--source_categories=zebr')
  with pytest.raises(ValueError, match='leaves no target category'):
    _run_main(coco, '--target_categories=')
  assert not os.path.exists(os.path.join(coco['out'], DatasetFiles.manifest))
