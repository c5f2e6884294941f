"""The plan of an iterate run (stages, steps, images) and its ETA.

``make_plan`` lists the stages still to run with their size: training steps
(those of T^t, t ≥ 1, depend on how many images B^t will hold: a range until
then), images to mine, images to evaluate. ``Tracker`` takes each finished
stage's wall time and size, and predicts the rest of the run from the
measured seconds per training step, per mined image and per evaluated image
(setup and tracing included, so short stages are not underestimated).
"""
import dataclasses
import math
import os
from typing import List, Optional

from object_detection_note.config import config_util
from object_detection_note.evaluation import eval_loop
from object_detection_note.iterate import run_layout as layout
from object_detection_note.core import progress

SOURCE, MINE, TRAIN, EVAL = 'source', 'mine', 'train', 'eval'
# Which stages share a rate: S and T^t are both trainings.
_KIND = {SOURCE: TRAIN, TRAIN: TRAIN, MINE: MINE, EVAL: EVAL}
_UNIT = {TRAIN: 'steps', MINE: 'images', EVAL: 'images'}


@dataclasses.dataclass
class PlannedStage:
  """One stage still to run: ``size`` units (``size_high``: upper bound)."""
  stage: str
  t: Optional[int]
  size: int
  size_high: Optional[int] = None  # set when the size is a range

  @property
  def label(self):
    if self.stage == SOURCE:
      return 'S'
    return ('B^%d' if self.stage == MINE else 'T^%d') % self.t

  def describe(self):
    size = ('%d-%d' % (self.size, self.size_high)
            if self.size_high is not None else '%d' % self.size)
    what = {SOURCE: 'train', TRAIN: 'train', MINE: 'mine', EVAL: 'evaluate'}
    note = (' (the number depends on B^%d)' % self.t
            if self.size_high is not None else '')
    return '%-4s %-8s %s %s%s' % (self.label, what[self.stage], size,
                                  _UNIT[_KIND[self.stage]], note)


def _count(patterns):
  return sum(layout.count_records(p) for p in patterns)


def _steps(epochs, images, batch):
  return max(1, math.ceil(epochs * images / batch))


def make_plan(ctx, source_pending, stage_done):
  """The stages still to run, in order.

  Args:
    ctx: the run's ``stages.RunContext``.
    source_pending: whether S is still to be trained here.
    stage_done: ``stage_done(stage, t)`` → whether that stage is complete.

  Returns:
    list of PlannedStage.
  """
  configs, note = ctx.configs, ctx.note
  batch = configs['train_config'].batch_size
  num_seed = _count(configs['train_input_config'].tf_record_input_reader
                    .input_path)
  num_unlabelled = _count(note.image_level_input_reader.tf_record_input_reader
                          .input_path)
  num_val = _count(configs['eval_input_config'].tf_record_input_reader
                   .input_path)
  plan = []
  if source_pending:
    source = config_util.get_configs_from_pipeline_file(ctx.source_config_path)
    plan.append(PlannedStage(SOURCE, None,
                             int(source['train_config'].num_steps)))
  for t in range(ctx.iterations + 1):
    if layout.read_json(os.path.join(layout.iteration_dir(ctx.model_dir, t),
                                     layout.MANIFEST)):
      continue
    if t and not stage_done(MINE, t):
      plan.append(PlannedStage(MINE, t, num_unlabelled))
    if not stage_done(TRAIN, t):
      if t == 0:
        epochs = (note.initial_epochs if note.HasField('initial_epochs')
                  else note.epochs_per_iteration)
        plan.append(PlannedStage(TRAIN, 0, _steps(epochs, num_seed, batch)))
      else:
        epochs = note.epochs_per_iteration
        plan.append(PlannedStage(
            TRAIN, t, _steps(epochs, num_seed, batch),
            _steps(epochs, num_seed + num_unlabelled, batch)))
    if not stage_done(EVAL, t):
      plan.append(PlannedStage(EVAL, t, num_val))
  return plan


def plan_lines(plan):
  """Human-readable lines of the plan."""
  if not plan:
    return ['plan: every stage is complete']
  lines = ['plan: %d stages still to run' % len(plan)]
  lines += ['  ' + s.describe() for s in plan]
  return lines


def actual_size(ctx, stage, t):
  """What a finished stage processed: steps trained or images seen."""
  if stage == SOURCE:
    source = config_util.get_configs_from_pipeline_file(ctx.source_config_path)
    return int(source['train_config'].num_steps)
  if stage == TRAIN:
    return int(config_util.get_configs_from_pipeline_file(
        layout.pipeline_path(ctx.model_dir, t))['train_config'].num_steps)
  if stage == MINE:
    mined = layout.read_json(os.path.join(layout.mined_dir(ctx.model_dir, t),
                                          layout.MANIFEST)) or {}
    return int(mined.get('images', 0))
  metrics = layout.read_json(os.path.join(layout.eval_dir(ctx.model_dir, t),
                                          eval_loop.METRICS_FILE)) or {}
  return int(metrics.get('num_images', 0))


class Tracker:
  """Measured rates of finished stages → ETA of the rest of the plan."""

  def __init__(self, plan: List[PlannedStage]):
    self._remaining = list(plan)
    self._total = len(plan)
    self._seconds = {}  # kind → wall seconds
    self._units = {}  # kind → steps or images
    self._mined_fraction = None  # images with boxes / images, last B^t

  def finished(self, stage, t, wall_s, size, mined_fraction=None):
    """Records a finished stage; ``mined_fraction`` after a mining stage."""
    kind = _KIND[stage]
    self._seconds[kind] = self._seconds.get(kind, 0.0) + wall_s
    self._units[kind] = self._units.get(kind, 0) + max(1, size)
    if mined_fraction is not None:
      self._mined_fraction = mined_fraction
    self._remaining = [s for s in self._remaining
                       if (s.stage, s.t) != (stage, t)]

  def _expected_size(self, planned):
    if planned.size_high is None:
      return planned.size
    fraction = 1.0 if self._mined_fraction is None else self._mined_fraction
    return planned.size + fraction * (planned.size_high - planned.size)

  def eta_seconds(self):
    """(seconds, kinds not yet timed) for the stages still to run."""
    seconds, untimed = 0.0, set()
    for planned in self._remaining:
      kind = _KIND[planned.stage]
      if kind not in self._units:
        untimed.add(kind)
        continue
      seconds += (self._seconds[kind] / self._units[kind] *
                  self._expected_size(planned))
    return seconds, sorted(untimed)

  def status(self):
    """E.g. 'run: 3/10 stages done, ETA 1h20m (mining not timed yet)'."""
    done = self._total - len(self._remaining)
    text = 'run: %d/%d stages done' % (done, self._total)
    if not self._remaining:
      return text
    seconds, untimed = self.eta_seconds()
    if len(untimed) == len({_KIND[s.stage] for s in self._remaining}):
      return text + ', ETA once a stage of each kind is timed'
    text += ', ETA %s' % progress.format_duration(seconds)
    if untimed:
      text += ' + the %s stages (not timed yet)' % '/'.join(
          {TRAIN: 'training', MINE: 'mining', EVAL: 'evaluation'}[k]
          for k in untimed)
    return text
