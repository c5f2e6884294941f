"""Training-time data augmentation: the OD API's ``data_augmentation_options``.

One function per ``PreprocessingStep``, each on one decoded example:

  image    float32 [H, W, 3], pixels in [0, 255]
  boxes    float32 [N, 4] normalised (ymin, xmin, ymax, xmax)
  classes  int32 [N]

Colour steps change the image only. Geometric steps move the boxes with the
image; crops clip boxes to the crop and drop those left with no area
(together with their classes), so boxes, classes and pixels stay consistent.
Pixel values stay in [0, 255]. ``augment`` applies a list of steps in config
order (as the OD API does).

Semantics follow the OD API's ``core/preprocessor.py`` documentation:
  random_horizontal_flip / random_vertical_flip: flip with ``probability``.
  random_adjust_brightness: add a delta in [-max_delta, max_delta] (in units
    of the [0, 1] range).
  random_adjust_contrast / random_adjust_saturation: scale by a factor in
    [min_delta, max_delta].
  random_adjust_hue: rotate hue by a delta in [-max_delta, max_delta].
  random_rgb_to_gray: grey image with ``probability``.
  random_square_crop_by_scale: a square crop of side ``scale * max(H, W)``,
    scale one of ``num_scales`` values in [scale_min, scale_max], centred at a
    random point at least ``border`` pixels inside the image, where border is
    ``max_border / 2**k`` for the smallest k making it < dimension / 2;
    the part outside the image is zero-padded.
  random_scale_crop_and_pad_to_square: resize so the longer side is
    ``output_size * scale`` (scale uniform in [scale_min, scale_max]), take a
    random ``output_size`` square window (a crop where the image is larger),
    zero-pad the rest.
"""
import tensorflow as tf

def _coin(probability):
  return tf.random.uniform([]) < probability


def random_horizontal_flip(image, boxes, probability=0.5):
  """Flips image and boxes left-right with ``probability``."""
  def flip():
    flipped = tf.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2],
                        1.0 - boxes[:, 1]], axis=1)
    return tf.image.flip_left_right(image), flipped
  return tf.cond(_coin(probability), flip, lambda: (image, boxes))


def random_vertical_flip(image, boxes, probability=0.5):
  """Flips image and boxes upside-down with ``probability``."""
  def flip():
    flipped = tf.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0],
                        boxes[:, 3]], axis=1)
    return tf.image.flip_up_down(image), flipped
  return tf.cond(_coin(probability), flip, lambda: (image, boxes))


def _in_unit_range(fn, image):
  """Applies ``fn`` to the image scaled to [0, 1]; back to [0, 255]."""
  return tf.clip_by_value(fn(image / 255.0), 0.0, 1.0) * 255.0


def random_adjust_brightness(image, max_delta=0.2):
  delta = tf.random.uniform([], -max_delta, max_delta)
  return _in_unit_range(lambda x: tf.image.adjust_brightness(x, delta), image)


def random_adjust_contrast(image, min_delta=0.8, max_delta=1.25):
  factor = tf.random.uniform([], min_delta, max_delta)
  return _in_unit_range(lambda x: tf.image.adjust_contrast(x, factor), image)


def random_adjust_hue(image, max_delta=0.02):
  delta = tf.random.uniform([], -max_delta, max_delta)
  return _in_unit_range(lambda x: tf.image.adjust_hue(x, delta), image)


def random_adjust_saturation(image, min_delta=0.8, max_delta=1.25):
  factor = tf.random.uniform([], min_delta, max_delta)
  return _in_unit_range(lambda x: tf.image.adjust_saturation(x, factor),
                        image)


def random_rgb_to_gray(image, probability=0.1):
  def gray():
    return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
  return tf.cond(_coin(probability), gray, lambda: image)


def crop_window(image, boxes, classes, top, left, height, width):
  """The ``height x width`` window at (top, left) of the image, zero-padded.

  The window may extend past the image (negative top/left, or beyond the
  bottom/right); that part is zeros. Boxes are re-normalised to the window,
  clipped to it, and dropped (with their classes) when no area is left.

  Args:
    image: float32 [H, W, 3].
    boxes: float32 [N, 4] normalised to the image.
    classes: int32 [N].
    top, left, height, width: int32 scalars, window in image pixels.

  Returns:
    (image [height, width, 3], boxes [M, 4], classes [M]).
  """
  shape = tf.shape(image)
  img_h, img_w = shape[0], shape[1]
  pad_top = tf.maximum(0, -top)
  pad_left = tf.maximum(0, -left)
  pad_bottom = tf.maximum(0, top + height - img_h)
  pad_right = tf.maximum(0, left + width - img_w)
  padded = tf.pad(image, [[pad_top, pad_bottom], [pad_left, pad_right],
                          [0, 0]])
  cropped = padded[top + pad_top:top + pad_top + height,
                   left + pad_left:left + pad_left + width]
  size = tf.cast(tf.stack([img_h, img_w, img_h, img_w]), tf.float32)
  origin = tf.cast(tf.stack([top, left, top, left]), tf.float32)
  extent = tf.cast(tf.stack([height, width, height, width]), tf.float32)
  moved = tf.clip_by_value((boxes * size - origin) / extent, 0.0, 1.0)
  keep = tf.logical_and(moved[:, 2] > moved[:, 0], moved[:, 3] > moved[:, 1])
  return (cropped, tf.boolean_mask(moved, keep),
          tf.boolean_mask(classes, keep))


def _border(max_border, dimension):
  """max_border / 2**k for the smallest k with the result < dimension / 2."""
  border = tf.cast(max_border, tf.float32)
  half = tf.cast(dimension, tf.float32) / 2.0
  halvings = tf.maximum(0.0, tf.floor(tf.math.log(border / half) /
                                      tf.math.log(2.0)) + 1.0)
  return border / tf.pow(2.0, halvings)


def random_square_crop_by_scale(image, boxes, classes, max_border=128,
                                scale_min=0.6, scale_max=1.3, num_scales=8):
  """Random square crop of side scale * max(H, W) (see module docstring)."""
  shape = tf.shape(image)
  img_h, img_w = shape[0], shape[1]
  scales = tf.linspace(float(scale_min), float(scale_max), int(num_scales))
  scale = tf.gather(scales, tf.random.uniform([], 0, int(num_scales),
                                              tf.int32))
  side = tf.maximum(1, tf.cast(
      scale * tf.cast(tf.maximum(img_h, img_w), tf.float32), tf.int32))

  def centre(dimension):
    border = _border(max_border, dimension)
    low = border
    high = tf.cast(dimension, tf.float32) - border
    return tf.cast(tf.random.uniform([], low, tf.maximum(high, low + 1.0)),
                   tf.int32)

  top = centre(img_h) - side // 2
  left = centre(img_w) - side // 2
  return crop_window(image, boxes, classes, top, left, side, side)


def random_scale_crop_and_pad_to_square(image, boxes, classes,
                                        output_size=512, scale_min=0.1,
                                        scale_max=2.0):
  """Random scale, then a random output_size square crop / zero pad."""
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = tf.random.uniform([], scale_min, scale_max)
  factor = float(output_size) * scale / tf.reduce_max(shape)
  new_size = tf.maximum(1, tf.cast(tf.round(shape * factor), tf.int32))
  resized = tf.image.resize(image, new_size)
  slack = tf.maximum(0, new_size - output_size)
  top = tf.random.uniform([], 0, slack[0] + 1, tf.int32)
  left = tf.random.uniform([], 0, slack[1] + 1, tf.int32)
  return crop_window(resized, boxes, classes, top, left, output_size,
                     output_size)


def augment(image, boxes, classes, steps):
  """Applies PreprocessingStep protos in order.

  Args:
    image, boxes, classes: see module docstring.
    steps: iterable of ``PreprocessingStep`` protos.

  Returns:
    (image, boxes, classes) after every step.

  Raises:
    ValueError: a step this module does not implement (the config check
      rejects those before training starts).
  """
  for step in steps:
    kind = step.WhichOneof('preprocessing_step')
    options = getattr(step, kind) if kind else None
    if kind == 'random_horizontal_flip':
      image, boxes = random_horizontal_flip(image, boxes,
                                            options.probability)
    elif kind == 'random_vertical_flip':
      image, boxes = random_vertical_flip(image, boxes, options.probability)
    elif kind == 'random_adjust_brightness':
      image = random_adjust_brightness(image, options.max_delta)
    elif kind == 'random_adjust_contrast':
      image = random_adjust_contrast(image, options.min_delta,
                                     options.max_delta)
    elif kind == 'random_adjust_hue':
      image = random_adjust_hue(image, options.max_delta)
    elif kind == 'random_adjust_saturation':
      image = random_adjust_saturation(image, options.min_delta,
                                       options.max_delta)
    elif kind == 'random_rgb_to_gray':
      image = random_rgb_to_gray(image, options.probability)
    elif kind == 'random_square_crop_by_scale':
      image, boxes, classes = random_square_crop_by_scale(
          image, boxes, classes, options.max_border, options.scale_min,
          options.scale_max, options.num_scales)
    elif kind == 'random_scale_crop_and_pad_to_square':
      image, boxes, classes = random_scale_crop_and_pad_to_square(
          image, boxes, classes, options.output_size, options.scale_min,
          options.scale_max)
    else:
      raise ValueError('train_config.data_augmentation_options: %s is not '
                       'implemented' % (kind or 'an empty step'))
  return image, boxes, classes


SUPPORTED_STEPS = ('random_horizontal_flip', 'random_vertical_flip',
                   'random_adjust_brightness', 'random_adjust_contrast',
                   'random_adjust_hue', 'random_adjust_saturation',
                   'random_rgb_to_gray', 'random_square_crop_by_scale',
                   'random_scale_crop_and_pad_to_square')
