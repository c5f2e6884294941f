r"""Exports a trained detector as a SavedModel, with the OD API's flags.

  python -m object_detection_note.exporter_main_v2 \
    --input_type=image_tensor \
    --pipeline_config_path=runs/source/pipeline.config \
    --trained_checkpoint_dir=runs/source \
    --output_directory=exported/source

writes ``exported/source/{saved_model/, checkpoint/, pipeline.config}``.
The SavedModel's ``serving_default`` signature takes ``input_tensor``:

  image_tensor                 uint8 [1, None, None, 3]
  float_image_tensor           float32 [1, None, None, 3]
  encoded_image_string_tensor  string [1] (JPEG/PNG/GIF/BMP bytes)
  tf_example                   string [1] (serialized tf.train.Example)

and returns detection_boxes, detection_scores, detection_classes,
num_detections, raw_detection_boxes, raw_detection_scores,
detection_multiclass_scores and detection_anchor_indices (all float32, as
the OD API's). ``--config_override`` is a text proto merged on top of the pipeline config, e.g.
``model { faster_rcnn { second_stage_post_processing {
batch_non_max_suppression { score_threshold: 0.5 } } } }``.

Errors end the run with one line ``exporter_main_v2: error: ...``;
``--verbosity=1`` adds the traceback.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
from absl import app
from absl import flags

from object_detection_note.core import cli_errors
from object_detection_note.config import config_util
from object_detection_note.exporter import exporter_lib_v2

flags.DEFINE_string('input_type', 'image_tensor', 'Type of input node: '
                    'image_tensor, float_image_tensor, '
                    'encoded_image_string_tensor or tf_example.')
flags.DEFINE_string('pipeline_config_path', None, 'Path to the pipeline '
                    'config of the model.')
flags.DEFINE_string('trained_checkpoint_dir', None, 'Directory holding the '
                    'training checkpoints; the latest is exported.')
flags.DEFINE_string('output_directory', None, 'Path to write outputs to.')
flags.DEFINE_boolean('allow_partial_restore', False, 'Export a checkpoint '
                     'whose NOTE heads (rpn-cls-a, det-cls-a) differ from the '
                     'config\'s model (dropped, or started from the plain '
                     'heads), with a warning.')
flags.DEFINE_string('config_override', '', 'Text proto merged on top of the '
                    'pipeline config.')

@cli_errors.one_line_errors('exporter_main_v2')
def main(unused_argv):
  exporter_lib_v2.check_input_type(flags.FLAGS.input_type)
  pipeline_config = config_util.read_pipeline_config(
      flags.FLAGS.pipeline_config_path, flags.FLAGS.config_override or None)
  config_util.validate_pipeline(pipeline_config,
                                flags.FLAGS.pipeline_config_path)
  exporter_lib_v2.export_inference_graph(
      flags.FLAGS.input_type, pipeline_config,
      flags.FLAGS.trained_checkpoint_dir, flags.FLAGS.output_directory,
      allow_partial_restore=flags.FLAGS.allow_partial_restore)


if __name__ == '__main__':
  flags.mark_flag_as_required('pipeline_config_path')
  flags.mark_flag_as_required('trained_checkpoint_dir')
  flags.mark_flag_as_required('output_directory')
  app.run(main)
