r"""Fetches the ImageNet weights that the configs' backbones start from.

  python -m object_detection_note.pretrained --model=inception_resnet_v2 \
      --output_dir=pretrained

(``make pretrained``) writes
``pretrained/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5``,
the file ``configs/{ilsvrc13,coco17}_source.config`` and
``configs/openimages_v4.config`` name in ``fine_tune_checkpoint``, through
Keras' own download and cache with the hash Keras checks
(``models.pretrained_weights``). A file already there with the right hash is
kept; without network access the error says which file to copy where.
"""
# pylint: disable=g-bad-import-order,unused-import
from object_detection_note.core import quiet  # first: before TensorFlow
# pylint: enable=g-bad-import-order,unused-import
from absl import app
from absl import flags

from object_detection_note.core import cli_errors
from object_detection_note.models import pretrained_weights

flags.DEFINE_enum('model', 'inception_resnet_v2',
                  sorted(pretrained_weights.WEIGHT_FILES),
                  'Backbone whose Keras ImageNet (include_top=False) weights '
                  'to fetch.')
flags.DEFINE_string('output_dir', pretrained_weights.DEFAULT_OUTPUT_DIR,
                    'Directory the weight file is written to.')
flags.DEFINE_string('origin', None, 'Download from this URL instead of '
                    'Keras\' (a mirror; the file must have the same hash).')
flags.DEFINE_string('cache_dir', None, 'Keras cache root (default ~/.keras).')


@cli_errors.one_line_errors('pretrained')
def main(unused_argv):
  f = flags.FLAGS
  weight_file = pretrained_weights.WEIGHT_FILES[f.model]
  if f.origin:
    weight_file = pretrained_weights.WeightFile(
        weight_file.file_name, f.origin, weight_file.file_hash)
  print(pretrained_weights.fetch(weight_file, f.output_dir, f.cache_dir))


if __name__ == '__main__':
  app.run(main)
