"""Tiny synthetic data, tiny pipeline configs and event-file reading.

Shared by the training tests and ``tests/test_model_main_tf2.py``: 64x64
images, the tiny feature extractor, 8 proposals, so that a training step
traces and runs in seconds on a CPU.
"""
import glob
import os

import tensorflow as tf

from object_detection_note.core.fields import DatasetFiles
from object_detection_note.core.fields import Splits
from object_detection_note.data.writing import dataset_writer
from object_detection_note.data.formats import synthetic_dataset
from object_detection_note.data.formats import synthetic_scenes

IMAGE_SIZE = 64
NUM_SOURCE_CLASSES = len(synthetic_scenes.SOURCE_NAMES)


def make_tiny_dataset(output_dir, seed=1):
  """Writes the synthetic splits at 64x64 px (24 train, 8 val scenes)."""
  synthetic_dataset.create_dataset(
      output_dir, seed=seed, num_train_images=24, num_val_images=8,
      seed_images_per_category=1,
      config=synthetic_scenes.SceneConfig(image_size=IMAGE_SIZE,
                                          max_objects=3))
  return output_dir


def num_images(data_dir, split):
  """Image count of ``split`` from the dataset manifest."""
  return dataset_writer.read_manifest(data_dir)['splits'][split]['images']


def _split_glob(data_dir, split):
  return os.path.join(data_dir, split + '.tfrecord-*')


_NOTE_BLOCK = '''note {
  rpn_cls_a: true
  det_cls_a: true
  mask_mined_background: true
}'''


def pipeline_text(data_dir, num_classes=NUM_SOURCE_CLASSES, batch_size=2,
                  num_steps=4, learning_rate='0.001', shuffle=True, flip=True,
                  num_epochs=0, train_split=Splits.source_train,
                  eval_split=Splits.source_val,
                  label_map=DatasetFiles.source_label_map,
                  fine_tune_checkpoint=None, fine_tune_checkpoint_type=None,
                  note=False):
  """A tiny Faster R-CNN pipeline config (text proto) over ``data_dir``.

  With ``note=True`` the model has the NOTE heads (rpn-cls-a, det-cls-a with
  the mined-background mask); otherwise it is a plain Faster R-CNN.
  """
  label_map_path = os.path.join(data_dir, label_map)
  fine_tune = ''
  if fine_tune_checkpoint:
    fine_tune += 'fine_tune_checkpoint: "%s"\n' % fine_tune_checkpoint
  if fine_tune_checkpoint_type:
    fine_tune += ('fine_tune_checkpoint_type: "%s"\n' %
                  fine_tune_checkpoint_type)
  return '''
model {
  faster_rcnn {
    num_classes: %(num_classes)d
    image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
    feature_extractor {
      type: "faster_rcnn_tiny_keras"
      first_stage_features_stride: 8
      batch_norm_trainable: true
    }
    first_stage_anchor_generator {
      grid_anchor_generator {
        height: 32 width: 32 height_stride: 8 width_stride: 8
        scales: [0.5, 1.0] aspect_ratios: [1.0]
      }
    }
    first_stage_box_predictor_kernel_size: 3
    first_stage_box_predictor_depth: 16
    first_stage_minibatch_size: 32
    first_stage_positive_balance_fraction: 0.5
    first_stage_nms_iou_threshold: 0.7
    first_stage_max_proposals: 8
    first_stage_localization_loss_weight: 2.0
    first_stage_objectness_loss_weight: 1.0
    initial_crop_size: 4
    second_stage_box_predictor {
      mask_rcnn_box_predictor { use_dropout: false }
    }
    second_stage_batch_size: 8
    second_stage_balance_fraction: 0.25
    second_stage_post_processing {
      batch_non_max_suppression {
        score_threshold: 0.0 iou_threshold: 0.6
        max_detections_per_class: 5 max_total_detections: 10
      }
      score_converter: SOFTMAX
    }
    second_stage_localization_loss_weight: 2.0
    second_stage_classification_loss_weight: 1.0
  }
}
train_config {
  batch_size: %(batch_size)d
  num_steps: %(num_steps)d
  optimizer {
    adam_optimizer {
      learning_rate {
        constant_learning_rate { learning_rate: %(learning_rate)s }
      }
    }
    use_moving_average: false
  }
  gradient_clipping_by_norm: 10.0
  %(flip)s
  %(fine_tune)s
}
train_input_reader {
  label_map_path: "%(label_map_path)s"
  shuffle: %(shuffle)s
  num_epochs: %(num_epochs)d
  max_number_of_boxes: 4
  tf_record_input_reader { input_path: "%(train_glob)s" }
}
eval_config { metrics_set: "coco_detection_metrics" batch_size: 2 }
eval_input_reader {
  label_map_path: "%(label_map_path)s"
  shuffle: false
  num_epochs: 1
  max_number_of_boxes: 4
  tf_record_input_reader { input_path: "%(eval_glob)s" }
}
%(note)s
''' % dict(num_classes=num_classes, batch_size=batch_size,
           num_steps=num_steps, learning_rate=learning_rate,
           flip=('data_augmentation_options { random_horizontal_flip {} }'
                 if flip else ''),
           fine_tune=fine_tune, label_map_path=label_map_path,
           shuffle='true' if shuffle else 'false', num_epochs=num_epochs,
           train_glob=_split_glob(data_dir, train_split),
           eval_glob=_split_glob(data_dir, eval_split),
           note=(_NOTE_BLOCK if note else ''))


def write_pipeline(path, data_dir, **kwargs):
  """Writes ``pipeline_text(data_dir, **kwargs)`` to ``path``; returns it."""
  with open(path, 'w') as f:
    f.write(pipeline_text(data_dir, **kwargs))
  return str(path)


def read_scalars(directory):
  """Scalars of every event file in ``directory``.

  Returns:
    dict tag → list of (step, value) over all files (two runs into one
    directory both appear).
  """
  scalars = {}
  for path in sorted(glob.glob(os.path.join(directory, 'events.out.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == 'images':
          continue  # evaluation images (read_images)
        scalars.setdefault(value.tag, []).append(
            (event.step, float(tf.make_ndarray(value.tensor))))
  return scalars


def read_images(directory):
  """Image summaries of every event file in ``directory``.

  Returns:
    dict tag → list of (step, uint8 [H, W, 3] image).
  """
  images = {}
  for path in sorted(glob.glob(os.path.join(directory, 'events.out.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name != 'images':
          continue
        # [width, height, encoded image...] as tf.summary.image writes it.
        encoded = tf.make_ndarray(value.tensor)[2:]
        images.setdefault(value.tag, []).extend(
            (event.step, tf.io.decode_png(png).numpy()) for png in encoded)
  return images


def checkpoint_tensors(path):
  """Every saved tensor of a checkpoint (prefix): key → numpy value."""
  reader = tf.train.load_checkpoint(path)
  return {key: reader.get_tensor(key)
          for key in reader.get_variable_to_shape_map()
          if key != '_CHECKPOINTABLE_OBJECT_GRAPH'}
