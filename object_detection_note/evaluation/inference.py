"""Raw images → detections, the same way training sees images.

Used by evaluation, mining and the exporter, so all three resize exactly as
the training input pipeline does (``data.input.inputs.resize_image``: the
config's ``image_resizer``, padded to a static size) and report boxes
normalised to the input image (the OD API convention).
"""
import tensorflow as tf

from object_detection_note.core.fields import DetectionFields
from object_detection_note.data.input import inputs


def padded_image_size(image_resizer):
  """Static (height, width) the model sees, or raise if the config has none.

  NoteFasterRcnn needs static spatial shapes (anchors, XLA, TPUs): use
  ``fixed_shape_resizer`` or ``keep_aspect_ratio_resizer`` with
  ``pad_to_max_dimension: true``.
  """
  kind = image_resizer.WhichOneof('image_resizer_oneof')
  if kind == 'fixed_shape_resizer':
    return (image_resizer.fixed_shape_resizer.height,
            image_resizer.fixed_shape_resizer.width)
  if (kind == 'keep_aspect_ratio_resizer' and
      image_resizer.keep_aspect_ratio_resizer.pad_to_max_dimension):
    size = image_resizer.keep_aspect_ratio_resizer.max_dimension
    return size, size
  raise ValueError(
      'model.faster_rcnn.image_resizer: needs a static size; use '
      'fixed_shape_resizer or keep_aspect_ratio_resizer with '
      'pad_to_max_dimension: true')


def resize_batch(images, image_resizer):
  """uint8/float images [B, H, W, 3] → (float32 [B, h, w, 3], int32 [B, 3]).

  Images of one batch share their input size; each is resized and padded as
  in training.
  """
  images = tf.cast(images, tf.float32)
  size = padded_image_size(image_resizer)
  resized, true_shapes = tf.map_fn(
      lambda image: inputs.resize_image(image, image_resizer), images,
      fn_output_signature=(tf.TensorSpec(list(size) + [3], tf.float32),
                           tf.TensorSpec([3], tf.int32)))
  return resized, true_shapes


def detect(model, images, image_resizer):
  """Runs ``model`` on raw images.

  Args:
    model: NoteFasterRcnn.
    images: uint8 or float [B, H, W, 3] pixels in [0, 255].
    image_resizer: ImageResizer proto of the model's config.

  Returns:
    dict with DetectionFields keys; boxes normalised to the input images.
  """
  resized, true_shapes = resize_batch(images, image_resizer)
  preprocessed, _ = model.preprocess(resized)
  predictions = model.predict(preprocessed, true_shapes, training=False)
  return model.postprocess(predictions, true_shapes)


def build_model_inputs(model, image_resizer):
  """Creates the model's variables with one dummy call (e.g. before restore)."""
  height, width = padded_image_size(image_resizer)
  detect(model, tf.zeros([1, height, width, 3], tf.uint8), image_resizer)


def numpy_detections(detections, index):
  """One image's detections as numpy, cut to num_detections."""
  count = int(detections[DetectionFields.num_detections][index])
  return {
      DetectionFields.detection_boxes:
          detections[DetectionFields.detection_boxes][index, :count].numpy(),
      DetectionFields.detection_scores:
          detections[DetectionFields.detection_scores][index, :count].numpy(),
      DetectionFields.detection_classes:
          detections[DetectionFields.detection_classes][index, :count]
          .numpy().astype('int64'),
  }
