"""Feature extractor registry keyed by the OD API's ``feature_extractor.type``.

``build_feature_extractor('faster_rcnn_inception_resnet_v2_keras', ...)``
returns an (unbuilt) ``FasterRcnnFeatureExtractor``. Modules are imported on
demand so that the tiny extractor does not pull in the applications.
"""

import importlib

from object_detection_note.models import base

# type name -> (module, class name, fixed constructor kwargs)
_EXTRACTORS = {
    'faster_rcnn_inception_resnet_v2_keras':
        ('object_detection_note.models.inception_resnet_v2',
         'InceptionResnetV2FeatureExtractor', {}),
    'faster_rcnn_resnet50_keras':
        ('object_detection_note.models.resnet', 'ResnetFeatureExtractor',
         {'depth': 50}),
    'faster_rcnn_resnet101_keras':
        ('object_detection_note.models.resnet', 'ResnetFeatureExtractor',
         {'depth': 101}),
    'faster_rcnn_tiny_keras':
        ('object_detection_note.models.tiny', 'TinyFeatureExtractor', {}),
}


def known_feature_extractors():
  """Sorted list of the registered type names."""
  return sorted(_EXTRACTORS)


def build_feature_extractor(type_name: str,
                            is_training: bool,
                            first_stage_features_stride: int,
                            **kwargs) -> base.FasterRcnnFeatureExtractor:
  """Builds the feature extractor registered under `type_name`.

  Args:
    type_name: OD API ``faster_rcnn.feature_extractor.type``.
    is_training: whether the model is built for training.
    first_stage_features_stride: RPN feature stride.
    **kwargs: further constructor arguments (``batch_norm_trainable``,
      ``weight_decay``, and extractor-specific ones).

  Returns:
    An unbuilt ``FasterRcnnFeatureExtractor``.

  Raises:
    ValueError: unknown `type_name` (the message lists the known ones).
  """
  if type_name not in _EXTRACTORS:
    raise ValueError(
        f'Unknown Faster R-CNN feature extractor type {type_name!r}; known '
        f'types: {", ".join(known_feature_extractors())}.')
  module_name, class_name, fixed = _EXTRACTORS[type_name]
  cls = getattr(importlib.import_module(module_name), class_name)
  return cls(is_training=is_training,
             first_stage_features_stride=first_stage_features_stride,
             **fixed, **kwargs)
