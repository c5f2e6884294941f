"""The ablation's variant configs and the overrides a run applies to them.

``Plan`` reads ``<configs_dir>/<variant>.config`` of every variant, checks
that they share one source detector S and one budget, and, for a smoke run
(``config_override``, ``source_steps``), another dataset (``data_dir``) or a
runs directory other than the configs' own, writes derived configs into
``<runs_dir>/configs/`` pointing at ``<runs_dir>/source``.
``control_settings`` gives the runs directory and override of a control run.
"""
import math
import os

from absl import app
from google.protobuf import text_format

import ablation_report
from object_detection_note.config import config_util
from object_detection_note.core import file_io

VARIANT_KEYS = tuple(key for key, _ in ablation_report.VARIANTS)
# The data directory the configs of configs/ablation/ name.
CONFIG_DATA_DIR = os.path.join('data', 'synthetic')


class Plan:
  """The variant configs to run, the source detector and the shared budget."""

  def __init__(self, variants, configs_dir, runs_dir, config_override,
               source_steps, data_dir=CONFIG_DATA_DIR):
    self.runs_dir = runs_dir
    pipelines = {}
    for variant in variants:
      path = os.path.join(configs_dir, variant + '.config')
      pipeline = with_data_dir(config_util.read_pipeline_config(
          path, config_override or None), data_dir, path)
      config_util.validate_pipeline(pipeline, path)
      if not pipeline.HasField('note') or not (
          pipeline.note.source_detector.checkpoint_dir):
        raise app.UsageError('%s: field note.source_detector.checkpoint_dir '
                             'is required (the shared S)' % path)
      pipelines[variant] = (path, pipeline)
    checkpoint_dirs = {p.note.source_detector.checkpoint_dir
                       for _, p in pipelines.values()}
    source_configs = {p.note.source_detector.pipeline_config_path
                      for _, p in pipelines.values()}
    if len(checkpoint_dirs) != 1 or len(source_configs) != 1:
      raise app.UsageError('%s: every variant must name the same '
                           'note.source_detector (checkpoint_dir %s, '
                           'pipeline_config_path %s)' % (
                               configs_dir, sorted(checkpoint_dirs),
                               sorted(source_configs)))
    budgets = {v: self._budget_key(p) for v, (_, p) in pipelines.items()}
    if len(set(budgets.values())) != 1:
      raise app.UsageError('%s: the variants differ in budget (train_config, '
                           'inputs, iterations, epochs, mining): %s' % (
                               configs_dir, ', '.join(sorted(budgets))))
    self.source_config = source_configs.pop()
    own_source = os.path.join(runs_dir, 'source')
    other_data = os.path.normpath(data_dir) != os.path.normpath(
        CONFIG_DATA_DIR)
    derived = bool(config_override or source_steps or other_data) or (
        os.path.normpath(checkpoint_dirs.pop()) != os.path.normpath(own_source))
    self.source_dir = own_source
    source_pipeline = with_data_dir(config_util.read_pipeline_config(
        self.source_config), data_dir, self.source_config)
    if source_steps or other_data:
      if source_steps:
        source_pipeline.train_config.num_steps = source_steps
      self.source_config = os.path.join(runs_dir, 'configs', 'source.config')
      file_io.write_atomically(self.source_config,
                               config_util.pipeline_to_text(source_pipeline))
    self.source_steps = source_pipeline.train_config.num_steps
    self.configs = {}
    for variant, (path, pipeline) in pipelines.items():
      if derived:
        pipeline.note.source_detector.checkpoint_dir = own_source
        pipeline.note.source_detector.pipeline_config_path = self.source_config
        path = os.path.join(runs_dir, 'configs', variant + '.config')
        file_io.write_atomically(path, config_util.pipeline_to_text(pipeline))
      self.configs[variant] = path
    self.pipelines = {v: p for v, (_, p) in pipelines.items()}
    self.iterations = next(iter(self.pipelines.values())).note.iterations

  @staticmethod
  def _budget_key(pipeline):
    note = pipeline.note
    return '|'.join(text_format.MessageToString(m, as_one_line=True) for m in (
        pipeline.train_config, pipeline.train_input_reader,
        pipeline.eval_input_reader[0], note.mining,
        note.image_level_input_reader)) + '|%d|%s|%s|%d' % (
            note.iterations, note.initial_epochs, note.epochs_per_iteration,
            note.min_steps_per_iteration)

  def variant_settings(self):
    out = {}
    for variant, pipeline in self.pipelines.items():
      note = pipeline.note
      if not note.HasField('distillation') or note.distillation.weight <= 0:
        distill = 'no'
      elif note.distillation.iterations == 0:
        distill = 'every T^t (weight %g)' % note.distillation.weight
      else:
        distill = 'T^0..T^%d (weight %g)' % (note.distillation.iterations,
                                             note.distillation.weight)
      out[variant] = {
          'label': ablation_report.LABELS[variant],
          'config': self.configs[variant],
          'rpn_cls_a': note.rpn_cls_a, 'det_cls_a': note.det_cls_a,
          'mask_mined_background': note.mask_mined_background,
          'distillation': distill,
      }
    return out

  def budget(self, dataset):
    pipeline = next(iter(self.pipelines.values()))
    note = pipeline.note
    train = pipeline.train_config
    seed_images = (dataset['splits'].get('seed') or {}).get('images') or 0
    initial_epochs = as_written(note.initial_epochs if note.HasField(
        'initial_epochs') else note.epochs_per_iteration)
    return {
        'iterations': note.iterations,
        'initial_epochs': initial_epochs,
        'initial_steps': max(1, math.ceil(initial_epochs * seed_images /
                                          train.batch_size)),
        'epochs_per_iteration': as_written(note.epochs_per_iteration),
        'min_steps_per_iteration': note.min_steps_per_iteration,
        'batch_size': train.batch_size,
        'learning_rate': text_format.MessageToString(
            train.optimizer, as_one_line=True),
        'score_threshold': as_written(note.mining.score_threshold),
        'mining_batch_size': note.mining.batch_size,
        'image_level_images': (dataset['splits'].get('image_level') or
                               {}).get('images'),
        'source_config': self.source_config,
        'source_steps': self.source_steps,
    }


def with_data_dir(pipeline, data_dir, path):
  """``pipeline`` with every ``"data/synthetic/..."`` path under ``data_dir``.

  A config whose paths are under ``data_dir`` already (and none under
  data/synthetic/) is returned as it is (configs/ablation_paper/).
  Raises UsageError (naming ``path``) when another data directory is asked
  for and the config names no path under data/synthetic/.
  """
  if os.path.normpath(data_dir) == os.path.normpath(CONFIG_DATA_DIR):
    return pipeline
  text = config_util.pipeline_to_text(pipeline)
  old = '"%s/' % CONFIG_DATA_DIR
  if old not in text and '"%s/' % os.path.normpath(data_dir) in text:
    return pipeline  # The config names data_dir already.
  if old not in text:
    raise app.UsageError('%s: --data_dir=%s given, but no input path or label '
                         'map of the config is under %s/' % (
                             path, data_dir, CONFIG_DATA_DIR))
  return config_util.parse_pipeline_text(
      text.replace(old, '"%s/' % os.path.normpath(data_dir)), path)


def as_written(value):
  """A float32 proto field as the decimal it was written as (0.9, not
  0.8999…)."""
  return float('%.6g' % value)


def control_settings(control, runs_dir, config_override):
  """``(runs_dir, config_override)`` of a ``--control`` run.

  'none' leaves both as they are; a control merges
  ``note { mining { control: ORACLE | FROZEN_T0 } }`` into the override and
  suffixes the runs directory, so control runs never resume normal ones.
  """
  if control == 'none':
    return runs_dir, config_override
  return (os.path.normpath(runs_dir) + '_' + control,
          (config_override + ' ' if config_override else '') +
          'note { mining { control: %s } }' % control.upper())
