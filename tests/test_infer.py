"""The infer tool: JSON + PNG per image that match the exported detector."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'exporter'))
import export_test_utils as u  # pylint: disable=wrong-import-position
from object_detection_note.config import config_util
from object_detection_note.core import quiet
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import ExportFields as E
from object_detection_note.core.fields import InferenceFields as K
from object_detection_note.data.records import label_map_util
from object_detection_note.exporter import exporter_lib_v2
from object_detection_note.exporter import infer_lib
from object_detection_note.exporter import saved_model_detector
from object_detection_note.evaluation import visualization

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """(work dir, export dir, {image path: pixels}, label map path)."""
  work = str(tmp_path_factory.mktemp('infer'))
  pipeline_path = u.write_pipeline(work)
  u.train_checkpoint(pipeline_path, os.path.join(work, 'train'))
  export_dir = os.path.join(work, 'export')
  exporter_lib_v2.export_inference_graph(
      E.image_tensor, config_util.read_pipeline_config(pipeline_path),
      os.path.join(work, 'train'), export_dir)
  images_dir = os.path.join(work, 'images')
  os.makedirs(images_dir)
  images = {}
  # Two files share the stem "scene": outputs become scene and scene-1.
  for name, pixels, fmt in (
      ('scene.png', u.test_image(seed=0), 'PNG'),
      ('scene.bmp', u.test_image(48, 36, seed=1), 'BMP'),
      ('wide.png', u.test_image(30, 60, seed=2), 'PNG')):
    path = os.path.join(images_dir, name)
    Image.fromarray(pixels).save(path, format=fmt)
    images[path] = pixels
  return work, export_dir, images, os.path.join(work, 'label_map.pbtxt')


def _colours(image):
  return {tuple(c) for c in np.asarray(image).reshape(-1, 3)}


def test_cli_writes_json_and_png_matching_the_detections(exported):
  work, export_dir, images, label_map_path = exported
  detector = saved_model_detector.ExportedDetector(
      os.path.join(export_dir, E.saved_model_dir))
  expected = {path: detector.detect(pixels) for path, pixels in images.items()}
  # A threshold that keeps exactly the 3 best detections of the first image.
  first = sorted(images)[0]
  min_score = float(expected[first][D.detection_scores][2])
  output_dir = os.path.join(work, 'out')
  result = subprocess.run(
      [sys.executable, '-m', 'object_detection_note.infer',
       '--saved_model_dir=' + os.path.join(export_dir, E.saved_model_dir),
       '--images=' + os.path.join(work, 'images', '*'),
       '--output_dir=' + output_dir, '--min_score=%r' % min_score],
      capture_output=True, text=True, cwd=REPO,
      env={k: v for k, v in os.environ.items()
           if k != 'TF_CPP_MIN_LOG_LEVEL'})  # quiet by itself
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'infer 3/3 (100%)' in result.stderr  # progress line
  assert not [l for l in result.stderr.splitlines() if quiet.is_noise(l)]
  assert sorted(os.listdir(output_dir)) == [
      'scene-1.json', 'scene-1.png', 'scene.json', 'scene.png',
      K.summary_file, 'wide.json', 'wide.png']
  names = label_map_util.get_id_to_name(label_map_path)

  with open(os.path.join(output_dir, K.summary_file)) as f:
    summary = json.load(f)
  assert summary[K.num_images] == 3
  assert summary[K.min_score] == min_score
  assert summary[K.label_map_path] == label_map_path  # from pipeline.config
  assert summary[K.saved_model_dir] == os.path.join(export_dir,
                                                    E.saved_model_dir)
  assert [i[K.image] for i in summary[K.images]] == sorted(images)
  counts = {}
  for entry in summary[K.images]:
    path = entry[K.image]
    with open(entry[K.json_file]) as f:
      record = json.load(f)
    pixels = images[path]
    height, width = pixels.shape[:2]
    assert (record[K.image], record[K.height], record[K.width]) == (
        path, height, width)
    want = expected[path]
    keep = want[D.detection_scores] >= np.float32(min_score)
    items = record[K.detections]
    assert record[K.num_detections] == len(items) == entry[
        K.num_detections] == int(keep.sum())
    if path == first:
      assert len(items) == 3
    np.testing.assert_allclose([d[K.score] for d in items],
                               want[D.detection_scores][keep], rtol=1e-6)
    np.testing.assert_allclose(np.reshape([d[K.box_normalized] for d in items],
                                          [-1, 4]),
                               want[D.detection_boxes][keep], atol=1e-6)
    np.testing.assert_allclose(
        np.reshape([d[K.box] for d in items], [-1, 4]),
        want[D.detection_boxes][keep] * [height, width, height, width],
        atol=1e-3)
    assert [d[K.class_id] for d in items] == list(
        want[D.detection_classes][keep])
    assert [d[K.label] for d in items] == [names[d[K.class_id]]
                                           for d in items]
    for d in items:
      counts[d[K.label]] = counts.get(d[K.label], 0) + 1

    drawn = Image.open(entry[K.png_file])
    assert drawn.size == (width, height) and drawn.mode == 'RGB'
    present = _colours(drawn)
    original = _colours(pixels)
    for class_id in (1, 2, 3):
      colour = visualization.class_colour(class_id)
      assert colour not in original
      drawn_classes = {d[K.class_id] for d in items}
      assert (colour in present) == (class_id in drawn_classes), class_id
  assert summary[K.class_counts] == counts
  assert summary[K.num_detections] == sum(counts.values())


def test_explicit_label_map_and_export_dir(exported, tmp_path):
  _, export_dir, images, _ = exported
  label_map = str(tmp_path / 'names.pbtxt')
  label_map_util.write_label_map(label_map, ['one', 'two', 'three'])
  path = sorted(images)[-1]
  summary = infer_lib.run_inference(export_dir, path, str(tmp_path / 'out'),
                                    min_score=0.0, label_map_path=label_map)
  assert summary[K.num_images] == 1
  with open(summary[K.images][0][K.json_file]) as f:
    record = json.load(f)
  assert record[K.num_detections] == 10  # min_score 0 keeps every detection
  assert {d[K.label] for d in record[K.detections]} <= {'one', 'two', 'three'}
  assert all(d[K.label] == ['one', 'two', 'three'][d[K.class_id] - 1]
             for d in record[K.detections])
  assert sorted(os.listdir(tmp_path / 'out')) == [
      K.summary_file, 'wide.json', 'wide.png']


def test_no_matching_images_and_no_saved_model(exported, tmp_path):
  _, export_dir, _, _ = exported
  with pytest.raises(ValueError, match='matches no file'):
    infer_lib.run_inference(export_dir, str(tmp_path / '*.jpg'),
                            str(tmp_path / 'out'))
  with pytest.raises(ValueError, match='no saved_model.pb'):
    saved_model_detector.ExportedDetector(str(tmp_path))


def test_detections_record_converts_boxes_to_pixels():
  detections = {
      D.detection_boxes: np.array([[0.1, 0.2, 0.5, 1.0], [0, 0, 1, 1]],
                                  np.float32),
      D.detection_scores: np.array([0.9, 0.2], np.float32),
      D.detection_classes: np.array([2, 7], np.int64),
  }
  record = infer_lib.detections_record('x.png', 100, 50, detections,
                                       {2: 'cat'}, min_score=0.1)
  assert record[K.box_format] == 'ymin,xmin,ymax,xmax'
  assert record[K.num_detections] == 2
  first, second = record[K.detections]
  np.testing.assert_allclose(first[K.box], [10, 10, 50, 50], atol=1e-4)
  assert (first[K.label], second[K.label]) == ('cat', '7')  # unknown id
  assert second[K.box] == [0, 0, 100, 50]
  assert infer_lib.detections_record(
      'x.png', 100, 50, detections, {}, min_score=0.5)[K.num_detections] == 1


def test_output_names_are_unique():
  assert infer_lib.output_names(['a/x.jpg', 'b/x.png', 'x.bmp', 'y.png']) == [
      'x', 'x-1', 'x-2', 'y']
