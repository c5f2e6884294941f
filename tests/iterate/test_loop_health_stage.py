"""A mining stage writes the loop-health diagnostics; the report shows them;
training never reads the audit set."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.core.fields import DiagnosticsFields as D
from object_detection_note.data.writing import beam_io
from object_detection_note.data.input import inputs
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.iterate import driver
from object_detection_note.iterate import report
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages
from object_detection_note.mining import diagnostics_pass

_CONFIG = """model { faster_rcnn {
  num_classes: 2
  image_resizer { fixed_shape_resizer { height: 32 width: 32 } }
  feature_extractor { type: "faster_rcnn_tiny_keras"
    first_stage_features_stride: 8 batch_norm_trainable: true }
  first_stage_anchor_generator { grid_anchor_generator {
    height: 16 width: 16 height_stride: 8 width_stride: 8
    scales: [1.0, 2.0] aspect_ratios: [1.0] } }
  first_stage_box_predictor_depth: 8
  first_stage_minibatch_size: 16
  first_stage_max_proposals: 8
  initial_crop_size: 4
  second_stage_batch_size: 4
  second_stage_post_processing { batch_non_max_suppression {
    iou_threshold: 0.6 max_detections_per_class: 5 max_total_detections: 10 }
    score_converter: SOFTMAX }
} }
train_config { batch_size: 2 num_steps: 1
  optimizer { adam_optimizer { learning_rate { constant_learning_rate {
    learning_rate: 0.001 } } } use_moving_average: false } }
train_input_reader { label_map_path: "%(d)s/labels.pbtxt"
  max_number_of_boxes: 4
  tf_record_input_reader { input_path: "%(d)s/seed.tfrecord" } }
eval_config { batch_size: 2 }
eval_input_reader { label_map_path: "%(d)s/labels.pbtxt"
  max_number_of_boxes: 4
  tf_record_input_reader { input_path: "%(d)s/seed.tfrecord" } }
note {
  mining { score_threshold: 0.0 num_shards: 1 batch_size: 2 %(audit)s }
  iterations: 1
  image_level_input_reader { label_map_path: "%(d)s/labels.pbtxt"
    tf_record_input_reader { input_path: "%(d)s/image_level.tfrecord" } }
}
"""

_AUDIT = ('audit_input_reader { label_map_path: "%(d)s/labels.pbtxt" '
          'tf_record_input_reader { input_path: "%(d)s/audit.tfrecord" } }')


def _record(i, boxes_field):
  rng = np.random.default_rng(i)
  pixels = rng.integers(0, 255, (32, 32, 3), np.uint8)
  boxes = np.array([[0.1, 0.1, 0.6, 0.6], [0.4, 0.3, 0.95, 0.9]], np.float32)
  classes = np.array([1 + i % 2, 2])
  kwargs = {'boxes': boxes, 'classes': classes,
            'class_texts': ['c%d' % c for c in classes]}
  if boxes_field == 'hidden':
    kwargs = {'hidden_boxes': boxes, 'hidden_classes': classes,
              'hidden_class_texts': ['c%d' % c for c in classes],
              'image_labels': np.unique(classes),
              'image_label_texts': ['c%d' % c for c in np.unique(classes)]}
  return codec.serialize_record(codec.DetectionRecord(
      image_bytes=codec.encode_image(pixels), source_id='%s%d' % (
          boxes_field, i), height=32, width=32, image_format='png', **kwargs))


def _setup(root, audit):
  data = str(root / 'data')
  os.makedirs(data)
  with open(os.path.join(data, 'labels.pbtxt'), 'w') as f:
    f.write('item { id: 1 name: "c1" }\nitem { id: 2 name: "c2" }\n')
  beam_io.write_tfrecord_atomically(os.path.join(data, 'seed.tfrecord'),
                                    [_record(i, 'boxes') for i in range(2)])
  beam_io.write_tfrecord_atomically(
      os.path.join(data, 'image_level.tfrecord'),
      [_record(i, 'hidden') for i in range(3)])
  beam_io.write_tfrecord_atomically(os.path.join(data, 'audit.tfrecord'),
                                    [_record(i, 'boxes') for i in range(4)])
  path = str(root / 'pipeline.config')
  with open(path, 'w') as f:
    f.write(_CONFIG % {'d': data, 'audit': _AUDIT % {'d': data} if audit
                       else ''})
  return path


def _fake_t0(ctx):
  """An untrained T^0 checkpoint and its iteration config."""
  stages.write_iteration_config(ctx, 0, None)
  configs = ctx.configs
  model = model_builder.build(configs['model'], is_training=False,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  tf.train.Checkpoint(model=model).save(
      os.path.join(layout.train_dir(ctx.model_dir, 0), 'ckpt'))


def test_mining_stage_writes_diagnostics_and_report_shows_them(tmp_path):
  audit = False
  config = _setup(tmp_path, audit)
  ctx = driver.make_context(config, str(tmp_path / 'run'))
  _fake_t0(ctx)
  manifest = stages.mine_iteration(ctx, 1)
  with open(os.path.join(layout.mined_dir(ctx.model_dir, 1),
                         'mining_metrics.json')) as f:
    diagnostics = json.load(f)[D.diagnostics]
  assert manifest[D.diagnostics] == diagnostics
  assert diagnostics[D.diagnosed_set] == (D.audit_set if audit
                                          else D.image_level_set)
  assert diagnostics[D.images] == (4 if audit else 3)
  assert diagnostics[D.model] == 'T^0'
  hidden = diagnostics[D.hidden_scores]
  assert hidden[D.hidden_boxes] == (8 if audit else 6)
  for head in D.heads:  # θb = 0: every covered instance scores above it
    assert hidden[head][D.above_threshold] == pytest.approx(hidden[D.covered])
  # θb = 0: each image-level label is mined; B^0 is empty, all boxes new.
  mined = diagnostics[D.mined]
  assert mined[D.boxes] == (6 if audit else 5)
  assert diagnostics[D.new_boxes][D.boxes] == mined[D.boxes]
  assert diagnostics[D.consensus][D.fail_det_cls] == 0.0
  assert diagnostics[D.background][D.mined_images] == (4 if audit else 3)
  if not audit:  # the B^t shards are what was diagnosed
    assert mined[D.boxes] == manifest['mined_boxes']
    assert mined[D.precision] == pytest.approx(manifest['precision'])
  boxes = json.load(open(os.path.join(layout.mined_dir(ctx.model_dir, 1),
                                      D.boxes_file)))
  assert sum(len(v) for v in boxes.values()) == mined[D.boxes]

  # The report: an iteration manifest holding this mining manifest.
  layout.write_json(os.path.join(layout.iteration_dir(ctx.model_dir, 1),
                                 layout.MANIFEST),
                    {'iteration': 1, 'mining': manifest, 'eval': {}})
  layout.write_json(os.path.join(layout.iteration_dir(ctx.model_dir, 0),
                                 layout.MANIFEST),
                    {'iteration': 0, 'mining': None, 'eval': {}})
  report.write_report(ctx.model_dir, 1)
  text = open(os.path.join(ctx.model_dir, 'report.md')).read()
  assert '## Loop health' in text
  row = next(l for l in text.splitlines() if l.startswith('| B^1 | %s' % (
      'audit' if audit else 'image_level')))
  # New boxes, their precision (all new: B^t's), fail det-cls at θb = 0.
  assert '| %d | %.3f | 0.000 |' % (mined[D.boxes], mined[D.precision]) in row
  assert '| B^1 | c2 |' in text
  rows = json.load(open(os.path.join(ctx.model_dir, 'report.json')))
  assert rows['iterations'][1]['diagnostics']['new_boxes'] == mined[D.boxes]
  assert rows['iterations'][0]['diagnostics'] is None

  # The same iteration diagnosed on an audit set instead: its 4 images, their
  # object boxes as the true boxes, mined with the rule (labels 1,2 / 2 / 1,2
  # / 2: 6 boxes at θb = 0).
  audit_ctx = driver.make_context(_setup(tmp_path / 'with_audit', True),
                                  ctx.model_dir)
  summary = diagnostics_pass.diagnose_iteration(
      audit_ctx.note, layout.pipeline_path(ctx.model_dir, 0),
      tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir, 0)),
      layout.mined_dir(ctx.model_dir, 1), '/nonexistent/*', None, 1)
  assert summary[D.diagnosed_set] == D.audit_set
  assert summary[D.images] == 4
  assert summary[D.hidden_scores][D.hidden_boxes] == 8
  assert summary[D.mined][D.boxes] == 6
  assert summary[D.new_boxes][D.boxes] == 6
  assert summary[D.background][D.mined_images] == 4


def test_training_never_reads_the_audit_set(tmp_path, monkeypatch):
  config = _setup(tmp_path, audit=True)
  # A garbage audit file: reading it would fail.
  with open(str(tmp_path / 'data' / 'audit.tfrecord'), 'wb') as f:
    f.write(b'not a tfrecord')
  ctx = driver.make_context(config, str(tmp_path / 'run'))
  path = stages.write_iteration_config(ctx, 0, None)
  configs = config_util.get_configs_from_pipeline_file(path)
  assert configs['note'].mining.HasField('audit_input_reader')
  globbed = []
  real_glob = tf.io.gfile.glob
  monkeypatch.setattr(tf.io.gfile, 'glob',
                      lambda p: globbed.append(p) or real_glob(p))
  dataset = inputs.build_dataset(
      configs['train_input_config'], configs['model'], 2, True,
      configs['train_config'], note_config=configs['note'])
  batch = next(iter(dataset))
  assert batch['image'].shape[0] == 2
  assert not any('audit' in p for p in globbed)
  assert any('seed' in p for p in globbed)


def test_loop_health_markdown_shows_undefined_as_dash():
  from object_detection_note.mining import loop_diagnostics  # pylint: disable=g-import-not-at-top
  stats = loop_diagnostics.DiagnosticsStats(previous_known=False)
  stats.images = 1
  stats.add_hidden([1], {D.det_cls: [0.9], D.det_cls_a: None,
                         D.mean: [0.9]}, [True], [0.5])
  stats.add_mined([], [], [], np.zeros(0, bool), None)
  summary = stats.summary({1: 'cat'})
  summary.update({D.diagnosed_set: 'audit', D.model: 'T^0'})
  text = report.loop_health.markdown([
      {'iteration': 1, 'diagnostics': report.loop_health.row(summary)}])
  assert ('| B^1 | audit (1) | 1.000 / — / 1.000 | 0.900 / — / 0.900 | — | '
          '— | — | — | — |') in text
  assert '| B^1 | cat | 1.000 / — / 1.000 | — | 0.000 |' in text
  assert report.loop_health.markdown([{'iteration': 1,
                                       'diagnostics': None}]) == ''
