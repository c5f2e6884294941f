"""A tiny Faster R-CNN feature extractor for tests and the CPU demo.

First stage: stride-2 3x3 conv + BN + ReLU blocks (3 for stride 8, 4 for
stride 16) followed by one stride-1 3x3 block: [B, H, W, 3] ->
[B, ceil(H/s), ceil(W/s), depth]. Second stage: a stride-1 and a stride-2
3x3 block on the crops: [N, k, k, depth] -> [N, ceil(k/2), ceil(k/2),
2 * depth]. All convolutions use SAME padding, so sizes divisible by the
stride give exactly H/s.

Inputs are scaled to [-1, 1] like the Inception extractor. Weights are
initialised from ``seed`` when given, else from TensorFlow's global seed
(``tf.random.set_seed``), so the init is deterministic either way.
"""

from typing import Optional

import tensorflow as tf
import tf_keras

from object_detection_note.models import base
from object_detection_note.models import keras_utils


class TinyFeatureExtractor(base.FasterRcnnFeatureExtractor):
  """Few-layer CNN extractor; see module docstring for shapes."""

  supported_strides = (8, 16)
  default_crop_size = 8

  def __init__(self,
               is_training: bool,
               first_stage_features_stride: int = 8,
               batch_norm_trainable: bool = False,
               weight_decay: float = 0.0,
               depth: int = 32,
               seed: Optional[int] = None):
    """Constructor.

    Args:
      is_training: see base class.
      first_stage_features_stride: 8 or 16.
      batch_norm_trainable: see base class. The tiny net is trained from
        scratch: frozen batch norm is then a fixed identity-like scaling, so
        configs training it usually set ``batch_norm_trainable: true``.
      weight_decay: see base class.
      depth: channels of the RPN feature map (the stem uses depth/2 and
        depth/4 before it); the box classifier outputs 2 * depth.
      seed: optional base seed of the kernel initialisers.
    """
    super().__init__(is_training, first_stage_features_stride,
                     batch_norm_trainable, weight_decay)
    if depth < 4:
      raise ValueError(f'depth must be >= 4, got {depth}.')
    self._depth = int(depth)
    self._seed = seed
    self._num_layers = 0
    self.proposal_feature_depth = self._depth
    self.box_classifier_feature_depth = 2 * self._depth

  def preprocess(self, resized_inputs):
    """[B, H, W, 3] float32 in [0, 255] -> same shape in [-1, 1]."""
    return (2.0 / 255.0) * resized_inputs - 1.0

  def _conv_block(self, x, filters: int, strides: int, name: str):
    """3x3 conv (SAME, no bias) + BN + ReLU."""
    if self._seed is None:
      # Drawn from TensorFlow's global RNG: reproducible after
      # tf.random.set_seed (unseeded Keras initialisers use Python's RNG).
      self._seed = int(tf.random.uniform([], 0, 2**31 - 1024, tf.int64))
    seed = self._seed + self._num_layers
    self._num_layers += 1
    x = tf_keras.layers.Conv2D(
        filters, 3, strides=strides, padding='same', use_bias=False,
        kernel_initializer=tf_keras.initializers.HeNormal(seed=seed),
        kernel_regularizer=keras_utils.l2_kernel_regularizer(
            self._weight_decay),
        name=name + '_conv')(x)
    x = tf_keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3,
                                           name=name + '_bn')(x)
    return tf_keras.layers.ReLU(name=name + '_relu')(x)

  def _build_proposal_model(self, name: Optional[str]) -> tf_keras.Model:
    inputs = tf_keras.Input(shape=(None, None, 3), name='image')
    num_down = 3 if self._first_stage_features_stride == 8 else 4
    widths = [max(self._depth // 4, 4), max(self._depth // 2, 4)]
    widths += [self._depth] * (num_down - len(widths))
    x = inputs
    for i, width in enumerate(widths):
      x = self._conv_block(x, width, 2, f'stem{i + 1}')
    x = self._conv_block(x, self._depth, 1, 'proposal_features')
    return tf_keras.Model(inputs, x, name=name or 'tiny_first_stage')

  def _build_box_classifier_model(self,
                                  name: Optional[str]) -> tf_keras.Model:
    inputs = tf_keras.Input(shape=(None, None, self._depth),
                            name='proposal_crops')
    x = self._conv_block(inputs, self._depth, 1, 'box1')
    x = self._conv_block(x, 2 * self._depth, 2, 'box2')
    return tf_keras.Model(inputs, x, name=name or 'tiny_second_stage')
