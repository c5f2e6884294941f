"""The ablation controls of note.mining.control: ORACLE (mined boxes become
hidden true instances) and FROZEN_T0 (every B^t mined by T^0)."""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages
from object_detection_note.mining import box_mining
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.protos import pipeline_pb2

sys.path.insert(0, os.path.dirname(__file__))
SPEC = mining_pipeline.DetectorSpec('fake_detector:make_detector')
NAMES = {1: 'bright', 2: 'dark'}


def _best(boxes, classes, scores):
  return box_mining.MinedBoxes(np.asarray(boxes, np.float32),
                               np.asarray(classes, np.int64),
                               np.asarray(scores, np.float32))


def test_oracle_takes_the_overlapping_instance_else_the_largest():
  hidden = [(0.0, 0.0, 0.2, 0.2),   # class 1, small, under the detection
            (0.5, 0.5, 1.0, 1.0),   # class 1, largest
            (0.3, 0.0, 0.6, 0.3),   # class 2
            (0.6, 0.0, 0.7, 0.1)]   # class 2, smaller, elsewhere
  classes = [1, 1, 2, 2]
  best = _best([(0.0, 0.0, 0.25, 0.25), (0.0, 0.7, 0.2, 0.9)], [1, 2],
               [0.95, 0.4])
  oracle = box_mining.oracle_boxes(best, hidden, classes, 'img')
  # Class 1: the instance the detection overlaps, not the largest one.
  np.testing.assert_allclose(oracle.boxes[0], hidden[0])
  # Class 2: no instance overlaps the detection -> the largest one.
  np.testing.assert_allclose(oracle.boxes[1], hidden[2])
  assert oracle.classes.tolist() == [1, 2]
  np.testing.assert_allclose(oracle.scores, [0.95, 0.4])
  # The threshold then keeps the labels M would keep.
  record = codec.DetectionRecord(
      image_bytes=b'', source_id='img', height=16, width=16,
      image_format='png', image_labels=[1, 2], hidden_boxes=hidden,
      hidden_classes=classes)
  result = mining_pipeline.mine_best(record, best, mining_spec.MiningSpec(
      NAMES, 0.5, oracle=True))
  assert result.stats.summary()['mined_boxes'] == 1
  assert result.stats.summary()['precision'] == 1.0
  plain = mining_pipeline.mine_best(record, _best(
      [(0.0, 0.6, 0.4, 1.0)], [1], [0.95]), mining_spec.MiningSpec(NAMES, 0.5))
  assert plain.stats.summary()['precision'] == 0.0


def test_oracle_needs_hidden_boxes_of_the_label():
  best = _best([(0.0, 0.0, 0.5, 0.5)], [2], [0.9])
  with pytest.raises(box_mining.OracleError, match=r"'img7'.*hidden.*label 2"):
    box_mining.oracle_boxes(best, [(0.0, 0.0, 0.5, 0.5)], [1], 'img7')


def _records(n=6):
  """The fake detector finds class 1 in the bright top-left quadrant; the
  true class-1 instances are bottom-right (and a smaller one bottom-left)."""
  records = []
  for i in range(n):
    pixels = np.full((16, 16, 3), 60, np.uint8)
    pixels[:8, :8] = 200 + 5 * i
    pixels[8:, 8:] = 5
    records.append(codec.DetectionRecord(
        image_bytes=codec.encode_image(pixels, 'png'), source_id='img%02d' % i,
        height=16, width=16, image_format='png', image_labels=[1],
        hidden_boxes=[(0.5, 0.5, 1.0, 1.0), (0.75, 0.0, 1.0, 0.25)],
        hidden_classes=[1, 1]))
  return records


@pytest.mark.parametrize('oracle', [False, True])
def test_oracle_mining_through_the_pipeline(tmp_path, monkeypatch, oracle):
  monkeypatch.setenv('PYTHONPATH', os.path.dirname(__file__) + os.pathsep +
                     os.environ.get('PYTHONPATH', ''))
  path = str(tmp_path / 'a.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for record in _records():
      writer.write(codec.record_to_example(record).SerializeToString())
  out_dir = str(tmp_path / 'mined')
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(score_threshold=0.5, id_to_name=NAMES,
                             num_shards=1, batch_size=4, oracle=oracle),
      path, out_dir, SPEC, pipeline_options=beam_io.pipeline_options([]))
  assert metrics['mined_boxes'] == 6
  assert metrics['precision'] == (1.0 if oracle else 0.0)
  # One instance of the two per label is mined: the other stays unlabelled.
  assert metrics['recall'] == (0.5 if oracle else 0.0)
  mined = [codec.example_to_record(r) for f in tf.io.gfile.glob(
      beam_io.shard_pattern(os.path.join(out_dir, 'mined.tfrecord')))
           for r in tf.data.TFRecordDataset(f).as_numpy_iterator()]
  assert len(mined) == 6
  expected = (0.5, 0.5, 1.0, 1.0) if oracle else (0.0, 0.0, 0.5, 0.5)
  for record in mined:
    np.testing.assert_allclose(np.asarray(record.boxes).reshape(-1, 4),
                               [expected])


@pytest.mark.parametrize('control,detector_t', [('NONE', 2),
                                                ('FROZEN_T0', 0),
                                                ('ORACLE', 2)])
def test_frozen_t0_mines_every_iteration_with_t0(tmp_path, monkeypatch,
                                                 control, detector_t):
  label_map = tmp_path / 'labels.pbtxt'
  label_map.write_text("item { id: 1 name: 'bright' }\n")
  pipeline = text_format.Parse(
      'note { mining { score_threshold: 0.9 control: %s } '
      'image_level_input_reader { label_map_path: "%s" '
      'tf_record_input_reader { input_path: "a-*" } } }' % (control,
                                                           label_map),
      pipeline_pb2.TrainEvalPipelineConfig())
  model_dir = str(tmp_path / 'run')
  ctx = stages.RunContext('t.config', model_dir, {'note': pipeline.note})
  monkeypatch.setattr(stages.tf.train, 'latest_checkpoint',
                      lambda d: os.path.join(d, 'ckpt-7'))
  specs, calls = [], []
  monkeypatch.setattr(stages.detectors, 'detector_spec',
                      lambda path, **kw: specs.append((path, kw)) or 'spec')

  def fake_mining(spec, patterns, directory, detector, pipeline_options):
    calls.append((detector, spec))
    return {'images': 4, 'images_with_boxes': 2, 'mined_boxes': 2,
            'precision': 1.0, 'recall': 0.25,
            'threshold_sweep': [{'threshold': 0.9, 'mined_boxes': 2,
                                 'true_positives': 2, 'precision': 1.0}]}
  monkeypatch.setattr(stages.mining_pipeline, 'run_mining', fake_mining)
  monkeypatch.setattr(stages.layout, 'count_records', lambda pattern: 4)
  diagnosed = []
  monkeypatch.setattr(stages.diagnostics_pass, 'diagnose_iteration',
                      lambda note, config, checkpoint, *args:
                      diagnosed.append((config, checkpoint)))
  manifest = stages.mine_iteration(ctx, 3)
  # The loop-health pass runs with the model that mined.
  assert diagnosed == [(specs[0][0], specs[0][1]['checkpoint_dir'])]
  assert specs[0][0] == layout.pipeline_path(model_dir, detector_t)
  assert specs[0][1]['checkpoint_dir'] == os.path.join(
      layout.train_dir(model_dir, detector_t), 'ckpt-7')
  assert manifest['detector_checkpoint'] == specs[0][1]['checkpoint_dir']
  assert manifest['control'] == control
  assert calls[0][1].oracle == (control == 'ORACLE')
