"""tf.data reading that locates every bad record: file, record index, field.

  files ──► file_dataset: (path, size)
        ──► interleave(file_records): (serialized, path, index, problem)
        ──► checked_map(transform)    (stop at a bad record), or
            guard_transform(transform) (skip and count bad records)

``file_records`` reads a TFRecord file with its records numbered from 0 and
checks that the records read cover the file's size: a truncated or corrupt
file yields one extra element whose ``problem`` names the first unreadable
record (TFRecordDataset's own error names neither file nor record).

``checked_map`` (default) checks each record's fields (``record_errors``
problems: missing image, box geometry, zero-area boxes, labels outside the
label map) before the caller's ``transform``, in one parallel map; a bad
record stops the pipeline with ``InvalidArgumentError`` (``bad record in
<file>: record #<i> (source_id <id>): <problem>``). A record that does not
parse or whose image does not decode (``jpeg::Uncompress failed``) raises
TF's own error; ``bad_record_search`` then finds and names it.

``guard_transform`` (``skip_bad_records``) runs the checks and ``transform``
per record so that any error becomes a skip, counted in a
``SkippedRecords`` report: in the graph, by a ``skip_counter.SkipCounter``
on the host that runs the input pipeline, which the Python report reads.

There errors are caught with ``Dataset.ignore_errors`` on one-record
datasets followed by a fallback element, and skips are counted in lookup
tables: native tf.data ops only, no Python callback, so it also runs on
remote input hosts (TPU); about 3x the per-record cost of ``checked_map``.
"""
import concurrent.futures

import tensorflow as tf

from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.records import record_errors as errors

_FRAMING_OVERHEAD = 16  # length (8) + 2 CRCs (4 + 4) per TFRecord record.


def file_dataset(files):
  """Dataset of ``(path string, size int64)`` for a list of file paths."""
  files = list(files)
  with concurrent.futures.ThreadPoolExecutor(min(16, len(files) or 1)) as pool:
    sizes = list(pool.map(lambda f: tf.io.gfile.stat(f).length, files))
  return tf.data.Dataset.from_tensor_slices(
      (tf.constant(files, tf.string), tf.constant(sizes, tf.int64)))


def _truncation_problem(consumed, size):
  before, after = errors.TRUNCATED_FILE.split('%s')
  return tf.strings.join([
      before, 'readable up to byte ', tf.strings.as_string(consumed), ' of ',
      tf.strings.as_string(size), after])


def file_records(path, size):
  """Records of one TFRecord file: ``(serialized, path, index, problem)``.

  Args:
    path: string scalar, the file.
    size: int64 scalar, its size in bytes.

  Returns:
    Dataset of ``(serialized string, path string, index int64, problem
    string)``; ``problem`` is '' except for one final element when the file is
    truncated or corrupt (``serialized`` empty, ``index`` the first record
    that could not be read).
  """
  records = tf.data.TFRecordDataset(path).enumerate().ignore_errors()
  end = tf.data.Dataset.from_tensors(
      (tf.constant(-1, tf.int64), tf.constant('', tf.string)))

  def step(state, element):
    consumed, count = state
    index, serialized = element
    is_end = index < 0
    length = tf.cast(tf.strings.length(serialized), tf.int64) + _FRAMING_OVERHEAD
    consumed += tf.where(is_end, tf.constant(0, tf.int64), length)
    count += tf.where(is_end, tf.constant(0, tf.int64), 1)
    problem = tf.where(is_end & tf.not_equal(consumed, size),
                       _truncation_problem(consumed, size), '')
    return (consumed, count), (serialized, path,
                               tf.where(is_end, count, index), problem, is_end)

  initial = (tf.constant(0, tf.int64), tf.constant(0, tf.int64))
  stream = records.concatenate(end).scan(initial, step)
  stream = stream.filter(lambda s, p, i, problem, is_end:
                         tf.logical_or(~is_end, problem != ''))
  return stream.map(lambda s, p, i, problem, is_end: (s, p, i, problem))


def _first_problem(checks):
  """The problem of the first failing ``(ok, problem)`` check, or ''."""
  problem = tf.constant('')
  for ok, text in reversed(checks):
    problem = tf.where(ok, problem, text)
  return problem


def _unknown_label_problem(labels, valid_class_ids, template):
  known = tf.reduce_any(tf.equal(labels[:, None], valid_class_ids[None, :]),
                        axis=1)
  first_unknown = tf.boolean_mask(labels, ~known)
  before, after = template.split('%s')
  text = tf.strings.join([before, tf.strings.as_string(
      tf.concat([first_unknown, [0]], 0)[0]), after])
  return tf.reduce_all(known), text


def record_problem(serialized, valid_class_ids):
  """(source_id, problem) of one serialized example; problem '' if good.

  Checks what can be checked without decoding the image. Raises (tf.data
  error) when the record does not parse; ``guard_transform`` catches that.
  """
  var_float = tf.io.VarLenFeature(tf.float32)
  var_int = tf.io.VarLenFeature(tf.int64)
  parsed = tf.io.parse_single_example(serialized, {
      F.image_encoded: tf.io.FixedLenFeature((), tf.string, ''),
      F.source_id: tf.io.FixedLenFeature((), tf.string, ''),
      F.object_bbox_ymin: var_float, F.object_bbox_xmin: var_float,
      F.object_bbox_ymax: var_float, F.object_bbox_xmax: var_float,
      F.object_class_label: var_int, F.image_class_label: var_int,
  })
  dense = {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
           for k, v in parsed.items()}
  coords = [dense[k] for k in (F.object_bbox_ymin, F.object_bbox_xmin,
                               F.object_bbox_ymax, F.object_bbox_xmax)]
  lengths = tf.stack([tf.size(c) for c in coords])
  same_lengths = tf.reduce_all(tf.equal(lengths, lengths[0]))
  # Boxes are only inspected when the four lists agree.
  boxes = tf.cond(same_lengths, lambda: tf.stack(coords, axis=1),
                  lambda: tf.zeros([0, 4]))
  classes = tf.cast(dense[F.object_class_label], tf.int32)
  image_labels = tf.cast(dense[F.image_class_label], tf.int32)
  encoded = dense[F.image_encoded]
  magic = tf.reduce_any(tf.stack([
      tf.equal(tf.strings.substr(encoded, 0, len(m)), m)
      for m in errors.IMAGE_MAGIC]))
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  checks = [
      (tf.strings.length(encoded) > 0, errors.ENCODED_MISSING),
      (magic, errors.ENCODED_FORMAT),
      (same_lengths, errors.BOX_LIST_LENGTHS),
      (tf.equal(tf.size(classes), tf.shape(boxes)[0]), errors.LABEL_COUNT),
      (tf.reduce_all(tf.math.is_finite(boxes)), errors.BOX_NOT_FINITE),
      (tf.reduce_all(ymin <= ymax), errors.BOX_Y_ORDER),
      (tf.reduce_all(xmin <= xmax), errors.BOX_X_ORDER),
      (tf.reduce_all((boxes >= -errors.BOX_TOLERANCE) &
                     (boxes <= 1 + errors.BOX_TOLERANCE)), errors.BOX_RANGE),
      (tf.reduce_all((ymin < ymax) & (xmin < xmax)), errors.BOX_ZERO_AREA),
      _unknown_label_problem(classes, valid_class_ids,
                             errors.OBJECT_LABEL_UNKNOWN),
      _unknown_label_problem(image_labels, valid_class_ids,
                             errors.IMAGE_LABEL_UNKNOWN),
  ]
  return dense[F.source_id], _first_problem(checks)


def _placeholder(spec):
  """A zero value of ``spec`` (unknown dimensions 0)."""
  shape = [d if d is not None else 0 for d in spec.shape]
  if spec.dtype == tf.string:
    return tf.fill(shape, '')
  return tf.zeros(shape, spec.dtype)


def located_message(path, index, source_id, problem, hint=errors.SKIP_HINT):
  """The string tensor of ``record_errors.locate`` (plus the hint)."""
  return tf.strings.join([
      'bad record in ', path, ': record #', tf.strings.as_string(index),
      ' (', tf.where(source_id == '', 'no source_id',
                     tf.strings.join(['source_id ', source_id])), '): ',
      problem,
      ' (%s)' % hint if hint else ''])


def checked_map(records, transform, valid_class_ids, deterministic=True):
  """The fast path: checks, then ``transform``, in one parallel map.

  A record failing a check (or a truncated file's element) stops the
  pipeline with ``InvalidArgumentError`` naming it. A record that does not
  parse, or whose image does not decode, raises TF's own error, which does
  not name it: iterate with ``bad_record_search.with_located_errors`` to
  turn that into a located error.
  """
  def check_then_transform(serialized, path, index, read_problem):
    source_id, problem = record_problem(serialized, valid_class_ids)
    problem = tf.where(read_problem != '', read_problem, problem)
    check = tf.debugging.Assert(
        problem == '', [located_message(path, index, source_id, problem)])
    with tf.control_dependencies([check]):
      serialized = tf.identity(serialized)
    return transform(serialized)
  return records.map(check_then_transform,
                     num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=deterministic)


def guard_transform(records, transform, valid_class_ids, skipped,
                    deterministic=True):
  """Applies ``transform`` to good records; skips and counts bad ones.

  Slower than ``checked_map`` (each record runs in its own one-record
  dataset, so that any error of the checks or of ``transform`` becomes a
  located, counted skip); used when ``skip_bad_records`` is set and to
  search for a bad record after ``checked_map`` failed.

  Args:
    records: dataset of ``(serialized, path, index, problem)`` (see
      ``file_records``).
    transform: ``serialized string -> dict`` of tensors (one example).
    valid_class_ids: int32 [K] label-map ids allowed for boxes and
      image-level labels.
    skipped: ``record_errors.SkippedRecords`` that counts the bad records.
    deterministic: keep the input order.

  Returns:
    Dataset of ``transform``'s dicts, one per good record.
  """
  spec = tf.data.Dataset.from_tensors(tf.constant('')).map(
      transform).element_spec
  placeholder = tf.nest.map_structure(_placeholder, spec)
  not_an_example = tf.data.Dataset.from_tensors(
      (placeholder, tf.constant(''), tf.constant(errors.NOT_AN_EXAMPLE)))

  def checked_transform(serialized, read_problem):
    source_id, problem = record_problem(serialized, valid_class_ids)
    problem = tf.where(read_problem != '', read_problem, problem)
    example = tf.cond(problem == '', lambda: transform(serialized),
                      lambda: placeholder)
    return example, source_id, problem

  def diagnose(serialized):
    """Why checked_transform failed: the record does not parse, or (it
    parses and passes the checks) its image does not decode."""
    parsed = (tf.data.Dataset.from_tensors(serialized)
              .map(lambda s: record_problem(s, valid_class_ids))
              .ignore_errors()
              .map(lambda source_id, problem: (placeholder, source_id, tf.where(
                  problem == '', errors.ENCODED_UNDECODABLE, problem))))
    return parsed.concatenate(not_an_example).take(1)

  def per_record(serialized, path, index, read_problem):
    # One-record datasets: ignore_errors turns an error of the checks or of
    # the transform into "no element", and the diagnosis takes its place.
    done = tf.data.Dataset.from_tensors((serialized, read_problem)).map(
        checked_transform).ignore_errors()
    return done.concatenate(diagnose(serialized)).take(1).map(
        lambda example, source_id, problem: (example, path, index, source_id,
                                             problem))

  located = records.interleave(per_record, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=deterministic)

  counter = skipped.new_counter()

  def keep(example, path, index, source_id, problem):
    return tf.cond(problem == '', lambda: tf.constant(True),
                   lambda: counter.count_skip(
                       path, index, source_id, problem,
                       located_message(path, index, source_id, problem,
                                       hint='')))

  return located.filter(keep).map(
      lambda example, path, index, source_id, problem: example)
