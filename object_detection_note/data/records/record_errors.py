"""Bad input records: one vocabulary of problems, errors that name the file,
the record and the field, and the report of records skipped.

A *problem* is a one-line string that starts with the field it concerns, e.g.
``image/encoded: the image data could not be decoded (corrupt or truncated
image)``. The same texts are produced by the tf.data checks
(``data/records/safe_records.py``, training and evaluation) and by the
Python checks here (mining), so a bad record reads the same wherever it is
met.

Every bad record is located as ``<file>: record #<index> (source_id <id>)``
where ``index`` counts records from 0 in their TFRecord file. What happens
next is the reader's choice:

  * default: stop with ``BadRecordError`` (Python) or ``InvalidArgumentError``
    (tf.data) carrying that location and the problem;
  * ``skip_bad_records``: skip the record, count it in a ``SkippedRecords``
    report (count, the first few locations, count per problem) that the run
    logs and writes beside its outputs.

A TFRecord file that is truncated or corrupt (its framing, not a record's
contents) is one bad "record" located at the first unreadable record: the rest
of that file cannot be read.
"""
import collections
import os
import threading

from absl import logging
from google.protobuf import message
import numpy as np
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.records import skip_counter
from object_detection_note.data.records import tfrecord_reader

NOT_AN_EXAMPLE = ('record: not a tf.train.Example with the expected feature '
                  'types')
ENCODED_MISSING = F.image_encoded + ': missing or empty'
ENCODED_FORMAT = F.image_encoded + ': not a JPEG, PNG, GIF or BMP image'
ENCODED_UNDECODABLE = (F.image_encoded + ': the image data could not be '
                       'decoded (corrupt or truncated image)')
BOX_LIST_LENGTHS = ('image/object/bbox: the ymin, xmin, ymax, xmax lists '
                    'differ in length')
LABEL_COUNT = F.object_class_label + ': number of class labels != number of boxes'
BOX_NOT_FINITE = 'image/object/bbox: box coordinate is NaN or Inf'
BOX_Y_ORDER = 'image/object/bbox: box with ymin > ymax'
BOX_X_ORDER = 'image/object/bbox: box with xmin > xmax'
BOX_RANGE = 'image/object/bbox: box coordinate outside [0, 1]'
BOX_ZERO_AREA = ('image/object/bbox: zero-area box (ymin == ymax or '
                 'xmin == xmax)')
OBJECT_LABEL_UNKNOWN = F.object_class_label + ': class label %s not in the label map'
IMAGE_LABEL_UNKNOWN = F.image_class_label + ': class label %s not in the label map'
TRUNCATED_FILE = ('TFRecord file truncated or corrupt (%s); this record and '
                  'the rest of the file are unreadable')

# Coordinates may exceed [0, 1] by this much (rounding in converters).
BOX_TOLERANCE = 1e-3
IMAGE_MAGIC = (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'BM')
SKIP_HINT = ('set skip_bad_records: true in the input reader to skip and '
             'count such records')


class BadRecordError(ValueError):
  """A bad input record; the message names the file, record and field."""

  def __init__(self, path, index, source_id, problem, hint=SKIP_HINT):
    self.path, self.index = path, index
    self.source_id, self.problem = source_id, problem
    super().__init__('%s (%s)' % (locate(path, index, source_id, problem),
                                  hint) if hint else
                     locate(path, index, source_id, problem))


def locate(path, index, source_id, problem):
  """``bad record in <file>: record #<i> (source_id <id>): <problem>``."""
  return 'bad record in %s: record #%d (%s): %s' % (
      path, index, 'source_id %s' % source_id if source_id else
      'no source_id', problem)


class SkippedRecords:
  """Thread-safe report of skipped bad records.

  ``count`` is the number of distinct records (file, index) skipped; a record
  met again in a later epoch adds to ``skip_events`` only. ``first`` keeps the
  first ``max_listed`` of them in the order met.

  Skips are counted either in Python (``add``) or, in tf.data input
  pipelines, in the graph by the ``skip_counter.SkipCounter`` of each
  pipeline (``new_counter``; no host callback); the report merges both.
  """

  def __init__(self, what='input', max_listed=10, max_logged=10):
    self._what = what
    self._max_listed = max_listed
    self._max_logged = max_logged
    self._lock = threading.Lock()
    self._entries = {}  # (path, index) -> (source_id, problem), in order met
    self._events = 0
    self._counters = []

  def new_counter(self):
    """A ``SkipCounter`` for one input pipeline, created on the current
    device (call it where the dataset is built) and merged into this
    report."""
    counter = skip_counter.SkipCounter(self._what, self._max_logged)
    with self._lock:
      self._counters.append(counter)
    return counter

  def _snapshot(self):
    """(``{(path, index): (source_id, problem)}`` in order met, events)."""
    with self._lock:
      entries = dict(self._entries)
      events = self._events
      counters = list(self._counters)
    for counter in counters:
      events += counter.events()
      for _, path, index, source_id, problem in counter.entries():
        entries.setdefault((path, index), (source_id, problem))
    return entries, events

  @property
  def count(self):
    return len(self._snapshot()[0])

  def add(self, path, index, source_id, problem):
    """Records one skip; logs the first few. Returns False (drop it)."""
    path, source_id, problem = (_text(path), _text(source_id), _text(problem))
    index = int(np.asarray(index))
    with self._lock:
      self._events += 1
      if (path, index) in self._entries:
        return False
      self._entries[(path, index)] = (source_id, problem)
      if len(self._entries) <= self._max_logged:
        logging.warning('%s: skipped %s', self._what,
                        locate(path, index, source_id, problem))
    return False

  def to_dict(self):
    entries, events = self._snapshot()
    first = [{K.file: path, K.record: index, K.source_id: source_id,
              K.problem: problem}
             for (path, index), (source_id, problem) in list(
                 entries.items())[:self._max_listed]]
    by_problem = collections.Counter(p for _, p in entries.values())
    return {K.count: len(entries), K.skip_events: events, K.first: first,
            K.by_problem: dict(sorted(by_problem.items()))}

  def log_summary(self):
    report = self.to_dict()
    if report[K.count]:
      logging.warning('%s: %d bad record(s) skipped (%d skip events); first: '
                      '%s', self._what, report[K.count], report[K.skip_events],
                      '; '.join('%s #%d (%s)' % (e[K.file], e[K.record],
                                                 e[K.source_id])
                                for e in report[K.first][:3]))


def _text(value):
  if hasattr(value, 'numpy'):
    value = value.numpy()
  if isinstance(value, np.ndarray):
    value = value.item()
  return value.decode('utf8', 'replace') if isinstance(value, bytes) else str(
      value)


def iterate_file_records(path):
  """Yields ``(index, serialized)`` of a TFRecord file.

  Raises:
    BadRecordError: the file is truncated or corrupt; names the file and the
      first unreadable record (``hint`` empty: the caller decides).
  """
  try:
    for index, serialized in tfrecord_reader.read_indexed_records(path):
      yield index, serialized
  except tfrecord_reader.TFRecordReadError as error:
    detail = '%s at byte offset %d' % (error.detail, error.offset)
    raise BadRecordError(path, error.index, '', TRUNCATED_FILE % detail,
                         hint='') from None


def check_boxes(boxes, classes):
  """The first box problem of ``boxes`` [N, 4] / ``classes`` [N], or ''."""
  if len(classes) != len(boxes):
    return LABEL_COUNT
  if not np.all(np.isfinite(boxes)):
    return BOX_NOT_FINITE
  if np.any(boxes[:, 0] > boxes[:, 2]):
    return BOX_Y_ORDER
  if np.any(boxes[:, 1] > boxes[:, 3]):
    return BOX_X_ORDER
  if np.any((boxes < -BOX_TOLERANCE) | (boxes > 1 + BOX_TOLERANCE)):
    return BOX_RANGE
  if np.any((boxes[:, 0] == boxes[:, 2]) | (boxes[:, 1] == boxes[:, 3])):
    return BOX_ZERO_AREA
  return ''


def check_labels(classes, image_labels, valid_class_ids):
  """The first label outside ``valid_class_ids`` as a problem, or ''."""
  valid = set(int(i) for i in valid_class_ids)
  for label in classes:
    if int(label) not in valid:
      return OBJECT_LABEL_UNKNOWN % int(label)
  for label in image_labels:
    if int(label) not in valid:
      return IMAGE_LABEL_UNKNOWN % int(label)
  return ''


def decode_checked(serialized, valid_class_ids, decode_fn):
  """Decodes and checks one record in Python (mining).

  Args:
    serialized: bytes of a tf.train.Example.
    valid_class_ids: label-map ids allowed for boxes and image-level labels.
    decode_fn: ``decode_fn(record) -> DetectionRecord`` (e.g.
      ``tf_example_codec.example_to_record``).

  Returns:
    (record or None, source_id, problem): ``problem`` is '' for a good
    record; image bytes are checked by decoding them.
  """
  try:
    record = decode_fn(serialized)
  except (ValueError, message.DecodeError) as error:
    text = str(error)
    return None, '', (BOX_LIST_LENGTHS if 'different lengths' in text
                      else NOT_AN_EXAMPLE)
  problem = image_problem(record.image_bytes)
  problem = problem or check_boxes(record.boxes, record.classes)
  problem = problem or check_labels(record.classes, record.image_labels,
                                    valid_class_ids)
  return record, record.source_id, problem


def image_problem(image_bytes):
  """The problem of ``image/encoded`` bytes ('' if they decode as the
  training input decodes them), e.g. ``ENCODED_UNDECODABLE``."""
  if not image_bytes:
    return ENCODED_MISSING
  if not image_bytes.startswith(IMAGE_MAGIC):
    return ENCODED_FORMAT
  try:
    tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError):
    return ENCODED_UNDECODABLE
  return ''


def write_report(skipped, directory):
  """Writes ``<directory>/skipped_records.json`` if anything was skipped.

  Returns:
    the path written, or None.
  """
  if skipped is None or not skipped.count:
    return None
  path = os.path.join(directory, K.report_file)
  file_io.write_json_atomically(path, skipped.to_dict())
  skipped.log_summary()
  return path

