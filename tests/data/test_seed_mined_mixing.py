"""Seed and mined sets read apart and mixed: no seed bursts, stated shares."""
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.core.fields import InputFields as I
from object_detection_note.data.input import inputs
from object_detection_note.data.input import seed_mined_mixing
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.protos import input_reader_pb2
from object_detection_note.protos import model_pb2
from object_detection_note.protos import note_pb2

_MODEL = """
faster_rcnn {
  num_classes: 2
  image_resizer { fixed_shape_resizer { height: 8 width: 8 } }
  feature_extractor { type: "faster_rcnn_tiny_keras" }
}
"""
# Window of training examples over which the seed share is measured, and the
# allowed deviation from the expected share: 4 binomial standard deviations
# at the largest variance (p = 0.5, 100 draws: sd 0.05) is 0.2; windows use
# a fixed op seed, so the test is deterministic.
_WINDOW = 100
_TOLERANCE = 0.2


def _write(path, num, is_mined, start):
  pixels = np.zeros((8, 8, 3), np.uint8)
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(num):
      record = codec.DetectionRecord(
          image_bytes=codec.encode_image(pixels, 'png'),
          source_id='%d' % (start + i), height=8, width=8,
          image_format='png', boxes=[[0.1, 0.1, 0.5, 0.5]], classes=[1],
          is_mined=is_mined)
      writer.write(codec.record_to_example(record).SerializeToString())


def _datasets(tmp_path, num_seed, num_mined, seed_fraction=None):
  seed_path = str(tmp_path / 'seed.tfrecord')
  _write(seed_path, num_seed, 0, 0)
  mined_paths = []
  # Mined set in 4 shards, as the loop writes it.
  for shard in range(4):
    path = str(tmp_path / ('mined.tfrecord-%05d-of-00004' % shard))
    _write(path, num_mined // 4, 1, 10000 + shard * num_mined)
    mined_paths.append(path)
  reader = input_reader_pb2.InputReader()
  reader.tf_record_input_reader.input_path.append(seed_path)
  reader.shuffle = True
  note = note_pb2.NoteConfig()
  note.mined_input.input_path.append(str(tmp_path / 'mined.tfrecord-*'))
  if seed_fraction is not None:
    note.seed_fraction = seed_fraction
  return reader, note


def _is_mined_stream(reader, note, num):
  tf.random.set_seed(7)
  dataset = inputs.build_dataset(
      reader, text_format.Parse(_MODEL, model_pb2.DetectionModel()), 10,
      True, note_config=note)
  flags = []
  for batch in dataset.take(num // 10):
    flags.extend(batch[I.is_mined].numpy().tolist())
  return np.array(flags)


@pytest.mark.parametrize('seed_fraction,num_seed,num_mined,expected', [
    (None, 12, 48, 12 / 60),   # the union's proportions
    (0.5, 12, 48, 0.5),        # a fixed share
])
def test_seed_share_is_steady_in_every_window(tmp_path, seed_fraction,
                                              num_seed, num_mined, expected):
  reader, note = _datasets(tmp_path, num_seed, num_mined, seed_fraction)
  mined = _is_mined_stream(reader, note, 2000)
  windows = 1.0 - mined.reshape(-1, _WINDOW).mean(axis=1)
  assert np.all(np.abs(windows - expected) <= _TOLERANCE), windows
  assert abs((1.0 - mined.mean()) - expected) < 0.05


def test_counts_from_the_config_set_the_default_share(tmp_path):
  reader, note = _datasets(tmp_path, 12, 48)
  note.mined_input.num_examples = 12  # as if the manifest said so: 50/50
  mined = _is_mined_stream(reader, note, 1000)
  assert abs(mined.mean() - 0.5) < 0.06


def test_without_mined_input_only_seed_is_read(tmp_path):
  reader, note = _datasets(tmp_path, 12, 48)
  note.ClearField('mined_input')
  assert _is_mined_stream(reader, note, 100).sum() == 0


def test_seed_weight_values_and_errors():
  assert seed_mined_mixing.seed_weight(12, 36) == 0.25
  assert seed_mined_mixing.seed_weight(12, 0) == 1.0
  assert seed_mined_mixing.seed_weight(12, 36, 0.6) == 0.6
  with pytest.raises(ValueError, match='seed_fraction'):
    seed_mined_mixing.seed_weight(12, 36, 1.0)
  with pytest.raises(ValueError, match='no examples'):
    seed_mined_mixing.seed_weight(0, 36)
