"""Mining and evaluation throughput of the tiny model on data/synthetic.

The detector is ``configs/synthetic.config``'s model with freshly
initialised weights, saved once as a checkpoint (throughput does not depend
on the weights, only the number of mined boxes does).

* mining: ``mining.mining_pipeline.run_mining`` (the Beam pipeline of
  ``mine_boxes``) over copies of ``note.image_level_input_reader`` with 1 or N
  FnApiRunner workers (``--direct_num_workers``, multi-processing), timed end
  to end (pipeline start, one detector load per worker, detection, writes);
  plus the detector alone (``mining.detectors.checkpoint_detector`` on
  in-memory batches) as the per-process upper bound.
* evaluation: ``evaluation.eval_loop.evaluate_model`` (input pipeline,
  detection and COCO metrics) on the first eval input: a first pass (with
  tracing) and a second, timed pass.
"""
import os
import tempfile
import time

import tensorflow as tf

import flops as flops_lib
import machine
from object_detection_note.evaluation import inference
from object_detection_note.builders import model_builder
from object_detection_note.config import config_util
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import label_map_util
from object_detection_note.data.records import tf_example_codec
from object_detection_note.evaluation import eval_loop
from object_detection_note.mining import detectors
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec

CONFIG = 'configs/synthetic.config'


def write_random_checkpoint(configs, directory):
  """Saves a freshly initialised inference model; returns the prefix."""
  model = model_builder.build(configs['model'], is_training=False,
                              note_config=configs['note'])
  inference.build_model_inputs(model,
                               configs['model'].faster_rcnn.image_resizer)
  return tf.train.Checkpoint(model=model).save(
      os.path.join(directory, 'ckpt'))


def _image_level(configs):
  reader = configs['note'].image_level_input_reader
  return (reader.tf_record_input_reader.input_path[0], reader.label_map_path)


def _decoded_images(pattern, limit):
  images = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    for serialized in tf.data.TFRecordDataset(path):
      record = tf_example_codec.example_to_record(serialized.numpy())
      images.append(tf.io.decode_image(record.image_bytes, channels=3,
                                       expand_animations=False).numpy())
      if len(images) >= limit:
        return images
  return images


def replicate_image_level_set(pattern, directory, copies):
  """Writes ``copies`` shards of the image-level set with distinct ids.

  More work than the 405 synthetic images, and several input files, so that
  the pipeline's fixed costs (start, one model load per worker) weigh less
  and Beam has more than one file to spread over its workers.

  Returns:
    (glob of the copies, number of images).
  """
  serialized = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    serialized.extend(r.numpy() for r in tf.data.TFRecordDataset(path))
  prefix = os.path.join(directory, 'image_level_copies.tfrecord')
  for copy in range(copies):
    records = []
    for data in serialized:
      record = tf_example_codec.example_to_record(data)
      record.source_id = '%s_copy%d' % (record.source_id, copy)
      records.append(tf_example_codec.serialize_record(record))
    beam_io.write_tfrecord_atomically(
        beam_io.shard_path(prefix, copy, copies), records)
  return beam_io.shard_pattern(prefix), copies * len(serialized)


def _cpu_seconds():
  return sum(os.times()[:2])


def detector_throughput(configs, checkpoint, batch_size, max_images=64):
  """Images/s of the mining detector alone (after one warm-up batch).

  Returns:
    (images per wall second, images per CPU second of this process, the
    number of images, the [H, W, 3] shape of the first image).
  """
  pattern, _ = _image_level(configs)
  images = _decoded_images(pattern, max_images)
  detect = detectors.checkpoint_detector(CONFIG, checkpoint, batch_size)
  detect(images[:batch_size])
  cpu_start, start = _cpu_seconds(), time.perf_counter()
  detect(images)
  seconds = time.perf_counter() - start
  cpu_seconds = _cpu_seconds() - cpu_start
  return (len(images) / seconds, len(images) / cpu_seconds, len(images),
          images[0].shape)


def mining_flops_per_image(configs, checkpoint, batch_size, image_shape):
  """FLOPs per image of the mining detector's graph, and its compute dtype.

  Counted (``flops.function_flops``) on ``inference.detect``, the function
  ``detectors.checkpoint_detector`` runs, traced for one batch of
  ``batch_size`` uint8 images of ``image_shape`` [H, W, 3].
  """
  model = eval_loop.restore_for_eval(configs, checkpoint)
  resizer = configs['model'].faster_rcnn.image_resizer
  run = tf.function(lambda images: inference.detect(model, images, resizer))
  counted = flops_lib.function_flops(
      run, tf.TensorSpec([batch_size] + list(image_shape), tf.uint8))
  return counted / batch_size, model.box_predictor.det_cls.compute_dtype


def mining_throughput(configs, checkpoint, pattern, num_workers, work_dir):
  """End-to-end images/s of the mining pipeline with ``num_workers``."""
  _, label_map_path = _image_level(configs)
  mining = configs['note'].mining
  batch_size = mining.batch_size or 8
  spec = detectors.detector_spec(CONFIG, checkpoint, batch_size=batch_size)
  argv = ['--direct_num_workers=%d' % num_workers]
  if num_workers > 1:
    argv.append('--direct_running_mode=multi_processing')
  load_before = machine.load_average()
  start = time.perf_counter()
  metrics = mining_pipeline.run_mining(
      mining_spec.MiningSpec(
          label_map_util.get_id_to_name(label_map_path),
          mining.score_threshold, num_shards=mining.num_shards or 1,
          batch_size=batch_size),
      pattern, os.path.join(work_dir, 'mined_%d' % num_workers), spec,
      beam_io.pipeline_options(argv))
  seconds = time.perf_counter() - start
  return {
      'num_workers': num_workers,
      'images': metrics['images'],
      'seconds': seconds,
      'images_per_s': metrics['images'] / seconds,
      'mined_boxes': metrics['mined_boxes'],
      'load_avg_before': load_before,
      'load_avg_after': machine.load_average(),
  }


def run_mining(num_workers_list=(1, 2), copies=4):
  """Mining section: detector-only and pipeline throughput per worker count.

  Args:
    num_workers_list: Beam worker counts to time.
    copies: the image-level set is mined ``copies`` times over (as that many
      input shards with distinct source ids).
  """
  configs = config_util.get_configs_from_pipeline_file(CONFIG)
  with tempfile.TemporaryDirectory(prefix='bench_mining_') as work_dir:
    checkpoint = write_random_checkpoint(configs, work_dir)
    batch_size = configs['note'].mining.batch_size or 8
    rate, cpu_rate, count, image_shape = detector_throughput(
        configs, checkpoint, batch_size)
    flops_per_image, dtype = mining_flops_per_image(configs, checkpoint,
                                                    batch_size, image_shape)
    pattern, num_images = replicate_image_level_set(
        _image_level(configs)[0], work_dir, copies)
    runs = [mining_throughput(configs, checkpoint, pattern, n, work_dir)
            for n in num_workers_list]
  for run in runs:
    run.update(compute_dtype=dtype, flops_per_image=flops_per_image,
               achieved_flops_per_s=flops_per_image * run['images_per_s'])
  return {
      'config': CONFIG,
      'input': 'image_level set x %d (%d images in %d shards)' % (
          copies, num_images, copies),
      'detector_only': {
          'images': count, 'images_per_s': rate, 'batch_size': batch_size,
          'images_per_cpu_s': cpu_rate, 'compute_dtype': dtype,
          'flops_per_image': flops_per_image,
          'achieved_flops_per_s': flops_per_image * rate,
          'achieved_flops_per_cpu_s': flops_per_image * cpu_rate},
      'pipeline': runs,
  }


def _detection_flops_per_image(model, configs):
  """FLOPs of the evaluation's detection graph per image (counted)."""
  height, width = inference.padded_image_size(
      configs['model'].faster_rcnn.image_resizer)
  batch = configs['eval_config'].batch_size or 1
  counted = flops_lib.function_flops(
      eval_loop._detect_batch, model,  # pylint: disable=protected-access
      tf.TensorSpec([batch, height, width, 3], tf.float32),
      tf.TensorSpec([batch, 3], tf.int32))
  return counted / batch


def run_eval():
  """Evaluation section: images/s of evaluate_model (detection + COCO)."""
  configs = config_util.get_configs_from_pipeline_file(CONFIG)
  with tempfile.TemporaryDirectory(prefix='bench_eval_') as work_dir:
    checkpoint = write_random_checkpoint(configs, work_dir)
    model = eval_loop.restore_for_eval(configs, checkpoint)
    load_before = machine.load_average()
    # First pass: includes tracing (full and last partial batch shapes).
    start = time.perf_counter()
    eval_loop.evaluate_model(model, configs, log_every_n=0)
    cold_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = eval_loop.evaluate_model(model, configs, log_every_n=0)
    seconds = time.perf_counter() - start
    flops_per_image = _detection_flops_per_image(model, configs)
  images_per_s = metrics['num_images'] / seconds
  return {
      'compute_dtype': model.box_predictor.det_cls.compute_dtype,
      'flops_per_image': flops_per_image,
      'achieved_flops_per_s': flops_per_image * images_per_s,
      'config': CONFIG,
      'images': metrics['num_images'],
      'batch_size': configs['eval_config'].batch_size or 1,
      'first_pass_seconds': cold_seconds,
      'seconds': seconds,
      'images_per_s': metrics['num_images'] / seconds,
      'load_avg_before': load_before,
      'load_avg_after': machine.load_average(),
  }
