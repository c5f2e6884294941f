"""Mining and dataset conversion on a distributed Beam runner (Dask).

A local dask.distributed cluster of two worker processes stands in for a
fleet; Beam's DaskRunner runs the same pipelines there as on the default
in-process runner, and both must give byte-identical shards, the same
metrics and the same manifest. Also: the mining count check (processed vs
input images, written vs mined records) fails a run that lost records.
"""
import os
import sys

import apache_beam as beam
import pytest
import tensorflow as tf

from object_detection_note.core import file_io
from object_detection_note.data.writing import beam_io
from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.mining import mining_metrics
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec

sys.path.insert(0, os.path.dirname(__file__))
import test_mining_pipeline as mining_test  # pylint: disable=g-import-not-at-top,wrong-import-position

distributed = pytest.importorskip('distributed')
_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


@pytest.fixture(scope='module')
def dask_options():
  """Beam options of the DaskRunner on a local cluster of 2 processes."""
  paths = [os.path.dirname(__file__), _ROOT, os.environ.get('PYTHONPATH', '')]
  patch = pytest.MonkeyPatch()
  # Worker processes inherit the environment: the package and the fake
  # detector must be importable there, as on a real fleet.
  patch.setenv('PYTHONPATH', os.pathsep.join(p for p in paths if p))
  cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                     processes=True, dashboard_address=None)
  yield beam_io.pipeline_options([
      '--runner=DaskRunner',
      '--dask_client_address=' + cluster.scheduler_address])
  while True:  # the runner opens a client per pipeline and leaves it open
    try:
      distributed.default_client().close()
    except ValueError:
      break
  cluster.close()
  patch.undo()


def _files(directory):
  return {name: open(os.path.join(directory, name), 'rb').read()
          for name in sorted(os.listdir(directory))}


def _mine(tmp_path, name, options):
  pattern = mining_test._write_input(str(tmp_path), mining_test._records())
  out_dir = str(tmp_path / name)
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(score_threshold=0.9,
                             id_to_name={1: 'bright', 2: 'dark'},
                             num_shards=3, batch_size=5),
      pattern, out_dir, mining_test.SPEC, pipeline_options=options)
  return metrics, _files(out_dir)


def test_mining_on_dask_equals_default_runner(tmp_path, dask_options):
  metrics, files = _mine(tmp_path, 'default', None)
  dask_metrics, dask_files = _mine(tmp_path, 'dask', dask_options)
  # 24 images in batches of 5: the last, partial batch is mined too.
  assert metrics['images'] == metrics['input_images'] == 24
  assert metrics['mined_boxes'] == 32
  assert sum(metrics['shards'].values()) == metrics['images_with_boxes']
  assert dask_metrics == metrics
  assert sorted(files) == sorted(dask_files)
  assert files == dask_files


def test_converter_on_dask_equals_default_runner(tmp_path, dask_options):
  kwargs = dict(seed=2, num_train_images=16, num_val_images=6,
                seed_images_per_category=1, num_shards=2,
                config=synthetic_scenes.SceneConfig(image_size=32,
                                                    max_objects=2))
  synthetic_dataset.create_dataset(str(tmp_path / 'default'), **kwargs)
  synthetic_dataset.create_dataset(str(tmp_path / 'dask'),
                                   options=dask_options, **kwargs)
  files = _files(str(tmp_path / 'default'))
  assert 'manifest.json' in files and len(files) > 3
  assert files == _files(str(tmp_path / 'dask'))


def _outcomes(input_images, processed, shard_records):
  stats = mining_metrics.MiningStats()
  for _ in range(processed):
    stats.add_image([1], [True], [1])
  sweep = [[0, 0]] * len(mining_spec.DEFAULT_SWEEP)
  return ([('input', input_images), ('stats', (stats, sweep))] +
          [('shard', ('s%d' % i, n)) for i, n in enumerate(shard_records)])


@pytest.mark.parametrize('input_images, processed, shards, message', [
    (405, 391, [391], 'processed 391 images but read 405'),
    (4, 4, [4, 0], 'wrote 4 records in 2 shards, expected 4'),
    (4, 4, [3], 'wrote 3 records in 1 shards, expected 4'),
])
def test_count_check_fails_on_lost_records(tmp_path, input_images, processed,
                                           shards, message):
  path = str(tmp_path / 'mining_metrics.json')
  check = mining_pipeline._CheckAndWriteMetrics(path, mining_spec.MiningSpec(
      sweep=mining_spec.DEFAULT_SWEEP, score_threshold=0.5,
      id_to_name={1: 'a'}, num_shards=1))
  with pytest.raises(mining_pipeline.MiningCountError, match=message):
    list(check.process(_outcomes(input_images, processed, shards)))
  assert not os.path.exists(path)
  # Consistent counts pass and are written.
  [payload] = check.process(_outcomes(4, 4, [4]))
  assert payload['input_images'] == payload['images'] == 4
  assert file_io.read_json(path)['shards'] == {'s0': 4}


def test_run_without_metrics_is_an_error(tmp_path, monkeypatch):
  """A runner that ends without running the last step (as DaskRunner did)."""
  monkeypatch.setattr(mining_pipeline, 'build_mining_pipeline',
                      lambda pipeline, *args: pipeline | beam.Create([1]))
  pattern = mining_test._write_input(str(tmp_path), mining_test._records(4))
  with pytest.raises(mining_pipeline.MiningCountError,
                     match='without writing'):
    mining_pipeline.run_mining(
        mining_spec.MiningSpec({1: 'a'}, 0.9), pattern,
        str(tmp_path / 'out'), mining_test.SPEC)
  assert not tf.io.gfile.exists(str(tmp_path / 'out' /
                                    mining_pipeline.METRICS_FILE))
