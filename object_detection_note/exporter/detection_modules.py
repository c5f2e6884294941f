"""``tf.Module``s served by an exported detector, one per ``--input_type``.

Each module's ``__call__`` is a ``tf.function`` with the OD API's input
signature, named ``input_tensor``:

  image_tensor                 uint8   [1, None, None, 3]
  float_image_tensor           float32 [1, None, None, 3]  pixels in [0, 255]
  encoded_image_string_tensor  string  [1]   JPEG / PNG / GIF / BMP bytes
  tf_example                   string  [1]   serialized tf.train.Example with
                                             ``image/encoded``

and returns the detection dict (``core.fields.DetectionFields``, all
float32): detection_boxes [1, D, 4] normalised to the input image,
detection_scores [1, D], detection_classes [1, D] (label-map ids),
num_detections [1], detection_multiclass_scores [1, D, C + 1],
raw_detection_boxes [1, P, 4], raw_detection_scores [1, P, C + 1],
detection_anchor_indices [1, D] (the OD API's outputs and dtypes).

Images go through ``inference.detect``: resized and padded by the config's
``image_resizer`` exactly as in training and evaluation.
"""
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.core.fields import ExportFields
from object_detection_note.core.fields import TfExampleFields


def decode_image(encoded):
  """Encoded image bytes (scalar string) → uint8 [H, W, 3]."""
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def decode_tf_example(serialized):
  """Serialized tf.Example (scalar string) → its ``image/encoded`` pixels."""
  features = tf.io.parse_single_example(
      serialized,
      {TfExampleFields.image_encoded: tf.io.FixedLenFeature((), tf.string)})
  return decode_image(features[TfExampleFields.image_encoded])


def _serving_function(input_signature):
  """``tf.function`` for serving: a fixed signature, no AutoGraph.

  The model's graph code uses TF ops for all data-dependent control flow, so
  AutoGraph is not needed; skipping its source conversion makes tracing
  several times faster (seconds instead of tens of seconds for a small
  model).
  """
  return tf.function(input_signature=input_signature, autograph=False)


class DetectionInferenceModule(tf.Module):
  """Runs a restored NoteFasterRcnn on raw images.

  Args:
    model: NoteFasterRcnn with its variables built and restored.
    image_resizer: ImageResizer proto of the model's config.
  """

  INPUT_TYPE = None

  def __init__(self, model, image_resizer):
    super().__init__(name='detection_module')
    self.model = model
    self._image_resizer = image_resizer

  def _run_inference_on_images(self, images):
    """uint8/float32 [1, H, W, 3] → DetectionFields dict, all float32."""
    detections = inference.detect(self.model, images, self._image_resizer)
    return {key: tf.cast(value, tf.float32)
            for key, value in detections.items()}

  @_serving_function([])
  def input_type(self):
    """The ``--input_type`` this module was exported with (string scalar)."""
    return tf.constant(self.INPUT_TYPE)


class DetectionFromImageModule(DetectionInferenceModule):
  INPUT_TYPE = ExportFields.image_tensor

  @_serving_function([
      tf.TensorSpec([1, None, None, 3], tf.uint8,
                    name=ExportFields.input_tensor)])
  def __call__(self, input_tensor):
    return self._run_inference_on_images(input_tensor)


class DetectionFromFloatImageModule(DetectionInferenceModule):
  INPUT_TYPE = ExportFields.float_image_tensor

  @_serving_function([
      tf.TensorSpec([1, None, None, 3], tf.float32,
                    name=ExportFields.input_tensor)])
  def __call__(self, input_tensor):
    return self._run_inference_on_images(input_tensor)


class DetectionFromEncodedImageModule(DetectionInferenceModule):
  INPUT_TYPE = ExportFields.encoded_image_string_tensor

  @_serving_function([
      tf.TensorSpec([1], tf.string, name=ExportFields.input_tensor)])
  def __call__(self, input_tensor):
    with tf.device('cpu:0'):
      image = decode_image(input_tensor[0])[tf.newaxis]
    return self._run_inference_on_images(image)


class DetectionFromTFExampleModule(DetectionInferenceModule):
  INPUT_TYPE = ExportFields.tf_example

  @_serving_function([
      tf.TensorSpec([1], tf.string, name=ExportFields.input_tensor)])
  def __call__(self, input_tensor):
    with tf.device('cpu:0'):
      image = decode_tf_example(input_tensor[0])[tf.newaxis]
    return self._run_inference_on_images(image)


DETECTION_MODULE_MAP = {
    module.INPUT_TYPE: module for module in (
        DetectionFromImageModule, DetectionFromFloatImageModule,
        DetectionFromEncodedImageModule, DetectionFromTFExampleModule)
}
INPUT_TYPES = tuple(DETECTION_MODULE_MAP)
