"""The training-mining loop end to end on tiny synthetic data (2 iterations).

Also: resuming after an interruption neither re-mines nor duplicates, and
the per-iteration configs follow the paper's schedule (T^0 from S with new
class heads, T^t from T^{t-1}, half-distill).
"""
import json
import os

import pytest
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import tf_example_codec as codec
from object_detection_note.iterate import driver
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages
from object_detection_note.mining import review
import iterate_runs
from iterate_runs import MODEL as _MODEL
from iterate_runs import NOTE as _NOTE


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  return iterate_runs.run_iterate(tmp_path_factory.mktemp('iterate'),
                                  iterate_runs.LOOP)


def _report(model_dir):
  with open(os.path.join(model_dir, 'report.json')) as f:
    return json.load(f)['iterations']


def _mined_records(model_dir, t):
  pattern = beam_io.shard_pattern(layout.mined_prefix(model_dir, t))
  files = sorted(tf.io.gfile.glob(pattern))
  return [codec.example_to_record(r) for r in
          tf.data.TFRecordDataset(files).as_numpy_iterator()]


def test_report_has_every_iteration(run):
  ctx, table = run
  rows = _report(ctx.model_dir)
  assert [r['iteration'] for r in rows] == [0, 1, 2]
  assert rows[0]['mined_boxes'] is None
  for row in rows:
    assert 0.0 <= row['mAP'] <= 1.0 and 0.0 <= row['mAP@0.5'] <= 1.0
  for row in rows[1:]:
    assert row['mined_boxes'] > 0
    assert 0.0 <= row['mined_precision'] <= 1.0
  # Half-distill: T^0 and T^1 distil from S, T^2 no longer.
  assert [r['distillation'] for r in rows] == [True, True, False]
  assert '| T^2 |' in table
  with open(os.path.join(ctx.model_dir, 'report.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert 'T^1' in open(os.path.join(ctx.model_dir, 'report.md')).read()


def test_iteration_configs_follow_the_schedule(run):
  ctx, _ = run
  source_ckpt = layout.read_json(os.path.join(
      layout.source_dir(ctx.model_dir), layout.MANIFEST))['checkpoint']
  t0 = config_util.get_configs_from_pipeline_file(
      layout.pipeline_path(ctx.model_dir, 0))
  assert t0['train_config'].fine_tune_checkpoint == source_ckpt
  assert t0['train_config'].fine_tune_checkpoint_type == 'detection'
  assert len(t0['train_input_config'].tf_record_input_reader.input_path) == 1
  t2 = config_util.get_configs_from_pipeline_file(
      layout.pipeline_path(ctx.model_dir, 2))
  assert t2['train_config'].fine_tune_checkpoint_type == 'full'
  assert t2['train_config'].fine_tune_checkpoint.startswith(
      layout.train_dir(ctx.model_dir, 1))
  inputs = list(t2['train_input_config'].tf_record_input_reader.input_path)
  mined = t2['note'].mined_input
  # B0 ∪ B^2 only: B^2 replaces B^1; it is read beside B0 and mixed in, with
  # the counts that set the default mix.
  assert inputs == list(t0['train_input_config'].tf_record_input_reader
                        .input_path)
  assert len(mined.input_path) == 1 and 'iteration_02' in mined.input_path[0]
  manifest = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, 2),
                                           layout.MANIFEST))
  assert mined.num_examples == manifest['images_with_boxes'] > 0
  assert mined.num_seed_examples == layout.count_records(inputs[0])
  assert not t2['note'].HasField('distillation')


def test_mined_records_follow_the_rule(run):
  ctx, _ = run
  for t in (1, 2):
    records = _mined_records(ctx.model_dir, t)
    manifest = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                             layout.MANIFEST))
    assert len(records) == manifest['images_with_boxes']
    assert len({r.source_id for r in records}) == len(records)
    for record in records:
      assert record.is_mined == 1
      # One box per image-level label at most, each of an image-level label.
      assert len(record.classes) <= len(record.image_labels)
      assert set(record.classes) <= set(record.image_labels)


def test_rerun_after_interruption_neither_remines_nor_duplicates(run):
  ctx, _ = run
  mined_1 = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, 1),
                                          layout.MANIFEST))
  shard_times = {s: os.path.getmtime(os.path.join(
      layout.mined_dir(ctx.model_dir, 1), s)) for s in mined_1['shards']}
  # Interrupt iteration 2 during training, before its first checkpoint: no
  # manifest, no eval, no checkpoint.
  it2 = layout.iteration_dir(ctx.model_dir, 2)
  os.remove(os.path.join(it2, layout.MANIFEST))
  tf.io.gfile.rmtree(layout.eval_dir(ctx.model_dir, 2))
  train = layout.train_dir(ctx.model_dir, 2)
  for name in os.listdir(train):
    if name.startswith('ckpt-') or name == 'checkpoint':
      os.remove(os.path.join(train, name))
  driver.run(ctx)
  again = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, 1),
                                        layout.MANIFEST))
  assert again == mined_1
  for shard, sha in mined_1['shards'].items():
    path = os.path.join(layout.mined_dir(ctx.model_dir, 1), shard)
    assert layout.file_sha256(path) == sha
    assert os.path.getmtime(path) == shard_times[shard]
  assert [r['iteration'] for r in _report(ctx.model_dir)] == [0, 1, 2]
  records = _mined_records(ctx.model_dir, 2)
  assert len({r.source_id for r in records}) == len(records)


def test_other_config_in_the_same_model_dir_is_refused(run, tmp_path):
  ctx, _ = run
  other = str(tmp_path / 'other.config')
  with open(ctx.pipeline_config_path) as f:
    text = f.read().replace('iterations: 2', 'iterations: 3')
  with open(other, 'w') as f:
    f.write(text)
  with pytest.raises(ValueError, match='different config'):
    driver.run(driver.make_context(other, ctx.model_dir))


def test_missing_data_names_field_and_converter(tmp_path):
  config = tmp_path / 'x.config'
  config.write_text(
      (_MODEL % dict(num_classes=2, num_steps=1, data='/nowhere/synthetic',
                     side='target', train='seed', val='target_val')) +
      (_NOTE % dict(data='/nowhere/synthetic', source='/nowhere/s.config')))
  ctx = driver.make_context(str(config), str(tmp_path / 'run'))
  with pytest.raises(config_util.ConfigError) as error:
    driver.run(ctx)
  assert 'train_input_reader' in str(error.value)
  assert 'make data' in str(error.value)


def test_reviewed_answers_join_the_next_iterations_seed_set(run):
  ctx, _ = run
  image_level = list(ctx.note.image_level_input_reader.tf_record_input_reader
                     .input_path)
  files = sorted(f for p in image_level for f in tf.io.gfile.glob(p))
  first = codec.example_to_record(next(iter(
      tf.data.TFRecordDataset(files).as_numpy_iterator())))
  label = int(first.image_labels[0])
  directory = stages.review_dir(ctx, 1)
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, review.ANSWERS_CSV), 'w') as f:
    f.write('source_id,class_id,class_name,score,ymin,xmin,ymax,xmax,accept\n'
            '%s,%d,x,0.5,0.1,0.1,0.5,0.5,1\n' % (first.source_id, label))
  path = stages.write_iteration_config(ctx, 2, None)
  inputs = list(config_util.get_configs_from_pipeline_file(path)[
      'train_input_config'].tf_record_input_reader.input_path)
  assert inputs[-1].endswith('reviewed.tfrecord')
  reviewed = [codec.example_to_record(r) for r in
              tf.data.TFRecordDataset(inputs[-1]).as_numpy_iterator()]
  assert [r.source_id for r in reviewed] == [first.source_id]
  assert reviewed[0].is_mined == 0
  assert list(reviewed[0].classes) == [label]


def test_every_mining_stage_writes_a_gallery_linked_from_the_report(run):
  ctx, _ = run
  with open(os.path.join(ctx.model_dir, 'report.md')) as f:
    text = f.read()
  for t in (1, 2):
    path = os.path.join(layout.mined_dir(ctx.model_dir, t), 'gallery.png')
    with open(path, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                         layout.MANIFEST))['gallery'] is True
    relative = 'iteration_%02d/mined/gallery.png' % t
    assert '[%s](%s)' % (relative, relative) in text



def _image_summaries(directory):
  """tag → steps of the image summaries in ``directory``'s event files."""
  steps = {}
  for path in tf.io.gfile.glob(os.path.join(directory, 'events.out.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == 'images':
          steps.setdefault(value.tag, []).append(event.step)
  return steps


def test_every_evaluation_writes_its_images_to_tensorboard(run):
  """Each T^t's evaluation writes eval_config.num_visualizations (default
  10, here capped by the val images) side-by-side images at its step."""
  ctx, _ = run
  for t in (0, 1, 2):
    steps = _image_summaries(layout.eval_dir(ctx.model_dir, t))
    checkpoint = tf.train.latest_checkpoint(layout.train_dir(ctx.model_dir, t))
    step = int(checkpoint.rsplit('-', 1)[1])
    assert steps, t
    assert all(tag.startswith('eval_side_by_side_') for tag in steps)
    assert all(written == [step] for written in steps.values()), steps
