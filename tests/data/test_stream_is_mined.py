"""is_mined comes from the stream a record is read from (note.mined_input or
the seed reader); a flag that contradicts its stream is a located bad record;
a mined shard written without the flag is still masked as mined in the loss.
"""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.core.fields import InputFields as I
from object_detection_note.core.fields import LossKeys
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.input import inputs
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.losses import note_rules
from object_detection_note.protos import input_reader_pb2
from object_detection_note.protos import model_pb2
from object_detection_note.protos import note_pb2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                'meta_architectures'))
import note_test_utils as u  # pylint: disable=g-import-not-at-top,wrong-import-position

_MODEL = """
faster_rcnn {
  num_classes: 2
  image_resizer { fixed_shape_resizer { height: %d width: %d } }
  feature_extractor { type: "faster_rcnn_tiny_keras" }
}
""" % (u.IMAGE_SIZE, u.IMAGE_SIZE)


def _example(source_id, is_mined):
  """A 64x64 image with one square on a 32-pixel anchor; ``is_mined`` None
  writes no image/note/is_mined feature at all."""
  pixels = np.full((u.IMAGE_SIZE, u.IMAGE_SIZE, 3), 20, np.uint8)
  pixels[12:44, 12:44] = u.COLOURS[0]
  record = codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels, 'png'), source_id=source_id,
      height=u.IMAGE_SIZE, width=u.IMAGE_SIZE, image_format='png',
      boxes=[[12 / 64, 12 / 64, 44 / 64, 44 / 64]], classes=[1],
      is_mined=is_mined or 0)
  example = codec.record_to_example(record)
  if is_mined is None:
    del example.features.feature[F.is_mined]
  return example.SerializeToString()


def _write(path, examples):
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      writer.write(example)


def _inputs(tmp_path, seed_flags, mined_flags, skip=False):
  seed_path = str(tmp_path / 'seed.tfrecord')
  mined_path = str(tmp_path / 'mined.tfrecord-00000-of-00001')
  _write(seed_path, [_example('seed-%d' % i, f)
                     for i, f in enumerate(seed_flags)])
  _write(mined_path, [_example('mined-%d' % i, f)
                      for i, f in enumerate(mined_flags)])
  reader = input_reader_pb2.InputReader()
  reader.tf_record_input_reader.input_path.append(seed_path)
  reader.shuffle = False
  reader.max_number_of_boxes = u.MAX_BOXES
  reader.skip_bad_records = skip
  note = note_pb2.NoteConfig()
  note.mined_input.input_path.append(mined_path)
  return reader, note, mined_path


def _examples(reader, note, num, batch_size=1):
  dataset = inputs.build_dataset(
      reader, text_format.Parse(_MODEL, model_pb2.DetectionModel()),
      batch_size, True, note_config=note)
  return [batch for batch, _ in zip(dataset, range(num))]


def test_mined_stream_without_flag_is_mined_and_seed_stream_is_not(tmp_path):
  # Mined records written by another tool, without image/note/is_mined.
  reader, note, _ = _inputs(tmp_path, [0, None], [None, None, 1])
  flags = {}
  for batch in _examples(reader, note, 30):
    flags.setdefault(batch[I.source_id][0].numpy().decode(), set()).add(
        float(batch[I.is_mined][0]))
  assert {k for k in flags if k.startswith('mined')} == {
      'mined-0', 'mined-1', 'mined-2'}
  for source_id, values in flags.items():
    assert values == ({1.0} if source_id.startswith('mined') else {0.0}), (
        source_id, values)


def test_single_stream_keeps_the_records_flag(tmp_path):
  reader, _, mined_path = _inputs(tmp_path, [0], [1])
  reader.tf_record_input_reader.input_path.append(mined_path)
  dataset = inputs.build_dataset(
      reader, text_format.Parse(_MODEL, model_pb2.DetectionModel()), 2, False)
  batch = next(iter(dataset))
  flags = dict(zip([s.decode() for s in batch[I.source_id].numpy()],
                   batch[I.is_mined].numpy().tolist()))
  assert flags == {'seed-0': 0.0, 'mined-0': 1.0}


@pytest.mark.parametrize('seed_flags,mined_flags,bad_file,flag,stream', [
    ([0], [1, 0], 'mined.tfrecord-00000-of-00001', 0, inputs.MINED_STREAM),
    ([0, 1], [1], 'seed.tfrecord', 1, inputs.SEED_STREAM),
])
def test_contradicting_flag_is_a_located_bad_record(tmp_path, seed_flags,
                                                    mined_flags, bad_file,
                                                    flag, stream):
  reader, note, _ = _inputs(tmp_path, seed_flags, mined_flags)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _examples(reader, note, 40)
  message = str(error.value)
  assert 'bad record in %s: record #1' % (tmp_path / bad_file) in message
  assert '%s is %d but the record is read from %s' % (
      F.is_mined, flag, stream) in message, message


def test_contradicting_flag_is_skipped_with_skip_bad_records(tmp_path):
  reader, note, _ = _inputs(tmp_path, [0], [1, 0], skip=True)
  seen = {batch[I.source_id][0].numpy().decode()
          for batch in _examples(reader, note, 30)}
  assert seen == {'seed-0', 'mined-0'}


def test_unflagged_mined_shard_is_masked_in_the_loss(tmp_path):
  """The seed-only heads get no gradient from a mined shard without flag."""
  reader, note, _ = _inputs(tmp_path, [0], [None])
  note.seed_fraction = 0.01  # draws are (almost) all mined
  mined = [b for b in _examples(reader, note, 8, batch_size=2)
           if float(tf.reduce_min(b[I.is_mined])) == 1.0][0]
  model = u.tiny_model(u.tiny_params(
      note=note_rules.NoteConfig(rpn_cls_a=True, det_cls_a=True,
                                 mask_mined_background=True),
      first_stage_max_proposals=128, first_stage_pre_nms_top_k=128))
  heads = {'det_cls': model.box_predictor.det_cls,
           'rpn_cls': model.rpn_head.rpn_cls,
           'det_cls_a': model.box_predictor.det_cls_a}
  with tf.GradientTape() as tape:
    losses = model.compute_losses(mined)
  grads = tape.gradient(losses[LossKeys.total],
                        {k: v.trainable_variables for k, v in heads.items()})
  norms = {k: sum(float(tf.reduce_sum(tf.abs(g))) for g in v
                  if g is not None) for k, v in grads.items()}
  assert norms['det_cls'] == 0.0 and norms['rpn_cls'] == 0.0, norms
  assert norms['det_cls_a'] > 0.0, norms
  assert float(losses[LossKeys.box_classification]) == 0.0
