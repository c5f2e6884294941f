"""A deterministic stand-in detector for mining-pipeline tests.

It "detects" the brightest quadrant of each image as class 1 and the darkest
as class 2, with scores from the mean brightness, so results depend only on
the pixels. Importable by Beam worker processes through PYTHONPATH.
"""
import numpy as np

QUADRANTS = [(0.0, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.0, 1.0, 0.5),
             (0.5, 0.5, 1.0, 1.0)]


def _detect_one(image):
  h, w = image.shape[:2]
  means = []
  for y0, x0, y1, x1 in QUADRANTS:
    patch = image[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
    means.append(float(patch.mean()) / 255.0)
  order = np.argsort(means)
  boxes = np.array([QUADRANTS[order[-1]], QUADRANTS[order[0]]], np.float32)
  scores = np.array([means[order[-1]], 1.0 - means[order[0]]], np.float32)
  return {'detection_boxes': boxes, 'detection_scores': scores,
          'detection_classes': np.array([1, 2])}


def make_detector():
  return lambda images: [_detect_one(image) for image in images]
