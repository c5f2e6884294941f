"""MiningSpec: note.mining read in one place, overrides, pickling."""
import dataclasses
import pickle

import pytest
from google.protobuf import text_format

from object_detection_note.mining import mining_spec
from object_detection_note.protos import note_pb2

NAMES = {3: 'cat', 1: 'dog'}


def _mining(text):
  return text_format.Parse(text, note_pb2.Mining())


def test_from_config_reads_every_mining_option():
  spec = mining_spec.MiningSpec.from_config(_mining(
      'score_threshold: 0.75 threshold_sweep: [0.625, 0.5] batch_size: 3 '
      'num_shards: 2 match_iou_threshold: 0.4 export_review: 0 '
      'adaptive_threshold { keep_fraction: 0.25 min_score: 0.3 } '
      'skip_bad_records: true control: ORACLE'), NAMES)
  assert spec.score_threshold == pytest.approx(0.75)
  assert spec.batch_size == 3 and spec.num_shards == 2
  assert spec.iou_threshold == pytest.approx(0.4)
  # The default sweep joined with the config's, ascending, no duplicate.
  assert spec.sweep == tuple(sorted(mining_spec.DEFAULT_SWEEP + (0.625,)))
  assert spec.adaptive_threshold == mining_spec.AdaptiveThreshold(
      pytest.approx(0.25), pytest.approx(0.3))
  assert spec.skip_bad_records and spec.oracle
  assert spec.review_count == 0 and spec.review_dir is None
  # The label map keeps its order; names gives the dict back.
  assert spec.id_to_name == ((3, 'cat'), (1, 'dog'))
  assert spec.names == NAMES


def test_from_config_defaults_and_overrides():
  plain = mining_spec.MiningSpec.from_config(note_pb2.Mining(), NAMES)
  assert plain.score_threshold == pytest.approx(0.99)
  assert plain.batch_size == 1  # the proto's default
  assert plain.sweep == mining_spec.DEFAULT_SWEEP
  assert plain.adaptive_threshold is None and not plain.oracle
  assert mining_spec.MiningSpec.from_config(
      _mining('control: FROZEN_T0'), NAMES).oracle is False
  # No note section: the spec's own defaults.
  none = mining_spec.MiningSpec.from_config(None, NAMES)
  assert (none.score_threshold, none.batch_size, none.num_shards) == (
      0.99, 8, 4)
  overridden = mining_spec.MiningSpec.from_config(
      _mining('score_threshold: 0.5 export_review: 4'), NAMES,
      score_threshold=0.8, review_dir='/r', total_images=12)
  assert overridden.score_threshold == 0.8
  assert (overridden.review_count, overridden.review_dir,
          overridden.total_images) == (4, '/r', 12)
  assert overridden.with_review and not plain.with_review


def test_review_count_needs_a_directory():
  with pytest.raises(ValueError, match='review_count 2 needs a review_dir'):
    mining_spec.MiningSpec.from_config(_mining('export_review: 2'), NAMES)


def test_spec_is_frozen_and_pickles():
  spec = mining_spec.MiningSpec.from_config(_mining(
      'adaptive_threshold { keep_fraction: 0.5 }'), NAMES, total_images=7)
  with pytest.raises(dataclasses.FrozenInstanceError):
    spec.score_threshold = 0.1
  copy = pickle.loads(pickle.dumps(spec))
  assert copy == spec and hash(copy) == hash(spec)
  assert isinstance(copy.adaptive_threshold, mining_spec.AdaptiveThreshold)
