"""Faster R-CNN feature extractors (see ``base`` for the interface)."""

from object_detection_note.models.base import FasterRcnnFeatureExtractor
from object_detection_note.models.registry import build_feature_extractor
from object_detection_note.models.registry import known_feature_extractors
