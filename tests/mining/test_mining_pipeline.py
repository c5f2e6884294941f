"""The Beam mining pipeline: outputs, metrics, 1 vs 2 workers."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec

sys.path.insert(0, os.path.dirname(__file__))
SPEC = mining_pipeline.DetectorSpec('fake_detector:make_detector')
QUADRANTS = [(0.0, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.0, 1.0, 0.5),
             (0.5, 0.5, 1.0, 1.0)]


def _records(n=24, seed=0):
  rng = np.random.default_rng(seed)
  records = []
  for i in range(n):
    pixels = np.full((16, 16, 3), 128, np.uint8)
    bright, dark = rng.choice(4, 2, replace=False)
    for quadrant, value in ((bright, 250), (dark, 5)):
      y0, x0, y1, x1 = (np.array(QUADRANTS[quadrant]) * 16).astype(int)
      pixels[y0:y1, x0:x1] = value
    # Hidden box of class 1 on the bright quadrant for even images only.
    hidden = [QUADRANTS[bright]] if i % 2 == 0 else [QUADRANTS[dark]]
    records.append(codec.DetectionRecord(
        image_bytes=codec.encode_image(pixels, 'png'), source_id='img%02d' % i,
        height=16, width=16, image_format='png',
        image_labels=[1] if i % 3 else [1, 2], hidden_boxes=hidden,
        hidden_classes=[1]))
  return records


def _write_input(directory, records):
  path = os.path.join(directory, 'image_level.tfrecord-00000-of-00001')
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(codec.record_to_example(record).SerializeToString())
  return os.path.join(directory, 'image_level.tfrecord-*')


def _run(tmp_path, name, workers, monkeypatch):
  monkeypatch.setenv('PYTHONPATH', os.path.dirname(__file__) + os.pathsep +
                     os.environ.get('PYTHONPATH', ''))
  pattern = _write_input(str(tmp_path), _records())
  options = beam_io.pipeline_options([
      '--direct_num_workers=%d' % workers,
      '--direct_running_mode=%s' % ('multi_processing' if workers > 1
                                    else 'in_memory')])
  out_dir = str(tmp_path / name)
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(score_threshold=0.9,
                             id_to_name={1: 'bright', 2: 'dark'},
                             num_shards=3, batch_size=4),
      pattern, out_dir, SPEC, pipeline_options=options)
  shards = sorted(tf.io.gfile.glob(beam_io.shard_pattern(
      os.path.join(out_dir, 'mined.tfrecord'))))
  return metrics, {os.path.basename(s): open(s, 'rb').read() for s in shards}


def test_mined_set_and_metrics(tmp_path, monkeypatch):
  metrics, shards = _run(tmp_path, 'one', 1, monkeypatch)
  mined = []
  for name in shards:
    mined += [codec.example_to_record(r) for r in tf.data.TFRecordDataset(
        str(tmp_path / 'one' / name)).as_numpy_iterator()]
  # Every image has label 1 and its bright quadrant scores 250/255 > 0.9;
  # label 2's darkest quadrant scores 1 - 5/255 > 0.9 on every 3rd image.
  assert len(mined) == 24
  assert all(r.is_mined == 1 for r in mined)
  assert sum(len(r.classes) for r in mined) == 24 + 8
  assert metrics['mined_boxes'] == 32
  # True positives: the class-1 box on even images (hidden box on bright).
  assert metrics['true_positives'] == 12
  assert metrics['precision'] == pytest.approx(12 / 32)
  assert metrics['recall'] == pytest.approx(12 / 24)
  assert metrics['per_category']['bright']['precision'] == pytest.approx(0.5)
  sweep = {p['threshold']: p for p in metrics['threshold_sweep']}
  assert sweep[0.0]['mined_boxes'] == 32
  assert sweep[0.999]['mined_boxes'] == 0
  assert os.path.exists(tmp_path / 'one' / 'mining_metrics.json')


def test_two_workers_give_the_same_mined_set(tmp_path, monkeypatch):
  metrics_1, shards_1 = _run(tmp_path, 'w1', 1, monkeypatch)
  metrics_2, shards_2 = _run(tmp_path, 'w2', 2, monkeypatch)
  assert shards_1 == shards_2
  assert json.dumps(metrics_1, sort_keys=True) == json.dumps(
      metrics_2, sort_keys=True)
