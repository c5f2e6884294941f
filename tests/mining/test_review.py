"""Human-review export and folding of reviewed answers into seed records."""
import csv
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.mining import box_mining
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.mining import review

sys.path.insert(0, os.path.dirname(__file__))


def _record(source_id='img', labels=(1, 2)):
  pixels = np.full((20, 20, 3), 90, np.uint8)
  return codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels, 'png'), source_id=source_id,
      height=20, width=20, image_format='png', image_labels=list(labels),
      image_label_texts=['a', 'b'][:len(labels)])


def test_candidates_are_the_unmined_best_boxes():
  best = box_mining.MinedBoxes(
      np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.9, 0.9]], np.float32),
      np.array([1, 2]), np.array([0.995, 0.7], np.float32))
  candidates = review.candidates_of(_record(), best, 0.99, {1: 'a', 2: 'b'})
  assert len(candidates) == 1
  score, candidate = candidates[0]
  assert score == pytest.approx(0.7) and candidate['class_name'] == 'b'


def test_write_review_files(tmp_path):
  record = _record()
  scored = [(0.5, {'source_id': 'img', 'class_id': 1, 'class_name': 'a',
                   'score': 0.5, 'box': [0.1, 0.1, 0.6, 0.6],
                   'image_bytes': record.image_bytes}),
            (0.9, {'source_id': 'img', 'class_id': 2, 'class_name': 'b',
                   'score': 0.9, 'box': [0.2, 0.3, 0.8, 0.9],
                   'image_bytes': record.image_bytes})]
  rows = review.write_review(str(tmp_path), scored)
  assert [r['score'] for r in rows] == [0.9, 0.5]  # most uncertain first
  data = json.loads((tmp_path / review.CANDIDATES_JSON).read_text())
  assert data[0]['crop'] == 'crops/000_img_b.png'
  assert (tmp_path / data[0]['crop']).read_bytes()[:4] == b'\x89PNG'
  with open(tmp_path / review.CANDIDATES_CSV) as f:
    table = list(csv.DictReader(f))
  assert table[1]['class_id'] == '1' and table[1]['accept'] == ''


def test_answers_fold_into_seed_records(tmp_path):
  answers = tmp_path / 'answers.csv'
  answers.write_text(
      'source_id,class_id,class_name,score,ymin,xmin,ymax,xmax,accept\n'
      'img,2,b,0.9,0.2,0.3,0.8,0.9,1\n'
      'img,1,a,0.5,0.1,0.1,0.6,0.6,0\n')
  accepted = review.read_answers(str(answers))
  assert accepted == {'img': [(2, [0.2, 0.3, 0.8, 0.9])]}
  path = str(tmp_path / 'a.tfrecord')
  beam_io.write_tfrecord_atomically(
      path, [codec.serialize_record(r) for r in (_record('img'),
                                                 _record('other'))])
  records = review.reviewed_records([path], accepted, {1: 'a', 2: 'b'})
  assert [r.source_id for r in records] == ['img']
  assert records[0].is_mined == 0
  np.testing.assert_array_equal(records[0].classes, [2])
  assert records[0].class_texts == ['b']
  with pytest.raises(ValueError, match='not in the image-level set'):
    review.reviewed_records([path], {'ghost': [(1, [0, 0, 1, 1])]}, {})


def test_bad_answers_name_file_and_line(tmp_path):
  answers = tmp_path / 'answers.csv'
  answers.write_text(
      'source_id,class_id,class_name,score,ymin,xmin,ymax,xmax,accept\n'
      'img,2,b,0.9,0.8,0.3,0.2,0.9,1\n')
  with pytest.raises(ValueError, match=r'answers.csv:2: box'):
    review.read_answers(str(answers))


def test_mining_pipeline_exports_review(tmp_path, monkeypatch):
  monkeypatch.setenv('PYTHONPATH', os.path.dirname(__file__))
  path = str(tmp_path / 'image_level.tfrecord-00000-of-00001')
  records = []
  for i in range(6):
    pixels = np.full((16, 16, 3), 40 * i, np.uint8)
    pixels[:8, :8] = 250
    records.append(codec.DetectionRecord(
        image_bytes=codec.encode_image(pixels, 'png'), source_id='r%d' % i,
        height=16, width=16, image_format='png', image_labels=[1, 2]))
  beam_io.write_tfrecord_atomically(
      path, [codec.serialize_record(r) for r in records])
  review_dir = str(tmp_path / 'review')
  mining_pipeline.run_mining(
      mining_spec.MiningSpec({1: 'bright', 2: 'dark'}, 0.99, num_shards=1,
                             review_dir=review_dir, review_count=3),
      str(tmp_path / 'image_level.tfrecord-*'), str(tmp_path / 'mined'),
      mining_pipeline.DetectorSpec('fake_detector:make_detector'))
  rows = json.loads(tf.io.gfile.GFile(
      os.path.join(review_dir, review.CANDIDATES_JSON)).read())
  assert len(rows) == 3
  assert all(r['score'] <= 0.99 for r in rows)
  assert rows == sorted(rows, key=lambda r: -r['score'])
