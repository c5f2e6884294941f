"""ResNet-50/101 v1 Faster R-CNN feature extractors.

Built on ``tf_keras.applications.ResNet50`` / ``ResNet101`` (``weights=None,
include_top=False``) and split as the OD API's
``faster_rcnn_resnet{50,101}_keras`` extractors:

* first stage: input -> ``conv4_block{6,23}_out``, 1024 channels, output
  stride 16: an H x W input (H, W multiples of 16) gives H/16 x W/16.
* second stage: ``conv5_block1`` ... ``conv5_block3_out`` on the proposal
  crops; the first conv5 block has stride 2: [N, 14, 14, 1024] ->
  [N, 7, 7, 2048].

Layer names are the application's (all explicit), so ``save_weights`` files
of the application, e.g. the Keras ImageNet ``*_notop.h5`` files, load by
name into ``classification_backbone`` (the application model itself).

Preprocessing (``preprocessing=``):
  * ``'caffe'`` (default): the Keras ResNet convention the Keras ImageNet
    weights were trained with: RGB -> BGR, minus the BGR ImageNet means
    (103.939, 116.779, 123.68).
  * ``'od_api'``: the OD API's: RGB kept, minus the RGB means
    (123.68, 116.779, 103.939); for checkpoints trained that way.
"""

from typing import Optional

import tensorflow as tf
import tf_keras

from object_detection_note.models import base
from object_detection_note.models import keras_utils

_RGB_MEANS = (123.68, 116.779, 103.939)
_APPLICATIONS = {
    50: (tf_keras.applications.ResNet50, 'conv4_block6_out'),
    101: (tf_keras.applications.ResNet101, 'conv4_block23_out'),
}
SECOND_STAGE_OUTPUT = 'conv5_block3_out'
_PREPROCESSING = ('caffe', 'od_api')


class ResnetFeatureExtractor(base.FasterRcnnFeatureExtractor):
  """Faster R-CNN ResNet-v1 extractor (see module docstring)."""

  supported_strides = (16,)
  proposal_feature_depth = 1024
  box_classifier_feature_depth = 2048
  default_crop_size = 14

  def __init__(self,
               is_training: bool,
               first_stage_features_stride: int = 16,
               batch_norm_trainable: bool = False,
               weight_decay: float = 0.0,
               depth: int = 50,
               preprocessing: str = 'caffe'):
    """Constructor.

    Args:
      is_training: see base class.
      first_stage_features_stride: must be 16.
      batch_norm_trainable: see base class.
      weight_decay: see base class.
      depth: 50 or 101.
      preprocessing: 'caffe' or 'od_api' (see module docstring).

    Raises:
      ValueError: unsupported stride, depth or preprocessing.
    """
    super().__init__(is_training, first_stage_features_stride,
                     batch_norm_trainable, weight_decay)
    if depth not in _APPLICATIONS:
      raise ValueError(f'ResNet depth must be one of {sorted(_APPLICATIONS)}'
                       f', got {depth}.')
    if preprocessing not in _PREPROCESSING:
      raise ValueError(f'preprocessing must be one of {_PREPROCESSING}, got '
                       f'{preprocessing!r}.')
    self._depth = depth
    self._preprocessing = preprocessing
    self._app: Optional[tf_keras.Model] = None

  @property
  def classification_backbone(self) -> Optional[tf_keras.Model]:
    return self._app

  @property
  def first_stage_output_layer(self) -> str:
    return _APPLICATIONS[self._depth][1]

  def preprocess(self, resized_inputs):
    """[B, H, W, 3] float32 RGB in [0, 255] -> mean-subtracted input."""
    means = tf.constant(_RGB_MEANS, dtype=resized_inputs.dtype)
    centred = resized_inputs - means
    if self._preprocessing == 'caffe':
      centred = centred[..., ::-1]
    return centred

  def _application(self) -> tf_keras.Model:
    if self._app is None:
      constructor = _APPLICATIONS[self._depth][0]
      app = constructor(include_top=False, weights=None,
                        input_shape=(None, None, 3))
      keras_utils.add_kernel_regularization(
          app.layers, keras_utils.l2_kernel_regularizer(self._weight_decay))
      self._app = app
    return self._app

  def _build_proposal_model(self, name: Optional[str]) -> tf_keras.Model:
    app = self._application()
    return tf_keras.Model(
        app.input, app.get_layer(self.first_stage_output_layer).output,
        name=name or 'FirstStageFeatureExtractor')

  def _build_box_classifier_model(self,
                                  name: Optional[str]) -> tf_keras.Model:
    app = self._application()
    return keras_utils.extract_submodel(
        app, app.get_layer(self.first_stage_output_layer).output,
        app.get_layer(SECOND_STAGE_OUTPUT).output,
        name=name or 'SecondStageFeatureExtractor')
