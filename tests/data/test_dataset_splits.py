"""Paper §4.2 split rules: source/target views, seed sampling, image level."""
import numpy as np
import pytest

from object_detection_note.data.writing import dataset_splits
from object_detection_note.data.records.tf_example_codec import DetectionRecord

SOURCE = (1, 2)
TARGET = (3, 4, 5)
NAMES = {1: 'a', 2: 'b', 3: 'c', 4: 'd', 5: 'e', 9: 'z'}


def _record(source_id, classes):
  n = len(classes)
  boxes = np.stack([np.linspace(0.0, 0.5, n), np.full(n, 0.1),
                    np.linspace(0.5, 1.0, n), np.full(n, 0.9)], axis=1)
  return DetectionRecord(image_bytes=b'', source_id=source_id, height=10,
                         width=20, boxes=boxes, classes=classes,
                         class_texts=[NAMES[c] for c in classes])


def test_split_image_with_both_sides_appears_on_both_with_own_boxes():
  records = [_record('both', [1, 3, 2, 3]), _record('src', [2]),
             _record('tgt', [5, 4]), _record('none', [9]),
             _record('empty', [])]
  source, target = dataset_splits.split_source_target(records, SOURCE, TARGET)
  assert [r.source_id for r in source] == ['both', 'src']
  assert [r.source_id for r in target] == ['both', 'tgt']
  both_src, both_tgt = source[0], target[0]
  assert both_src.classes.tolist() == [1, 2]
  assert both_src.class_texts == ['a', 'b']
  np.testing.assert_allclose(both_src.boxes, records[0].boxes[[0, 2]])
  assert both_tgt.classes.tolist() == [3, 3]
  assert both_tgt.class_texts == ['c', 'c']
  np.testing.assert_allclose(both_tgt.boxes, records[0].boxes[[1, 3]])
  # Inputs untouched.
  assert records[0].classes.tolist() == [1, 3, 2, 3]


def test_split_rejects_overlapping_ids():
  with pytest.raises(ValueError, match=r'\[2\]'):
    dataset_splits.split_source_target([], [1, 2], [2, 3])


def _target_pool(num_images=60):
  rng = np.random.default_rng(5)
  records = []
  for i in range(num_images):
    k = rng.integers(1, 4)
    records.append(_record('img%03d' % i, rng.choice(TARGET, k).tolist()))
  return records


def test_sample_seed_float_average_total_and_partition():
  records = _target_pool()
  seed, rest = dataset_splits.sample_seed(records, TARGET, 4.0, seed=7)
  assert len(seed) == 12  # round(4.0 * 3 categories)
  ids = [r.source_id for r in seed] + [r.source_id for r in rest]
  assert sorted(ids) == sorted(r.source_id for r in records)
  # Every category is in at least 4 seed images (its own draws + others').
  for c in TARGET:
    assert sum(c in r.classes for r in seed) >= 4
  # Fractional average: round(2.5 * 3) = 8 images.
  seed, _ = dataset_splits.sample_seed(records, TARGET, 2.5, seed=7)
  assert len(seed) == 8


def test_sample_seed_deterministic_and_order_independent():
  records = _target_pool()
  a, _ = dataset_splits.sample_seed(records, TARGET, 3.0, seed=1)
  b, _ = dataset_splits.sample_seed(records[::-1], TARGET, 3.0, seed=1)
  c, _ = dataset_splits.sample_seed(records, TARGET, 3.0, seed=2)
  ids = lambda rs: sorted(r.source_id for r in rs)
  assert ids(a) == ids(b)
  assert ids(a) != ids(c)
  # Output keeps input order.
  assert [r.source_id for r in a] == ids(a)


def test_sample_seed_rare_category_gets_an_image_and_shortfall_topped_up():
  # Category 5 has one image; category 4 has two; 3 has many.
  records = ([_record('r5', [5, 3])] + [_record('r4_%d' % i, [4])
                                       for i in range(2)] +
             [_record('c%02d' % i, [3]) for i in range(20)])
  seed, _ = dataset_splits.sample_seed(records, TARGET, 3.0, seed=0)
  # 9 images in total although category 5 can give 1 and category 4 only 2.
  assert len(seed) == 9
  assert 'r5' in [r.source_id for r in seed]
  assert {'r4_0', 'r4_1'} <= {r.source_id for r in seed}


def test_sample_seed_min_max_range_per_category():
  records = [_record('x%s_%02d' % (c, i), [c]) for c in TARGET
             for i in range(30)]
  seed, rest = dataset_splits.sample_seed(records, TARGET, (10, 20), seed=3)
  per_category = [sum(c in r.classes for r in seed) for c in TARGET]
  assert all(10 <= n <= 20 for n in per_category), per_category
  assert len(seed) + len(rest) == len(records)
  with pytest.raises(ValueError):
    dataset_splits.sample_seed(records, TARGET, (5, 2), seed=3)


def test_sample_seed_never_draws_images_without_listed_categories():
  records = [_record('only9', [9]), _record('t', [3])]
  seed, rest = dataset_splits.sample_seed(records, TARGET, 5.0, seed=0)
  assert [r.source_id for r in seed] == ['t']
  assert [r.source_id for r in rest] == ['only9']


def test_sample_seed_rejects_duplicate_ids():
  with pytest.raises(ValueError, match='unique'):
    dataset_splits.sample_seed([_record('a', [3]), _record('a', [4])], TARGET,
                               1.0, seed=0)


def test_to_image_level_moves_boxes_to_hidden():
  record = _record('x', [4, 3, 4])
  record.is_mined = 1
  out = dataset_splits.to_image_level(record)
  assert out.boxes.shape == (0, 4) and out.classes.size == 0
  assert out.class_texts == []
  assert out.image_labels.tolist() == [3, 4]
  assert out.image_label_texts == ['c', 'd']
  np.testing.assert_allclose(out.hidden_boxes, record.boxes)
  assert out.hidden_classes.tolist() == [4, 3, 4]
  assert out.hidden_class_texts == ['d', 'c', 'd']
  assert out.is_mined == 0
  assert record.classes.tolist() == [4, 3, 4]  # input untouched


def test_remap_classes_all_fields():
  record = dataset_splits.to_image_level(_record('x', [4, 3]))
  id_map = dataset_splits.contiguous_id_map([3, 4, 5])
  assert id_map == {3: 1, 4: 2, 5: 3}
  out = dataset_splits.remap_classes(record, id_map)
  assert out.image_labels.tolist() == [1, 2]
  assert out.hidden_classes.tolist() == [2, 1]
  with pytest.raises(KeyError, match="'x'"):
    dataset_splits.remap_classes(_record('x', [1]), id_map)
