"""Progress by time: a line after the first step and at least every 30 s.

Unit tests of ``progress.ProgressLogger`` with a fake clock, then training,
evaluation and mining with slowed (fake-clock) steps of 45 s each: every
step must produce a line, so no 30 s pass without one.
"""
import numpy as np
import pytest

from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec
from object_detection_note.core import progress
from object_detection_note.training import train_loop

import training_test_utils as utils

STEP_S = 45.0  # a fake step longer than the 30 s interval


class FakeClock:
  """A clock that only moves when told to."""

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


class Lines:
  """A ``log`` callable that keeps (fake time, text) of every line."""

  def __init__(self, clock):
    self.clock = clock
    self.lines = []

  def __call__(self, fmt, *args):
    self.lines.append((self.clock(), fmt % args))

  def times(self):
    return [t for t, _ in self.lines]


def test_first_line_then_every_interval_with_rate_and_eta():
  clock = FakeClock()
  lines = Lines(clock)
  logger = progress.ProgressLogger('job', total=200, unit='steps',
                                   clock=clock, log=lines)
  clock.now += 70  # setup and tracing
  assert logger.update(1)
  assert '1/200 steps after 1m10s' in lines.lines[0][1]
  for step in range(2, 201):
    clock.now += 1.0  # 1 step/s after the first
    logger.update(step)
  times = lines.times()
  gaps = np.diff(times)
  # Not after every step: every 30 s, and once at the end.
  assert len(lines.lines) == 1 + 199 // 30 + 1
  assert all(gap <= 30 for gap in gaps)
  assert '31/200 (15%) 1.00 steps/s ETA 2m49s' in lines.lines[1][1]
  assert lines.lines[-1][1].startswith('job: 200/200 (100%)')


def test_steps_longer_than_the_interval_log_every_step():
  clock = FakeClock()
  lines = Lines(clock)
  logger = progress.ProgressLogger('job', total=5, clock=clock, log=lines)
  for step in range(1, 6):
    clock.now += STEP_S
    logger.update(step)
  assert len(lines.lines) == 5


def test_heartbeat_inside_a_long_step_and_during_tracing():
  clock = FakeClock()
  lines = Lines(clock)
  logger = progress.ProgressLogger('job', total=3, unit='images', clock=clock,
                                   log=lines)
  clock.now += 20
  assert not logger.heartbeat()
  clock.now += 15
  assert logger.heartbeat()
  assert 'tracing the first image (35s so far)' in lines.lines[-1][1]
  logger.update(1)
  clock.now += 31
  assert logger.heartbeat()
  assert 'job: 1/3 images, still running (31s since the last line)' == (
      lines.lines[-1][1])
  assert not logger.heartbeat()  # the heartbeat restarted the interval


def test_keepalive_thread_beats_while_nothing_updates():
  lines = []
  logger = progress.ProgressLogger(
      'job', interval=0.05, log=lambda fmt, *a: lines.append(fmt % a))
  with logger.keepalive(poll_s=0.01):
    while not lines:
      pass
  assert 'still' in lines[0] or 'tracing' in lines[0]


def _step_clock(counter):
  """Fake time: STEP_S per counted step."""
  return lambda: 1000.0 + STEP_S * counter[0]


def _progress_lines(calls, name):
  """Arguments of the update lines (not heartbeats) of logger ``name``."""
  return [args for fmt, args, _ in calls
          if args and args[0] == name and 'still' not in fmt and
          'so far' not in fmt]


def _line_times(calls, name):
  """Fake times of every line of ``name`` (heartbeats too)."""
  return sorted({t for _, args, t in calls if args and args[0] == name})


class Captured(list):
  """absl logging.info calls as (format, args, fake time of ``clock``)."""
  clock = staticmethod(lambda: None)


@pytest.fixture
def captured_info(monkeypatch):
  calls = Captured()
  real = progress.logging.info

  def info(fmt, *args):
    calls.append((fmt, args, calls.clock()))
    real(fmt, *args)
  monkeypatch.setattr(progress.logging, 'info', info)
  return calls


def test_training_with_slow_steps_logs_every_step(tmp_path, tiny_data_dir,
                                                  monkeypatch, captured_info):
  config = utils.write_pipeline(tmp_path / 'p.config', tiny_data_dir,
                                num_steps=4)
  steps = [0]
  real_step = train_loop.Trainer.distributed_step

  def slow_step(self, batch):
    steps[0] += 1
    return real_step(self, batch)
  monkeypatch.setattr(train_loop.Trainer, 'distributed_step', slow_step)
  captured_info.clock = _step_clock(steps)
  train_loop.train_loop(config, str(tmp_path / 'model'), log_every_n=100,
                        checkpoint_every_n=100, record_summaries=False,
                        progress_clock=_step_clock(steps))
  # A line in each 45 s step (no 30 s without one), the first with the
  # time before it; the last step has the loop's usual line.
  name = 'training %s/model' % tmp_path.name
  assert _line_times(captured_info, name) == [
      1000 + STEP_S * k for k in (1, 2, 3)]
  lines = _progress_lines(captured_info, name)
  assert lines[0][1:5] == (1, '/4', 'steps', '45s')
  assert [a for f, a, _ in captured_info if f.startswith('step ')][-1][
      0].startswith('4/4 (100%)')


def test_evaluation_with_slow_batches_logs_every_batch(tmp_path, tiny_data_dir,
                                                       monkeypatch,
                                                       captured_info):
  configs = config_util.get_configs_from_pipeline_file(utils.write_pipeline(
      tmp_path / 'p.config', tiny_data_dir))
  model = model_builder.build(configs['model'], is_training=False)
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  batches = [0]
  real_detect = eval_loop._detect_batch  # pylint: disable=protected-access

  def slow_detect(*args):
    batches[0] += 1
    return real_detect(*args)
  monkeypatch.setattr(eval_loop, '_detect_batch', slow_detect)
  captured_info.clock = _step_clock(batches)
  metrics = eval_loop.evaluate_model(model, configs, log_every_n=0,
                                     progress_clock=_step_clock(batches))
  assert batches[0] == metrics['num_images'] // 2 >= 2  # batch_size 2
  assert _line_times(captured_info, 'evaluation') == [
      1000 + STEP_S * k for k in range(1, batches[0] + 1)]
  assert _progress_lines(captured_info, 'evaluation')[0][1] >= 1  # images


class _SlowSpec:
  """A detector spec whose detector takes STEP_S (fake) per batch."""

  def __init__(self, counter):
    self.counter = counter

  def load(self):
    def detect(images):
      self.counter[0] += 1
      return [{'detection_boxes': np.zeros((0, 4), np.float32),
               'detection_scores': np.zeros((0,), np.float32),
               'detection_classes': np.zeros((0,), np.int64)}
              for _ in images]
    return detect


def test_mining_with_slow_batches_logs_every_batch(tiny_data_dir,
                                                   captured_info):
  import glob  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  files = sorted(glob.glob(tiny_data_dir + '/image_level.tfrecord-*'))
  records = list(tf.data.TFRecordDataset(files).as_numpy_iterator())[:4]
  assert len(records) == 4
  batches = [0]
  captured_info.clock = _step_clock(batches)
  fn = mining_pipeline.BestBoxesFn(
      _SlowSpec(batches), mining_spec.MiningSpec(id_to_name={},
                                                 total_images=4),
      clock=_step_clock(batches))
  fn.setup()
  try:
    out = [x for i in range(0, 4, 2) for x in fn.process(records[i:i + 2])]
  finally:
    fn.teardown()
  assert len(out) == 4
  assert _line_times(captured_info, 'mining') == [
      1000 + STEP_S * k for k in (1, 2)]
  assert _progress_lines(captured_info, 'mining')[0][1:3] == (2, '/4')


def test_converter_progress_logs_by_time(captured_info):
  from object_detection_note.data.writing import dataset_writer  # pylint: disable=import-outside-toplevel
  clock = FakeClock()
  captured_info.clock = clock
  fn = dataset_writer._LogProgress('converting', clock=clock)  # pylint: disable=protected-access
  fn.setup()
  try:
    passed = []
    for i in range(100):
      clock.now += 1.0  # one record per second
      passed += list(fn.process(i))
  finally:
    fn.teardown()
  assert passed == list(range(100))
  lines = _progress_lines(captured_info, 'converting')
  # After the first record, then every 30 s: at 31, 61, 91 s.
  assert [t - 1000 for t in _line_times(captured_info, 'converting')] == [
      1, 31, 61, 91]
  assert lines[1][1].startswith('31 1.00 records/s')
