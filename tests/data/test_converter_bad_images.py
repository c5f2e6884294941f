"""Converters reject a corrupt image with a valid header, naming the file
(instead of writing a record that fails later in training)."""
import io

import numpy as np
from PIL import Image
import pytest

from object_detection_note.data.formats import coco17
from object_detection_note.data.formats import ilsvrc13
from object_detection_note.data.records import tf_example_codec as codec


def _truncated_jpeg(width, height):
  buffer = io.BytesIO()
  pixels = np.random.RandomState(0).randint(0, 255, (height, width, 3))
  Image.fromarray(pixels.astype(np.uint8)).save(buffer, format='JPEG')
  data = buffer.getvalue()
  return data[:len(data) // 2]  # header intact, scan data cut


def test_coco_attach_image_rejects_a_truncated_jpeg(tmp_path):
  (tmp_path / '000000000005.jpg').write_bytes(_truncated_jpeg(32, 24))
  record = codec.DetectionRecord(image_bytes=b'', source_id='5', height=24,
                                 width=32, filename='000000000005.jpg')
  with pytest.raises(ValueError) as error:
    coco17.attach_image(record, str(tmp_path))
  message = str(error.value)
  assert str(tmp_path / '000000000005.jpg') in message
  assert '(image id 5)' in message and 'does not decode' in message


def test_ilsvrc_read_image_bytes_rejects_a_truncated_jpeg(tmp_path):
  path = tmp_path / 'n01.JPEG'
  path.write_bytes(_truncated_jpeg(32, 24))
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match='%s: unreadable image' % path):
    ilsvrc13.read_image_bytes(str(path))
