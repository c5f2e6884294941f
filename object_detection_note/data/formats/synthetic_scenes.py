"""Procedural detection scenes: the default, CPU-sized dataset of the project.

Each scene is a small square RGB image (128 px by default) with 1-8 objects
of 12 categories that differ in shape, colour and texture, over a cluttered
background (a colour gradient, pixel noise and thin distractor strokes that
belong to no category). Categories 1-6 are the source categories (plain
colours), 7-12 the target categories (textured or new shapes):

  ====  =======================  ========  ==========================
  id    name                     shape     appearance
  ====  =======================  ========  ==========================
  1     red_disc                 disc      solid red
  2     green_square             square    solid green
  3     blue_triangle            triangle  solid blue
  4     yellow_ring              ring      solid yellow
  5     magenta_cross            cross     solid magenta
  6     cyan_star                star      solid cyan
  7     orange_striped_disc      disc      orange, dark diagonal stripes
  8     checker_square           square    black/white checkerboard
  9     purple_dotted_triangle   triangle  purple, white dots
  10    white_diamond            diamond   solid white
  11    teal_hexagon             hexagon   solid teal
  12    pink_crescent            crescent  solid pink
  ====  =======================  ========  ==========================

Scene statistics (``SceneConfig``): object sizes are log-uniform over
``[min_scale, max_scale]`` of the image side (×6.25 by default) with aspect
jitter and rotation; 1-3 distinct categories per image share up to 8
instances, so many images hold several instances of one category (what makes
box mining, which keeps one box per image-level label, miss real objects);
objects may occlude each other, but every object keeps at least
``min_visible`` of its area visible, and its box is the tight box of its
visible pixels. Each image is "source", "target" or "mixed" (both kinds of
categories), the last with probability ``mixed_fraction``.
``SCENE_PRESETS['noisy']`` (``NOISY_SCENE_CONFIG``) is the scene statistics
of the noisy-mining benchmark (``make data-noisy``),
``SCENE_PRESETS['paper']`` (``PAPER_SCENE_CONFIG``) that of the paper-regime
benchmark (``make data-paper``, no decoys).

Everything is a pure function of ``(seed, pool, index)``: the layout and the
pixels of an image never depend on other images, so workers render images
independently and the same seed gives identical bytes.
"""
import dataclasses
from typing import List, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw


@dataclasses.dataclass(frozen=True)
class Category:
  name: str
  shape: str
  texture: str
  colour: Tuple[int, int, int]
  colour2: Tuple[int, int, int] = (0, 0, 0)


CATEGORIES = (
    Category('red_disc', 'disc', 'solid', (220, 40, 40)),
    Category('green_square', 'square', 'solid', (40, 180, 60)),
    Category('blue_triangle', 'triangle', 'solid', (40, 70, 230)),
    Category('yellow_ring', 'ring', 'solid', (235, 215, 40)),
    Category('magenta_cross', 'cross', 'solid', (215, 50, 205)),
    Category('cyan_star', 'star', 'solid', (40, 215, 225)),
    Category('orange_striped_disc', 'disc', 'stripes', (250, 145, 20),
             (80, 35, 10)),
    Category('checker_square', 'square', 'checker', (245, 245, 245),
             (15, 15, 15)),
    Category('purple_dotted_triangle', 'triangle', 'dots', (130, 45, 175),
             (250, 250, 250)),
    Category('white_diamond', 'diamond', 'solid', (245, 245, 245)),
    Category('teal_hexagon', 'hexagon', 'solid', (20, 135, 120)),
    Category('pink_crescent', 'crescent', 'solid', (250, 150, 195)),
)
NUM_SOURCE_CATEGORIES = 6
# Category ids are 1-based positions in CATEGORIES.
SOURCE_IDS = tuple(range(1, NUM_SOURCE_CATEGORIES + 1))
TARGET_IDS = tuple(range(NUM_SOURCE_CATEGORIES + 1, len(CATEGORIES) + 1))
SOURCE_NAMES = tuple(c.name for c in CATEGORIES[:NUM_SOURCE_CATEGORIES])
TARGET_NAMES = tuple(c.name for c in CATEGORIES[NUM_SOURCE_CATEGORIES:])
_ROTATING_SHAPES = ('triangle', 'cross', 'star', 'hexagon', 'crescent',
                    'square')


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """Scene statistics (all images of a dataset share one config)."""
  image_size: int = 128
  min_objects: int = 1
  max_objects: int = 8
  max_categories_per_image: int = 3
  min_scale: float = 0.08
  max_scale: float = 0.5
  mixed_fraction: float = 0.2
  min_visible: float = 0.6
  placement_tries: int = 30
  min_strokes: int = 3
  max_strokes: int = 10
  noise_std: float = 6.0
  # Decoys: 0..max_decoys unlabelled objects per scene painted with a target
  # category's colours and texture on another category's shape (behind the
  # objects). They belong to no category: a detector that goes by colour
  # and texture alone boxes them.
  max_decoys: int = 0


# SceneConfig fields added after the first release, with the value that
# reproduces the datasets made before them (manifests omit them at it).
LATER_SCENE_FIELDS = {'max_decoys': 0}


# Scene statistics of the "noisy mining" benchmark (``make data-noisy``):
# smaller objects, heavier occlusion, more clutter and pixel noise, and more
# scenes mixing source and target categories, so that the best box per
# image-level label of a weak T^0 is often wrong (paper Table 1: 84-90%).
NOISY_SCENE_CONFIG = SceneConfig(
    max_objects=10, min_scale=0.06, max_scale=0.35, mixed_fraction=0.5,
    min_visible=0.4, min_strokes=8, max_strokes=20, noise_std=14.0,
    max_decoys=3)
# Scene statistics of the paper-regime benchmark (``make ablation-paper``,
# data/synthetic_paper): no decoys; few categories per scene, each with
# several instances, often occluding each other, so that a mined image holds
# mostly unlabelled true instances (the false negatives of paper §3.3.2);
# small objects and moderate clutter so that T^0's best box per image-level
# label is right 85-92% of the time at θb >= 0.8 (calibration:
# bench/results/ablation_paper_calibration.md).
PAPER_SCENE_CONFIG = SceneConfig(
    min_objects=2, max_objects=10, max_categories_per_image=2, min_scale=0.07,
    max_scale=0.4, mixed_fraction=0.4, min_visible=0.4, min_strokes=5,
    max_strokes=14, noise_std=10.0, max_decoys=0)
SCENE_PRESETS = {'default': SceneConfig(), 'noisy': NOISY_SCENE_CONFIG,
                 'paper': PAPER_SCENE_CONFIG}


@dataclasses.dataclass(frozen=True)
class SceneObject:
  """One placed object; ``box`` is (ymin, xmin, ymax, xmax) in pixels."""
  category_id: int
  top: int
  left: int
  height: int
  width: int
  angle: float
  phase: float
  brightness: float
  box: Tuple[int, int, int, int] = (0, 0, 0, 0)


def _unit_grid(height, width, angle):
  """Coordinates in [-1, 1] over an object's box, rotated by ``angle``."""
  v, u = np.meshgrid((np.arange(height) + 0.5) / height * 2.0 - 1.0,
                     (np.arange(width) + 0.5) / width * 2.0 - 1.0,
                     indexing='ij')
  c, s = np.cos(angle), np.sin(angle)
  return c * u - s * v, s * u + c * v


def shape_mask(shape: str, height: int, width: int,
               angle: float = 0.0) -> np.ndarray:
  """Bool ``[height, width]`` mask of ``shape`` filling its box."""
  u, v = _unit_grid(height, width, angle)
  r = np.hypot(u, v)
  if shape == 'disc':
    return r <= 1.0
  if shape == 'ring':
    return (r <= 1.0) & (r >= 0.55)
  if shape == 'square':
    return (np.abs(u) <= 0.72) & (np.abs(v) <= 0.72)
  if shape == 'triangle':
    return (v <= 0.7) & (np.abs(u) <= (v + 0.85) * 0.5)
  if shape == 'cross':
    return (((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) |
            ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95)))
  if shape == 'star':
    theta = np.arctan2(v, u)
    return r <= 0.42 + 0.58 * np.abs(np.cos(2.5 * theta))**3
  if shape == 'diamond':
    return np.abs(u) + np.abs(v) <= 1.0
  if shape == 'hexagon':
    return (np.abs(v) <= 0.85) & (np.abs(u) * 0.866 + np.abs(v) * 0.5 <= 0.85)
  if shape == 'crescent':
    return (r <= 1.0) & (np.hypot(u - 0.5, v) > 0.72)
  raise ValueError('unknown shape %r' % shape)


def _texture(category: Category, obj: SceneObject) -> np.ndarray:
  """Float ``[h, w, 3]`` colours of the object's box."""
  u, v = _unit_grid(obj.height, obj.width, obj.angle)
  base = np.asarray(category.colour, np.float32)
  other = np.asarray(category.colour2, np.float32)
  if category.texture == 'solid':
    pick = np.zeros(u.shape, bool)
  elif category.texture == 'stripes':
    pick = np.sin((u + v) * 7.0 + obj.phase) > 0.2
  elif category.texture == 'checker':
    pick = (np.floor((u + 1.0) * 2.5) + np.floor((v + 1.0) * 2.5)) % 2 == 1
  elif category.texture == 'dots':
    du = np.mod(u * 3.0 + obj.phase, 1.0) - 0.5
    dv = np.mod(v * 3.0 + obj.phase, 1.0) - 0.5
    pick = np.hypot(du, dv) < 0.22
  else:
    raise ValueError('unknown texture %r' % category.texture)
  colours = np.where(pick[..., None], other, base)
  return np.clip(colours * obj.brightness, 0, 255)


def _choose_categories(rng, config):
  """Category ids of one scene's instances (each id 1-based)."""
  mode = rng.choice(3, p=[(1 - config.mixed_fraction) / 2,
                          (1 - config.mixed_fraction) / 2,
                          config.mixed_fraction])
  num_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
  num_kinds = int(min(num_objects,
                      rng.integers(1, config.max_categories_per_image + 1)))
  if mode == 2:
    num_kinds = max(num_kinds, 2)
    num_objects = max(num_objects, 2)
    kinds = [int(rng.choice(SOURCE_IDS)), int(rng.choice(TARGET_IDS))]
    rest = [c for c in SOURCE_IDS + TARGET_IDS if c not in kinds]
    kinds += rng.choice(rest, num_kinds - 2, replace=False).tolist()
  else:
    pool = SOURCE_IDS if mode == 0 else TARGET_IDS
    kinds = rng.choice(pool, num_kinds, replace=False).tolist()
  extra = rng.choice(kinds, num_objects - num_kinds).tolist()
  ids = [int(c) for c in kinds + extra]
  rng.shuffle(ids)
  return ids


def _rng(seed, pool, index, stream):
  return np.random.default_rng([int(seed), int(pool), int(index), stream])


def scene_layout(seed: int, pool: int, index: int,
                 config: SceneConfig = SceneConfig()) -> List[SceneObject]:
  """Objects of scene ``(seed, pool, index)`` in drawing order (back first).

  Objects that could not be placed without hiding more than
  ``1 - min_visible`` of an earlier object are left out. Each returned
  object's ``box`` is the tight pixel box of its visible part.
  """
  rng = _rng(seed, pool, index, 0)
  size = config.image_size
  owner = np.full((size, size), -1, np.int32)
  areas = []
  placed = []
  for category_id in _choose_categories(rng, config):
    category = CATEGORIES[category_id - 1]
    for _ in range(config.placement_tries):
      side = size * np.exp(rng.uniform(np.log(config.min_scale),
                                       np.log(config.max_scale)))
      aspect = np.exp(rng.uniform(-0.25, 0.25))
      height = int(np.clip(round(side / aspect), 4, size))
      width = int(np.clip(round(side * aspect), 4, size))
      angle = (float(rng.uniform(-np.pi, np.pi))
               if category.shape in _ROTATING_SHAPES else 0.0)
      top = int(rng.integers(0, size - height + 1))
      left = int(rng.integers(0, size - width + 1))
      mask = shape_mask(category.shape, height, width, angle)
      window = owner[top:top + height, left:left + width]
      covered = np.bincount(window[mask] + 1, minlength=len(placed) + 1)[1:]
      visible = np.bincount(owner.ravel() + 1, minlength=len(placed) + 1)[1:]
      if np.all(visible - covered >= config.min_visible * np.asarray(
          areas, np.float64)) and mask.sum() >= 12:
        window[mask] = len(placed)
        areas.append(int(mask.sum()))
        placed.append(SceneObject(
            category_id=category_id, top=top, left=left, height=height,
            width=width, angle=angle, phase=float(rng.uniform(0, 2 * np.pi)),
            brightness=float(rng.uniform(0.85, 1.1))))
        break
  objects = []
  for i, obj in enumerate(placed):
    rows, cols = np.nonzero(owner == i)
    box = (int(rows.min()), int(cols.min()), int(rows.max()) + 1,
           int(cols.max()) + 1)
    objects.append(dataclasses.replace(obj, box=box))
  return objects


def _background(rng, config):
  size = config.image_size
  corners = rng.uniform(30, 200, size=(2, 2, 3))
  t = np.linspace(0.0, 1.0, size)
  top = corners[0, 0] * (1 - t)[:, None] + corners[0, 1] * t[:, None]
  bottom = corners[1, 0] * (1 - t)[:, None] + corners[1, 1] * t[:, None]
  return (top[None] * (1 - t)[:, None, None] +
          bottom[None] * t[:, None, None]).astype(np.float32)


def _strokes(image, rng, count, config):
  """Draws ``count`` thin random lines and arcs (no category) on ``image``."""
  size = config.image_size
  pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(pil)
  for _ in range(count):
    colour = tuple(int(c) for c in rng.integers(20, 236, size=3))
    width = int(rng.integers(1, 3))
    x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, size=4))
    if rng.uniform() < 0.6:
      draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
    else:
      box = [min(x0, x1), min(y0, y1), max(x0, x1) + 2, max(y0, y1) + 2]
      start = int(rng.integers(0, 360))
      draw.arc(box, start, start + int(rng.integers(60, 200)), fill=colour,
               width=width)
  return np.asarray(pil, np.float32)


_SHAPES = tuple(sorted({c.shape for c in CATEGORIES}))


def decoys(seed: int, pool: int, index: int,
           config: SceneConfig = SceneConfig()
          ) -> List[Tuple[Category, SceneObject]]:
  """The decoys of scene ``(seed, pool, index)``: ``(look, placement)``.

  ``look`` is a target category's colours and texture on another shape
  (``look.shape``); ``placement.category_id`` is 0 (no category) and
  ``placement.box`` its full box. Empty when ``config.max_decoys`` is 0.
  """
  if not config.max_decoys:
    return []
  rng = _rng(seed, pool, index, 2)
  size = config.image_size
  out = []
  for _ in range(int(rng.integers(0, config.max_decoys + 1))):
    category = CATEGORIES[int(rng.choice(TARGET_IDS)) - 1]
    shape = str(rng.choice([s for s in _SHAPES if s != category.shape]))
    side = size * np.exp(rng.uniform(np.log(config.min_scale),
                                     np.log(config.max_scale)))
    height = width = int(np.clip(round(side), 4, size))
    top = int(rng.integers(0, size - height + 1))
    left = int(rng.integers(0, size - width + 1))
    placement = SceneObject(
        category_id=0, top=top, left=left, height=height, width=width,
        angle=float(rng.uniform(-np.pi, np.pi)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        brightness=float(rng.uniform(0.85, 1.1)),
        box=(top, left, top + height, left + width))
    out.append((dataclasses.replace(category, shape=shape), placement))
  return out


def render_scene(seed: int, pool: int, index: int,
                 config: SceneConfig = SceneConfig()
                ) -> Tuple[np.ndarray, List[SceneObject]]:
  """Pixels and objects of scene ``(seed, pool, index)``.

  Returns:
    ``(image, objects)``: uint8 ``[S, S, 3]`` with ``S = image_size``, and
    ``scene_layout(seed, pool, index, config)``.
  """
  objects = scene_layout(seed, pool, index, config)
  rng = _rng(seed, pool, index, 1)
  image = _background(rng, config)
  image = _strokes(image, rng,
                   int(rng.integers(config.min_strokes,
                                    config.max_strokes + 1)), config)
  for look, placement in decoys(seed, pool, index, config):
    mask = shape_mask(look.shape, placement.height, placement.width,
                      placement.angle)
    window = image[placement.top:placement.top + placement.height,
                   placement.left:placement.left + placement.width]
    window[mask] = _texture(look, placement)[mask]
  for obj in objects:
    category = CATEGORIES[obj.category_id - 1]
    mask = shape_mask(category.shape, obj.height, obj.width, obj.angle)
    window = image[obj.top:obj.top + obj.height, obj.left:obj.left + obj.width]
    window[mask] = _texture(category, obj)[mask]
  # A couple of thin strokes over the objects too (clutter, not occluders).
  image = _strokes(image, rng, int(rng.integers(0, 3)), config)
  image += rng.normal(0.0, config.noise_std, size=image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8), objects
