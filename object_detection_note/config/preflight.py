"""Checks, before any model is built, that every file a run needs is there.

A run of ``iterate`` (or ``model_main_tf2``) needs input files, label maps,
checkpoints, pretrained weight files and a writable model_dir. Rather than
stop at the first missing one after minutes of work, ``check`` looks at all
of them at once and raises one ``PreflightError`` listing every problem with
the command that fixes it::

  3 problem(s) found before the run started:
    configs/x.config: train_input_reader: no file matches data/x/seed.tfrecord-*
      fix: python pipelines/create_ilsvrc13_tfrecords.py --help
    ...

A problem is a ``Problem(what, fix)`` pair of one-line strings.
"""
import collections
import os
import uuid

import tensorflow as tf

from object_detection_note.config import errors

PRETRAINED_COMMAND = ('make pretrained  (i.e. python -m '
                      'object_detection_note.pretrained --model=%s '
                      '--output_dir=%s)')

# Data directories → the converter that writes them.
CONVERTERS = (
    ('synthetic', 'make data  (or: python pipelines/create_synthetic_tfrecords.py '
                  '--output_dir=data/synthetic --seed=0)'),
    ('coco', 'python pipelines/create_coco17_tfrecords.py --help'),
    ('ilsvrc', 'python pipelines/create_ilsvrc13_tfrecords.py --help'),
    ('openimages', 'python pipelines/create_openimages_tfrecords.py --help'),
)

_WEIGHT_FILE_SUFFIXES = ('.h5', '.hdf5', '.keras')

Problem = collections.namedtuple('Problem', ['what', 'fix'])


class PreflightError(errors.ConfigError):
  """Files a run's config names are missing; the message lists each with its
  fix.

  Attributes:
    problems: list of ``Problem``.
  """

  def __init__(self, problems):
    self.problems = list(problems)
    lines = ['%d problem(s) found before the run started (nothing was '
             'built):' % len(self.problems)]
    for problem in self.problems:
      lines.append('  ' + problem.what)
      lines.append('    fix: ' + problem.fix)
    super().__init__('\n'.join(lines))


def how_to_make(pattern):
  """The command that writes the data of an input ``pattern``."""
  for key, command in CONVERTERS:
    if key in pattern.lower():
      return command
  return 'one of the converters in pipelines/ (see README "Data")'


def reader_problems(reader, config_path, field, seen=None):
  """Problems of an InputReader: input patterns or label map that match nothing.

  Args:
    reader: InputReader proto.
    config_path: the pipeline config it comes from, for the message.
    field: dotted name of the reader in that config.
    seen: optional set of paths already reported (updated); a pattern or
      label map in it is not reported again.
  """
  seen = set() if seen is None else seen
  patterns = list(reader.tf_record_input_reader.input_path)
  if not patterns:
    return [Problem('%s: %s.tf_record_input_reader.input_path is required' %
                    (config_path, field),
                    'set input_path in %s' % config_path)]
  problems = []
  for pattern in patterns:
    if pattern not in seen and not tf.io.gfile.glob(pattern):
      seen.add(pattern)
      problems.append(Problem(
          '%s: %s: no file matches %s' % (config_path, field, pattern),
          how_to_make(pattern)))
  label_map = reader.label_map_path
  if label_map and label_map not in seen and not tf.io.gfile.exists(
      label_map):
    seen.add(label_map)
    problems.append(Problem(
        '%s: %s.label_map_path: %s not found' % (config_path, field,
                                                 reader.label_map_path),
        how_to_make(reader.label_map_path + ' ' + ' '.join(patterns))))
  return problems


def checkpoint_exists(path):
  """True if ``path`` is a weight file, a checkpoint prefix, or a directory
  holding a checkpoint."""
  if path.lower().endswith(_WEIGHT_FILE_SUFFIXES):
    return tf.io.gfile.exists(path)
  if tf.io.gfile.isdir(path):
    return tf.train.latest_checkpoint(path) is not None
  return bool(tf.io.gfile.glob(path + '.index'))


def pretrained_model_name(extractor_type):
  """``faster_rcnn_inception_resnet_v2_keras`` → ``inception_resnet_v2``."""
  name = extractor_type
  if name.startswith('faster_rcnn_'):
    name = name[len('faster_rcnn_'):]
  if name.endswith('_keras'):
    name = name[:-len('_keras')]
  return name


def fine_tune_problems(configs, config_path):
  """Problems of ``train_config.fine_tune_checkpoint`` (checkpoint or
  pretrained backbone weights)."""
  train_config = configs['train_config']
  path = train_config.fine_tune_checkpoint
  if not path or checkpoint_exists(path):
    return []
  what = '%s: train_config.fine_tune_checkpoint: %s not found' % (config_path,
                                                                  path)
  is_weights = (train_config.fine_tune_checkpoint_type == 'classification' or
                path.lower().endswith(_WEIGHT_FILE_SUFFIXES))
  if is_weights:
    extractor = configs['model'].faster_rcnn.feature_extractor.type
    fix = PRETRAINED_COMMAND % (pretrained_model_name(extractor),
                                os.path.dirname(path) or '.')
    return [Problem(what + ' (pretrained backbone weights)', fix)]
  return [Problem(what, 'train that checkpoint first, or point '
                        'train_config.fine_tune_checkpoint at an existing one')]


def pipeline_problems(configs, config_path, train=True, evaluate=True,
                      seen=None):
  """Problems of one pipeline config's files.

  Args:
    configs: dict of ``config_util.get_configs_from_pipeline_file``.
    config_path: its path, for the messages.
    train: check the train input and fine_tune_checkpoint.
    evaluate: check every eval input.
    seen: optional set of paths already reported (see ``reader_problems``).
  """
  seen = set() if seen is None else seen
  problems = []
  if train:
    problems += reader_problems(configs['train_input_config'], config_path,
                                'train_input_reader', seen)
  if evaluate:
    for i, reader in enumerate(configs['eval_input_configs']):
      problems += reader_problems(reader, config_path,
                                  'eval_input_reader[%d]' % i, seen)
  if train:
    problems += fine_tune_problems(configs, config_path)
  return problems


def model_dir_problems(model_dir, flag='--model_dir'):
  """Problems of a model_dir that cannot be created or written."""
  probe = os.path.join(model_dir, '.preflight-%s' % uuid.uuid4().hex)
  try:
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(probe, 'w') as f:
      f.write('')
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    detail = str(error).strip().splitlines()[0][:200] if str(error) else (
        type(error).__name__)
    return [Problem('%s %s: not writable (%s)' % (flag, model_dir, detail),
                    'choose a writable %s, or fix its permissions' % flag)]
  return []


def check(problems):
  """Raises PreflightError listing ``problems`` if there are any."""
  problems = list(problems)
  if problems:
    raise PreflightError(problems)
