"""Shapes, naming and on/off switches of the RPN head and box predictor."""
import numpy as np
import tensorflow as tf

from object_detection_note.core.fields import PredictionFields as P
from object_detection_note.heads import box_predictor
from object_detection_note.heads import rpn_head


def test_rpn_head_shapes_and_named_layers():
  head = rpn_head.RpnHead(num_anchors_per_location=3, depth=8)
  out = head(tf.random.uniform([2, 4, 5, 6]))
  assert out[P.rpn_objectness_logits].shape == (2, 60)
  assert out[P.rpn_objectness_logits_a].shape == (2, 60)
  assert out[P.rpn_box_encodings].shape == (2, 60, 4)
  names = {v.name.split('/')[-2] for v in head.trainable_variables}
  assert names == {'rpn_conv', 'rpn_cls', 'rpn_reg', 'rpn_cls_a'}
  assert head.rpn_cls_a.kernel.shape == (1, 1, 8, 3)


def test_rpn_head_anchor_order_matches_cells():
  """Logit (row, col, k) of the flat output is channel k of cell (row, col)."""
  head = rpn_head.RpnHead(num_anchors_per_location=2, depth=4)
  features = tf.random.uniform([1, 3, 4, 5])
  out = head(features)
  per_cell = head.rpn_cls(head.rpn_conv(features)).numpy()
  flat = out[P.rpn_objectness_logits].numpy()
  # Cell (row 1, col 3) is cell 1 * 4 + 3 = 7; its anchor 1 is 7 * 2 + 1.
  np.testing.assert_allclose(flat[0, 15], per_cell[0, 1, 3, 1], rtol=1e-6)
  encodings = head.rpn_reg(head.rpn_conv(features)).numpy()
  np.testing.assert_allclose(out[P.rpn_box_encodings].numpy()[0, 2 * 5 + 1],
                             encodings[0, 1, 1, 4:8], rtol=1e-6)


def test_rpn_head_without_objectness_a():
  head = rpn_head.RpnHead(num_anchors_per_location=3, depth=8,
                          use_objectness_a=False)
  out = head(tf.zeros([1, 2, 2, 4]))
  assert P.rpn_objectness_logits_a not in out
  assert head.rpn_cls_a is None


def test_box_predictor_heads():
  pred = box_predictor.BoxPredictor(num_classes=3, num_source_classes=5,
                                    use_dropout=True)
  out = pred(tf.random.uniform([7, 2, 2, 6]), training=True)
  assert out[P.class_logits].shape == (7, 4)
  assert out[P.class_logits_a].shape == (7, 4)
  assert out[P.class_logits_s].shape == (7, 6)
  assert out[P.refined_box_encodings].shape == (7, 3, 4)
  names = {v.name.split('/')[-2] for v in pred.trainable_variables}
  assert names == {'det_cls', 'det_cls_a', 'det_reg', 'det_cls_s'}


def test_box_predictor_optional_heads_off_and_pooling():
  pred = box_predictor.BoxPredictor(num_classes=2, use_class_logits_a=False)
  features = tf.random.uniform([3, 2, 2, 4])
  out = pred(features)
  assert set(out) == {P.class_logits, P.refined_box_encodings}
  pooled = tf.reduce_mean(features, axis=[1, 2])
  expected = pooled @ pred.det_cls.kernel + pred.det_cls.bias
  np.testing.assert_allclose(out[P.class_logits], expected, rtol=1e-5)
