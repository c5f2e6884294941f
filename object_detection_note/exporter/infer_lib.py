"""Batch inference of an exported detector over image files.

For each image ``<name>.<ext>`` it writes, in the output directory:

  <name>.json  {"image": path, "height": H, "width": W,
                "box_format": "ymin,xmin,ymax,xmax",
                "num_detections": N,
                "detections": [{"box": [ymin, xmin, ymax, xmax] in pixels,
                                "box_normalized": [...] in [0, 1],
                                "score": s, "class_id": id, "label": name},
                               ...]}   best first, score >= min_score
  <name>.png   the image with the detections drawn

(names that repeat get ``-1``, ``-2``, ... suffixes) and ``summary.json``
with every image's files and detection count, per-label counts, the
SavedModel, label map and threshold used, and the run time. Every file is
written to a temporary name and renamed.
"""
import io
import json
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import InferenceFields as K
from object_detection_note.data.records import label_map_util
from object_detection_note.exporter import saved_model_detector
from object_detection_note.evaluation import visualization
from object_detection_note.core import progress

BOX_FORMAT = 'ymin,xmin,ymax,xmax'


write_atomically = file_io.write_atomically


def find_images(pattern):
  """Sorted files matching a glob (any tf.io.gfile path); error if none."""
  paths = sorted(p for p in tf.io.gfile.glob(pattern)
                 if not tf.io.gfile.isdir(p))
  if not paths:
    raise ValueError('--images %r matches no file' % pattern)
  return paths


def output_names(paths):
  """One unique file stem per input path (``a``, ``a-1``, ... on clashes)."""
  names, taken = [], set()
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, n = stem, 0
    while name in taken:
      n += 1
      name = '%s-%d' % (stem, n)
    taken.add(name)
    names.append(name)
  return names


def detections_record(image_path, height, width, detections, id_to_name,
                      min_score):
  """The per-image JSON dict (see the module docstring)."""
  keep = detections[D.detection_scores] >= min_score
  boxes = detections[D.detection_boxes][keep]
  scale = np.array([height, width, height, width], np.float64)
  items = []
  for box, score, class_id in zip(boxes, detections[D.detection_scores][keep],
                                  detections[D.detection_classes][keep]):
    class_id = int(class_id)
    items.append({
        K.box: [float(v) for v in box.astype(np.float64) * scale],
        K.box_normalized: [float(v) for v in box],
        K.score: float(score),
        K.class_id: class_id,
        K.label: id_to_name.get(class_id, str(class_id)),
    })
  return {K.image: image_path, K.height: int(height), K.width: int(width),
          K.box_format: BOX_FORMAT, K.num_detections: len(items),
          K.detections: items}


def _png_bytes(image):
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue()


def run_inference(saved_model_dir, image_pattern, output_dir, min_score=0.5,
                  label_map_path=None, log_every_n=10):
  """Runs the exported detector on every image matching ``image_pattern``.

  Args:
    saved_model_dir: ``<export>/saved_model`` or the export directory.
    image_pattern: glob of image files.
    output_dir: directory for the JSON, PNG and summary files.
    min_score: detections below this score are left out.
    label_map_path: label map for names; default: the one named by the
      export's pipeline.config (eval reader, else train reader).
    log_every_n: progress line every n images.

  Returns:
    the summary dict (also written to ``<output_dir>/summary.json``).
  """
  start = time.monotonic()
  paths = find_images(image_pattern)
  detector = saved_model_detector.ExportedDetector(saved_model_dir)
  if label_map_path is None:
    label_map_path = saved_model_detector.default_label_map_path(
        detector.export_dir)
  id_to_name = (label_map_util.get_id_to_name(label_map_path)
                if label_map_path else {})
  tf.io.gfile.makedirs(output_dir)
  logging.info('detecting objects in %d images with %s (%s input)',
               len(paths), detector.saved_model_dir, detector.input_type)
  meter = progress.RateMeter(total=len(paths))
  images, class_counts = [], {}
  for done, (path, name) in enumerate(zip(paths, output_names(paths)), 1):
    pixels, encoded, image_format = saved_model_detector.read_image(path)
    detections = detector.detect(pixels, encoded, image_format)
    record = detections_record(path, pixels.shape[0], pixels.shape[1],
                               detections, id_to_name, min_score)
    json_path = os.path.join(output_dir, name + '.json')
    png_path = os.path.join(output_dir, name + '.png')
    write_atomically(json_path, json.dumps(record, indent=2))
    items = record[K.detections]
    drawn = visualization.draw_detections(
        pixels, [d[K.box] for d in items], [d[K.class_id] for d in items],
        [d[K.label] for d in items], [d[K.score] for d in items])
    write_atomically(png_path, _png_bytes(drawn))
    for item in items:
      class_counts[item[K.label]] = class_counts.get(item[K.label], 0) + 1
    images.append({K.image: path, K.json_file: json_path, K.png_file: png_path,
                   K.num_detections: len(items)})
    if done % log_every_n == 0 or done == len(paths):
      logging.info('infer %s', meter.status(done, 'images'))
  summary = {
      K.saved_model_dir: detector.saved_model_dir,
      K.label_map_path: label_map_path,
      K.min_score: min_score,
      K.num_images: len(images),
      K.num_detections: sum(i[K.num_detections] for i in images),
      K.class_counts: dict(sorted(class_counts.items())),
      K.seconds: round(time.monotonic() - start, 3),
      K.images: images,
  }
  write_atomically(os.path.join(output_dir, K.summary_file),
                   json.dumps(summary, indent=2))
  logging.info('wrote %d detections for %d images to %s',
               summary[K.num_detections], len(images), output_dir)
  return summary
