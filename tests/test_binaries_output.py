"""What the binaries print: no library noise, one-line errors, a preflight.

Every binary runs as a user runs it (its own process, TF_CPP_MIN_LOG_LEVEL
unset): ``--helpfull`` and short real runs print none of the known noise
lines (``core/quiet.py``); a config error, a missing input and a bad record
end the run with ``<binary>: error: <message>`` as the last stderr line,
exit status 1 and no traceback (``core/cli_errors.py``).
"""
import concurrent.futures
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core import quiet
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import tf_example_codec as codec

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
_spec = importlib.util.spec_from_file_location(
    'binaries_test_utils',
    os.path.join(_ROOT, 'tests', 'training', 'training_test_utils.py'))
utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(utils)

_MODULES = ('model_main_tf2', 'exporter_main_v2', 'mine_boxes', 'infer',
            'iterate')
_SCRIPTS = ('pipelines/create_coco17_tfrecords.py',
            'pipelines/create_ilsvrc13_tfrecords.py',
            'pipelines/create_openimages_tfrecords.py',
            'pipelines/create_synthetic_tfrecords.py',
            'bench/run_bench.py', 'bench/run_ablation.py',
            'bench/stall_bench.py', 'bench/mining_side_by_side.py',
            'bench/profile_mining.py')
# Lines the issue found in the binaries' output, verbatim.
_KNOWN_NOISE = ('Failed to import GCSFileSystem', 'apitools not found',
                'failed call to cuInit', 'Could not find cuda drivers',
                'cpu_feature_guard', 'Local rendezvous is aborting',
                'op_level_cost_estimator', 'PredictCost()',
                'oneDNN custom operations')


def _command(binary):
  if binary in _MODULES:
    return [sys.executable, '-m', 'object_detection_note.' + binary]
  return [sys.executable, os.path.join(_ROOT, binary)]


def _run(binary, args, cwd=_ROOT, timeout=300):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=_ROOT)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the conftest sets it
  return subprocess.run(_command(binary) + list(args), cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _assert_quiet(run):
  for line in (run.stdout + run.stderr).splitlines():
    assert not any(noise in line for noise in _KNOWN_NOISE), line
    assert not quiet.is_noise(line), line


def _last_line(run):
  lines = run.stderr.strip().splitlines()
  return lines[-1] if lines else ''


def _assert_one_line_error(run, binary, message):
  assert run.returncode == 1, run.stderr[-3000:]
  assert 'Traceback' not in run.stderr, run.stderr[-3000:]
  assert _last_line(run) == '%s: error: %s' % (os.path.basename(binary).replace(
      '.py', ''), message), run.stderr[-3000:]
  _assert_quiet(run)


# The binaries that the tests below run for real; their noise is checked
# there (the same imports as --helpfull, and more).
_RUN_BELOW = ('model_main_tf2', 'exporter_main_v2', 'mine_boxes', 'infer',
              'iterate', 'pipelines/create_coco17_tfrecords.py',
              'pipelines/create_synthetic_tfrecords.py')


def test_helpfull_is_quiet():
  # --helpfull of the binaries no other test here runs (each process costs
  # seconds of TF and Beam imports).
  binaries = [b for b in _MODULES + _SCRIPTS if b not in _RUN_BELOW]
  assert len(binaries) == 7
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    runs = list(pool.map(lambda b: _run(b, ['--helpfull']), binaries))
  for binary, run in zip(binaries, runs):
    # absl prints the flags (its own and this binary's) and exits 1.
    assert '--verbosity' in run.stdout + run.stderr, binary
    _assert_quiet(run)


def test_converter_run_is_quiet(tmp_path):
  """A short real run of a converter (Beam pipeline, tf.data reads)."""
  run = _run('pipelines/create_synthetic_tfrecords.py', [
      '--output_dir=' + str(tmp_path / 'data'), '--num_train_images=12',
      '--num_val_images=4', '--image_size=32', '--max_objects=2'])
  assert run.returncode == 0, run.stderr[-3000:]
  assert (tmp_path / 'data' / 'manifest.json').exists()
  _assert_quiet(run)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
  return utils.make_tiny_dataset(str(tmp_path_factory.mktemp('tiny')))


@pytest.fixture
def typo_config(tmp_path, tiny_data):
  text = utils.pipeline_text(tiny_data).replace('batch_size: 2\n',
                                                'batch_sise: 2\n', 1)
  path = tmp_path / 'typo.config'
  path.write_text(text)
  line = text[:text.index('batch_sise')].count('\n') + 1
  column = len(text.splitlines()[line - 1]) - len(
      text.splitlines()[line - 1].lstrip()) + 1
  return str(path), '%s:%d:%d: unknown field "batch_sise" in TrainConfig ' \
      '(did you mean "batch_size"?)' % (path, line, column)


@pytest.mark.parametrize('binary,args', [
    ('model_main_tf2', ['--model_dir={tmp}/m']),
    ('exporter_main_v2', ['--trained_checkpoint_dir={tmp}/m',
                          '--output_directory={tmp}/out']),
    ('mine_boxes', ['--checkpoint_dir={tmp}/m',
                    '--output_tfrecord={tmp}/out/mined.tfrecord']),
    ('iterate', ['--model_dir={tmp}/run']),
])
def test_config_error_is_the_last_line(binary, args, typo_config, tmp_path):
  path, message = typo_config
  run = _run(binary, ['--pipeline_config_path=' + path] +
             [a.format(tmp=tmp_path) for a in args])
  _assert_one_line_error(run, binary, message)


def test_missing_inputs_are_listed_before_training(tmp_path, tiny_data):
  missing = str(tmp_path / 'nowhere')
  config = utils.write_pipeline(tmp_path / 'p.config', missing,
                                fine_tune_checkpoint=str(tmp_path / 'ckpt-9'))
  run = _run('model_main_tf2', ['--pipeline_config_path=' + config,
                                '--model_dir=' + str(tmp_path / 'm')])
  assert run.returncode == 1, run.stderr[-3000:]
  assert 'Traceback' not in run.stderr
  lines = run.stderr.strip().splitlines()
  start = [i for i, l in enumerate(lines)
           if l.startswith('model_main_tf2: error: ')]
  assert len(start) == 1, run.stderr[-3000:]
  block = lines[start[0]:]
  assert block[0] == ('model_main_tf2: error: 3 problem(s) found before the '
                      'run started (nothing was built):')
  assert block[1:] == [
      '  %s: train_input_reader: no file matches %s/source_train.tfrecord-*'
      % (config, missing),
      '    fix: one of the converters in pipelines/ (see README "Data")',
      '  %s: train_input_reader.label_map_path: %s/source_label_map.pbtxt '
      'not found' % (config, missing),
      '    fix: one of the converters in pipelines/ (see README "Data")',
      '  %s: train_config.fine_tune_checkpoint: %s not found' % (
          config, tmp_path / 'ckpt-9'),
      '    fix: train that checkpoint first, or point '
      'train_config.fine_tune_checkpoint at an existing one']
  assert not (tmp_path / 'm' / 'ckpt-1.index').exists()
  _assert_quiet(run)


def test_missing_input_files_are_one_line(tmp_path):
  run = _run('infer', ['--saved_model_dir=' + str(tmp_path / 'export'),
                       '--images=' + str(tmp_path / '*.jpg'),
                       '--output_dir=' + str(tmp_path / 'out')])
  _assert_one_line_error(run, 'infer', '--images %r matches no file' %
                         str(tmp_path / '*.jpg'))
  annotations = str(tmp_path / 'instances_train2017.json')
  run = _run('pipelines/create_coco17_tfrecords.py', [
      '--train_annotations_file=' + annotations,
      '--val_annotations_file=' + annotations,
      '--train_image_dir=' + str(tmp_path), '--val_image_dir=' + str(tmp_path),
      '--output_dir=' + str(tmp_path / 'out')])
  _assert_one_line_error(run, 'create_coco17_tfrecords',
                         'COCO annotation file not found: ' + annotations)


def _write_records(path, records):
  with tf.io.TFRecordWriter(path) as writer:
    for serialized in records:
      writer.write(serialized)
  return path


def _image_level_record(source_id, image_bytes=None):
  pixels = np.full((16, 16, 3), 128, np.uint8)
  return codec.serialize_record(codec.DetectionRecord(
      image_bytes=(codec.encode_image(pixels, 'png') if image_bytes is None
                   else image_bytes),
      source_id=source_id, height=16, width=16, image_format='png',
      image_labels=[1]))


def test_bad_record_in_training_is_the_last_line(tmp_path, tiny_data):
  """tf.data's InvalidArgumentError (the assertion inside the input
  pipeline) becomes the located one-line message."""
  shard = tf.io.gfile.glob(os.path.join(tiny_data,
                                        'source_train.tfrecord-*'))[0]
  good = [s for _, s in zip(range(3), record_errors.iterate_file_records(
      shard))]
  example = tf.train.Example.FromString(good[1][1])
  del example.features.feature['image/encoded']
  bad_shard = _write_records(str(tmp_path / 'bad.tfrecord'), [
      good[0][1], example.SerializeToString(), good[2][1]])
  source_id = example.features.feature['image/source_id'].bytes_list.value[
      0].decode()
  text = utils.pipeline_text(tiny_data, shuffle=False, flip=False).replace(
      os.path.join(tiny_data, 'source_train.tfrecord-*'), bad_shard)
  config = tmp_path / 'bad.config'
  config.write_text(text)
  run = _run('model_main_tf2', ['--pipeline_config_path=%s' % config,
                                '--model_dir=' + str(tmp_path / 'm'),
                                '--num_train_steps=2'])
  _assert_one_line_error(run, 'model_main_tf2', '%s (%s)' % (
      record_errors.locate(bad_shard, 1, source_id,
                           record_errors.ENCODED_MISSING),
      record_errors.SKIP_HINT))


def test_bad_record_in_mining_is_the_last_line(tmp_path, tiny_data):
  """Beam's RuntimeError wrapping BadRecordError becomes the located
  one-line message (the record is checked before any detector is built)."""
  path = _write_records(str(tmp_path / 'image_level.tfrecord'), [
      _image_level_record('ok-0'), _image_level_record('cut-1', b'\x89PNG1')])
  config = utils.write_pipeline(tmp_path / 'p.config', tiny_data)
  run = _run('mine_boxes', [
      '--pipeline_config_path=' + config, '--input_tfrecord=' + path,
      '--label_map_path=' + os.path.join(tiny_data, 'source_label_map.pbtxt'),
      '--checkpoint_dir=' + str(tmp_path / 'none'),
      '--output_tfrecord=' + str(tmp_path / 'out' / 'mined.tfrecord')])
  from object_detection_note.mining import record_validation  # pylint: disable=g-import-not-at-top
  _assert_one_line_error(run, 'mine_boxes', '%s (%s)' % (
      record_errors.locate(path, 1, 'cut-1',
                           record_errors.ENCODED_UNDECODABLE),
      record_validation.SKIP_HINT))


def test_verbosity_brings_back_the_traceback(typo_config, tmp_path):
  path, message = typo_config
  run = _run('model_main_tf2', ['--pipeline_config_path=' + path,
                                '--model_dir=' + str(tmp_path / 'm'),
                                '--verbosity=1'])
  assert run.returncode == 1
  assert 'Traceback' in run.stderr
  assert _last_line(run) == 'model_main_tf2: error: ' + message


def test_iterate_preflight_on_a_fresh_clone(tmp_path):
  """``make iterate CONFIG=configs/ilsvrc13.config`` with no data and no
  weights: one block listing every missing input and the weights."""
  shutil.copytree(os.path.join(_ROOT, 'configs'), tmp_path / 'configs')
  run = _run('iterate', ['--pipeline_config_path=configs/ilsvrc13.config',
                         '--model_dir=runs/ilsvrc13', '--seed=0'],
             cwd=str(tmp_path))
  assert run.returncode == 1, run.stderr[-3000:]
  assert 'Traceback' not in run.stderr
  _assert_quiet(run)
  lines = run.stderr.strip().splitlines()
  first = [i for i, l in enumerate(lines) if l.startswith('iterate: error: ')]
  assert len(first) == 1
  block = lines[first[0]:]
  ilsvrc = 'python pipelines/create_ilsvrc13_tfrecords.py --help'
  target, source = 'configs/ilsvrc13.config', 'configs/ilsvrc13_source.config'
  expected = [
      (target, 'train_input_reader: no file matches '
               'data/ilsvrc13/seed.tfrecord-*', ilsvrc),
      (target, 'train_input_reader.label_map_path: '
               'data/ilsvrc13/target_label_map.pbtxt not found', ilsvrc),
      (target, 'eval_input_reader[0]: no file matches '
               'data/ilsvrc13/target_val.tfrecord-*', ilsvrc),
      (target, 'note.image_level_input_reader: no file matches '
               'data/ilsvrc13/image_level.tfrecord-*', ilsvrc),
      (source, 'train_input_reader: no file matches '
               'data/ilsvrc13/source_train.tfrecord-*', ilsvrc),
      (source, 'train_input_reader.label_map_path: '
               'data/ilsvrc13/source_label_map.pbtxt not found', ilsvrc),
      (source, 'train_config.fine_tune_checkpoint: pretrained/inception_'
               'resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5 not '
               'found (pretrained backbone weights)',
       'make pretrained  (i.e. python -m object_detection_note.pretrained '
       '--model=inception_resnet_v2 --output_dir=pretrained)'),
  ]
  assert block[0] == ('iterate: error: %d problem(s) found before the run '
                      'started (nothing was built):' % len(expected))
  assert block[1:] == [l for config, what, fix in expected
                       for l in ('  %s: %s' % (config, what),
                                 '    fix: ' + fix)]
  # Nothing was built or trained; model_dir was only probed.
  assert not os.path.exists(tmp_path / 'runs' / 'ilsvrc13' / 'source')


def test_print_commands_are_shell_commands(tmp_path):
  run = _run('iterate', [
      '--pipeline_config_path=configs/synthetic.config',
      '--model_dir=' + str(tmp_path / 'run dir'), '--print_commands',
      '--use_tpu', '--tpu_name=my tpu', '--num_workers=2'])
  assert run.returncode == 0, run.stderr[-3000:]
  _assert_quiet(run)
  lines = run.stdout.strip().splitlines()
  comments = [l for l in lines if l.startswith('#')]
  assert len(comments) == 1 and '--runner' in comments[0]
  stages = {}
  for line in lines:
    if line.startswith('#'):
      continue
    argv = shlex.split(line)
    assert argv[:3] == ['python', '-m', 'object_detection_note.iterate']
    assert '--model_dir=' + str(tmp_path / 'run dir') in argv
    assert not any(a.startswith('#') for a in argv)
    stage = [a for a in argv if a.startswith('--stage=')]
    assert len(stage) == 1
    stages.setdefault(stage[0][len('--stage='):], []).append(argv)
  assert set(stages) == {'source', 'mine', 'train', 'eval', 'report'}
  strategy = ['--use_tpu', '--tpu_name=my tpu', '--num_workers=2']
  for stage, commands in stages.items():
    for argv in commands:
      carried = [a for a in argv if a in strategy]
      assert carried == (strategy if stage in ('source', 'train') else []), (
          stage, argv)
  # The comment comes before the first mining command.
  first_mine = min(i for i, l in enumerate(lines) if '--stage=mine' in l)
  assert lines.index(comments[0]) < first_mine
