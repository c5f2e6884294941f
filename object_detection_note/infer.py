r"""Runs an exported detector on image files: JSON + drawn PNG per image.

  python -m object_detection_note.infer \
    --saved_model_dir=exported/source/saved_model \
    --images='photos/*.jpg' --output_dir=detections --min_score=0.5

writes ``<output_dir>/<image name>.json`` (boxes in pixels and normalised,
scores, class ids and label names), ``<output_dir>/<image name>.png`` (boxes
and labels drawn) and ``<output_dir>/summary.json``. Label names come from
--label_map_path, by default from the label map named in the export's
pipeline.config. Errors end the run with one line ``infer: error: ...``;
``--verbosity=1`` adds the traceback.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
import sys

from absl import app
from absl import flags

from object_detection_note.core import cli_errors

from object_detection_note.exporter import infer_lib

flags.DEFINE_string('saved_model_dir', None, 'Exported SavedModel directory '
                    '(<export>/saved_model) or the export directory.')
flags.DEFINE_string('images', None, 'Glob of the image files.')
flags.DEFINE_string('output_dir', None, 'Directory for the results.')
flags.DEFINE_float('min_score', 0.5, 'Keep detections with a score >= this.')
flags.DEFINE_string('label_map_path', None, 'Label map for class names '
                    '(default: from the export\'s pipeline.config).')


@cli_errors.one_line_errors('infer')
def main(unused_argv):
  try:
    infer_lib.run_inference(flags.FLAGS.saved_model_dir, flags.FLAGS.images,
                            flags.FLAGS.output_dir, flags.FLAGS.min_score,
                            flags.FLAGS.label_map_path)
  except ValueError as error:
    if cli_errors.show_traceback():
      raise
    sys.exit('infer: error: %s' % error)


if __name__ == '__main__':
  flags.mark_flag_as_required('saved_model_dir')
  flags.mark_flag_as_required('images')
  flags.mark_flag_as_required('output_dir')
  app.run(main)
