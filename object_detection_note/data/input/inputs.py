"""tf.data input pipeline: TFRecords of detection examples → padded batches.

Each element of the returned dataset is a dict keyed by
``core.fields.InputFields`` (shapes with the leading batch dimension ``B``):

  image                        float32 [B, H, W, 3]  pixels in [0, 255], padded
  true_image_shape             int32   [B, 3]        resized, unpadded shape
  original_image_spatial_shape int32   [B, 2]        decoded image height, width
  source_id                    string  [B]
  groundtruth_boxes            float32 [B, M, 4]     normalised to the padded
                                                     image (ymin, xmin, ymax, xmax)
  groundtruth_classes          int32   [B, M]        1-based ids, 0 = padding
  groundtruth_weights          float32 [B, M]        1 for real boxes, 0 padding
  num_groundtruth_boxes        int32   [B]
  image_level_labels           float32 [B, C]        k-hot: image-level labels
                                                     and the classes of its boxes
  is_mined                     float32 [B]           1.0 for mined examples

``M`` is ``input_reader.max_number_of_boxes`` (boxes past it are dropped);
``H, W`` are fixed whenever the resizer allows it (fixed_shape, or
keep_aspect_ratio with ``pad_to_max_dimension``), as TPUs and XLA need.

Bad-record policy (``data/records/safe_records.py``): a box with NaN
coordinates, ``ymin > ymax`` or ``xmin > xmax``, zero area, coordinates
outside ``[0, 1]`` (beyond a 1e-3 tolerance), a box or image-level class id
not in the label map, a missing image or one that does not decode, a record
that is not a tf.Example, or a truncated or corrupt TFRecord file stops the
pipeline with
``InvalidArgumentError`` naming the file, the record's index in it, its
``source_id`` and the field. Such a record is a bug of the tool that wrote it,
and silently training on it would hide that. With
``input_reader.skip_bad_records`` such records are skipped and counted
instead (``record_errors.SkippedRecords``).
Hidden boxes (``image/note/hidden/*``) are never parsed here.

``is_mined`` comes from the stream a record is read from, not only from the
record: when training with ``note.mined_input``, every record of the mined
stream (B^t) has ``is_mined = 1`` and every record of the seed stream
(``train_input_reader``) ``is_mined = 0``, whatever its
``image/note/is_mined`` says when absent (a mined shard written by another
tool without the flag is still masked as mined). A record whose flag is
present and contradicts its stream (0 in the mined stream, 1 in the seed
stream) is a bad record: it stops the pipeline naming the file and record
(or is skipped and counted with ``skip_bad_records``). Without
``note.mined_input`` (one stream: evaluation, or training on one input
reader) the record's own flag is used, default 0.
"""
import functools

import tensorflow as tf

from object_detection_note.core.fields import InputFields
from object_detection_note.core.fields import TfExampleFields as F
from object_detection_note.data.records import label_map_util
from object_detection_note.data.input import preprocessor
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import safe_records
from object_detection_note.data.input import seed_mined_mixing
from object_detection_note.data.records import tfrecord_reader

_BOX_TOLERANCE = 1e-3
_IMAGE_MAGIC = (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'BM')


def _parse(serialized):
  """Parses the keys training reads; hidden boxes are deliberately absent."""
  var_float = tf.io.VarLenFeature(tf.float32)
  var_int = tf.io.VarLenFeature(tf.int64)
  features = {
      F.image_encoded: tf.io.FixedLenFeature((), tf.string),
      F.source_id: tf.io.FixedLenFeature((), tf.string, ''),
      F.object_bbox_ymin: var_float,
      F.object_bbox_xmin: var_float,
      F.object_bbox_ymax: var_float,
      F.object_bbox_xmax: var_float,
      F.object_class_label: var_int,
      F.image_class_label: var_int,
      F.is_mined: tf.io.FixedLenFeature((), tf.int64, 0),
  }
  parsed = tf.io.parse_single_example(serialized, features)
  return {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
          for k, v in parsed.items()}


def _record_check(condition, source_id, problem):
  """An assert whose error names the record: 'bad record <id>: <problem>'."""
  return tf.debugging.Assert(
      condition, ['bad record', source_id, problem], summarize=1)


def _valid_magic(encoded):
  checks = [tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)
            for magic in _IMAGE_MAGIC]
  return tf.reduce_any(tf.stack(checks))


def _decode_and_validate(parsed, valid_class_ids):
  """Returns (image uint8 [h, w, 3], boxes [N, 4], classes int32 [N], ...)."""
  source_id = parsed[F.source_id]
  boxes = tf.stack([parsed[F.object_bbox_ymin], parsed[F.object_bbox_xmin],
                    parsed[F.object_bbox_ymax], parsed[F.object_bbox_xmax]],
                   axis=1)
  classes = tf.cast(parsed[F.object_class_label], tf.int32)
  image_labels = tf.cast(parsed[F.image_class_label], tf.int32)
  all_labels = tf.concat([classes, image_labels], 0)
  known = tf.reduce_all(tf.reduce_any(
      tf.equal(all_labels[:, None], valid_class_ids[None, :]), axis=1))
  checks = [
      _record_check(_valid_magic(parsed[F.image_encoded]), source_id,
                    'image/encoded is not a JPEG, PNG, GIF or BMP image'),
      _record_check(tf.equal(tf.shape(classes)[0], tf.shape(boxes)[0]),
                    source_id, 'number of class labels != number of boxes'),
      _record_check(tf.reduce_all(tf.math.is_finite(boxes)), source_id,
                    'box coordinate is NaN or Inf'),
      _record_check(tf.reduce_all(boxes[:, 0] <= boxes[:, 2]), source_id,
                    'box with ymin > ymax'),
      _record_check(tf.reduce_all(boxes[:, 1] <= boxes[:, 3]), source_id,
                    'box with xmin > xmax'),
      _record_check(
          tf.reduce_all((boxes >= -_BOX_TOLERANCE) &
                        (boxes <= 1 + _BOX_TOLERANCE)), source_id,
          'box coordinate outside [0, 1]'),
      _record_check(known, source_id, 'class label not in the label map'),
  ]
  with tf.control_dependencies(checks):
    image = tf.io.decode_image(parsed[F.image_encoded], channels=3,
                               expand_animations=False)
    boxes = tf.clip_by_value(boxes, 0.0, 1.0)
  return image, boxes, classes, all_labels


def resize_image(image, image_resizer):
  """Resizes per an ImageResizer proto.

  Args:
    image: float32 [h, w, 3].
    image_resizer: ImageResizer proto (fixed_shape_resizer or
      keep_aspect_ratio_resizer).

  Returns:
    (padded image float32 [H, W, 3], true_image_shape int32 [3]).
  """
  kind = image_resizer.WhichOneof('image_resizer_oneof')
  if kind == 'fixed_shape_resizer':
    cfg = image_resizer.fixed_shape_resizer
    resized = tf.image.resize(image, [cfg.height, cfg.width])
    return resized, tf.constant([cfg.height, cfg.width, 3], tf.int32)
  if kind == 'keep_aspect_ratio_resizer':
    cfg = image_resizer.keep_aspect_ratio_resizer
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(cfg.min_dimension / tf.reduce_min(shape),
                       cfg.max_dimension / tf.reduce_max(shape))
    new_size = tf.cast(tf.round(shape * scale), tf.int32)
    new_size = tf.minimum(new_size, cfg.max_dimension)
    resized = tf.image.resize(image, new_size)
    true_shape = tf.concat([new_size, [3]], 0)
    if cfg.pad_to_max_dimension:
      resized = tf.image.pad_to_bounding_box(resized, 0, 0, cfg.max_dimension,
                                             cfg.max_dimension)
    return resized, true_shape
  raise ValueError('image_resizer: unsupported or unset resizer %r' % kind)


def _pad_to(tensor, size, value=0):
  """Pads/clips the first dimension of ``tensor`` to ``size``."""
  tensor = tensor[:size]
  pad = size - tf.shape(tensor)[0]
  paddings = [[0, pad]] + [[0, 0]] * (len(tensor.shape) - 1)
  return tf.pad(tensor, paddings, constant_values=value)


def transform_example(serialized, *, image_resizer, num_classes, max_boxes,
                      valid_class_ids, augmentation_options=(),
                      is_mined=None):
  """One serialized tf.Example → one unbatched InputFields dict.

  ``augmentation_options``: PreprocessingStep protos applied (training only)
  before resizing, see ``data.input.preprocessor``. ``is_mined``: the stream's
  flag (0 or 1) given to every record, or None for the record's own
  ``image/note/is_mined`` (default 0).
  """
  parsed = _parse(serialized)
  image, boxes, classes, all_labels = _decode_and_validate(
      parsed, valid_class_ids)
  original_shape = tf.shape(image)[:2]
  image = tf.cast(image, tf.float32)
  if augmentation_options:
    image, boxes, classes = preprocessor.augment(image, boxes, classes,
                                                 augmentation_options)
  image, true_shape = resize_image(image, image_resizer)
  padded_hw = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = tf.cast(true_shape[:2], tf.float32) / padded_hw
  boxes = boxes * tf.tile(scale, [2])[None, :]
  num_boxes = tf.minimum(tf.shape(boxes)[0], max_boxes)
  k_hot = tf.reduce_max(
      tf.one_hot(all_labels - 1, num_classes, dtype=tf.float32), axis=0)
  k_hot = tf.ensure_shape(
      tf.where(tf.size(all_labels) > 0, k_hot, tf.zeros([num_classes])),
      [num_classes])
  return {
      InputFields.image: image,
      InputFields.true_image_shape: true_shape,
      InputFields.original_image_spatial_shape: original_shape,
      InputFields.source_id: parsed[F.source_id],
      InputFields.groundtruth_boxes: tf.ensure_shape(
          _pad_to(boxes, max_boxes), [max_boxes, 4]),
      InputFields.groundtruth_classes: tf.ensure_shape(
          _pad_to(classes, max_boxes), [max_boxes]),
      InputFields.groundtruth_weights: tf.ensure_shape(
          _pad_to(tf.ones_like(boxes[:, 0]), max_boxes), [max_boxes]),
      InputFields.num_groundtruth_boxes: num_boxes,
      InputFields.image_level_labels: k_hot,
      InputFields.is_mined: (
          tf.cast(parsed[F.is_mined], tf.float32) if is_mined is None
          else tf.constant(float(is_mined), tf.float32)),
  }


def _augmentation_options(train_config):
  if train_config is None:
    return ()
  return tuple(train_config.data_augmentation_options)


def _valid_class_ids(input_reader, num_classes):
  if input_reader.label_map_path:
    ids = sorted(label_map_util.get_label_map_dict(
        input_reader.label_map_path).values())
  else:
    ids = list(range(1, num_classes + 1))
  return tf.constant(ids, tf.int32)


def _glob(patterns, field):
  files = sorted(set(f for p in patterns for f in tf.io.gfile.glob(p)))
  if not files:
    raise ValueError('%s: no file matches %s' % (field, list(patterns)))
  return files


def _read_records(files, input_reader, is_training, input_context):
  """``(serialized, path, index, problem)`` records of ``files``
  (``safe_records.file_records``): sharded, shuffled, repeated per
  ``input_reader`` (shuffle, num_readers, sample_1_of_n_examples,
  shuffle_buffer_size, num_epochs) when training."""
  dataset = safe_records.file_dataset(files)  # (path, size)
  pipelines = input_context.num_input_pipelines if input_context else 1
  # Fewer files than input pipelines: every pipeline reads all files in one
  # order and keeps every n-th record.
  shard_records = pipelines > 1 and len(files) < pipelines
  if pipelines > 1 and not shard_records:
    dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
  if is_training and input_reader.shuffle and not shard_records:
    dataset = dataset.shuffle(len(files), reshuffle_each_iteration=True)
  num_readers = max(1, min(input_reader.num_readers or 1, len(files)))
  dataset = dataset.interleave(
      safe_records.file_records, cycle_length=num_readers,
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=shard_records or not is_training)
  if shard_records:
    dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
  if input_reader.sample_1_of_n_examples > 1:
    dataset = dataset.shard(input_reader.sample_1_of_n_examples, 0)
  if is_training:
    if input_reader.shuffle:
      dataset = dataset.shuffle(input_reader.shuffle_buffer_size or 2048)
    epochs = input_reader.num_epochs
    dataset = dataset.repeat(epochs if epochs > 0 else None)
  return dataset


def _count(files):
  """Records in ``files``, read on the host (no tf.data iterator)."""
  return tfrecord_reader.count_records(files)


SEED_STREAM = 'train_input_reader (the seed set)'
MINED_STREAM = 'note.mined_input (the mined set)'


def stream_flag_problem(serialized, expected, stream):
  """'' or why the record's ``image/note/is_mined`` contradicts its stream.

  Args:
    serialized: string scalar, one tf.Example.
    expected: 0 (seed stream) or 1 (mined stream).
    stream: the stream's name for the message.

  Returns:
    string scalar; '' when the flag is absent or equals ``expected``.
  """
  flag = tf.io.parse_single_example(
      serialized, {F.is_mined: tf.io.VarLenFeature(tf.int64)})[F.is_mined]
  values = tf.sparse.to_dense(flag)
  contradicts = tf.reduce_any(tf.not_equal(values, expected))
  return tf.where(contradicts, tf.constant(
      '%s is %d but the record is read from %s, where every record has '
      'is_mined %d; list the file under %s or drop the flag' % (
          F.is_mined, 1 - expected, stream, expected,
          MINED_STREAM if expected == 0 else SEED_STREAM)), '')


def check_stream_flags(records, expected, stream, skip_bad_records):
  """Marks records whose is_mined flag contradicts the stream as bad.

  Args:
    records: dataset of ``(serialized, path, index, problem)``
      (``safe_records.file_records``).
    expected: the stream's is_mined (0 or 1).
    stream: the stream's name for the message.
    skip_bad_records: a record that does not parse passes through unchanged
      (the skipping transform then counts it) instead of raising here.

  Returns:
    the same records, ``problem`` set for a contradicting flag (an earlier
    read problem is kept).
  """
  def check(serialized, path, index, problem):
    flag_problem = stream_flag_problem(serialized, expected, stream)
    return serialized, path, index, tf.where(problem != '', problem,
                                             flag_problem)
  if not skip_bad_records:
    return records.map(check, num_parallel_calls=tf.data.AUTOTUNE)

  def guarded(serialized, path, index, problem):
    element = tf.data.Dataset.from_tensors((serialized, path, index, problem))
    return element.map(check).ignore_errors().concatenate(element).take(1)
  return records.interleave(guarded, num_parallel_calls=tf.data.AUTOTUNE)


def _mixed_records(seed_files, input_reader, note_config, input_context):
  """(seed records, mined records, seed weight) of a training input with
  note.mined_input (see seed_mined_mixing)."""
  mined_input = note_config.mined_input
  mined_files = _glob(mined_input.input_path, 'note.mined_input.input_path')
  num_seed = (mined_input.num_seed_examples
              if mined_input.HasField('num_seed_examples')
              else _count(seed_files))
  num_mined = (mined_input.num_examples if mined_input.HasField('num_examples')
               else _count(mined_files))
  weight = seed_mined_mixing.seed_weight(
      num_seed, num_mined, note_config.seed_fraction
      if note_config.HasField('seed_fraction') else None)
  skip = input_reader.skip_bad_records
  return (check_stream_flags(
      _read_records(seed_files, input_reader, True, input_context), 0,
      SEED_STREAM, skip),
          check_stream_flags(
              _read_records(mined_files, input_reader, True, input_context),
              1, MINED_STREAM, skip), weight)


def build_dataset(input_reader, model_config, batch_size, is_training,
                  train_config=None, input_context=None, note_config=None,
                  skipped_records=None):
  """Builds the batched dataset described by an InputReader proto.

  Args:
    input_reader: InputReader proto (tf_record_input_reader.input_path globs,
      label_map_path, shuffle, num_readers, num_epochs, sample_1_of_n_examples,
      max_number_of_boxes, ...).
    model_config: DetectionModel proto (image_resizer, num_classes).
    batch_size: per-replica batch size.
    is_training: shuffles, repeats and augments; drops the last partial batch
      so every batch has a static shape.
    train_config: TrainConfig proto for data_augmentation_options.
    input_context: optional tf.distribute.InputContext; the files are sharded
      across input pipelines, or, with fewer files than pipelines, the
      records (every pipeline reads all files in one fixed order and keeps
      every n-th record, like AutoShardPolicy.DATA).
    note_config: optional NoteConfig proto; when training and it has
      ``mined_input``, ``input_reader`` is the seed set and the mined set is
      read beside it and mixed in (``seed_mined_mixing``; weight from the
      counts or ``seed_fraction``); each stream sets ``is_mined`` (see the
      module docstring).
    skipped_records: ``record_errors.SkippedRecords`` that counts the bad
      records skipped when ``input_reader.skip_bad_records`` is set (default:
      a new one, reported in the log only).

  Returns:
    tf.data.Dataset of InputFields dicts (see module docstring).
  """
  frcnn = model_config.faster_rcnn
  files = _glob(input_reader.tf_record_input_reader.input_path,
                'input_reader.tf_record_input_reader.input_path')
  transform = functools.partial(
      transform_example,
      image_resizer=frcnn.image_resizer,
      num_classes=frcnn.num_classes,
      max_boxes=input_reader.max_number_of_boxes or 100,
      valid_class_ids=_valid_class_ids(input_reader, frcnn.num_classes),
      augmentation_options=(_augmentation_options(train_config)
                            if is_training else ()))
  valid_class_ids = transform.keywords['valid_class_ids']
  if input_reader.skip_bad_records and skipped_records is None:
    skipped_records = record_errors.SkippedRecords(
        input_reader.name or 'input')

  def examples(records, is_mined=None):
    stream_transform = functools.partial(transform, is_mined=is_mined)
    if input_reader.skip_bad_records:
      return safe_records.guard_transform(
          records, stream_transform, valid_class_ids, skipped_records,
          deterministic=not is_training)
    return safe_records.checked_map(records, stream_transform,
                                    valid_class_ids,
                                    deterministic=not is_training)

  if (is_training and note_config is not None and
      note_config.mined_input.input_path):
    seed_records, mined_records, weight = _mixed_records(
        files, input_reader, note_config, input_context)
    dataset = seed_mined_mixing.mix(examples(seed_records, 0),
                                    examples(mined_records, 1), weight)
  else:
    dataset = examples(_read_records(files, input_reader, is_training,
                                     input_context))
  dataset = dataset.batch(batch_size, drop_remainder=is_training)
  return dataset.prefetch(tf.data.AUTOTUNE)
