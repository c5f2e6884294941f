"""Export → SavedModel → same detections as the in-process model."""
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import export_test_utils as u
from object_detection_note.evaluation import inference
from object_detection_note.config import config_util
from object_detection_note.core.fields import DetectionFields as D
from object_detection_note.core.fields import ExportFields as E
from object_detection_note.evaluation import eval_loop
from object_detection_note.exporter import exporter_lib_v2
from object_detection_note.exporter import saved_model_detector

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
OUTPUT_KEYS = (D.detection_boxes, D.detection_scores, D.detection_classes,
               D.num_detections, D.raw_detection_boxes,
               D.raw_detection_scores, D.detection_multiclass_scores,
               D.detection_anchor_indices)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(work dir, pipeline path, checkpoint dir, model, configs)."""
  work = str(tmp_path_factory.mktemp('export'))
  pipeline_path = u.write_pipeline(work)
  checkpoint_dir = os.path.join(work, 'train')
  model, configs = u.train_checkpoint(pipeline_path, checkpoint_dir)
  return work, pipeline_path, checkpoint_dir, model, configs


def _export(trained, input_type, name=None):
  work, pipeline_path, checkpoint_dir, _, _ = trained
  output = os.path.join(work, name or input_type)
  if not os.path.exists(os.path.join(output, E.saved_model_dir)):
    exporter_lib_v2.export_inference_graph(
        input_type, config_util.read_pipeline_config(pipeline_path),
        checkpoint_dir, output)
  return output


def _in_process(trained, image):
  model, configs = trained[3], trained[4]
  detections = inference.detect(model, tf.constant(image[np.newaxis]),
                                configs['model'].faster_rcnn.image_resizer)
  return {k: v.numpy() for k, v in detections.items()}


def _png(image):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def _assert_same(actual, expected):
  for key in OUTPUT_KEYS:
    np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4,
                               atol=1e-5, err_msg=key)


def test_image_tensor_export_matches_in_process_model(trained):
  output = _export(trained, E.image_tensor)
  assert sorted(os.listdir(output)) == [E.checkpoint_dir, E.pipeline_config,
                                        E.saved_model_dir]
  # Staging directories are gone.
  assert not [n for n in os.listdir(os.path.dirname(output)) if '.tmp-' in n]
  image = u.test_image()
  loaded = tf.saved_model.load(os.path.join(output, E.saved_model_dir))
  serve = loaded.signatures[E.signature]
  spec = serve.structured_input_signature[1][E.input_tensor]
  assert spec.dtype == tf.uint8 and spec.shape.as_list() == [1, None, None, 3]
  outputs = {k: v.numpy() for k, v in serve(
      **{E.input_tensor: tf.constant(image[np.newaxis])}).items()}
  assert set(outputs) == set(OUTPUT_KEYS)
  assert all(v.dtype == np.float32 for v in outputs.values())
  expected = _in_process(trained, image)
  _assert_same(outputs, expected)
  count = int(outputs[D.num_detections][0])
  assert count == 10  # score_threshold 0: max_total_detections are kept.
  classes = outputs[D.detection_classes][0, :count]
  assert set(classes) <= {1.0, 2.0, 3.0}
  boxes = outputs[D.detection_boxes][0, :count]
  assert (boxes >= 0).all() and (boxes <= 1).all()
  assert outputs[D.raw_detection_boxes].shape == (1, 16, 4)
  assert outputs[D.raw_detection_scores].shape == (1, 16, 4)
  assert outputs[D.detection_multiclass_scores].shape == (1, 10, 4)
  # Each detection's proposal: its multiclass scores are that raw row.
  anchors = outputs[D.detection_anchor_indices][0, :count].astype(int)
  np.testing.assert_allclose(
      outputs[D.detection_multiclass_scores][0, :count],
      outputs[D.raw_detection_scores][0, anchors], rtol=1e-6)


def test_export_writes_checkpoint_and_pipeline_config(trained):
  output = _export(trained, E.image_tensor)
  checkpoint = tf.train.latest_checkpoint(os.path.join(output,
                                                       E.checkpoint_dir))
  assert os.path.basename(checkpoint) == 'ckpt-0'
  exported_config = config_util.read_pipeline_config(
      os.path.join(output, E.pipeline_config))
  assert exported_config == config_util.read_pipeline_config(trained[1])
  # ckpt-0 holds the weights of the latest training checkpoint (ckpt-2).
  restored = eval_loop.restore_for_eval(trained[4], checkpoint)
  model = trained[3]
  assert len(restored.variables) == len(model.variables)
  for mine, theirs in zip(sorted(restored.variables, key=lambda v: v.name),
                          sorted(model.variables, key=lambda v: v.name)):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy(),
                                  err_msg=mine.name)
  reader = tf.train.load_checkpoint(checkpoint)
  assert not any('optimizer' in k or 'global_step' in k
                 for k in reader.get_variable_to_shape_map())


# tf_example is exported by the CLI test below.
@pytest.mark.parametrize('input_type', [
    E.float_image_tensor, E.encoded_image_string_tensor])
def test_every_input_type_gives_the_same_detections(trained, input_type):
  image = u.test_image(seed=1)
  output = _export(trained, input_type)
  serve = tf.saved_model.load(os.path.join(
      output, E.saved_model_dir)).signatures[E.signature]
  spec = serve.structured_input_signature[1][E.input_tensor]
  if input_type == E.float_image_tensor:
    assert spec.dtype == tf.float32
    assert spec.shape.as_list() == [1, None, None, 3]
    feed = tf.constant(image[np.newaxis], tf.float32)
  else:
    assert spec.dtype == tf.string and spec.shape.as_list() == [1]
    data = _png(image)
    if input_type == E.tf_example:
      data = saved_model_detector.image_example(data, 'png', 40, 56)
    feed = tf.constant([data])
  outputs = {k: v.numpy() for k, v in serve(**{E.input_tensor: feed}).items()}
  _assert_same(outputs, _in_process(trained, image))
  # The infer tool feeds each input type itself.
  detector = saved_model_detector.ExportedDetector(output)
  assert detector.input_type == input_type
  one = detector.detect(image)
  count = int(outputs[D.num_detections][0])
  np.testing.assert_allclose(one[D.detection_boxes],
                             outputs[D.detection_boxes][0, :count], atol=1e-6)
  np.testing.assert_array_equal(one[D.detection_classes],
                                outputs[D.detection_classes][0, :count])


def test_saved_model_cli_shows_serving_default(trained):
  output = _export(trained, E.image_tensor)
  cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  command = ([cli] if os.path.exists(cli) else
             [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli'])
  result = subprocess.run(
      command + ['show', '--dir', os.path.join(output, E.saved_model_dir),
                 '--all'], capture_output=True, text=True, check=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  text = result.stdout
  assert "signature_def['serving_default']" in text
  assert "inputs['input_tensor']" in text and 'DT_UINT8' in text
  assert 'shape: (1, -1, -1, 3)' in text
  for key in OUTPUT_KEYS:
    assert "outputs['%s']" % key in text
  assert 'shape: (1, 10, 4)' in text  # detection_boxes


def test_bad_input_type_is_rejected_before_any_work(tmp_path):
  with pytest.raises(exporter_lib_v2.ExportError,
                     match="unknown input type 'jpeg'.*image_tensor, "
                     'float_image_tensor, encoded_image_string_tensor, '
                     'tf_example'):
    exporter_lib_v2.export_inference_graph('jpeg', None, str(tmp_path),
                                           str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def test_missing_or_empty_checkpoint_dir(tmp_path):
  pipeline = config_util.read_pipeline_config(u.write_pipeline(str(tmp_path)))
  with pytest.raises(exporter_lib_v2.ExportError, match='directory not found'):
    exporter_lib_v2.export_inference_graph(
        E.image_tensor, pipeline, str(tmp_path / 'nope'), str(tmp_path / 'o'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(exporter_lib_v2.ExportError, match='holds no checkpoint'):
    exporter_lib_v2.export_inference_graph(
        E.image_tensor, pipeline, str(tmp_path / 'empty'), str(tmp_path / 'o'))
  assert not (tmp_path / 'o').exists()


def test_checkpoint_of_another_model_is_a_clear_error(trained, tmp_path):
  other = config_util.read_pipeline_config(u.write_pipeline(
      str(tmp_path), **{'num_classes: 3': 'num_classes: 5'}))
  with pytest.raises(exporter_lib_v2.ExportError, match='ckpt-2'):
    exporter_lib_v2.export_inference_graph(
        E.image_tensor, other, trained[2], str(tmp_path / 'o'))
  assert not (tmp_path / 'o').exists()


def test_cli_exports_into_existing_directory_with_config_override(trained):
  """tf_example export by the binary; an older export is replaced in place."""
  work, pipeline_path, checkpoint_dir, _, _ = trained
  output = os.path.join(work, 'cli')
  os.makedirs(os.path.join(output, E.saved_model_dir))
  with open(os.path.join(output, E.saved_model_dir, 'stale.txt'), 'w') as f:
    f.write('old export')
  with open(os.path.join(output, 'README'), 'w') as f:
    f.write('keep me')
  result = subprocess.run(
      [sys.executable, '-m', 'object_detection_note.exporter_main_v2',
       '--input_type=tf_example', '--pipeline_config_path=' + pipeline_path,
       '--trained_checkpoint_dir=' + checkpoint_dir,
       '--output_directory=' + output,
       '--config_override=eval_config { batch_size: 7 }'],
      capture_output=True, text=True, cwd=REPO,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(output)) == sorted(
      [E.checkpoint_dir, E.pipeline_config, E.saved_model_dir, 'README'])
  assert not os.path.exists(os.path.join(output, E.saved_model_dir,
                                         'stale.txt'))
  with open(os.path.join(output, 'README')) as f:
    assert f.read() == 'keep me'
  assert not [n for n in os.listdir(work) if '.tmp-' in n]
  exported = config_util.read_pipeline_config(
      os.path.join(output, E.pipeline_config))
  assert exported.eval_config.batch_size == 7
  assert exported.model == config_util.read_pipeline_config(
      pipeline_path).model

  image = u.test_image(seed=2)
  serve = tf.saved_model.load(os.path.join(
      output, E.saved_model_dir)).signatures[E.signature]
  spec = serve.structured_input_signature[1][E.input_tensor]
  assert spec.dtype == tf.string and spec.shape.as_list() == [1]
  example = saved_model_detector.image_example(_png(image), 'png', 40, 56)
  outputs = {k: v.numpy() for k, v in serve(
      **{E.input_tensor: tf.constant([example])}).items()}
  _assert_same(outputs, _in_process(trained, image))
  detector = saved_model_detector.ExportedDetector(output)
  assert detector.input_type == E.tf_example
  one = detector.detect(image)
  count = int(outputs[D.num_detections][0])
  np.testing.assert_allclose(one[D.detection_scores],
                             outputs[D.detection_scores][0, :count], atol=1e-6)


def test_cli_reports_bad_input_type(tmp_path):
  pipeline_path = u.write_pipeline(str(tmp_path))
  result = subprocess.run(
      [sys.executable, '-m', 'object_detection_note.exporter_main_v2',
       '--input_type=png', '--pipeline_config_path=' + pipeline_path,
       '--trained_checkpoint_dir=' + str(tmp_path),
       '--output_directory=' + str(tmp_path / 'o')],
      capture_output=True, text=True, cwd=REPO,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  assert result.returncode == 1
  assert ("exporter_main_v2: error: --input_type: unknown input type 'png'"
          in result.stderr)
  assert not (tmp_path / 'o').exists()
