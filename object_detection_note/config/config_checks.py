"""Checks of a pipeline config that catch silently wrong training.

The parser catches unknown fields and bad types; these catch values that parse
but would train wrongly without any error:

  * ``model.faster_rcnn.num_classes`` that disagrees with an input reader's
    label map: ids above num_classes would get all-zero targets, and ids
    below it would never be seen. The rule: num_classes must equal the
    largest id of every label map the model reads (train, eval and
    image-level readers; label maps are ids 1..N, so that is also their
    class count);
  * a learning rate <= 0 (gradient ascent, or no training at all) anywhere in
    the schedule, and schedule values that contradict each other (warm-up or
    hold longer than the schedule, burn-in or minimum above the rate,
    boundaries not increasing).

Every failure raises ``ConfigError`` as ``<file>:<line>:<column>: field
<dotted.name> <problem>`` (the position of the field in the file, or of its
closest enclosing block; the bare file name if it cannot be read), the style of ``config_util.validate_pipeline``. Label maps that do
not exist yet are not read here (``config_util.check_input_paths`` reports
missing data where it is needed).
"""
import tensorflow as tf

from object_detection_note.config import config_positions
from object_detection_note.data.records import label_map_util


def _fail(error_class, path, field, problem):
  raise error_class('%s: field %s %s' % (config_positions.where(path, field),
                                         field, problem))


def _readers(pipeline):
  readers = [('train_input_reader', pipeline.train_input_reader)]
  readers += [('eval_input_reader[%d]' % i, r)
              for i, r in enumerate(pipeline.eval_input_reader)]
  if pipeline.HasField('note') and pipeline.note.HasField(
      'image_level_input_reader'):
    readers.append(('note.image_level_input_reader',
                    pipeline.note.image_level_input_reader))
  return readers


def check_num_classes(pipeline, path, error_class):
  """num_classes == the largest id of each existing reader's label map."""
  num_classes = pipeline.model.faster_rcnn.num_classes
  for name, reader in _readers(pipeline):
    label_map = reader.label_map_path
    if not label_map or not tf.io.gfile.exists(label_map):
      continue
    ids = label_map_util.get_label_map_dict(label_map).values()
    largest, count = max(ids), len(set(ids))
    if largest != num_classes:
      _fail(error_class, path, 'model.faster_rcnn.num_classes',
            'is %d but %s.label_map_path %s has %d classes with largest id '
            '%d; num_classes must equal the largest label-map id (labels '
            'above num_classes would train on all-zero targets)' %
            (num_classes, name, label_map, count, largest))


def _positive(error_class, path, field, value):
  # NaN passes here: training stops on it at the first step, naming it.
  if value <= 0:
    _fail(error_class, path, field, 'must be > 0, got %g (a learning rate '
          '<= 0 does not train or trains away from the data)' % value)


def _learning_rate_checks(learning_rate, field, path, error_class):
  kind = learning_rate.WhichOneof('learning_rate')
  field = '%s.%s' % (field, kind)
  if kind == 'constant_learning_rate':
    _positive(error_class, path, field + '.learning_rate',
              learning_rate.constant_learning_rate.learning_rate)
  elif kind == 'exponential_decay_learning_rate':
    c = learning_rate.exponential_decay_learning_rate
    _positive(error_class, path, field + '.initial_learning_rate',
              c.initial_learning_rate)
    _positive(error_class, path, field + '.decay_factor', c.decay_factor)
    if c.decay_steps <= 0:
      _fail(error_class, path, field + '.decay_steps', 'must be > 0')
    if c.burnin_steps and c.burnin_learning_rate < 0:
      _fail(error_class, path, field + '.burnin_learning_rate',
            'must be >= 0 (0 = initial_learning_rate)')
    if not 0 <= c.min_learning_rate <= c.initial_learning_rate:
      _fail(error_class, path, field + '.min_learning_rate',
            'must be in [0, initial_learning_rate %g], got %g' %
            (c.initial_learning_rate, c.min_learning_rate))
  elif kind == 'manual_step_learning_rate':
    c = learning_rate.manual_step_learning_rate
    _positive(error_class, path, field + '.initial_learning_rate',
              c.initial_learning_rate)
    previous = 0
    for i, entry in enumerate(c.schedule):
      entry_field = '%s.schedule[%d]' % (field, i)
      _positive(error_class, path, entry_field + '.learning_rate',
                entry.learning_rate)
      if entry.step <= previous:
        _fail(error_class, path, entry_field + '.step',
              'must be > %d (steps increase), got %d' % (previous, entry.step))
      previous = entry.step
    if c.warmup and not c.schedule:
      _fail(error_class, path, field + '.warmup',
            'needs at least one schedule entry (the rate to warm up to)')
  elif kind == 'cosine_decay_learning_rate':
    c = learning_rate.cosine_decay_learning_rate
    _positive(error_class, path, field + '.learning_rate_base',
              c.learning_rate_base)
    if c.total_steps <= 0:
      _fail(error_class, path, field + '.total_steps', 'must be > 0')
    if c.warmup_steps > 0 and not (
        0 <= c.warmup_learning_rate <= c.learning_rate_base):
      _fail(error_class, path, field + '.warmup_learning_rate',
            'must be in [0, learning_rate_base %g], got %g' %
            (c.learning_rate_base, c.warmup_learning_rate))
    if c.warmup_steps + c.hold_base_rate_steps > c.total_steps:
      _fail(error_class, path, field + '.total_steps',
            'is %d, less than warmup_steps %d + hold_base_rate_steps %d' %
            (c.total_steps, c.warmup_steps, c.hold_base_rate_steps))


def check_learning_rate(pipeline, path, error_class):
  """Learning rates > 0 and a consistent schedule (if an optimizer is set)."""
  optimizer = pipeline.train_config.optimizer
  kind = optimizer.WhichOneof('optimizer')
  if kind is None:
    return
  config = getattr(optimizer, kind)
  if not config.HasField('learning_rate') or config.learning_rate.WhichOneof(
      'learning_rate') is None:
    _fail(error_class, path,
          'train_config.optimizer.%s.learning_rate' % kind, 'is required')
  _learning_rate_checks(config.learning_rate,
                        'train_config.optimizer.%s.learning_rate' % kind,
                        path, error_class)


def check_pipeline(pipeline, path, error_class):
  """All checks of this module; raises ``error_class`` on the first failure."""
  check_learning_rate(pipeline, path, error_class)
  check_num_classes(pipeline, path, error_class)
