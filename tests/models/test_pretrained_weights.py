"""`python -m object_detection_note.pretrained` / `make pretrained`: Keras'
download and cache with its hash, a pre-placed file kept, exact copy
instructions offline, and the missing-weights error naming the command.
No test reaches the internet: files are served from 127.0.0.1.
"""
import functools
import hashlib
import http.server
import inspect
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tf_keras.src.applications import inception_resnet_v2 as keras_irv2
from tf_keras.src.applications import resnet as keras_resnet

from object_detection_note.models import pretrained_weights as pw
from object_detection_note.models import resnet
from object_detection_note.models import weights_io

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _md5(path):
  with open(path, 'rb') as f:
    return hashlib.md5(f.read()).hexdigest()


class _Server:
  """Serves a directory on 127.0.0.1 and counts GET requests."""

  def __init__(self, directory):
    self.directory = directory
    self.requests = []
    server = self

    class Handler(http.server.SimpleHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        server.requests.append(self.path)
        super().do_GET()

      def log_message(self, *args):
        pass

    self._httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=directory))
    self.url = 'http://127.0.0.1:%d/' % self._httpd.server_address[1]
    threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

  def close(self):
    self._httpd.shutdown()
    self._httpd.server_close()


@pytest.fixture(scope='module')
def served_resnet50(tmp_path_factory):
  """A randomly initialised ResNet-50 notop h5, served under Keras' name."""
  directory = tmp_path_factory.mktemp('served')
  tf.random.set_seed(3)
  app = tf_keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
  name = pw.WEIGHT_FILES['resnet50'].file_name
  app.save_weights(str(directory / name))
  server = _Server(str(directory))
  yield server, app, pw.WeightFile(name, server.url + name,
                                   _md5(str(directory / name)))
  server.close()


def test_weight_files_are_the_ones_keras_applications_download():
  irv2 = pw.WEIGHT_FILES['inception_resnet_v2']
  source = inspect.getsource(keras_irv2)
  assert irv2.url == keras_irv2.BASE_WEIGHT_URL + irv2.file_name
  assert '"%s"' % irv2.file_hash in source
  assert irv2.file_name.endswith('_notop.h5')
  for name in ('resnet50', 'resnet101'):
    assert pw.WEIGHT_FILES[name].file_hash == keras_resnet.WEIGHTS_HASHES[
        name][1]
  # The file the paper configs name.
  with open(os.path.join(_ROOT, 'configs', 'ilsvrc13_source.config')) as f:
    assert 'pretrained/%s' % irv2.file_name in f.read()


def test_fetch_through_keras_cache_then_backbone_equals_file(
    served_resnet50, tmp_path):
  server, app, weight_file = served_resnet50
  del server.requests[:]
  cache = tmp_path / 'keras'
  path = pw.fetch(weight_file, str(tmp_path / 'pretrained'), str(cache))
  assert path == str(tmp_path / 'pretrained' / weight_file.file_name)
  assert server.requests == ['/' + weight_file.file_name]
  assert (cache / 'models' / weight_file.file_name).exists()
  assert _md5(path) == weight_file.file_hash
  assert not [n for n in os.listdir(tmp_path / 'pretrained') if '.tmp-' in n]

  extractor = resnet.ResnetFeatureExtractor(is_training=False,
                                           first_stage_features_stride=16)
  extractor.load_classification_weights(path)
  backbone = extractor.classification_backbone
  assert len(backbone.weights) == len(app.weights)
  for loaded, saved in zip(backbone.weights, app.weights):
    np.testing.assert_array_equal(loaded.numpy(), saved.numpy())

  # Another output directory: Keras' cache answers, no second download.
  pw.fetch(weight_file, str(tmp_path / 'other'), str(cache))
  assert len(server.requests) == 1


def test_pre_placed_file_is_kept_and_wrong_one_fetched_again(tmp_path):
  served = tmp_path / 'served'
  served.mkdir()
  name = pw.WEIGHT_FILES['inception_resnet_v2'].file_name
  (served / name).write_bytes(b'weights' * 1000)
  server = _Server(str(served))
  try:
    weight_file = pw.WeightFile(name, server.url + name,
                                _md5(str(served / name)))
    output = tmp_path / 'pretrained'
    output.mkdir()
    (output / name).write_bytes((served / name).read_bytes())
    unreachable = pw.WeightFile(name, 'http://127.0.0.1:9/x',
                                weight_file.file_hash)
    assert pw.fetch(unreachable, str(output), str(tmp_path / 'keras')) == (
        str(output / name))
    (output / name).write_bytes(b'not the weights')
    pw.fetch(weight_file, str(output), str(tmp_path / 'keras'))
    assert server.requests == ['/' + name]
    assert _md5(str(output / name)) == weight_file.file_hash
  finally:
    server.close()


def test_offline_error_says_which_file_to_copy_where(tmp_path):
  irv2 = pw.WEIGHT_FILES['inception_resnet_v2']
  offline = pw.WeightFile(irv2.file_name, 'http://127.0.0.1:9/' +
                          irv2.file_name, irv2.file_hash)
  with pytest.raises(pw.PretrainedError) as error:
    pw.fetch(offline, str(tmp_path / 'pretrained'), str(tmp_path / 'keras'))
  message = str(error.value)
  assert 'could not download http://127.0.0.1:9/%s' % irv2.file_name in message
  assert 'copy the file %s' % irv2.file_name in message
  assert irv2.file_hash in message
  assert 'to %s' % (tmp_path / 'pretrained' / irv2.file_name) in message
  # The binary: one error line, exit status 1.
  run = subprocess.run(
      [sys.executable, '-m', 'object_detection_note.pretrained',
       '--model=inception_resnet_v2',
       '--output_dir=%s' % (tmp_path / 'pretrained'),
       '--origin=' + offline.url, '--cache_dir=%s' % (tmp_path / 'keras')],
      capture_output=True, text=True, cwd=_ROOT,
      env=dict(os.environ, PYTHONPATH=_ROOT), check=False)
  assert run.returncode == 1, run.stderr
  assert 'Traceback' not in run.stderr
  assert run.stderr.strip().splitlines()[-1].startswith(
      'pretrained: error: could not download')


def test_missing_weights_error_names_the_command(tmp_path):
  model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,))])
  irv2 = pw.WEIGHT_FILES['inception_resnet_v2']
  with pytest.raises(ValueError) as error:
    weights_io.load_backbone_weights(model, 'pretrained/' + irv2.file_name)
  assert ('Weight file not found: pretrained/%s (the Keras ImageNet weights '
          'of inception_resnet_v2; get them with: make pretrained (or python '
          '-m object_detection_note.pretrained --model=inception_resnet_v2 '
          '--output_dir=pretrained))' % irv2.file_name) == str(error.value)
  elsewhere = str(tmp_path / pw.WEIGHT_FILES['resnet50'].file_name)
  with pytest.raises(ValueError, match='get them with: python -m '
                     'object_detection_note.pretrained --model=resnet50 '
                     '--output_dir=%s' % tmp_path):
    weights_io.load_backbone_weights(model, elsewhere)
