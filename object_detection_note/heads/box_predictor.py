"""Second-stage box predictor with NOTE's det-cls-a and det-cls-s heads.

Follows the OD API's mask_rcnn_box_predictor: the second-stage features of
each proposal are global-average pooled, optionally dropped out, then fed to
fully connected heads, each its own named layer:

  * ``det_cls``   C + 1 class logits (index 0 = background), seed head.
  * ``det_cls_a`` C + 1 class logits trained on seed + mined data (§3.3.2);
                  built when ``use_class_logits_a`` is set.
  * ``det_reg``   class-specific box encodings, C x 4 (no background row).
  * ``det_cls_s`` S + 1 source-class logits for distillation (§3.3.4); built
                  when ``num_source_classes`` > 0.
"""
import tensorflow as tf
import tf_keras

from object_detection_note.core.fields import PredictionFields
from object_detection_note.heads import initializers


class BoxPredictor(tf_keras.layers.Layer):
  """Second-stage heads.

  Call with features float32 [N, h, w, C2] (N = batch x proposals) and get a
  dict (of the layer's compute dtype under a mixed precision policy):
    PredictionFields.class_logits           [N, C + 1]
    PredictionFields.class_logits_a         [N, C + 1]  (if enabled)
    PredictionFields.class_logits_s         [N, S + 1]  (if enabled)
    PredictionFields.refined_box_encodings  [N, C, 4]
  """

  def __init__(self,
               num_classes,
               use_class_logits_a=True,
               num_source_classes=0,
               use_dropout=False,
               dropout_keep_probability=0.5,
               weight_decay=0.0,
               kernel_initializer_spec=None,
               name='box_predictor',
               **kwargs):
    super().__init__(name=name, **kwargs)
    self._num_classes = num_classes
    regularizer = (tf_keras.regularizers.l2(weight_decay)
                   if weight_decay > 0 else None)

    def dense(units, layer_name, stddev):
      return tf_keras.layers.Dense(
          units,
          kernel_initializer=initializers.from_spec(
              kernel_initializer_spec,
              tf_keras.initializers.RandomNormal(stddev=stddev)),
          kernel_regularizer=regularizer, name=layer_name)

    self.pool = tf_keras.layers.GlobalAveragePooling2D(name='pool')
    self.dropout = (tf_keras.layers.Dropout(1.0 - dropout_keep_probability,
                                            name='dropout')
                    if use_dropout else None)
    self.det_cls = dense(num_classes + 1, 'det_cls', 0.01)
    self.det_cls_a = (dense(num_classes + 1, 'det_cls_a', 0.01)
                      if use_class_logits_a else None)
    self.det_reg = dense(4 * num_classes, 'det_reg', 0.001)
    self.det_cls_s = (dense(num_source_classes + 1, 'det_cls_s', 0.01)
                      if num_source_classes > 0 else None)

  def call(self, features, training=None):
    net = self.pool(features)
    if self.dropout is not None:
      net = self.dropout(net, training=training)
    outputs = {
        PredictionFields.class_logits: self.det_cls(net),
        PredictionFields.refined_box_encodings: tf.reshape(
            self.det_reg(net), [-1, self._num_classes, 4]),
    }
    if self.det_cls_a is not None:
      outputs[PredictionFields.class_logits_a] = self.det_cls_a(net)
    if self.det_cls_s is not None:
      outputs[PredictionFields.class_logits_s] = self.det_cls_s(net)
    return outputs
