"""Every shipped config parses, validates and maps onto model parameters."""
import glob
import os

import pytest

from object_detection_note.builders import model_builder
from object_detection_note.config import config_util

_ROOT = os.path.join(os.path.dirname(__file__), '..')
CONFIGS = sorted(glob.glob(os.path.join(_ROOT, 'configs', '**', '*.config'),
                           recursive=True))
ABLATION = {
    'naive': (False, False, False, False),
    'det_a': (False, True, False, False),
    'det_az': (False, True, True, False),
    'det_az_rpn_a': (True, True, True, False),
    'det_az_rpn_a_distill': (True, True, True, True),
    'half_distill': (True, True, True, True),
}


def test_configs_are_shipped():
  names = {os.path.relpath(p, os.path.join(_ROOT, 'configs')) for p in CONFIGS}
  assert {'synthetic.config', 'ilsvrc13.config', 'openimages_v4.config'} <= names
  assert {'coco17_seed%d.config' % n for n in (12, 33, 55, 76, 96)} <= names
  assert {'ablation/%s.config' % n for n in ABLATION} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_parses_and_builds_params(path):
  configs = config_util.get_configs_from_pipeline_file(path)
  params = model_builder.build_params(configs['model'].faster_rcnn,
                                      configs['note'], num_source_classes=3)
  assert params.num_classes == configs['model'].faster_rcnn.num_classes
  note = configs['note']
  if note is not None and note.HasField('source_detector'):
    source = note.source_detector.pipeline_config_path
    assert os.path.exists(os.path.join(_ROOT, source)), source


@pytest.mark.parametrize('name', sorted(ABLATION))
def test_ablation_variant_switches(name):
  configs = config_util.get_configs_from_pipeline_file(
      os.path.join(_ROOT, 'configs', 'ablation', name + '.config'))
  switches = model_builder.note_switches(configs['note'], distill=True)
  assert (switches.rpn_cls_a, switches.det_cls_a,
          switches.mask_mined_background,
          switches.distillation_loss_weight > 0) == ABLATION[name]
  assert configs['note'].iterations >= 4


def test_paper_settings():
  configs = config_util.get_configs_from_pipeline_file(
      os.path.join(_ROOT, 'configs', 'ilsvrc13.config'))
  frcnn = configs['model'].faster_rcnn
  assert frcnn.feature_extractor.type == 'faster_rcnn_inception_resnet_v2_keras'
  resizer = frcnn.image_resizer.keep_aspect_ratio_resizer
  assert (resizer.min_dimension, resizer.max_dimension) == (600, 1024)
  assert frcnn.first_stage_max_proposals == 300
  optimizer = configs['train_config'].optimizer.momentum_optimizer
  assert optimizer.momentum_optimizer_value == pytest.approx(0.9)
  assert optimizer.learning_rate.constant_learning_rate.learning_rate == (
      pytest.approx(3e-4))
  assert configs['train_config'].batch_size == 1
  note = configs['note']
  assert (note.iterations, note.epochs_per_iteration) == (8, 20)
  assert note.mining.score_threshold == pytest.approx(0.99)
