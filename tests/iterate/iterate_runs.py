"""One iterate run on tiny synthetic data, sized by the test that runs it.

``MODEL`` and ``NOTE`` are the pipeline config templates of the iterate
tests (tiny extractor, 64x64 images; ``MODEL % dict(num_classes, num_steps,
data, side, train, val)``, ``NOTE % dict(data, source)``).
``run_iterate(root, size)`` writes a synthetic dataset, the source and
target configs under ``root`` and runs the whole loop: the data under
``root/data``, the run in ``root/run``.
"""
import dataclasses

from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes
from object_detection_note.iterate import driver

MODEL = """model { faster_rcnn {
  num_classes: %(num_classes)d
  image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
  feature_extractor { type: "faster_rcnn_tiny_keras"
    first_stage_features_stride: 8 batch_norm_trainable: true }
  first_stage_anchor_generator { grid_anchor_generator {
    height: 16 width: 16 height_stride: 8 width_stride: 8
    scales: [0.5, 1.0, 2.0] aspect_ratios: [1.0] } }
  first_stage_box_predictor_depth: 16
  first_stage_minibatch_size: 32
  first_stage_max_proposals: 16
  initial_crop_size: 6
  second_stage_batch_size: 8
  second_stage_post_processing { batch_non_max_suppression {
    iou_threshold: 0.6 max_detections_per_class: 5 max_total_detections: 10 }
    score_converter: SOFTMAX }
} }
train_config {
  batch_size: 4
  num_steps: %(num_steps)d
  optimizer { adam_optimizer { learning_rate { constant_learning_rate {
    learning_rate: 0.003 } } } use_moving_average: false }
}
train_input_reader { label_map_path: "%(data)s/%(side)s_label_map.pbtxt"
  max_number_of_boxes: 10
  tf_record_input_reader { input_path: "%(data)s/%(train)s.tfrecord-*" } }
eval_config { batch_size: 4 }
eval_input_reader { label_map_path: "%(data)s/%(side)s_label_map.pbtxt"
  max_number_of_boxes: 10
  tf_record_input_reader { input_path: "%(data)s/%(val)s.tfrecord-*" } }
"""

NOTE = """note {
  distillation { weight: 1.0 iterations: 1 }
  mining { score_threshold: 0.0 num_shards: 2 batch_size: 8 }
  iterations: 2
  initial_epochs: 2
  epochs_per_iteration: 1
  image_level_input_reader { label_map_path: "%(data)s/target_label_map.pbtxt"
    tf_record_input_reader { input_path: "%(data)s/image_level.tfrecord-*" } }
  source_detector { pipeline_config_path: "%(source)s" }
}
"""


@dataclasses.dataclass(frozen=True)
class RunSize:
  """How big a test's iterate run is.

  train_images, val_images: synthetic images per split (seed 3, one seed
  image per category); max_objects: objects per scene; source_steps: S's
  training steps; initial_epochs: note.initial_epochs (T^0);
  checkpoint_every_n: the run's checkpoint interval.
  """
  train_images: int
  val_images: int
  max_objects: int
  source_steps: int
  initial_epochs: int
  checkpoint_every_n: int


# test_iterate_loop: enough boxes for every iteration to mine some.
LOOP = RunSize(train_images=48, val_images=12, max_objects=4,
               source_steps=12, initial_epochs=2, checkpoint_every_n=5)
# test_stage_memory: the smallest run that still has every stage.
SMALL = RunSize(train_images=24, val_images=8, max_objects=3,
                source_steps=2, initial_epochs=1, checkpoint_every_n=100)


def write_configs(root, data, size, iterations=2):
  """Writes ``root/source.config`` (S) and ``root/target.config``; returns
  the target config's path (the iterate config, with ``iterations``)."""
  source = str(root / 'source.config')
  with open(source, 'w') as f:
    f.write(MODEL % dict(num_classes=len(synthetic_scenes.SOURCE_NAMES),
                         num_steps=size.source_steps, data=data,
                         side='source', train='source_train',
                         val='source_val'))
  target = str(root / 'target.config')
  with open(target, 'w') as f:
    f.write(MODEL % dict(num_classes=len(synthetic_scenes.TARGET_NAMES),
                         num_steps=1, data=data, side='target', train='seed',
                         val='target_val'))
    f.write(NOTE.replace('iterations: 2\n', 'iterations: %d\n' % iterations)
            .replace('initial_epochs: 2',
                     'initial_epochs: %d' % size.initial_epochs)
            % dict(data=data, source=source))
  return target


def run_iterate(root, size, iterations=2, **run_kwargs):
  """The whole loop at ``size``; returns (RunContext, report table).

  Args:
    root: pathlib directory (a pytest tmp_path).
    size: RunSize.
    iterations: note.iterations (the run trains T^0 .. T^iterations).
    **run_kwargs: passed to ``driver.run`` (e.g. stage_processes).
  """
  data = str(root / 'data')
  synthetic_dataset.create_dataset(
      data, seed=3, num_train_images=size.train_images,
      num_val_images=size.val_images, seed_images_per_category=1,
      config=synthetic_scenes.SceneConfig(image_size=64,
                                          max_objects=size.max_objects))
  target = write_configs(root, data, size, iterations)
  ctx = driver.make_context(target, str(root / 'run'),
                            checkpoint_every_n=size.checkpoint_every_n)
  return ctx, driver.run(ctx, **run_kwargs)
