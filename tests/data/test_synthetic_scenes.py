"""Procedural scenes: categories, shapes, layout rules, determinism."""
import dataclasses

import numpy as np
import pytest

from object_detection_note.data.formats import synthetic_scenes as ss


def test_categories_split_half_and_half_and_differ():
  assert len(ss.CATEGORIES) >= 10
  assert len(ss.SOURCE_IDS) == len(ss.TARGET_IDS) == 6
  assert set(ss.SOURCE_IDS).isdisjoint(ss.TARGET_IDS)
  looks = {(c.shape, c.texture, c.colour) for c in ss.CATEGORIES}
  assert len(looks) == len(ss.CATEGORIES)
  assert len({c.name for c in ss.CATEGORIES}) == len(ss.CATEGORIES)


@pytest.mark.parametrize('shape', sorted({c.shape for c in ss.CATEGORIES}))
def test_every_shape_is_a_distinct_nonempty_mask(shape):
  mask = ss.shape_mask(shape, 32, 32)
  assert mask.shape == (32, 32) and mask.dtype == bool
  assert 0.15 < mask.mean() < 0.95
  for other in {c.shape for c in ss.CATEGORIES} - {shape}:
    assert (mask != ss.shape_mask(other, 32, 32)).mean() > 0.05, other


def test_layout_rules_hold_over_many_scenes():
  config = ss.SceneConfig()
  counts, sizes, repeated, mixed = [], [], 0, 0
  for index in range(60):
    objects = ss.scene_layout(1, 0, index, config)
    ids = [o.category_id for o in objects]
    counts.append(len(objects))
    repeated += len(ids) > len(set(ids))
    mixed += bool(set(ids) & set(ss.SOURCE_IDS)) and bool(
        set(ids) & set(ss.TARGET_IDS))
    for o in objects:
      ymin, xmin, ymax, xmax = o.box
      assert 0 <= ymin < ymax <= config.image_size
      assert 0 <= xmin < xmax <= config.image_size
      # The visible box lies inside the object's placement box.
      assert o.top <= ymin and ymax <= o.top + o.height
      assert o.left <= xmin and xmax <= o.left + o.width
      sizes.append(max(o.height, o.width))
  assert 1 <= min(counts) and max(counts) <= config.max_objects
  assert max(sizes) / min(sizes) >= 4.0
  assert repeated >= 20  # many scenes have several instances of a category
  assert 3 <= mixed <= 30


def test_render_is_deterministic_and_uses_layout():
  image, objects = ss.render_scene(3, 1, 5)
  again, objects_again = ss.render_scene(3, 1, 5)
  other, _ = ss.render_scene(3, 1, 6)
  assert image.shape == (128, 128, 3) and image.dtype == np.uint8
  np.testing.assert_array_equal(image, again)
  assert objects == objects_again == ss.scene_layout(3, 1, 5)
  assert np.abs(image.astype(int) - other).mean() > 10


def test_solid_object_is_painted_with_its_colour():
  config = ss.SceneConfig(noise_std=0.0, min_strokes=0, max_strokes=0)
  for index in range(40):
    image, objects = ss.render_scene(0, 0, index, config)
    solid = [o for o in objects
             if ss.CATEGORIES[o.category_id - 1].texture == 'solid']
    if solid:
      break
  obj = solid[-1]  # Drawn last of the solid ones; check its centre region.
  colour = np.asarray(ss.CATEGORIES[obj.category_id - 1].colour)
  mask = ss.shape_mask(ss.CATEGORIES[obj.category_id - 1].shape, obj.height,
                       obj.width, obj.angle)
  window = image[obj.top:obj.top + obj.height, obj.left:obj.left + obj.width]
  painted = window[mask].astype(float)
  expected = np.clip(colour * obj.brightness, 0, 255)
  close = np.all(np.abs(painted - expected) <= 2, axis=1).mean()
  assert close > 0.5


def test_noisy_preset_has_smaller_objects_and_more_mixed_scenes():
  def stats(config):
    sides, mixed = [], 0
    for index in range(60):
      objects = ss.scene_layout(2, 0, index, config)
      ids = {o.category_id for o in objects}
      mixed += bool(ids & set(ss.SOURCE_IDS)) and bool(ids & set(ss.TARGET_IDS))
      sides += [max(o.height, o.width) for o in objects]
    return np.median(sides), mixed
  assert ss.SCENE_PRESETS['default'] == ss.SceneConfig()
  noisy = ss.SCENE_PRESETS['noisy']
  default_side, default_mixed = stats(ss.SceneConfig())
  noisy_side, noisy_mixed = stats(noisy)
  assert 4 <= noisy_side < 0.9 * default_side
  assert noisy_mixed > 1.5 * default_mixed
  # More clutter: the same scene index has more stroke pixels off objects.
  quiet = dataclasses.replace(noisy, min_strokes=0, max_strokes=0,
                              noise_std=0.0)
  image, objects = ss.render_scene(2, 0, 3, noisy)
  clean, _ = ss.render_scene(2, 0, 3, quiet)
  assert [o.box for o in objects] == [o.box for o in ss.scene_layout(2, 0, 3,
                                                                    quiet)]
  assert np.abs(image.astype(int) - clean).mean() > 8


def test_decoys_take_a_target_look_on_another_shape_and_label_nothing():
  config = ss.SCENE_PRESETS['noisy']
  assert config.max_decoys > 0
  assert ss.decoys(2, 0, 0, ss.SceneConfig()) == []
  counts, target_looks = [], {(c.colour, c.texture) for c in ss.CATEGORIES[
      ss.NUM_SOURCE_CATEGORIES:]}
  for index in range(40):
    found = ss.decoys(2, 0, index, config)
    counts.append(len(found))
    for look, placement in found:
      assert (look.colour, look.texture) in target_looks
      original = next(c for c in ss.CATEGORIES if c.name == look.name)
      assert look.shape != original.shape
      assert placement.category_id == 0
      top, left, bottom, right = placement.box
      assert 0 <= top < bottom <= config.image_size
      assert 0 <= left < right <= config.image_size
  assert min(counts) == 0 and max(counts) == config.max_decoys
  # Decoys are painted (behind the objects) without moving any object.
  plain = dataclasses.replace(config, max_decoys=0)
  index = counts.index(config.max_decoys)
  with_decoys, objects = ss.render_scene(2, 0, index, config)
  without, objects_plain = ss.render_scene(2, 0, index, plain)
  assert objects == objects_plain
  assert (with_decoys != without).any(axis=-1).mean() > 0.005


def test_paper_preset_several_instances_per_label_and_no_decoys():
  """make data-paper: false negatives dominate mined images, no decoys."""
  from object_detection_note.data.formats import synthetic_dataset  # pylint: disable=g-import-not-at-top
  paper = ss.SCENE_PRESETS['paper']
  assert paper.max_decoys == 0
  assert all(not ss.decoys(0, 0, i, paper) for i in range(20))
  splits = synthetic_dataset.build_annotation_splits(0, 50, 4, 2.0, paper)
  image_level = splits['image_level']
  hidden = sum(len(r.hidden_classes) for r in image_level)
  labels = sum(len(set(int(c) for c in r.image_labels)) for r in image_level)
  assert hidden >= 2.5 * labels
  for i in range(10):
    assert len({o.category_id for o in ss.scene_layout(0, 0, i, paper)}) <= 2
