r"""Mines boxes from an image-level set with a trained detector (paper §3.2).

  python -m object_detection_note.mine_boxes \
    --pipeline_config_path=runs/synthetic/iteration_00/pipeline.config \
    --checkpoint_dir=runs/synthetic/iteration_00/train \
    --output_tfrecord=/tmp/mined/mined.tfrecord [--score_threshold=0.99] \
    [--runner=DataflowRunner --project=... --temp_location=gs://...]

Defaults come from the pipeline config: the input is
``note.image_level_input_reader``, θb is ``note.mining.score_threshold``.
Writes ``<output_tfrecord>-0000i-of-0000N`` (is_mined=1, image-level labels
kept) and ``mining_metrics.json`` beside them. Unknown flags are passed to
Apache Beam (``--runner``, ``--direct_num_workers``, Dataflow options, ...).
Errors (config, bad records, checkpoints) end the run with one line
``mine_boxes: error: ...``; ``--verbosity=1`` adds the traceback.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
import os

from absl import app
from absl import flags
from absl import logging

from object_detection_note.core import cli_errors
from object_detection_note.config import config_checks
from object_detection_note.config import config_util
from object_detection_note.data.writing import beam_io
from object_detection_note.data.records import label_map_util
from object_detection_note.mining import class_thresholds
from object_detection_note.mining import detectors
from object_detection_note.mining import mining_pipeline
from object_detection_note.mining import mining_spec

flags.DEFINE_string('pipeline_config_path', None, 'Pipeline config of the '
                    'detector (and of the image-level set, by default).')
flags.DEFINE_string('checkpoint_dir', None, 'Checkpoint (dir or prefix) of '
                    'the detector.')
flags.DEFINE_string('saved_model_dir', None, 'exporter_main_v2 SavedModel of '
                    'the detector (instead of --checkpoint_dir).')
flags.DEFINE_string('input_tfrecord', None, 'Glob of image-level TFRecords '
                    '(default: note.image_level_input_reader).')
flags.DEFINE_string('output_tfrecord', None, 'Output shard prefix.')
flags.DEFINE_float('score_threshold', None, 'θb: keep boxes with score > θb '
                   '(default: note.mining.score_threshold).')
flags.DEFINE_string('label_map_path', None, 'Target label map (default: the '
                    'image-level reader\'s).')
flags.DEFINE_integer('num_shards', None, 'Output shards (default: '
                     'note.mining.num_shards).')
flags.DEFINE_integer('batch_size', None, 'Images per detector call (default: '
                     'note.mining.batch_size).')
flags.DEFINE_boolean('allow_partial_restore', False, 'Mine with a '
                     '--checkpoint_dir whose NOTE heads (rpn-cls-a, '
                     'det-cls-a) differ from the config\'s model (dropped, or '
                     'started from the plain heads), with a warning.')
flags.DEFINE_boolean('skip_bad_records', None, 'Skip and count bad image-level '
                     'records instead of stopping at the first (default: '
                     'note.mining.skip_bad_records).')


@cli_errors.one_line_errors('mine_boxes')
def main(argv):
  flags.mark_flag_as_required('pipeline_config_path')
  flags.mark_flag_as_required('output_tfrecord')
  f = flags.FLAGS
  configs = config_util.get_configs_from_pipeline_file(f.pipeline_config_path)
  # The detector's classes must be the label map's ids (mined labels).
  config_checks.check_num_classes(
      config_util.create_pipeline_proto_from_configs(configs),
      f.pipeline_config_path, app.UsageError)
  note = configs['note']
  reader = note.image_level_input_reader if note is not None else None
  input_patterns = ([f.input_tfrecord] if f.input_tfrecord else
                    list(reader.tf_record_input_reader.input_path)
                    if reader is not None else [])
  if not input_patterns:
    raise app.UsageError('--input_tfrecord is required when the config has '
                         'no note.image_level_input_reader')
  label_map_path = f.label_map_path or (reader.label_map_path if reader
                                        else None)
  if not label_map_path:
    raise app.UsageError('--label_map_path is required when the image-level '
                         'reader has no label_map_path')
  mining = note.mining if note is not None else None
  overrides = {name: value for name, value in (
      ('score_threshold', f.score_threshold),
      ('num_shards', f.num_shards or None),
      ('batch_size', f.batch_size or None),
      ('skip_bad_records', f.skip_bad_records)) if value is not None}
  # The loop's ORACLE control and review export belong to iterate runs.
  spec = mining_spec.MiningSpec.from_config(
      mining, label_map_util.get_id_to_name(label_map_path),
      output_name=os.path.basename(f.output_tfrecord), review_count=0,
      oracle=False, **overrides)
  detector = detectors.detector_spec(
      f.pipeline_config_path, f.checkpoint_dir, f.saved_model_dir,
      spec.batch_size, allow_partial_restore=f.allow_partial_restore)
  metrics = mining_pipeline.run_mining(
      spec, input_patterns, os.path.dirname(f.output_tfrecord) or '.',
      detector, beam_io.pipeline_options(argv[1:]))
  logging.info('mined %d boxes from %d of %d images: precision %s, '
               'recall %s', metrics['mined_boxes'],
               metrics['images_with_boxes'], metrics['images'],
               metrics['precision'], metrics['recall'])
  warning = class_thresholds.too_few_boxes_message(
      metrics['mined_boxes'], mining.min_mined_boxes if mining else 1,
      spec.score_threshold, metrics['threshold_sweep'])
  if warning:
    logging.warning(warning)


if __name__ == '__main__':
  app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
