"""Training-step benchmark: plain Faster R-CNN, NOTE and NOTE+distillation.

A case is (extractor, image size, first_stage_max_proposals, variant):

* ``irv2_320``: Inception-ResNet-v2 at 320x320, 64 proposals, batch 1;
* ``irv2_600x1024``: Inception-ResNet-v2 at 600x1024, 300 proposals,
  batch 1 (the paper's setting, §4.1);
* ``tiny``: the tiny extractor with ``configs/synthetic.config`` as is
  (128x128, 64 proposals, batch 8).

Variants: ``plain`` (no ``note`` block: a Faster R-CNN), ``note`` (rpn-cls-a,
det-cls-a, mined-background mask) and ``distill`` (``note`` + det-cls-s
distilled from a frozen source detector of the same architecture, which adds
its forward pass to the step).

The IRv2 models follow the OD API's ``faster_rcnn_inception_resnet_v2``
configs (grid anchors 256 px, 4 scales x 3 ratios, stride 16, 17x17 crops,
64 sampled proposals, momentum SGD) with the paper's COCO split (60 target,
20 source categories). Weights are random: the step time does not depend on
them. The step measured is ``training.train_loop.Trainer.distributed_step``,
the one ``model_main_tf2`` runs, on a fixed synthetic batch (no input
pipeline).
"""
import dataclasses
import resource
import statistics
import time

import numpy as np
import tensorflow as tf

import flops as flops_lib
import machine

from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.core.fields import InputFields
from object_detection_note.builders import mixed_precision
from object_detection_note.training import train_loop

SYNTHETIC_CONFIG = 'configs/synthetic.config'
SYNTHETIC_SOURCE_CONFIG = 'configs/synthetic_source.config'
VARIANTS = ('plain', 'note', 'distill')
IRV2_TYPE = 'faster_rcnn_inception_resnet_v2_keras'
TARGET_CLASSES = 60  # COCO non-VOC categories (paper §4.2).
SOURCE_CLASSES = 20  # COCO VOC categories.
MAX_BOXES = 16


@dataclasses.dataclass(frozen=True)
class Setting:
  """Model size of a benchmark family."""
  extractor: str  # 'irv2' or 'tiny'
  height: int
  width: int
  max_proposals: int
  batch_size: int
  description: str


SETTINGS = {
    'irv2_320': Setting('irv2', 320, 320, 64, 1,
                        'IRv2 320x320, 64 proposals, batch 1'),
    'irv2_600x1024': Setting('irv2', 600, 1024, 300, 1,
                             'IRv2 600x1024, 300 proposals, batch 1'),
    'tiny': Setting('tiny', 128, 128, 64, 8,
                    'tiny extractor, synthetic.config (128x128, 64 '
                    'proposals, batch 8)'),
}


def case_names(settings=None, variants=VARIANTS):
  """'<setting>/<variant>' names, settings in SETTINGS order."""
  return ['%s/%s' % (s, v) for s in (settings or SETTINGS) for v in variants]


def parse_case(case):
  setting, variant = case.split('/')
  if setting not in SETTINGS or variant not in VARIANTS:
    raise ValueError('unknown benchmark case %r; known: %s' %
                     (case, ', '.join(case_names())))
  return SETTINGS[setting], variant


def _irv2_model(model, setting, num_classes):
  """Turns the synthetic config's model block into the OD API IRv2 one."""
  frcnn = model.faster_rcnn
  frcnn.num_classes = num_classes
  resizer = frcnn.image_resizer.fixed_shape_resizer
  resizer.height, resizer.width = setting.height, setting.width
  extractor = frcnn.feature_extractor
  extractor.type = IRV2_TYPE
  extractor.first_stage_features_stride = 16
  extractor.batch_norm_trainable = False
  grid = frcnn.first_stage_anchor_generator.grid_anchor_generator
  grid.height = grid.width = 256
  grid.height_stride = grid.width_stride = 16
  del grid.scales[:]
  grid.scales.extend([0.25, 0.5, 1.0, 2.0])
  del grid.aspect_ratios[:]
  grid.aspect_ratios.extend([0.5, 1.0, 2.0])
  frcnn.first_stage_box_predictor_depth = 512
  frcnn.first_stage_minibatch_size = 256
  frcnn.first_stage_max_proposals = setting.max_proposals
  frcnn.initial_crop_size = 17
  frcnn.second_stage_batch_size = 64
  nms = frcnn.second_stage_post_processing.batch_non_max_suppression
  nms.max_detections_per_class = 100
  nms.max_total_detections = 100


def pipeline_configs(setting, variant):
  """(target configs dict, source configs dict or None) of a case."""
  target = config_util.get_configs_from_pipeline_file(SYNTHETIC_CONFIG)
  source = None
  if variant == 'distill':
    source = config_util.get_configs_from_pipeline_file(
        SYNTHETIC_SOURCE_CONFIG)
  if setting.extractor == 'irv2':
    _irv2_model(target['model'], setting, TARGET_CLASSES)
    if source is not None:
      _irv2_model(source['model'], setting, SOURCE_CLASSES)
    train = target['train_config']
    train.batch_size = setting.batch_size
    train.optimizer.Clear()
    momentum = train.optimizer.momentum_optimizer
    momentum.learning_rate.constant_learning_rate.learning_rate = 0.0003
    momentum.momentum_optimizer_value = 0.9
    train.optimizer.use_moving_average = False
  if variant == 'plain':
    target['note'] = None
  elif variant == 'note':
    target['note'].ClearField('distillation')
  return target, source


def build_source_model(source_configs):
  """A frozen source detector with built variables (random weights)."""
  model = model_builder.build(source_configs['model'], is_training=False)
  inference.build_model_inputs(
      model, source_configs['model'].faster_rcnn.image_resizer)
  model.trainable = False
  return model


def synthetic_batch(setting, num_classes, seed=0):
  """A fixed training batch (InputFields keys) with 4 boxes per image."""
  rng = np.random.RandomState(seed)
  b, h, w = setting.batch_size, setting.height, setting.width
  boxes = np.zeros([b, MAX_BOXES, 4], np.float32)
  classes = np.zeros([b, MAX_BOXES], np.int32)
  weights = np.zeros([b, MAX_BOXES], np.float32)
  for i in range(b):
    for j in range(4):
      y, x = rng.uniform(0.0, 0.6, size=2)
      size_y, size_x = rng.uniform(0.15, 0.4, size=2)
      boxes[i, j] = [y, x, y + size_y, x + size_x]
      classes[i, j] = rng.randint(1, num_classes + 1)
      weights[i, j] = 1.0
  return {
      InputFields.image: tf.constant(
          rng.uniform(0, 255, size=[b, h, w, 3]).astype(np.float32)),
      InputFields.true_image_shape: tf.constant([[h, w, 3]] * b, tf.int32),
      InputFields.groundtruth_boxes: tf.constant(boxes),
      InputFields.groundtruth_classes: tf.constant(classes),
      InputFields.groundtruth_weights: tf.constant(weights),
      InputFields.num_groundtruth_boxes: tf.constant([4] * b, tf.int32),
      InputFields.is_mined: tf.constant([0.0] * b, tf.float32),
  }


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def run_case(case, steps, warmup=1, jit_compile=False, policy=None):
  """Builds a case's Trainer and times ``steps`` train steps after warm-up.

  Args:
    case: '<setting>/<variant>' (see ``case_names``).
    steps: timed steps (at least 1).
    warmup: untimed steps first (the first one traces and optimises).
    jit_compile: compile the step with XLA.
    policy: ``builders.mixed_precision`` policy of the trained model (None:
      the config's, float32).

  Returns:
    dict: case, description, variant, step_seconds and cpu_seconds (process
    CPU time) per timed step, their medians, build_s, first_step_s (the
    warm-up: tracing, graph optimisation and the steps), load averages
    before and after, number of trainable variables and the loss keys;
    policy, compute_dtype, flops_per_step (counted from the traced step's
    graph, ``flops.function_flops``) and achieved_flops_per_s (per median
    wall second).

  Raises:
    train_loop.NonFiniteLossError: if the last step's losses are not finite.
  """
  setting, variant = parse_case(case)
  steps = max(1, int(steps))
  load_before = machine.load_average()
  start = time.perf_counter()
  target, source = pipeline_configs(setting, variant)
  source_model = build_source_model(source) if source is not None else None
  trainer = train_loop.Trainer(target, tf.distribute.get_strategy(),
                               jit_compile=jit_compile,
                               source_model=source_model, policy=policy)
  batch = synthetic_batch(setting, target['model'].faster_rcnn.num_classes)
  build_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(max(1, warmup)):
    losses = trainer.distributed_step(batch)
    tf.nest.map_structure(lambda t: t.numpy(), losses)
  first_step_s = time.perf_counter() - start
  wall, cpu = [], []
  for _ in range(steps):
    cpu_start, start = _cpu_seconds(), time.perf_counter()
    losses = trainer.distributed_step(batch)
    values = {k: float(v) for k, v in losses.items()}
    wall.append(time.perf_counter() - start)
    cpu.append(_cpu_seconds() - cpu_start)
  train_loop.check_finite(steps, values)
  flops_per_step = flops_lib.function_flops(trainer.distributed_step, batch)
  return {
      'policy': trainer.policy,
      'compute_dtype': mixed_precision.compute_dtype(trainer.policy).name,
      'flops_per_step': flops_per_step,
      'achieved_flops_per_s': flops_per_step / statistics.median(wall),
      'achieved_flops_per_cpu_s': flops_per_step / statistics.median(cpu),
      'case': case,
      'description': setting.description,
      'variant': variant,
      'step_seconds': wall,
      'cpu_seconds': cpu,
      'median_s': statistics.median(wall),
      'median_cpu_s': statistics.median(cpu),
      'build_s': build_s,
      'first_step_s': first_step_s,
      'load_avg_before': load_before,
      'load_avg_after': machine.load_average(),
      'num_trainable_variables': len(trainer.model.trainable_variables),
      'loss_keys': sorted(values),
  }
