"""Inception-ResNet-v2 Faster R-CNN feature extractor (the paper's, §4.1).

Built on ``tf_keras.applications.InceptionResNetV2(weights=None,
include_top=False)`` and split as the OD API's
``faster_rcnn_inception_resnet_v2_keras`` extractor:

* first stage: input -> ``block17_20_ac``, 1088 channels, output stride 16
  (or 8). As in the OD API (``align_feature_maps=True``) every VALID
  convolution / pooling of that part is switched to SAME, so an H x W input
  gives exactly ceil(H/16) x ceil(W/16) (320 -> 20; the unmodified Keras
  geometry would give 19). With stride 8, ``mixed_6a`` keeps stride 1 and the
  ``block17`` convolutions wider than 1x1 are dilated by 2 (the OD API's
  atrous variant): 320 -> 40.
* second stage: ``mixed_7a`` -> ``conv_7b_ac`` with the Keras (VALID)
  geometry, applied to the 17x17 proposal crops: [N, 17, 17, 1088] ->
  [N, 8, 8, 1536]; or, with ``second_stage_same_padding`` (the OD API Keras
  extractor's geometry, ``odapi_compatible_geometry``), SAME padding there
  too: [N, 17, 17, 1088] -> [N, 9, 9, 1536].

Padding, strides and dilations are call-time attributes of tf_keras
convolution and pooling layers, and the application is built with free
spatial dimensions, so the changes are made on the built layers: the layer
names, order and weights stay those of the Keras application, and the
standard Keras ``*_notop.h5`` ImageNet weights (or any ``save_weights`` file
of the application) load into ``classification_backbone``. That model is the
application itself, with the first-stage changes above; it is used for
weight loading, not for inference.

Preprocessing maps [0, 255] to [-1, 1] (the Keras application's and the OD
API's).

Speed: the stride-1 convolutions (most of the network, all the 1x1 ones)
compute their input gradient as a forward convolution
(``keras_utils.use_convolution_input_gradients``): same values up to float
rounding, about 10% less CPU time per IRv2 training step.
"""

from typing import Optional

import tf_keras

from object_detection_note.models import base
from object_detection_note.models import keras_utils

FIRST_STAGE_OUTPUT = 'block17_20_ac'
SECOND_STAGE_OUTPUT = 'conv_7b_ac'
_STRIDE16_LAYER = 'mixed_6a'
_PRE_STRIDE16_LAYER = 'block35_10_ac'
_POOLING = (tf_keras.layers.MaxPooling2D, tf_keras.layers.AveragePooling2D)


def _set_same_padding(layers) -> None:
  for layer in layers:
    if isinstance(layer, (tf_keras.layers.Conv2D,) + _POOLING):
      layer.padding = 'same'


def _set_output_stride_8(app: tf_keras.Model) -> None:
  """Removes the mixed_6a down-sampling and dilates the block17 layers."""
  before = {id(l) for l in keras_utils.ancestor_layers(
      app.get_layer(_PRE_STRIDE16_LAYER).output)}
  reduction = [l for l in keras_utils.ancestor_layers(
      app.get_layer(_STRIDE16_LAYER).output) if id(l) not in before]
  for layer in reduction:
    if isinstance(layer, (tf_keras.layers.Conv2D,) + _POOLING):
      layer.strides = (1, 1)
  upto_6a = {id(l) for l in keras_utils.ancestor_layers(
      app.get_layer(_STRIDE16_LAYER).output)}
  for layer in keras_utils.ancestor_layers(
      app.get_layer(FIRST_STAGE_OUTPUT).output):
    if (id(layer) not in upto_6a and
        isinstance(layer, tf_keras.layers.Conv2D) and
        max(layer.kernel_size) > 1):
      layer.dilation_rate = (2, 2)


class InceptionResnetV2FeatureExtractor(base.FasterRcnnFeatureExtractor):
  """Faster R-CNN Inception-ResNet-v2 extractor (see module docstring)."""

  supported_strides = (8, 16)
  proposal_feature_depth = 1088
  box_classifier_feature_depth = 1536
  default_crop_size = 17

  def __init__(self,
               is_training: bool,
               first_stage_features_stride: int = 16,
               batch_norm_trainable: bool = False,
               weight_decay: float = 0.0,
               second_stage_same_padding: bool = False):
    super().__init__(is_training, first_stage_features_stride,
                     batch_norm_trainable, weight_decay)
    self._second_stage_same_padding = bool(second_stage_same_padding)
    self._app: Optional[tf_keras.Model] = None

  @property
  def classification_backbone(self) -> Optional[tf_keras.Model]:
    return self._app

  def preprocess(self, resized_inputs):
    """[B, H, W, 3] float32 in [0, 255] -> same shape in [-1, 1]."""
    return (2.0 / 255.0) * resized_inputs - 1.0

  def _application(self) -> tf_keras.Model:
    """Builds (once) the Keras application with the first-stage changes."""
    if self._app is None:
      app = tf_keras.applications.InceptionResNetV2(
          include_top=False, weights=None, input_shape=(None, None, 3))
      first_stage = keras_utils.ancestor_layers(
          app.get_layer(FIRST_STAGE_OUTPUT).output)
      _set_same_padding(first_stage)
      if self._second_stage_same_padding:
        _set_same_padding(keras_utils.ancestor_layers(
            app.get_layer(SECOND_STAGE_OUTPUT).output))
      if self._first_stage_features_stride == 8:
        _set_output_stride_8(app)
      keras_utils.add_kernel_regularization(
          app.layers, keras_utils.l2_kernel_regularizer(self._weight_decay))
      keras_utils.use_convolution_input_gradients(app.layers)
      self._app = app
    return self._app

  def _build_proposal_model(self, name: Optional[str]) -> tf_keras.Model:
    app = self._application()
    return tf_keras.Model(app.input, app.get_layer(FIRST_STAGE_OUTPUT).output,
                          name=name or 'FirstStageFeatureExtractor')

  def _build_box_classifier_model(self,
                                  name: Optional[str]) -> tf_keras.Model:
    app = self._application()
    return keras_utils.extract_submodel(
        app, app.get_layer(FIRST_STAGE_OUTPUT).output,
        app.get_layer(SECOND_STAGE_OUTPUT).output,
        name=name or 'SecondStageFeatureExtractor')
