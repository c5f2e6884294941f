"""Human review of uncertain mining candidates (the paper's future work, §5).

Export: for each image and image-level label, mining takes the best box; the
ones NOT mined (score ≤ θb) with the highest scores are the detector's most
uncertain calls. ``write_review`` stores the K highest of them in
``<review_dir>/``: ``candidates.json``, ``candidates.csv`` and
``crops/<rank>_<source_id>_<class>.png`` (the box drawn on a crop of the
image).

Answers: a reviewer copies ``candidates.csv`` to ``answers.csv`` and sets
``accept`` to 1 (box correct; coordinates may be corrected) or 0. The iterate
driver folds accepted answers into the next iteration's training set as
seed boxes (``is_mined`` 0), see ``reviewed_records``.
"""
import csv
import io
import json
import os

import numpy as np
from PIL import Image
from PIL import ImageDraw
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.data.records import tf_example_codec
from object_detection_note.data.records import tfrecord_reader

CANDIDATES_JSON = 'candidates.json'
CANDIDATES_CSV = 'candidates.csv'
ANSWERS_CSV = 'answers.csv'
CSV_COLUMNS = ('source_id', 'class_id', 'class_name', 'score', 'ymin', 'xmin',
               'ymax', 'xmax', 'accept')


def candidates_of(record, best, score_threshold, id_to_name):
  """Unmined best-per-label boxes of one record, as review candidates.

  Args:
    record: DetectionRecord of the image-level set.
    best: box_mining.MinedBoxes of the best box per label (no threshold).
    score_threshold: θb; candidates have score ≤ θb.
    id_to_name: {label id: name}.

  Returns:
    list of (score, candidate dict with the image bytes).
  """
  out = []
  for box, label, score in zip(best.boxes, best.classes, best.scores):
    if score <= score_threshold:
      out.append((float(score), {
          'source_id': record.source_id, 'class_id': int(label),
          'class_name': id_to_name.get(int(label), str(int(label))),
          'score': float(score), 'box': [float(v) for v in box],
          'image_bytes': record.image_bytes}))
  return out


def _crop_png(image_bytes, box, margin=0.25):
  image = Image.open(io.BytesIO(image_bytes)).convert('RGB')
  width, height = image.size
  ymin, xmin, ymax, xmax = box
  pad_y, pad_x = (ymax - ymin) * margin, (xmax - xmin) * margin
  left, top = max(0, (xmin - pad_x) * width), max(0, (ymin - pad_y) * height)
  right = min(width, (xmax + pad_x) * width)
  bottom = min(height, (ymax + pad_y) * height)
  draw = ImageDraw.Draw(image)
  draw.rectangle([xmin * width, ymin * height, xmax * width, ymax * height],
                 outline=(255, 0, 0), width=2)
  crop = image.crop((int(left), int(top), int(np.ceil(right)),
                     int(np.ceil(bottom))))
  buffer = io.BytesIO()
  crop.save(buffer, format='PNG')
  return buffer.getvalue()


def write_review(review_dir, scored_candidates):
  """Writes the candidates (highest score first) with crops; returns rows."""
  tf.io.gfile.makedirs(os.path.join(review_dir, 'crops'))
  ordered = sorted(scored_candidates,
                   key=lambda sc: (-sc[0], sc[1]['source_id'],
                                   sc[1]['class_id']))
  rows = []
  for rank, (_, candidate) in enumerate(ordered):
    crop = 'crops/%03d_%s_%s.png' % (rank, candidate['source_id'],
                                     candidate['class_name'])
    file_io.write_atomically(os.path.join(review_dir, crop),
                             _crop_png(candidate['image_bytes'],
                                       candidate['box']))
    row = {k: v for k, v in candidate.items() if k != 'image_bytes'}
    row['crop'] = crop
    rows.append(row)
  file_io.write_atomically(os.path.join(review_dir, CANDIDATES_JSON),
                           json.dumps(rows, indent=2))
  text = io.StringIO()
  writer = csv.writer(text)
  writer.writerow(CSV_COLUMNS)
  for row in rows:
    writer.writerow([row['source_id'], row['class_id'], row['class_name'],
                     '%.6f' % row['score']] +
                    ['%.6f' % v for v in row['box']] + [''])
  file_io.write_atomically(os.path.join(review_dir, CANDIDATES_CSV),
                           text.getvalue())
  return rows


def read_answers(path):
  """Accepted answers of ``answers.csv``: {source_id: [(class_id, box)]}.

  Raises ValueError naming the file and line for a malformed row.
  """
  accepted = {}
  with tf.io.gfile.GFile(path) as f:
    for line, row in enumerate(csv.DictReader(f), start=2):
      try:
        if int(row['accept'] or 0) != 1:
          continue
        box = [float(row[k]) for k in ('ymin', 'xmin', 'ymax', 'xmax')]
        label = int(row['class_id'])
      except (KeyError, TypeError, ValueError) as error:
        raise ValueError('%s:%d: bad review answer (%s); columns: %s' %
                         (path, line, error, ', '.join(CSV_COLUMNS))) from None
      if not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
        raise ValueError('%s:%d: box %s must be normalised with ymin < ymax, '
                         'xmin < xmax' % (path, line, box))
      accepted.setdefault(row['source_id'], []).append((label, box))
  return accepted


def reviewed_records(image_level_files, accepted, id_to_name):
  """Seed records (is_mined 0) of the images with accepted answers.

  Args:
    image_level_files: TFRecord files of the image-level set.
    accepted: {source_id: [(class_id, box)]} from ``read_answers``.
    id_to_name: {label id: name}.

  Returns:
    list of DetectionRecord, sorted by source_id.
  """
  out = []
  for serialized in (r for f in image_level_files
                     for r in tfrecord_reader.read_records(f)):
    record = tf_example_codec.example_to_record(serialized)
    answers = accepted.get(record.source_id)
    if not answers:
      continue
    out.append(tf_example_codec.DetectionRecord(
        image_bytes=record.image_bytes, source_id=record.source_id,
        height=record.height, width=record.width,
        image_format=record.image_format, filename=record.filename,
        boxes=[box for _, box in answers],
        classes=[label for label, _ in answers],
        class_texts=[id_to_name.get(label, str(label)) for label, _ in answers],
        image_labels=record.image_labels,
        image_label_texts=list(record.image_label_texts), is_mined=0))
  missing = set(accepted) - {r.source_id for r in out}
  if missing:
    raise ValueError('review answers name images that are not in the '
                     'image-level set: %s' % ', '.join(sorted(missing)[:5]))
  return sorted(out, key=lambda r: r.source_id)
