"""Progress lines of the ablation runner, on stdout.

``say`` prefixes a line with the time since the invocation started;
``Progress`` watches one run directory and reports its stages (B^t mined,
T^t training, T^t done with its mAP) as their files appear, recording each
iteration's wall time in the run's timing dict (``iteration_seconds``).
"""
import os
import time

import ablation_report
from object_detection_note.config import config_util
from object_detection_note.core import file_io
from object_detection_note.iterate import report
from object_detection_note.iterate import run_layout


def elapsed(start):
  """Time since ``start`` (time.monotonic()) as '12m05s' text."""
  return ablation_report.duration(time.monotonic() - start)


def say(start, text):
  print('[%s] %s' % (elapsed(start), text), flush=True)


def ratio(value):
  """'0.912', or '—' where undefined (e.g. precision of 0 mined boxes)."""
  return '—' if value is None else '%.3f' % value


class Progress:
  """Reports the stages of one run as their files appear."""

  def __init__(self, plan, model_dir, name, start, timing):
    self._plan = plan
    self._dir = model_dir
    self._name = name
    self._start = start
    self._timing = timing
    self._seen = set()
    self._mark = time.monotonic()
    self.poll(announce=False)

  def _event(self, key, path):
    if key in self._seen or not os.path.exists(path):
      return None
    self._seen.add(key)
    return path

  def poll(self, announce=True):
    layout = run_layout
    for t in range(self._plan.iterations + 1):
      if t:
        path = self._event(('mined', t), os.path.join(
            layout.mined_dir(self._dir, t), layout.MANIFEST))
        if path and announce:
          m = file_io.read_json(path)
          say(self._start, '%s: B^%d mined: %d boxes on %d images, precision '
               '%s, recall %s%s' % (
                   self._name, t, m['mined_boxes'], m['images_with_boxes'],
                   ratio(m.get('precision')), ratio(m.get('recall')),
                   ' (WARNING: %s)' % m['warning'].splitlines()[0]
                   if m.get('warning') else ''))
      path = self._event(('train', t), layout.pipeline_path(self._dir, t))
      if path and announce:
        pipeline = config_util.read_pipeline_config(path)
        say(self._start, '%s: T^%d training %d steps%s' % (
            self._name, t, pipeline.train_config.num_steps,
            ' with distillation' if pipeline.note.HasField('distillation')
            else ''))
      path = self._event(('done', t), os.path.join(
          layout.iteration_dir(self._dir, t), layout.MANIFEST))
      if path and announce:
        now = time.monotonic()
        self._timing['iteration_seconds'][str(t)] = now - self._mark
        self._mark = now
        evaluation = file_io.read_json(path).get('eval') or {}
        say(self._start, '%s: T^%d done in %s: mAP %.4f, mAP@.5 %.4f' % (
            self._name, t, ablation_report.duration(
                self._timing['iteration_seconds'][str(t)]),
            evaluation.get(report.MAP, float('nan')),
            evaluation.get(report.MAP50, float('nan'))))
