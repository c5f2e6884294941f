"""Box mining rule of paper §3.2 on hand-made detections."""
import numpy as np

from object_detection_note.data.records import tf_example_codec
from object_detection_note.mining import box_mining

BOXES = np.array([[0.1, 0.1, 0.3, 0.3],   # class 1, 0.95
                  [0.5, 0.5, 0.9, 0.9],   # class 1, 0.999 (best of 1)
                  [0.2, 0.6, 0.4, 0.8],   # class 2, 0.995 (best of 2)
                  [0.0, 0.0, 0.2, 0.2]],  # class 3, 0.9999 (not a label)
                 np.float32)
SCORES = np.array([0.95, 0.999, 0.995, 0.9999], np.float32)
CLASSES = np.array([1, 1, 2, 3])


def test_best_box_per_label_ignoring_other_classes():
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [1, 2], 0.99)
  np.testing.assert_array_equal(mined.classes, [1, 2])
  np.testing.assert_allclose(mined.boxes, BOXES[[1, 2]])
  np.testing.assert_allclose(mined.scores, [0.999, 0.995])


def test_threshold_is_strict_and_applies_after_taking_the_best():
  # At θb = 0.995 the class-2 box (score exactly 0.995) is dropped.
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [1, 2],
                                np.float32(0.995))
  np.testing.assert_array_equal(mined.classes, [1])
  # A lower-scoring box of a label is never kept in place of its best box.
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [1], 0.9)
  assert len(mined) == 1 and mined.scores[0] == np.float32(0.999)


def test_label_without_detection_or_below_threshold_gives_nothing():
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [4], 0.5)
  assert len(mined) == 0
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [1, 2], 0.9999)
  assert len(mined) == 0
  mined = box_mining.mine_image(np.zeros((0, 4)), [], [], [1], 0.5)
  assert len(mined) == 0


def test_mined_record_keeps_image_labels_and_hidden_boxes():
  record = tf_example_codec.DetectionRecord(
      image_bytes=b'img', source_id='a', height=10, width=10,
      image_labels=[1, 2], image_label_texts=['x', 'y'],
      hidden_boxes=[[0.5, 0.5, 0.9, 0.9]], hidden_classes=[1],
      hidden_class_texts=['x'])
  mined = box_mining.mine_image(BOXES, SCORES, CLASSES, [1, 2], 0.99)
  out = box_mining.mined_record(record, mined, {1: 'x', 2: 'y'})
  assert out.is_mined == 1
  assert out.class_texts == ['x', 'y']
  np.testing.assert_array_equal(out.image_labels, [1, 2])
  np.testing.assert_allclose(out.hidden_boxes, [[0.5, 0.5, 0.9, 0.9]])
  empty = box_mining.mine_image(BOXES, SCORES, CLASSES, [1, 2], 0.9999)
  assert box_mining.mined_record(record, empty, {}) is None
