"""Region proposal network head with NOTE's extra objectness head rpn-cls-a.

A shared 3x3 convolution over the first-stage features feeds three 1x1
convolutions, each a separately named layer so their variables can be told
apart (tests check which head receives gradient from which examples):

  * ``rpn_cls``   objectness logit per anchor (seed head, §3.3.3).
  * ``rpn_reg``   box encoding (dy, dx, dh, dw) per anchor (seed head).
  * ``rpn_cls_a`` objectness logit per anchor trained on seed + mined data;
                  only built when ``use_objectness_a`` is set.

Objectness is a single sigmoid logit per anchor (the binary cross-entropy of
the paper's Eq. 1), not the OD API's two-way softmax.
"""
import tensorflow as tf
import tf_keras

from object_detection_note.core.fields import PredictionFields
from object_detection_note.heads import initializers


class RpnHead(tf_keras.layers.Layer):
  """First-stage box predictor.

  Call with features float32 [B, h, w, C] (static h, w) and get a dict
  (of the layer's compute dtype: bfloat16 / float16 when built under a mixed
  precision policy):
    PredictionFields.rpn_objectness_logits    [B, h*w*k]
    PredictionFields.rpn_objectness_logits_a  [B, h*w*k] (if enabled)
    PredictionFields.rpn_box_encodings        [B, h*w*k, 4]
  where k = ``num_anchors_per_location`` and the anchor order is
  (row, column, anchor-in-cell), the order of ``anchors.grid_anchors``.
  """

  def __init__(self,
               num_anchors_per_location,
               depth=512,
               kernel_size=3,
               use_objectness_a=True,
               weight_decay=0.0,
               kernel_initializer_spec=None,
               name='rpn_head',
               **kwargs):
    super().__init__(name=name, **kwargs)
    self._k = num_anchors_per_location
    self._use_objectness_a = use_objectness_a
    regularizer = (tf_keras.regularizers.l2(weight_decay)
                   if weight_decay > 0 else None)

    def conv(filters, size, layer_name, activation=None):
      return tf_keras.layers.Conv2D(
          filters, size, padding='same', activation=activation,
          kernel_initializer=initializers.from_spec(
              kernel_initializer_spec,
              tf_keras.initializers.TruncatedNormal(stddev=0.01)),
          kernel_regularizer=regularizer, name=layer_name)

    self.rpn_conv = conv(depth, kernel_size, 'rpn_conv', activation='relu6')
    self.rpn_cls = conv(self._k, 1, 'rpn_cls')
    self.rpn_reg = conv(4 * self._k, 1, 'rpn_reg')
    self.rpn_cls_a = (conv(self._k, 1, 'rpn_cls_a')
                      if use_objectness_a else None)

  @property
  def use_objectness_a(self):
    return self._use_objectness_a

  def call(self, features):
    _, height, width, _ = features.shape
    if height is None or width is None:
      raise ValueError('RpnHead needs static feature map height and width, '
                       'got shape %s' % (features.shape,))
    num_anchors = height * width * self._k
    net = self.rpn_conv(features)
    outputs = {
        PredictionFields.rpn_objectness_logits:
            tf.reshape(self.rpn_cls(net), [-1, num_anchors]),
        PredictionFields.rpn_box_encodings:
            tf.reshape(self.rpn_reg(net), [-1, num_anchors, 4]),
    }
    if self.rpn_cls_a is not None:
      outputs[PredictionFields.rpn_objectness_logits_a] = tf.reshape(
          self.rpn_cls_a(net), [-1, num_anchors])
    return outputs
