"""Loop-health diagnostics on hand-built cases with exact expected numbers."""
import numpy as np
import pytest
import tensorflow as tf

from object_detection_note.core.fields import DiagnosticsFields as D
from object_detection_note.data.records import tf_example_codec
from object_detection_note.mining import box_mining
from object_detection_note.mining import diagnostics_pass
from object_detection_note.mining import loop_diagnostics as ld

# Two proposals; classes: 0 background, 1, 2.
_PROPOSALS = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
_DET_CLS = np.array([[0.1, 0.8, 0.1], [0.3, 0.2, 0.5]])
_DET_CLS_A = np.array([[0.0, 0.4, 0.6], [0.1, 0.1, 0.8]])


def test_best_proposal_scores_per_head_and_uncovered_instance():
  hidden = np.array([[0.0, 0.0, 0.5, 0.45],  # IoU 0.9 with proposal 0
                     [0.5, 0.5, 1.0, 1.0],  # proposal 1 exactly
                     [0.0, 0.6, 0.2, 0.8]])  # no proposal overlaps
  scores, covered = ld.best_proposal_scores(
      _PROPOSALS, {D.det_cls: _DET_CLS, D.det_cls_a: _DET_CLS_A,
                   D.mean: ld.mean_head(_DET_CLS, _DET_CLS_A)},
      hidden, [1, 2, 1])
  assert covered.tolist() == [True, True, False]
  np.testing.assert_allclose(scores[D.det_cls], [0.8, 0.5, 0.0])
  np.testing.assert_allclose(scores[D.det_cls_a], [0.4, 0.8, 0.0])
  np.testing.assert_allclose(scores[D.mean], [0.6, 0.65, 0.0])


def test_best_proposal_needs_iou_threshold_and_absent_head_is_none():
  # IoU with proposal 0 is 0.25/0.5625 = 0.444 < 0.5: not covered.
  scores, covered = ld.best_proposal_scores(
      _PROPOSALS, {D.det_cls: _DET_CLS, D.det_cls_a: None},
      [[0.0, 0.0, 0.75, 0.75]], [1])
  assert covered.tolist() == [False]
  assert scores[D.det_cls].tolist() == [0.0] and scores[D.det_cls_a] is None
  assert ld.mean_head(_DET_CLS, None) is _DET_CLS


def test_background_composition_counts_only_valid_background_samples():
  sampled = np.array([[0.0, 0.0, 0.5, 0.5],  # background, on a hidden box
                      [0.5, 0.5, 1.0, 1.0],  # background, nothing
                      [0.0, 0.0, 0.5, 0.5],  # foreground: not counted
                      [0.0, 0.0, 0.5, 0.5]])  # padding: not counted
  assert ld.background_composition(
      sampled, [0, 0, 1, 0], [1, 1, 1, 0], [[0.0, 0.0, 0.5, 0.45]]) == (2, 1)
  assert ld.background_composition(sampled, [0, 0, 1, 0], [1, 1, 1, 0],
                                   np.zeros((0, 4))) == (2, 0)


def test_new_boxes_by_image_and_class_and_consensus():
  assert ld.new_box_mask([1, 2, 3], [2]).tolist() == [True, False, True]
  fail_cls, fail_a = ld.consensus_failures([0.95, 0.99, 0.999],
                                           [0.999, 0.97, 0.99],
                                           [0.98, 0.98, 0.99])
  assert fail_cls.tolist() == [True, False, False]  # 0.95 <= 0.98
  assert fail_a.tolist() == [False, True, True]  # 0.99 <= 0.99 fails
  fail_cls, fail_a = ld.consensus_failures([0.5], None, [0.9])
  assert fail_cls.tolist() == [True] and fail_a is None


def _stats():
  stats = ld.DiagnosticsStats()
  stats.images = 2
  stats.add_hidden([1, 1, 2], {D.det_cls: [0.9, 0.2, 0.6],
                               D.det_cls_a: [0.1, 0.3, 0.95],
                               D.mean: [0.5, 0.25, 0.775]},
                   [True, True, False], [0.5, 0.5, 0.7])
  stats.add_hidden([1], {D.det_cls: [0.7], D.det_cls_a: [0.8],
                         D.mean: [0.75]}, [True], [0.5])
  # Image 1: two boxes, class 1 a hit and new, class 2 a miss and not new.
  stats.add_mined([1, 2], [True, False], [True, False], [False, True],
                  [True, False])
  stats.add_mined([1], [False], [True], [False], [False])
  stats.add_background(4, 1)
  stats.add_background(0, 0)
  return stats


def test_summary_exact_figures():
  s = _stats().summary({1: 'cat', 2: 'dog'})
  hidden = s[D.hidden_scores]
  assert hidden[D.hidden_boxes] == 4 and hidden[D.covered] == 0.75
  # det_cls scores 0.9, 0.2, 0.6, 0.7 -> median 0.65; > θ: 0.9>.5, 0.7>.5.
  assert hidden[D.det_cls] == {D.median: pytest.approx(0.65),
                               D.above_threshold: 0.5}
  assert hidden[D.det_cls_a][D.median] == pytest.approx(0.55)
  assert hidden[D.det_cls_a][D.above_threshold] == 0.5  # 0.95>.7, 0.8>.5
  cat = hidden[D.per_category]['cat']
  assert cat[D.mean] == {D.median: pytest.approx(0.5),
                         D.above_threshold: pytest.approx(1 / 3)}
  assert hidden[D.per_category]['dog'][D.covered] == 0.0
  mined = s[D.mined]
  assert (mined[D.boxes], mined[D.true_positives], mined[D.hidden_boxes]) == (
      3, 1, 4)
  assert mined[D.precision] == pytest.approx(1 / 3)
  assert mined[D.recall] == 0.25
  assert mined[D.per_category]['cat'][D.precision] == 0.5
  assert mined[D.per_category]['cat'][D.recall] == pytest.approx(1 / 3)
  assert mined[D.per_category]['dog'][D.precision] == 0.0
  assert s[D.new_boxes] == {D.previous_known: True, D.boxes: 2,
                            D.true_positives: 1, D.precision: 0.5}
  assert s[D.consensus] == {D.boxes: 3, D.fail_det_cls: pytest.approx(1 / 3),
                            D.fail_det_cls_a: pytest.approx(1 / 3),
                            D.fail_either: pytest.approx(2 / 3)}
  assert s[D.background] == {D.mined_images: 2, D.sampled_background: 4,
                             D.hidden_target: 0.25, D.source_object: None,
                             D.nothing: 0.75}


def test_undefined_figures_are_none():
  stats = ld.DiagnosticsStats(previous_known=False)
  stats.add_hidden([1], {D.det_cls: [0.3], D.det_cls_a: None,
                         D.mean: [0.3]}, [True], [0.5])
  stats.add_mined([], [], [], np.zeros(0, bool), None)
  s = stats.summary()
  assert s[D.hidden_scores][D.det_cls_a] == {D.median: None,
                                             D.above_threshold: None}
  assert s[D.mined][D.precision] is None
  assert s[D.new_boxes][D.precision] is None
  assert s[D.new_boxes][D.boxes] is None
  assert s[D.consensus][D.fail_det_cls] is None
  assert s[D.consensus][D.fail_det_cls_a] is None
  assert s[D.background][D.hidden_target] is None


class _FakeRunner:
  """Hand-made T^{t-1} outputs for every image; sampler returns fixed rows."""

  def __call__(self, image):
    del image
    return {
        'proposals': _PROPOSALS,
        'heads': {D.det_cls: _DET_CLS, D.det_cls_a: _DET_CLS_A,
                  D.mean: ld.mean_head(_DET_CLS, _DET_CLS_A)},
        'detection_boxes': np.array([[0.5, 0.5, 1.0, 1.0],
                                     [0.0, 0.0, 0.5, 0.5]], np.float32),
        'detection_scores': np.array([0.65, 0.6], np.float32),
        'detection_classes': np.array([2, 1]),
        'detection_anchor_indices': np.array([1, 0]),
    }

  def sample_background(self, outputs, mined):
    del outputs, mined
    return (np.array([[0.0, 0.6, 0.2, 0.8], [0.5, 0.0, 1.0, 0.4]]),
            np.array([0, 0]), np.array([1.0, 1.0]))


def _record(source_id, hidden_boxes, hidden_classes, labels):
  image = tf_example_codec.encode_image(np.zeros((8, 8, 3), np.uint8))
  return tf_example_codec.DetectionRecord(
      image_bytes=image, source_id=source_id, height=8, width=8,
      image_format='png', image_labels=labels, hidden_boxes=hidden_boxes,
      hidden_classes=hidden_classes)


def test_diagnose_mines_audit_records_with_the_mining_rule():
  records = [
      # Hidden dog on proposal 1 (mined, hit), hidden cat nowhere near.
      _record('a', [[0.5, 0.5, 1.0, 1.0], [0.0, 0.6, 0.2, 0.8]], [2, 1],
              [1, 2]),
      _record('b', [[0.0, 0.0, 0.5, 0.5]], [1], [1]),
  ]
  # θb 0.62: the dog (0.65) is mined, the cat (0.6) is not; on 'b' nothing.
  stats, mined = diagnostics_pass.diagnose(
      records, _FakeRunner(), 0.62, {}, None, {'a': [2]})
  assert mined == {'a': [2]}
  s = stats.summary()
  assert s[D.mined][D.boxes] == 1 and s[D.mined][D.precision] == 1.0
  assert s[D.mined][D.recall] == pytest.approx(1 / 3)
  assert s[D.new_boxes][D.boxes] == 0  # 'a' had a dog in B^{t-1}
  # The mined dog: det-cls 0.5 fails 0.62, det-cls-a 0.8 passes.
  assert s[D.consensus][D.fail_det_cls] == 1.0
  assert s[D.consensus][D.fail_det_cls_a] == 0.0
  # Hidden instances: dog 0.5/0.8/0.65, cat uncovered 0, cat on 'b' .8/.4/.6.
  hidden = s[D.hidden_scores]
  assert hidden[D.covered] == pytest.approx(2 / 3)
  assert hidden[D.mean][D.median] == pytest.approx(0.6)
  assert hidden[D.mean][D.above_threshold] == pytest.approx(1 / 3)
  # Sampled background on 'a': one on the hidden cat, one on nothing.
  assert s[D.background][D.sampled_background] == 2
  assert s[D.background][D.hidden_target] == 0.5
  assert s[D.background][D.mined_images] == 1


def test_diagnose_takes_given_mined_boxes_and_unknown_previous():
  records = [_record('a', [[0.0, 0.0, 0.5, 0.5]], [1], [1])]
  given = {'a': box_mining.MinedBoxes(
      np.array([[0.0, 0.0, 0.5, 0.5]], np.float32), np.array([1]),
      np.array([0.6], np.float32))}
  stats, mined = diagnostics_pass.diagnose(records, _FakeRunner(), 0.9, {},
                                           given, None)
  assert mined == {'a': [1]}
  s = stats.summary()
  assert s[D.mined][D.precision] == 1.0
  assert s[D.new_boxes][D.precision] is None  # B^{t-1} unknown
  # Its scores come from detection 1's proposal 0: det-cls .8, det-cls-a .4.
  assert s[D.consensus][D.fail_det_cls] == 1.0  # 0.8 <= 0.9
  assert s[D.consensus][D.fail_det_cls_a] == 1.0


def _write(path, records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(tf_example_codec.serialize_record(record))


def test_diagnosed_records_audit_boxes_become_hidden_and_bad_record_named(
    tmp_path):
  image = tf_example_codec.encode_image(np.zeros((8, 8, 3), np.uint8))
  audit = tf_example_codec.DetectionRecord(
      image_bytes=image, source_id='x', height=8, width=8, image_format='png',
      boxes=[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.9, 0.9]], classes=[2, 2])
  no_hidden = _record('y', np.zeros((0, 4)), [], [1])
  path = tmp_path / 'a.tfrecord'
  _write(path, [audit, no_hidden])
  [got] = list(diagnostics_pass.iterate_diagnosed_records(
      [str(path)], [1, 2], audit=True, max_images=1))
  assert got.hidden_classes.tolist() == [2, 2]
  assert got.image_labels.tolist() == [2]
  # Read as A's records: neither has hidden boxes, both are passed over.
  assert list(diagnostics_pass.iterate_diagnosed_records(
      [str(path)], [1, 2], audit=False)) == []
  bad = tmp_path / 'bad.tfrecord'
  _write(bad, [audit])
  with pytest.raises(ValueError, match=r'bad\.tfrecord.*record #0'):
    list(diagnostics_pass.iterate_diagnosed_records([str(bad)], [1],
                                                    audit=True))
  assert list(diagnostics_pass.iterate_diagnosed_records(
      [str(bad)], [1], audit=True, skip_bad_records=True)) == []


def test_audit_label_map_must_be_the_target_one(tmp_path):
  from object_detection_note.protos import note_pb2  # pylint: disable=g-import-not-at-top
  for name, text in (('a', 'item { id: 1 name: "cat" }'),
                     ('b', 'item { id: 1 name: "dog" }')):
    (tmp_path / (name + '.pbtxt')).write_text(text)
  note = note_pb2.NoteConfig()
  note.image_level_input_reader.label_map_path = str(tmp_path / 'a.pbtxt')
  note.mining.audit_input_reader.label_map_path = str(tmp_path / 'b.pbtxt')
  with pytest.raises(ValueError,
                     match='note.mining.audit_input_reader.label_map_path'):
    diagnostics_pass.diagnose_iteration(note, 'p', 'c', str(tmp_path), '*',
                                        None, 1)


def test_model_head_probabilities_average_to_the_mined_score():
  from object_detection_note.core.fields import PredictionFields  # pylint: disable=g-import-not-at-top
  from object_detection_note.meta_architectures import note_faster_rcnn  # pylint: disable=g-import-not-at-top
  model = note_faster_rcnn.NoteFasterRcnn
  predictions = {PredictionFields.class_logits: tf.constant([[[2.0, 0.0]]]),
                 PredictionFields.class_logits_a: tf.constant([[[0.0, 2.0]]])}
  heads = model.head_class_probabilities(None, predictions)
  e = np.exp(2.0) / (1 + np.exp(2.0))
  np.testing.assert_allclose(heads[D.det_cls].numpy(), [[[e, 1 - e]]],
                             rtol=1e-6)
  np.testing.assert_allclose(heads[D.det_cls_a].numpy(), [[[1 - e, e]]],
                             rtol=1e-6)
  np.testing.assert_allclose(
      ld.mean_head(heads[D.det_cls].numpy(), heads[D.det_cls_a].numpy()),
      model.class_probabilities(None, predictions).numpy(), rtol=1e-6)
  del predictions[PredictionFields.class_logits_a]
  assert model.head_class_probabilities(None, predictions)[D.det_cls_a] is None
