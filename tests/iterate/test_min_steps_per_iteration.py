"""note.min_steps_per_iteration: T^t (t >= 1) never trains fewer steps."""
import os

import pytest
import tensorflow as tf

from object_detection_note.config import config_util
from object_detection_note.iterate import run_layout as layout
from object_detection_note.iterate import stages

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _ctx(tmp_path, monkeypatch, min_steps, seed_images=6):
  seed = str(tmp_path / 'seed.tfrecord')
  with tf.io.TFRecordWriter(seed) as writer:
    for _ in range(seed_images):
      writer.write(b'x')
  text = open(os.path.join(REPO, 'configs', 'ablation_paper',
                           'naive.config')).read()
  text = text.replace('"data/synthetic_paper/seed.tfrecord-*"',
                      '"%s"' % seed)
  text = text.replace('min_steps_per_iteration: 300',
                      'min_steps_per_iteration: %d' % min_steps)
  path = tmp_path / 'p.config'
  path.write_text(text)
  monkeypatch.setattr(stages.tf.train, 'latest_checkpoint',
                      lambda d: os.path.join(d, 'ckpt-1'))
  model_dir = str(tmp_path / 'run')
  return stages.RunContext(str(path), model_dir,
                           config_util.get_configs_from_pipeline_file(
                               str(path)))


def _steps(ctx, t, mined_images):
  if t:
    layout.write_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                   layout.MANIFEST),
                      {'images_with_boxes': mined_images, 'mined_boxes':
                       mined_images})
  path = stages.write_iteration_config(ctx, t, None)
  return config_util.get_configs_from_pipeline_file(path)[
      'train_config'].num_steps


@pytest.mark.parametrize('min_steps,expected_t1,expected_t2', [
    (0, 10, 80),       # 8 epochs of 6 + 4 images / batch 8; 6 + 74
    (40, 40, 80),      # the floor; epochs give more at T^2
])
def test_min_steps_floor_of_iterations_not_t0(tmp_path, monkeypatch,
                                              min_steps, expected_t1,
                                              expected_t2):
  ctx = _ctx(tmp_path, monkeypatch, min_steps)
  # T^0: 100 epochs of 6 seed images / batch 8, no floor.
  assert _steps(ctx, 0, 0) == 75
  assert _steps(ctx, 1, 4) == expected_t1
  assert _steps(ctx, 2, 74) == expected_t2
