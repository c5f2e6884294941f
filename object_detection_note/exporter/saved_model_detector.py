"""Runs an exported detector (``exporter_main_v2`` output) on images.

``ExportedDetector`` loads ``<export>/saved_model`` (or a SavedModel
directory given directly), finds its input type from the signature (and,
for string inputs, from the module's ``input_type`` function; SavedModels
without it are fed encoded image bytes) and returns one image's detections
as numpy arrays. ``default_label_map_path`` reads the label map named by the
export's ``pipeline.config``.
"""
import io
import os

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import ExportFields as E
from object_detection_note.core.fields import TfExampleFields as F

# Encodings ``tf.io.decode_image`` reads; other files are re-encoded as PNG.
_TF_DECODABLE = {'JPEG': 'jpeg', 'PNG': 'png', 'GIF': 'gif', 'BMP': 'bmp'}


def resolve_export(saved_model_dir):
  """(SavedModel directory, export directory or None) for a user path.

  Accepts the SavedModel directory itself (``<export>/saved_model``) or the
  export directory holding it.
  """
  path = saved_model_dir.rstrip('/')
  if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
    parent = os.path.dirname(path)
    has_config = tf.io.gfile.exists(os.path.join(parent, E.pipeline_config))
    return path, parent if has_config else None
  nested = os.path.join(path, E.saved_model_dir)
  if tf.io.gfile.exists(os.path.join(nested, 'saved_model.pb')):
    return nested, path
  raise ValueError('--saved_model_dir %s: no saved_model.pb there nor in its '
                   '%s/ subdirectory' % (saved_model_dir, E.saved_model_dir))


def default_label_map_path(export_dir):
  """The eval (else train) reader's label_map_path of the export's config.

  Returns None (with a warning) when there is no pipeline.config or it names
  no existing label map.
  """
  if export_dir is None:
    logging.warning('no %s beside the SavedModel: labels will be class ids',
                    E.pipeline_config)
    return None
  pipeline = config_util.read_pipeline_config(
      os.path.join(export_dir, E.pipeline_config))
  readers = list(pipeline.eval_input_reader) + [pipeline.train_input_reader]
  for reader in readers:
    if reader.label_map_path:
      if tf.io.gfile.exists(reader.label_map_path):
        return reader.label_map_path
      logging.warning('label map %s (from %s) not found',
                      reader.label_map_path, export_dir)
  logging.warning('no label map found for %s: labels will be class ids',
                  export_dir)
  return None


def read_image(path):
  """Reads an image file.

  Returns:
    (pixels uint8 [H, W, 3] RGB, encoded bytes tf.io.decode_image reads,
     format name such as 'png').
  """
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    image = Image.open(io.BytesIO(data))
    image_format = image.format
    pixels = np.asarray(image.convert('RGB'))
  except (OSError, ValueError) as error:
    raise ValueError('image %s: cannot decode (%s)' % (path, error)) from None
  if image_format not in _TF_DECODABLE:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG')
    data, image_format = buffer.getvalue(), 'PNG'
  return pixels, data, _TF_DECODABLE[image_format]


def image_example(encoded, image_format, height, width):
  """Serialized tf.Example holding one encoded image (OD API keys)."""
  feature = {
      F.image_encoded: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[encoded])),
      F.image_format: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image_format.encode()])),
      F.height: tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
      F.width: tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


class ExportedDetector:
  """A loaded SavedModel with the ``serving_default`` detection signature."""

  def __init__(self, saved_model_dir):
    self.saved_model_dir, self.export_dir = resolve_export(saved_model_dir)
    self._loaded = tf.saved_model.load(self.saved_model_dir)
    if E.signature not in self._loaded.signatures:
      raise ValueError('SavedModel %s has no %r signature' %
                       (self.saved_model_dir, E.signature))
    self._serve = self._loaded.signatures[E.signature]
    spec = self._serve.structured_input_signature[1].get(E.input_tensor)
    if spec is None:
      raise ValueError('SavedModel %s: signature %r has no input %r' %
                       (self.saved_model_dir, E.signature, E.input_tensor))
    self.input_type = self._input_type(spec.dtype)

  def _input_type(self, dtype):
    if dtype == tf.uint8:
      return E.image_tensor
    if dtype == tf.float32:
      return E.float_image_tensor
    if hasattr(self._loaded, 'input_type'):
      return self._loaded.input_type().numpy().decode('utf8')
    return E.encoded_image_string_tensor

  def _input(self, pixels, encoded, image_format):
    if self.input_type == E.image_tensor:
      return tf.constant(pixels[np.newaxis], tf.uint8)
    if self.input_type == E.float_image_tensor:
      return tf.constant(pixels[np.newaxis], tf.float32)
    if self.input_type == E.tf_example:
      encoded = image_example(encoded, image_format, pixels.shape[0],
                              pixels.shape[1])
    return tf.constant([encoded])

  def detect(self, pixels, encoded=None, image_format='png'):
    """Detections of one image.

    Args:
      pixels: uint8 [H, W, 3] RGB.
      encoded: the image's encoded bytes (used by string-input SavedModels;
        encoded from ``pixels`` as PNG when None).
      image_format: format of ``encoded``.

    Returns:
      dict: detection_boxes float32 [N, 4] normalised (ymin, xmin, ymax,
      xmax), detection_scores float32 [N], detection_classes int64 [N]
      (label-map ids), N = num_detections, best first.
    """
    if encoded is None:
      buffer = io.BytesIO()
      Image.fromarray(pixels).save(buffer, format='PNG')
      encoded, image_format = buffer.getvalue(), 'png'
    outputs = self._serve(**{E.input_tensor: self._input(pixels, encoded,
                                                         image_format)})
    count = int(outputs[D.num_detections][0])
    return {
        D.detection_boxes: outputs[D.detection_boxes][0, :count].numpy(),
        D.detection_scores: outputs[D.detection_scores][0, :count].numpy(),
        D.detection_classes:
            outputs[D.detection_classes][0, :count].numpy().astype(np.int64),
    }
