"""Training under MirroredStrategy on 2 logical CPU devices.

Logical devices must be configured before TensorFlow initialises its
devices, so the training runs in a fresh subprocess.
"""
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

import training_test_utils as utils
from object_detection_note.core.fields import LossKeys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

_SCRIPT = r'''
import json
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from object_detection_note.config import config_util
from object_detection_note.core.fields import InputFields
from object_detection_note.training import train_loop

config, model_dir = sys.argv[1:3]
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
trainer = train_loop.Trainer(config_util.get_configs_from_pipeline_file(
    config), strategy)
images = strategy.experimental_local_results(
    next(iter(trainer.dataset()))[InputFields.image])
result = train_loop.train_loop(config, model_dir, num_train_steps=2,
                               strategy=strategy, checkpoint_every_n=2,
                               log_every_n=1)
print(json.dumps({
    'replicas': strategy.num_replicas_in_sync,
    'shapes': [list(i.shape) for i in images],
    'devices': [i.device for i in images],
    'replicas_differ': bool(np.any(images[0].numpy() != images[1].numpy())),
    'result': result,
}))
'''


def test_mirrored_strategy_on_two_cpu_devices(tmp_path, tiny_data_dir):
  config = utils.write_pipeline(tmp_path / 'pipeline.config', tiny_data_dir,
                                batch_size=2)
  model_dir = str(tmp_path / 'model')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
             PYTHONPATH=_ROOT)
  run = subprocess.run([sys.executable, '-c', _SCRIPT, config, model_dir],
                       env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  report = json.loads(run.stdout.strip().splitlines()[-1])

  # The global batch of 2 is split: one different image per replica.
  assert report['replicas'] == 2
  assert report['shapes'] == [[1, 64, 64, 3], [1, 64, 64, 3]]
  assert [d.split(':')[-2:] for d in report['devices']] == [['CPU', '0'],
                                                            ['CPU', '1']]
  assert report['replicas_differ']

  result = report['result']
  assert result['step'] == 2
  losses = {k: v for k, v in result.items() if k != 'step'}
  assert LossKeys.total in losses
  assert all(np.isfinite(v) for v in losses.values())
  # One optimizer update per step, not one per replica.
  tensors = utils.checkpoint_tensors(os.path.join(model_dir, 'ckpt-2'))
  assert tensors['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == 2
  assert tensors['optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'] == 2
  assert tf.train.latest_checkpoint(model_dir).endswith('ckpt-2')
  steps = utils.read_scalars(os.path.join(model_dir, 'train'))[LossKeys.total]
  assert [s for s, _ in steps] == [1, 2]
  assert [v for _, v in steps][-1] == losses[LossKeys.total]
