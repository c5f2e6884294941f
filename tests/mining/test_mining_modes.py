"""Mining: every input pattern read, adaptive per-class thresholds, and the
too-few-boxes rule (warning with the sweep, or a stop)."""
import os
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from absl import logging
from google.protobuf import text_format

from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.iterate import stages
from object_detection_note.mining import class_thresholds
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.protos import note_pb2

sys.path.insert(0, os.path.dirname(__file__))
SPEC = mining_pipeline.DetectorSpec('fake_detector:make_detector')
NAMES = {1: 'bright', 2: 'dark'}


def _records(n=24):
  """Image i: top-left quadrant at 100 + 6i (class 1 scores (100 + 6i)/255),
  bottom-right at 5 (class 2 scores 250/255); label 2 on every 3rd image."""
  records = []
  for i in range(n):
    pixels = np.full((16, 16, 3), 60, np.uint8)
    pixels[:8, :8] = 100 + 6 * i
    pixels[8:, 8:] = 5
    records.append(codec.DetectionRecord(
        image_bytes=codec.encode_image(pixels, 'png'), source_id='img%02d' % i,
        height=16, width=16, image_format='png',
        image_labels=[1, 2] if i % 3 == 0 else [1],
        hidden_boxes=[(0.0, 0.0, 0.5, 0.5)], hidden_classes=[1]))
  return records


def _write(path, records):
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(codec.record_to_example(record).SerializeToString())


def _mine(tmp_path, monkeypatch, patterns, threshold, adaptive=None, name='m'):
  monkeypatch.setenv('PYTHONPATH', os.path.dirname(__file__) + os.pathsep +
                     os.environ.get('PYTHONPATH', ''))
  out_dir = str(tmp_path / name)
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(score_threshold=threshold, id_to_name=NAMES,
                             num_shards=2, batch_size=4,
                             adaptive_threshold=adaptive),
      patterns, out_dir, SPEC, pipeline_options=beam_io.pipeline_options([]))
  mined = []
  for shard in sorted(tf.io.gfile.glob(beam_io.shard_pattern(
      os.path.join(out_dir, 'mined.tfrecord')))):
    mined += [codec.example_to_record(r) for r in
              tf.data.TFRecordDataset(shard).as_numpy_iterator()]
  return metrics, mined


def test_every_input_pattern_is_mined(tmp_path, monkeypatch):
  records = _records()
  _write(str(tmp_path / 'part_a.tfrecord'), records[:10])
  _write(str(tmp_path / 'part_b.tfrecord'), records[10:])
  metrics, mined = _mine(
      tmp_path, monkeypatch,
      [str(tmp_path / 'part_a.tfrecord*'), str(tmp_path / 'part_b.tfrecord*')],
      0.9)
  assert metrics['images'] == 24
  # Class 1 above 0.9 for 100 + 6i > 229.5: i >= 22; class 2 on 8 images.
  assert sorted(r.source_id for r in mined) == sorted(
      {'img22', 'img23'} | {'img%02d' % i for i in range(0, 24, 3)})


def test_fixed_threshold_mines_nothing_of_a_weak_class(tmp_path, monkeypatch):
  _write(str(tmp_path / 'a.tfrecord'), _records())
  metrics, mined = _mine(tmp_path, monkeypatch, str(tmp_path / 'a.tfrecord'),
                         0.95)
  assert metrics['per_category']['dark']['mined_boxes'] == 8
  assert 'bright' not in metrics['per_category'] or (
      metrics['per_category']['bright']['mined_boxes'] == 0)
  assert all(list(r.classes) == [2] for r in mined)
  assert 'class_score_thresholds' not in metrics


@pytest.mark.parametrize('min_score,expected_bright', [
    (0.5, 12),  # the better half of class 1's 24 candidates
    (0.8, 6),   # bounded below: only (100 + 6i)/255 > 0.8, i >= 18
])
def test_adaptive_threshold_per_class(tmp_path, monkeypatch, min_score,
                                      expected_bright):
  _write(str(tmp_path / 'a.tfrecord'), _records())
  adaptive = note_pb2.AdaptiveThreshold(keep_fraction=0.5,
                                        min_score=min_score)
  metrics, mined = _mine(tmp_path, monkeypatch, str(tmp_path / 'a.tfrecord'),
                         0.95, adaptive)
  assert metrics['per_category']['bright']['mined_boxes'] == expected_bright
  # Class 2 scores 0.98 > θb: all 8 kept, θ_2 stays θb.
  assert metrics['per_category']['dark']['mined_boxes'] == 8
  assert metrics['class_score_thresholds']['dark'] == pytest.approx(0.95)
  kept = sorted(int(r.source_id[3:]) for r in mined if 1 in list(r.classes))
  assert kept == list(range(24 - expected_bright, 24))


def test_adaptive_thresholds_values_and_errors():
  thresholds = class_thresholds.adaptive(
      {1: [0.1, 0.2, 0.3, 0.4], 2: [0.99, 0.995]}, 0.9, 0.5, 0.15)
  assert 0.2 < thresholds[1] < 0.3  # keeps 0.3 and 0.4
  assert thresholds[2] == pytest.approx(0.9)  # never above θb
  assert class_thresholds.adaptive({1: [0.1, 0.2]}, 0.9, 1.0, 0.15)[1] == (
      pytest.approx(0.15))  # never below min_score
  with pytest.raises(ValueError, match='keep_fraction'):
    class_thresholds.adaptive({}, 0.9, 0.0, 0.5)
  with pytest.raises(ValueError, match='min_score'):
    class_thresholds.adaptive({}, 0.9, 0.5, 1.0)


_SWEEP = [{'threshold': 0.0, 'mined_boxes': 50, 'precision': 0.6},
          {'threshold': 0.5, 'mined_boxes': 20, 'precision': 0.85},
          {'threshold': 0.9, 'mined_boxes': 0, 'precision': None}]


def test_too_few_boxes_message_names_a_threshold_that_mines():
  assert class_thresholds.too_few_boxes_message(3, 1, 0.9, _SWEEP) is None
  assert class_thresholds.too_few_boxes_message(0, 0, 0.9, _SWEEP) is None
  text = class_thresholds.too_few_boxes_message(0, 1, 0.9, _SWEEP)
  assert 'mined 0 boxes at θb = 0.9' in text
  assert 'θb = 0.5 would have mined 20 boxes' in text
  assert '—' in text  # undefined precision at 0.9
  text = class_thresholds.too_few_boxes_message(0, 100, 0.9, _SWEEP)
  assert 'no swept θb mines 100 boxes' in text


def _ctx(too_few):
  note = text_format.Parse('mining { too_few_boxes: %s }' % too_few,
                           note_pb2.NoteConfig())
  return types.SimpleNamespace(note=note, pipeline_config_path='my.config')


def test_iteration_with_too_few_boxes_warns_or_stops(monkeypatch):
  manifest = {'mined_boxes': 0, 'warning': class_thresholds.
              too_few_boxes_message(0, 1, 0.9, _SWEEP)}
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda *a: warnings.append(a[0]))
  stages.check_mined_enough(_ctx('WARN'), 2, manifest)
  assert any('B^2 (my.config)' in w and 'θb = 0.5' in w for w in warnings)
  assert any('T^2 trains on B0 alone' in w for w in warnings)
  with pytest.raises(RuntimeError, match=r'(?s)B\^2.*θb = 0.5.*STOP'):
    stages.check_mined_enough(_ctx('STOP'), 2, manifest)
  stages.check_mined_enough(_ctx('STOP'), 2, {'mined_boxes': 5})  # no warning
