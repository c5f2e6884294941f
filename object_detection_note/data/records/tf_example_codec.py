"""Python-side encoding and decoding of detection ``tf.train.Example`` records.

``DetectionRecord`` is the in-memory form used by dataset converters, the
synthetic generator, mining and metrics. The on-disk form uses the OD API keys
of ``core.fields.TfExampleFields`` plus NOTE's ``image/note/*`` keys.

Box arrays are float32 ``[N, 4]`` in ``(ymin, xmin, ymax, xmax)`` order,
normalised to ``[0, 1]``; class arrays are int64 ``[N]`` of 1-based label-map
ids; text lists hold the matching display names.
"""
import dataclasses
import hashlib
import io
from typing import List

import numpy as np
from PIL import Image
import tensorflow as tf

from object_detection_note.core.fields import TfExampleFields as F


def _empty_boxes():
  return np.zeros((0, 4), np.float32)


def _empty_ids():
  return np.zeros((0,), np.int64)


@dataclasses.dataclass
class DetectionRecord:
  """One image with its box-level, image-level and hidden annotations."""
  image_bytes: bytes
  source_id: str
  height: int
  width: int
  image_format: str = 'jpeg'
  filename: str = ''
  boxes: np.ndarray = dataclasses.field(default_factory=_empty_boxes)
  classes: np.ndarray = dataclasses.field(default_factory=_empty_ids)
  class_texts: List[str] = dataclasses.field(default_factory=list)
  box_scores: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros((0,), np.float32))
  image_labels: np.ndarray = dataclasses.field(default_factory=_empty_ids)
  image_label_texts: List[str] = dataclasses.field(default_factory=list)
  is_mined: int = 0
  hidden_boxes: np.ndarray = dataclasses.field(default_factory=_empty_boxes)
  hidden_classes: np.ndarray = dataclasses.field(default_factory=_empty_ids)
  hidden_class_texts: List[str] = dataclasses.field(default_factory=list)

  def __post_init__(self):
    self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
    self.classes = np.asarray(self.classes, np.int64).reshape(-1)
    self.box_scores = np.asarray(self.box_scores, np.float32).reshape(-1)
    self.image_labels = np.asarray(self.image_labels, np.int64).reshape(-1)
    self.hidden_boxes = np.asarray(self.hidden_boxes, np.float32).reshape(-1, 4)
    self.hidden_classes = np.asarray(self.hidden_classes, np.int64).reshape(-1)


def _bytes(values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _texts(values):
  return _bytes([v.encode('utf8') for v in values])


def record_to_example(record: DetectionRecord) -> tf.train.Example:
  """Encodes a record with OD API keys (+ ``image/note/*``)."""
  feature = {
      F.image_encoded: _bytes([record.image_bytes]),
      F.image_format: _texts([record.image_format]),
      F.filename: _texts([record.filename or record.source_id]),
      F.source_id: _texts([record.source_id]),
      F.key: _texts([hashlib.sha256(record.image_bytes).hexdigest()]),
      F.height: _ints([int(record.height)]),
      F.width: _ints([int(record.width)]),
      F.object_bbox_ymin: _floats(record.boxes[:, 0].tolist()),
      F.object_bbox_xmin: _floats(record.boxes[:, 1].tolist()),
      F.object_bbox_ymax: _floats(record.boxes[:, 2].tolist()),
      F.object_bbox_xmax: _floats(record.boxes[:, 3].tolist()),
      F.object_class_label: _ints(record.classes.tolist()),
      F.object_class_text: _texts(record.class_texts),
      F.image_class_label: _ints(record.image_labels.tolist()),
      F.image_class_text: _texts(record.image_label_texts),
      F.is_mined: _ints([int(record.is_mined)]),
  }
  if record.box_scores.size:
    feature[F.object_score] = _floats(record.box_scores.tolist())
  if record.hidden_boxes.size or record.hidden_classes.size:
    feature.update({
        F.hidden_bbox_ymin: _floats(record.hidden_boxes[:, 0].tolist()),
        F.hidden_bbox_xmin: _floats(record.hidden_boxes[:, 1].tolist()),
        F.hidden_bbox_ymax: _floats(record.hidden_boxes[:, 2].tolist()),
        F.hidden_bbox_xmax: _floats(record.hidden_boxes[:, 3].tolist()),
        F.hidden_class_label: _ints(record.hidden_classes.tolist()),
        F.hidden_class_text: _texts(record.hidden_class_texts),
    })
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _list(features, key):
  if key not in features:
    return []
  feature = features[key]
  kind = feature.WhichOneof('kind')
  return list(getattr(feature, kind).value) if kind else []


def _box_array(features, keys):
  columns = [np.asarray(_list(features, k), np.float32) for k in keys]
  lengths = {len(c) for c in columns}
  if len(lengths) > 1:
    raise ValueError('box coordinate lists %s have different lengths %s' %
                     (keys, [len(c) for c in columns]))
  return np.stack(columns, axis=1) if columns[0].size else _empty_boxes()


def _decode_texts(values):
  return [v.decode('utf8') for v in values]


def example_to_record(serialized: bytes) -> DetectionRecord:
  """Decodes a serialized example written by ``record_to_example``.

  Records from the OD API's own converters decode too: missing optional keys
  become empty arrays.
  """
  example = tf.train.Example.FromString(serialized)
  features = example.features.feature
  source_id = b''.join(_list(features, F.source_id)).decode('utf8')
  image_format = _decode_texts(_list(features, F.image_format)) or ['jpeg']
  is_mined = _list(features, F.is_mined)
  return DetectionRecord(
      image_bytes=b''.join(_list(features, F.image_encoded)),
      source_id=source_id,
      height=int((_list(features, F.height) or [0])[0]),
      width=int((_list(features, F.width) or [0])[0]),
      image_format=image_format[0],
      filename=b''.join(_list(features, F.filename)).decode('utf8'),
      boxes=_box_array(features, (F.object_bbox_ymin, F.object_bbox_xmin,
                                  F.object_bbox_ymax, F.object_bbox_xmax)),
      classes=_list(features, F.object_class_label),
      class_texts=_decode_texts(_list(features, F.object_class_text)),
      box_scores=_list(features, F.object_score),
      image_labels=_list(features, F.image_class_label),
      image_label_texts=_decode_texts(_list(features, F.image_class_text)),
      is_mined=int(is_mined[0]) if is_mined else 0,
      hidden_boxes=_box_array(features, (F.hidden_bbox_ymin, F.hidden_bbox_xmin,
                                         F.hidden_bbox_ymax, F.hidden_bbox_xmax)),
      hidden_classes=_list(features, F.hidden_class_label),
      hidden_class_texts=_decode_texts(_list(features, F.hidden_class_text)),
  )


def encode_image(pixels: np.ndarray, image_format: str = 'png') -> bytes:
  """Encodes a uint8 ``[H, W, 3]`` array as PNG or JPEG bytes (deterministic)."""
  buffer = io.BytesIO()
  fmt = {'png': 'PNG', 'jpeg': 'JPEG', 'jpg': 'JPEG'}[image_format.lower()]
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format=fmt)
  return buffer.getvalue()


def serialize_record(record: DetectionRecord) -> bytes:
  """Serialized tf.Example bytes, deterministic across processes.

  ``tf.train.Features`` is a protobuf map, whose default serialization order
  may differ between processes; deterministic serialization sorts it, so the
  same record always gives the same bytes (byte-identical shards).
  """
  return record_to_example(record).SerializeToString(deterministic=True)
