r"""Mining at the paper's shapes, side by side with the upstream OD API's path.

  .venv/bin/python bench/mining_side_by_side.py \
      --peer_python=/work/peer-venv/bin/python [--image_counts=1,4] \
      [--rounds=2] [--policies=float32,mixed_bfloat16]

The same image-level TFRecord (``--image_counts`` synthetic 600x1024 JPEG
images, one image-level label each) is mined by

* ``ours/<policy>``: ``mining_pipeline.run_mining`` (the Beam pipeline of
  ``mine_boxes``, DirectRunner) with ``detectors.checkpoint_detector`` on
  configs/ilsvrc13.config's model (IRv2, keep-aspect 600/1024 padded to
  1024x1024, 300 proposals, batch 1 as in that config), random weights, under
  the given precision policy;
* ``odapi``: the OD API's ``generate_detection_data`` Beam job on a SavedModel
  of the same model exported by the OD API's ``exporter_lib_v2``
  (``peer_generate_detections.py``, peer venv; it runs one image per call).

Each run is its own process; the order rotates every round so that every side
sees the same load. Per run: wall time, child CPU time
(``getrusage(RUSAGE_CHILDREN)``), load average before and after. With two
image counts, the per-image figures are marginal ((large - small) / extra
images): process start, imports, model load and tracing cancel out; the
end-to-end figures at the larger count are given too.

Writes ``<output_dir>/mining_side_by_side.{json,md}`` atomically after every run.
"""
import quiet_first  # pylint: disable=unused-import  # before TensorFlow
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

import machine
import peer_compare

FLAGS = flags.FLAGS


def define_flags():
  """The bench's flags; defined when it runs (tests import this module
  beside other benches that define flags of the same names)."""
  flags.DEFINE_string('peer_python', None, 'python of the peer venv '
                      '(odapi-reference/peer_setup.sh); without it only our '
                      'side runs.')
  flags.DEFINE_list('image_counts', ['1', '4'], 'Images per run: one count '
                    '(end to end) or two (marginal per-image figures).')
  flags.DEFINE_integer('rounds', 2, 'Rounds; each runs every side once per '
                       'image count, in rotating order.')
  flags.DEFINE_list('policies', ['float32', 'mixed_bfloat16'],
                    'Precision policies of our side.')
  flags.DEFINE_string('output_dir', 'bench/results', 'Where the results go.')
  flags.DEFINE_string('work_dir', None, 'Scratch directory (default: a '
                      'temporary one, removed at the end).')
  flags.DEFINE_integer('timeout', 1200, 'Seconds allowed per run.')
  flags.DEFINE_string('worker', None, 'Internal: prepare or ours.')
  flags.DEFINE_string('policy', 'float32', 'Internal: policy of an ours worker.')
  flags.DEFINE_string('input', None, 'Internal: TFRecord of a worker.')


CONFIG = 'configs/ilsvrc13.config'
NUM_CLASSES = 100
HEIGHT, WIDTH = 600, 1024
_HERE = os.path.dirname(os.path.abspath(__file__))
_PEER_SCRIPT = os.path.join(_HERE, 'peer_generate_detections.py')
_FLAGS_OF_INTEREST = ('avx2', 'avx512f', 'avx512_bf16', 'avx512_fp16',
                      'amx_tile', 'amx_bf16', 'amx_int8')


def cpu_flags(path='/proc/cpuinfo'):
  """The vector / matrix extensions of the first CPU in ``path``."""
  try:
    with open(path) as f:
      for line in f:
        if line.startswith('flags'):
          present = set(line.split(':', 1)[1].split())
          return {name: name in present for name in _FLAGS_OF_INTEREST}
  except OSError:
    pass
  return {}


def id_to_name():
  return {i: 'class_%d' % i for i in range(1, NUM_CLASSES + 1)}


def write_images(path, count, seed=0):
  """``count`` smooth random 600x1024 JPEG image-level records, one label each."""
  import numpy as np
  from object_detection_note.data.writing import beam_io
  from object_detection_note.data.records import tf_example_codec
  rng = np.random.default_rng(seed)
  names = id_to_name()
  records = []
  for index in range(count):
    coarse = rng.integers(0, 256, (HEIGHT // 40 + 1, WIDTH // 40 + 1, 3))
    pixels = np.kron(coarse, np.ones((40, 40, 1)))[:HEIGHT, :WIDTH]
    pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255)
    label = int(rng.integers(1, NUM_CLASSES + 1))
    records.append(tf_example_codec.serialize_record(
        tf_example_codec.DetectionRecord(
            image_bytes=tf_example_codec.encode_image(
                pixels.astype(np.uint8), 'jpeg'),
            source_id='image_%04d' % index, height=HEIGHT, width=WIDTH,
            image_labels=[label], image_label_texts=[names[label]])))
  beam_io.write_tfrecord_atomically(path, records)


def _prepare(work_dir, counts):
  """Worker: image TFRecords and our random-weight checkpoint (kept if
  ``work_dir`` has them)."""
  import throughput_bench
  from object_detection_note.config import config_util
  for count in counts:
    path = os.path.join(work_dir, 'images_%d.tfrecord' % count)
    if not os.path.exists(path):
      write_images(path, count)
  checkpoint_dir = os.path.join(work_dir, 'ours_checkpoint')
  if not os.path.exists(os.path.join(checkpoint_dir, 'checkpoint')):
    configs = config_util.get_configs_from_pipeline_file(CONFIG)
    throughput_bench.write_random_checkpoint(configs, checkpoint_dir)
  print(json.dumps({'checkpoint_dir': checkpoint_dir}))


def _mine_ours(work_dir, input_path, policy):
  """Worker: our Beam mining pipeline; prints {"images", "seconds"}."""
  from object_detection_note.config import config_util
  from object_detection_note.mining import detectors
  from object_detection_note.mining import mining_pipeline
  from object_detection_note.mining import mining_spec
  configs = config_util.get_configs_from_pipeline_file(CONFIG)
  mining = configs['note'].mining
  batch_size = mining.batch_size or 1
  start = time.perf_counter()
  spec = detectors.detector_spec(
      CONFIG, os.path.join(work_dir, 'ours_checkpoint'),
      batch_size=batch_size, policy=policy)
  output_dir = tempfile.mkdtemp(prefix='mined_', dir=work_dir)
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(id_to_name(), mining.score_threshold,
                             num_shards=1, batch_size=batch_size),
      input_path, output_dir, spec)
  print(json.dumps({'images': metrics['images'],
                    'seconds': time.perf_counter() - start,
                    'mined_boxes': metrics['mined_boxes'],
                    'batch_size': batch_size}))


def _children_cpu():
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def timed_run(command, env=None, cwd=None, timeout=1200):
  """Runs ``command``; its last JSON line plus wall, child CPU and load."""
  load_before = machine.load_average()
  cpu_before = _children_cpu()
  start = time.perf_counter()
  try:
    completed = subprocess.run(command, capture_output=True, text=True,
                               timeout=timeout, env=env, cwd=cwd, check=False)
  except subprocess.TimeoutExpired:
    return {'error': 'timed out after %d s' % timeout}
  wall = time.perf_counter() - start
  result = {'process_seconds': wall,
            'cpu_seconds': _children_cpu() - cpu_before,
            'load_avg_before': load_before,
            'load_avg_after': machine.load_average()}
  lines = [l for l in completed.stdout.splitlines() if l.startswith('{')]
  if completed.returncode != 0 or not lines:
    result['error'] = 'exit code %d\n%s' % (completed.returncode,
                                           completed.stderr[-3000:])
  else:
    result.update(json.loads(lines[-1]))
  return result


def _side_command(side, work_dir, count):
  path = os.path.join(work_dir, 'images_%d.tfrecord' % count)
  if side == 'odapi':
    return [FLAGS.peer_python, _PEER_SCRIPT, 'mine', path,
            os.path.join(tempfile.mkdtemp(prefix='odapi_', dir=work_dir),
                         'detections.tfrecord'),
            os.path.join(work_dir, 'odapi', 'exported', 'saved_model')]
  return [sys.executable, os.path.abspath(__file__), '--worker=ours',
          '--policy=%s' % side.split('/', 1)[1], '--work_dir=%s' % work_dir,
          '--input=%s' % path]


def _median(values):
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def summarise(runs, sides, counts):
  """Per side: medians of the end-to-end and marginal figures; ratios."""
  small, large = min(counts), max(counts)
  summary = {}
  for side in sides:
    by_round = {}
    for run in runs:
      if run['side'] == side and 'error' not in run:
        by_round.setdefault(run['round'], {})[run['images_requested']] = run
    end_to_end, marginal_rate, marginal_cpu = [], [], []
    for pair in by_round.values():
      if large in pair:
        end_to_end.append(large / pair[large]['process_seconds'])
      if small != large and small in pair and large in pair:
        extra = large - small
        wall = pair[large]['process_seconds'] - pair[small]['process_seconds']
        cpu = pair[large]['cpu_seconds'] - pair[small]['cpu_seconds']
        marginal_rate.append(extra / wall if wall > 0 else None)
        marginal_cpu.append(cpu / extra)
    summary[side] = {
        'end_to_end_images_per_s': _median(end_to_end),
        'marginal_images_per_s': _median(marginal_rate),
        'marginal_cpu_s_per_image': _median(marginal_cpu),
    }
  ratios = {}
  reference = summary.get('odapi', {}).get('marginal_cpu_s_per_image')
  for side in sides:
    cpu = summary[side]['marginal_cpu_s_per_image']
    if side != 'odapi' and reference and cpu:
      # Images/s per core = 1 / (CPU-s per image): the ratio of throughputs.
      ratios['%s_over_odapi_images_per_cpu_s' % side] = reference / cpu
  return summary, ratios


def _fmt(value, pattern='%.2f'):
  return '—' if value is None else pattern % value


def markdown(results):
  lines = ['# Mining side by side: project vs upstream OD API',
           '',
           'Command: `%s`' % results['command'], '',
           'Machine: %s, %s cores; CPU flags: %s' % (
               results['machine'].get('cpu_model'),
               results['machine'].get('usable_cpus'),
               ', '.join('%s=%s' % (k, 'yes' if v else 'no')
                         for k, v in results['cpu_flags'].items())), '',
           'Model: %s (IRv2, 100 classes, keep-aspect 600/1024 padded to '
           '1024x1024, 300 proposals), random weights; %s synthetic '
           '600x1024 JPEG images per run; DirectRunner, 1 worker.' % (
               CONFIG, ' and '.join(results['image_counts'])), '',
           '| side | marginal images/s | marginal CPU-s / image | '
           'end-to-end images/s |', '|---|---|---|---|']
  for side, row in results['summary'].items():
    lines.append('| %s | %s | %s | %s |' % (
        side, _fmt(row['marginal_images_per_s'], '%.3f'),
        _fmt(row['marginal_cpu_s_per_image'], '%.1f'),
        _fmt(row['end_to_end_images_per_s'], '%.3f')))
  lines += ['']
  for name, value in results['ratios'].items():
    lines.append('* %s: %.2f' % (name, value))
  lines += ['', '| round | side | images | process s | CPU s | load before '
            '| load after | note |', '|---|---|---|---|---|---|---|---|']
  for run in results['runs']:
    lines.append('| %d | %s | %d | %s | %s | %s | %s | %s |' % (
        run['round'], run['side'], run['images_requested'],
        _fmt(run.get('process_seconds'), '%.1f'),
        _fmt(run.get('cpu_seconds'), '%.1f'),
        run.get('load_avg_before'), run.get('load_avg_after'),
        run['error'].splitlines()[-1][:80] if 'error' in run else ''))
  return '\n'.join(lines) + '\n'


def _write(results):
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  base = os.path.join(FLAGS.output_dir, 'mining_side_by_side')
  for suffix, text in (('.json', json.dumps(results, indent=2) + '\n'),
                       ('.md', markdown(results))):
    temporary = base + suffix + '.tmp'
    with open(temporary, 'w') as f:
      f.write(text)
    os.replace(temporary, base + suffix)


def _run_all(work_dir):
  counts = sorted({int(c) for c in FLAGS.image_counts})
  if len(counts) > 2:
    raise app.UsageError('--image_counts: give one or two counts')
  sides = ['ours/%s' % p for p in FLAGS.policies]
  environment = None
  if FLAGS.peer_python:
    environment = peer_compare.peer_environment(FLAGS.peer_python)
    sides.insert(1, 'odapi')
  results = {'command': ' '.join(['bench/mining_side_by_side.py'] +
                                 sys.argv[1:]),
             'machine': machine.describe(), 'cpu_flags': cpu_flags(),
             'image_counts': [str(c) for c in counts], 'config': CONFIG,
             'runs': [], 'setup': {}}
  # A kept --work_dir's inputs, checkpoint and export are reused.
  prepared = all(os.path.exists(os.path.join(work_dir, name)) for name in (
      ['ours_checkpoint/checkpoint'] +
      ['images_%d.tfrecord' % c for c in counts]))
  results['setup']['prepare'] = {'reused': work_dir} if prepared else timed_run(
      [sys.executable, os.path.abspath(__file__), '--worker=prepare',
       '--work_dir=%s' % work_dir, '--image_counts=%s' %
       ','.join(map(str, counts))], timeout=FLAGS.timeout)
  if 'error' in results['setup']['prepare']:
    raise RuntimeError('preparing the inputs failed: %s' %
                       results['setup']['prepare']['error'])
  exported = os.path.join(work_dir, 'odapi', 'exported', 'saved_model',
                          'saved_model.pb')
  if FLAGS.peer_python and os.path.exists(exported):
    results['setup']['odapi_export'] = {'reused': work_dir}
  elif FLAGS.peer_python:
    results['setup']['odapi_export'] = timed_run(
        [FLAGS.peer_python, _PEER_SCRIPT, 'export',
         os.path.join(work_dir, 'odapi')], env=environment, cwd=_HERE,
        timeout=FLAGS.timeout)
    if 'error' in results['setup']['odapi_export']:
      raise RuntimeError('the OD API export failed: %s' %
                         results['setup']['odapi_export']['error'])
  for index in range(FLAGS.rounds):
    order = sides[index % len(sides):] + sides[:index % len(sides)]
    for count in (counts if index % 2 == 0 else counts[::-1]):
      for side in order:
        run = timed_run(_side_command(side, work_dir, count),
                        env=environment if side == 'odapi' else None,
                        cwd=_HERE if side == 'odapi' else None,
                        timeout=FLAGS.timeout)
        run.update({'round': index, 'side': side, 'images_requested': count})
        if 'error' not in run and run['images'] != count:
          run['error'] = 'mined %d images of %d' % (run['images'], count)
        print('%s x%d: %s' % (side, count, json.dumps(
            {k: v for k, v in run.items() if k != 'error'})), flush=True)
        results['runs'].append(run)
        results['summary'], results['ratios'] = summarise(
            results['runs'], sides, counts)
        _write(results)
  return results


def main(argv):
  del argv
  if FLAGS.worker == 'prepare':
    _prepare(FLAGS.work_dir, [int(c) for c in FLAGS.image_counts])
  elif FLAGS.worker == 'ours':
    _mine_ours(FLAGS.work_dir, FLAGS.input, FLAGS.policy)
  elif FLAGS.work_dir:
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    _run_all(FLAGS.work_dir)
  else:
    with tempfile.TemporaryDirectory(prefix='mining_sbs_') as work_dir:
      _run_all(work_dir)


if __name__ == '__main__':
  sys.path.insert(0, os.path.dirname(_HERE))
  define_flags()
  app.run(main)
