"""Base class of the Faster R-CNN feature extractors.

Mirrors the OD API's ``FasterRCNNKerasFeatureExtractor``: an extractor is not
a Keras model itself; it is a factory of two Keras models that share nothing
but (for the classification backbones) the weights of one backbone:

* ``get_proposal_feature_extractor_model(name)``: preprocessed images
  ``float32 [B, H, W, 3]`` -> RPN features ``float32 [B, H', W', C]`` with
  ``H' ~= H / first_stage_features_stride``. The same map is cropped for the
  second stage.
* ``get_box_classifier_feature_extractor_model(name)``: cropped proposal
  features ``float32 [N, crop, crop, C]`` (``N = batch * proposals``) ->
  box classifier features ``float32 [N, h, w, C2]``.

Each getter builds its model once and returns the same object afterwards, so
the meta-architecture may call them lazily (the OD API delays the build until
the first ``predict`` so that no variables exist before they are needed).

Batch norm: unless ``batch_norm_trainable and is_training``, every batch-norm
layer is frozen: ``trainable=False``, which in Keras 2 also makes it run in
inference mode (moving statistics used, never updated) whatever the
``training`` argument of the call. This is the OD API's behaviour (batch size
1 in the paper, see §4.1).

Weight decay: ``weight_decay > 0`` attaches ``weight_decay * l2_loss(kernel)``
(= ``0.5 * weight_decay * sum(kernel**2)``, slim's ``l2_regularizer``) to every
convolution kernel; the terms are in ``model.losses`` of both models.
"""

import abc
from typing import Optional

from absl import logging
import tf_keras

from object_detection_note.models import keras_utils
from object_detection_note.models import weights_io


class FasterRcnnFeatureExtractor(abc.ABC):
  """Factory of the two feature models of a Faster R-CNN detector.

  Attributes:
    first_stage_features_stride: int, output stride of the RPN feature map.
    proposal_feature_depth: int, channels C of the RPN feature map.
    box_classifier_feature_depth: int, channels C2 of the box classifier
      features.
    default_crop_size: int, the crop size the second stage was designed for
      (``initial_crop_size`` after max-pooling), e.g. 17 for IRv2.
  """

  proposal_feature_depth: int = 0
  box_classifier_feature_depth: int = 0
  default_crop_size: int = 0
  supported_strides = (16,)

  def __init__(self,
               is_training: bool,
               first_stage_features_stride: int,
               batch_norm_trainable: bool = False,
               weight_decay: float = 0.0):
    """Constructor.

    Args:
      is_training: whether the models are built for training.
      first_stage_features_stride: output stride of the RPN feature map.
      batch_norm_trainable: train batch-norm parameters and statistics (only
        effective when ``is_training``).
      weight_decay: L2 weight decay of convolution kernels (slim convention).

    Raises:
      ValueError: if the stride is not one of ``supported_strides``.
    """
    if first_stage_features_stride not in self.supported_strides:
      raise ValueError(
          f'{type(self).__name__}: first_stage_features_stride must be one of '
          f'{list(self.supported_strides)}, got {first_stage_features_stride}.')
    self._is_training = bool(is_training)
    self._first_stage_features_stride = int(first_stage_features_stride)
    self._train_batch_norm = bool(batch_norm_trainable) and bool(is_training)
    self._weight_decay = float(weight_decay)
    self._proposal_model: Optional[tf_keras.Model] = None
    self._box_classifier_model: Optional[tf_keras.Model] = None

  @property
  def is_training(self) -> bool:
    return self._is_training

  @property
  def first_stage_features_stride(self) -> int:
    return self._first_stage_features_stride

  @property
  def train_batch_norm(self) -> bool:
    return self._train_batch_norm

  @property
  def weight_decay(self) -> float:
    return self._weight_decay

  @property
  def classification_backbone(self) -> Optional[tf_keras.Model]:
    """The whole backbone model the two parts were cut from, or None.

    It is what a ``fine_tune_checkpoint_type: "classification"`` checkpoint
    restores (the OD API's TF2 meta-architecture returns
    ``{'feature_extractor': classification_backbone}`` from
    ``restore_from_objects``). Built by the first getter call.
    """
    return None

  @abc.abstractmethod
  def preprocess(self, resized_inputs):
    """Maps float32 [B, H, W, 3] RGB pixels in [0, 255] to model inputs."""

  def get_proposal_feature_extractor_model(self,
                                           name: Optional[str] = None
                                          ) -> tf_keras.Model:
    """Returns (building once) the first-stage model [B,H,W,3]->[B,h,w,C]."""
    if self._proposal_model is None:
      self._proposal_model = self._build_proposal_model(name)
      self._finish_model(self._proposal_model)
    return self._proposal_model

  def get_box_classifier_feature_extractor_model(self,
                                                 name: Optional[str] = None
                                                ) -> tf_keras.Model:
    """Returns (building once) the second-stage model [N,k,k,C]->[N,h,w,C2]."""
    if self._box_classifier_model is None:
      self._box_classifier_model = self._build_box_classifier_model(name)
      self._finish_model(self._box_classifier_model)
    return self._box_classifier_model

  @abc.abstractmethod
  def _build_proposal_model(self, name: Optional[str]) -> tf_keras.Model:
    """Builds the first-stage model."""

  @abc.abstractmethod
  def _build_box_classifier_model(self, name: Optional[str]) -> tf_keras.Model:
    """Builds the second-stage model."""

  def _finish_model(self, model: tf_keras.Model) -> None:
    """Applies the batch-norm policy to a freshly built model."""
    if not self._train_batch_norm:
      keras_utils.freeze_batch_norm(model)

  def build_models(self):
    """Builds both models; returns (proposal_model, box_classifier_model)."""
    return (self.get_proposal_feature_extractor_model(),
            self.get_box_classifier_feature_extractor_model())

  def load_classification_weights(self, path: str) -> None:
    """Loads ImageNet-style backbone weights from a LOCAL file.

    Builds both models first, then restores ``classification_backbone``.
    Accepted: Keras ``.h5``/``.hdf5`` weight files (``save_weights`` or the
    ``keras.applications`` ``*_notop.h5`` files; matched by layer name when all
    names are present, else in layer order as Keras does for its own
    application weights), ``.keras`` model files, and TF checkpoints written by
    ``model.save_weights(prefix)`` or ``tf.train.Checkpoint(<key>=model)``.
    Nothing is downloaded.

    Args:
      path: local path or ``gs://`` URL of the file (checkpoint prefix for TF
        checkpoints).

    Raises:
      ValueError: if the extractor has no classification backbone or the file
        does not fit it.
    """
    self.build_models()
    backbone = self.classification_backbone
    if backbone is None:
      raise ValueError(
          f'{type(self).__name__} has no classification backbone to load '
          f'{path!r} into.')
    weights_io.load_backbone_weights(backbone, path)
    logging.info('Loaded classification weights of %s from %s',
                 type(self).__name__, path)
