"""Synthetic dataset: §4.2 splits over generated scenes, byte-identical output."""
import io
import os

import numpy as np
import pytest
from PIL import Image
import tensorflow as tf

from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.formats import synthetic_dataset as sd
from object_detection_note.data.formats import synthetic_scenes as ss
from object_detection_note.data.records import tf_example_codec

CONFIG = ss.SceneConfig(image_size=48, mixed_fraction=0.4)


def test_annotation_splits_follow_the_paper_rules():
  splits = sd.build_annotation_splits(4, 40, 12, 1.0, CONFIG)
  for split in (Splits.source_train, Splits.source_val):
    for r in splits[split]:
      assert r.classes.size and set(r.classes.tolist()) <= set(range(1, 7))
      assert set(r.class_texts) <= set(ss.SOURCE_NAMES)
  for r in splits[Splits.seed] + splits[Splits.target_val]:
    assert r.classes.size and set(r.classes.tolist()) <= set(range(1, 7))
    assert set(r.class_texts) <= set(ss.TARGET_NAMES)
    assert r.hidden_classes.size == 0
  assert len(splits[Splits.seed]) == 6  # round(1.0 * 6 target categories)
  for r in splits[Splits.image_level]:
    assert r.classes.size == 0 and r.boxes.shape == (0, 4)
    assert r.hidden_classes.size > 0
    assert r.image_labels.tolist() == sorted(set(r.hidden_classes.tolist()))
    assert [ss.TARGET_NAMES[i - 1] for i in r.image_labels] == (
        r.image_label_texts)
  ids = lambda s: {r.source_id for r in splits[s]}
  # Train pool → source_train / seed / image_level; val pool → *_val.
  train_target = ids(Splits.seed) | ids(Splits.image_level)
  assert not ids(Splits.seed) & ids(Splits.image_level)
  assert all('-train-' in i for i in ids(Splits.source_train) | train_target)
  assert all('-val-' in i for i in ids(Splits.source_val) |
             ids(Splits.target_val))
  # Mixed scenes are on both sides, each side with its own boxes.
  both = ids(Splits.source_train) & train_target
  assert both
  full = sd.annotation_record(4, 0, sd.parse_source_id(sorted(both)[0])[1],
                              CONFIG)
  src = [r for r in splits[Splits.source_train]
         if r.source_id == full.source_id][0]
  assert src.classes.size < full.classes.size


def _files(directory):
  out = {}
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), 'rb') as f:
      out[name] = f.read()
  return out


def test_create_dataset_is_byte_identical_and_images_match_scenes(tmp_path):
  kwargs = dict(seed=2, num_train_images=16, num_val_images=6,
                seed_images_per_category=1.0, config=CONFIG, num_shards=2)
  sd.create_dataset(str(tmp_path / 'a'), **kwargs)
  sd.create_dataset(str(tmp_path / 'b'), **kwargs)
  first, second = _files(tmp_path / 'a'), _files(tmp_path / 'b')
  assert first == second
  assert len(first) == 5 * 2 + 3
  manifest = dataset_writer.read_manifest(str(tmp_path / 'a'))
  assert manifest['parameters']['seed'] == 2
  assert manifest['parameters']['scene_config']['image_size'] == 48
  assert [c['name'] for c in manifest['target_categories']] == list(
      ss.TARGET_NAMES)
  pattern = dataset_writer.split_file_pattern(str(tmp_path / 'a'),
                                              Splits.image_level)
  records = [tf_example_codec.example_to_record(r)
             for f in sorted(tf.io.gfile.glob(pattern))
             for r in tf.data.TFRecordDataset(f).as_numpy_iterator()]
  assert len(records) == manifest['splits'][Splits.image_level]['images'] > 0
  record = records[0]
  pool, index = sd.parse_source_id(record.source_id)
  expected, objects = ss.render_scene(2, pool, index, CONFIG)
  decoded = np.asarray(Image.open(io.BytesIO(record.image_bytes)))
  np.testing.assert_array_equal(decoded, expected)
  assert record.image_format == 'png' and record.height == 48
  np.testing.assert_allclose(
      record.hidden_boxes,
      np.asarray([o.box for o in objects
                  if o.category_id in ss.TARGET_IDS], np.float32) / 48)
  # A different seed gives different data.
  sd.create_dataset(str(tmp_path / 'c'), **dict(kwargs, seed=3))
  assert _files(tmp_path / 'c') != first


def test_scene_parameters_leave_out_later_fields_at_their_neutral_value():
  default = sd.scene_parameters(ss.SceneConfig())
  assert 'max_decoys' not in default
  assert default['image_size'] == 128 and default['min_visible'] == 0.6
  noisy = sd.scene_parameters(ss.SCENE_PRESETS['noisy'])
  assert noisy['max_decoys'] == ss.NOISY_SCENE_CONFIG.max_decoys
  assert ss.SceneConfig(**noisy) == ss.NOISY_SCENE_CONFIG


def test_attach_image_decode_checks_the_encoded_scene(monkeypatch):
  record = sd.annotation_record(0, sd.TRAIN_POOL, 3, CONFIG)
  good = sd.attach_image(record, 0, CONFIG)
  assert good.image_bytes.startswith(b'\x89PNG')
  encode = tf_example_codec.encode_image
  monkeypatch.setattr(tf_example_codec, 'encode_image',
                      lambda pixels, fmt: encode(pixels, fmt)[:100])
  with pytest.raises(ValueError, match=(
      r'synthetic scene synthetic-train-000003 \(synthetic-train-000003.png\)'
      r': image/encoded: the image data could not be decoded')):
    sd.attach_image(record, 0, CONFIG)
