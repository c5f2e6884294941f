"""Record counts of the loop's inputs come from manifests, not from the data."""
import os

import pytest
import tensorflow as tf

from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.data.records import tfrecord_reader
from object_detection_note.iterate import run_layout as layout


def test_seed_count_from_manifest_without_reading(tmp_path, monkeypatch):
  data = str(tmp_path / 'data')
  synthetic_dataset.create_dataset(
      data, seed=1, num_train_images=12, num_val_images=4,
      seed_images_per_category=1, num_shards=2,
      config=synthetic_scenes.SceneConfig(image_size=32, max_objects=2))
  pattern = dataset_writer.split_file_pattern(data, Splits.source_train)
  expected = sum(1 for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)))
  assert expected == dataset_writer.read_manifest(data)['splits'][
      Splits.source_train]['images'] > 0

  def no_reading(*args, **kwargs):
    raise AssertionError('the data was read to count it')

  with monkeypatch.context() as patch:
    patch.setattr(tf.data, 'TFRecordDataset', no_reading)
    patch.setattr(tfrecord_reader, 'read_indexed_records', no_reading)
    assert layout.count_records(pattern) == expected
    # One shard of the two: its own count.
    one = os.path.join(data, 'source_train.tfrecord-00000-of-00002')
    assert layout.count_records(one) == dataset_writer.read_manifest(data)[
        'splits'][Splits.source_train]['shards'][0]['records']
    # Files no manifest lists are counted by reading.
    stray = os.path.join(data, 'stray.tfrecord')
    tf.io.gfile.copy(one, stray)
    with pytest.raises(AssertionError, match='read to count'):
      layout.count_records(stray)
  assert layout.count_records(stray) == layout.count_records(one)
