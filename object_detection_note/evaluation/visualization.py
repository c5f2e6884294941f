"""Draws detections on an image with PIL (boxes, label and score)."""
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

# Distinct, saturated colours; class id i uses COLOURS[i % len(COLOURS)].
COLOURS = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 190), (0, 128, 128), (170, 110, 40),
)
LINE_WIDTH = 2


def class_colour(class_id):
  return COLOURS[int(class_id) % len(COLOURS)]


def draw_detections(pixels, boxes, class_ids, labels, scores, colour=None,
                    show_scores=True):
  """Returns a PIL image of ``pixels`` with each detection drawn.

  Args:
    pixels: uint8 [H, W, 3].
    boxes: [N, 4] (ymin, xmin, ymax, xmax) in pixels.
    class_ids: [N] label-map ids (choose the colour).
    labels: N display names.
    scores: [N] in [0, 1].
    colour: optional RGB tuple for every box instead of the class colours.
    show_scores: append ': <score>%' to each label.
  """
  image = Image.fromarray(np.asarray(pixels, np.uint8)).convert('RGB')
  draw = ImageDraw.Draw(image)
  font = ImageFont.load_default()
  width, height = image.size
  # Worst first, so the best detections end up on top.
  detections = list(zip(boxes, class_ids, labels, scores))[::-1]
  for box, class_id, label, score in detections:
    ymin, xmin, ymax, xmax = [float(v) for v in box]
    xmin, xmax = np.clip([xmin, xmax], 0, width - 1)
    ymin, ymax = np.clip([ymin, ymax], 0, height - 1)
    box_colour = colour or class_colour(class_id)
    draw.rectangle([xmin, ymin, xmax, ymax], outline=box_colour,
                   width=LINE_WIDTH)
    text = ('%s: %d%%' % (label, int(round(100 * float(score))))
            if show_scores else str(label))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_w, text_h = right - left + 4, bottom - top + 4
    text_y = ymin - text_h if ymin - text_h >= 0 else ymin
    draw.rectangle([xmin, text_y, xmin + text_w, text_y + text_h],
                   fill=box_colour)
    text_colour = (255, 255, 255) if sum(box_colour) < 200 else (0, 0, 0)
    draw.text((xmin + 2 - left, text_y + 2 - top), text, fill=text_colour,
              font=font)
  return image
