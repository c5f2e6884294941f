"""End to end: the synthetic binary writes identical bytes in any process."""
import importlib.util
import os
import subprocess
import sys

from absl import flags

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.records import label_map_util
from object_detection_note.data.formats import synthetic_scenes

_ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
_PIPELINE = os.path.join(_ROOT, 'pipelines', 'create_synthetic_tfrecords.py')
_spec = importlib.util.spec_from_file_location('create_synthetic_tfrecords',
                                               _PIPELINE)
pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)

_ARGS = ['--seed=7', '--num_train_images=14', '--num_val_images=5',
         '--seed_images_per_category=1', '--image_size=40', '--num_shards=2']


def _files(directory):
  out = {}
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), 'rb') as f:
      out[name] = f.read()
  return out


def test_binary_in_process_and_subprocess_give_identical_bytes(tmp_path):
  in_process, other = str(tmp_path / 'a'), str(tmp_path / 'b')
  flag_values = flags.FlagValues()
  pipeline.define_flags(flag_values)
  argv = flag_values(['prog', '--output_dir=' + in_process] + _ARGS +
                     ['--direct_num_workers=1'], known_only=True)
  assert argv == ['prog', '--direct_num_workers=1']  # Beam options.
  pipeline.main(argv, flag_values)

  env = dict(os.environ, PYTHONHASHSEED='123',
             PYTHONPATH=os.path.abspath(_ROOT))
  subprocess.run([sys.executable, _PIPELINE, '--output_dir=' + other] + _ARGS,
                 check=True, env=env, capture_output=True)
  assert _files(in_process) == _files(other)

  manifest = dataset_writer.read_manifest(in_process)
  assert manifest['parameters']['seed'] == 7
  assert manifest['parameters']['num_train_images'] == 14
  assert sorted(manifest['splits']) == sorted(Splits.all)
  assert manifest['splits'][Splits.seed]['images'] == 6
  for split in Splits.all:
    assert manifest['splits'][split]['num_shards'] == 2
  assert label_map_util.get_id_to_name(
      os.path.join(in_process, DatasetFiles.target_label_map)) == {
          i + 1: n for i, n in enumerate(synthetic_scenes.TARGET_NAMES)}


def test_preset_and_scene_flags_set_the_scene_config():
  flag_values = flags.FlagValues()
  pipeline.define_flags(flag_values)
  flag_values(['prog', '--output_dir=unused'])
  assert pipeline.scene_config(flag_values) == synthetic_scenes.SceneConfig()
  flag_values(['prog', '--output_dir=unused', '--preset=noisy',
               '--noise_std=3', '--max_objects=5'])
  config = pipeline.scene_config(flag_values)
  noisy = synthetic_scenes.SCENE_PRESETS['noisy']
  assert config.noise_std == 3.0 and config.max_objects == 5
  assert config.min_visible == noisy.min_visible
  assert config.min_scale == noisy.min_scale
  assert config.mixed_fraction == noisy.mixed_fraction
