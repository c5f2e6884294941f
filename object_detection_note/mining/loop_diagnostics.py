"""Loop-health diagnostics of one mining iteration, as pure functions.

Figures (all against hidden true boxes, or an audit set's true boxes; the
match IoU is note.mining.match_iou_threshold, 0.5; θ is the mining
threshold of the box's class: θb, or θ_c with adaptive thresholds):

(a) Hidden-instance scores under T^{t-1}. For each hidden box of class l:
    the proposal of T^{t-1}'s RPN (inference proposals, the ones mining
    detects from) with the highest IoU with the box, if that IoU is
    ≥ the match IoU; the instance's score under a head is that head's
    softmax probability of class l on that proposal (det-cls, det-cls-a,
    and their mean, which is the score mining thresholds). An instance no
    proposal covers scores 0 under every head (it cannot be mined). Per
    class and overall: median and share with score > θ (strict, as mining);
    ``covered_share`` is the share with a covering proposal. det-cls-a is
    null for a model without that head, and ``mean`` is then det-cls.
(b) Background proposals sampled on mined images. On each image with boxes
    in B^t, the proposals of the RPN are assigned targets against the mined
    boxes and sampled by the training sampler (``second_stage``); of the
    valid samples labelled background (the ones Eq. 2 masks), the share with
    IoU ≥ the match IoU to a hidden box (``hidden_target``: unlabelled true
    instances, i.e. false negatives), to a source-category object
    (``source_object``: null, the records carry no source-category boxes)
    and to nothing.
(c) Precision and recall of the mined boxes, per class and overall; and the
    precision of the boxes new in B^t: a mined box is new when B^{t-1} has
    no box of the same class on the same image (mining keeps at most one box
    per image-level label). At t = 1 every box is new (B^0 is empty).
(d) Consensus: share of the mined boxes whose det-cls score alone, or
    det-cls-a score alone, would not pass θ (score ≤ θ), and the share
    failing under either.

Undefined figures (empty denominators, absent heads) are None: JSON null,
"—" in reports.
"""
import dataclasses

import numpy as np

from object_detection_note.core.fields import DiagnosticsFields as D
from object_detection_note.mining import mining_metrics


def best_proposal_scores(proposal_boxes, head_probabilities, hidden_boxes,
                         hidden_classes, iou_threshold=0.5):
  """Scores of hidden instances at their best-overlapping proposal (a).

  Args:
    proposal_boxes: float [P, 4] normalised to the image (valid rows only).
    head_probabilities: {head name: float [P, C + 1]} softmax per head,
      column 0 background; None values (absent heads) are passed through.
    hidden_boxes: float [H, 4] normalised.
    hidden_classes: int [H] 1-based class ids.
    iou_threshold: a proposal covers an instance at IoU ≥ this.

  Returns:
    (scores, covered): scores {head name: float [H] or None}, 0 where no
    proposal covers the instance; covered bool [H].
  """
  hidden_classes = np.asarray(hidden_classes, np.int64).reshape(-1)
  num_hidden = len(hidden_classes)
  proposals = np.asarray(proposal_boxes, np.float64).reshape(-1, 4)
  if num_hidden and len(proposals):
    ious = mining_metrics.iou_matrix(hidden_boxes, proposals)  # [H, P]
    best = np.argmax(ious, axis=1)
    covered = ious[np.arange(num_hidden), best] >= iou_threshold
  else:
    best = np.zeros(num_hidden, np.int64)
    covered = np.zeros(num_hidden, bool)
  scores = {}
  for head, probabilities in head_probabilities.items():
    if probabilities is None:
      scores[head] = None
      continue
    probabilities = np.asarray(probabilities, np.float64)
    values = np.zeros(num_hidden, np.float64)
    if covered.any():
      values[covered] = probabilities[best[covered], hidden_classes[covered]]
    scores[head] = values
  return scores, covered


def mean_head(det_cls, det_cls_a):
  """The mined score's distribution: mean of the heads present."""
  if det_cls_a is None:
    return det_cls
  return 0.5 * (np.asarray(det_cls) + np.asarray(det_cls_a))


def background_composition(sampled_boxes, class_targets, valid, hidden_boxes,
                           iou_threshold=0.5):
  """(b) for one image: (background samples, of which cover a hidden box).

  Args:
    sampled_boxes: float [K, 4] sampled proposals, in the frame of
      ``hidden_boxes``.
    class_targets: int [K], 0 = background.
    valid: bool/float [K], real samples.
    hidden_boxes: float [H, 4].
    iou_threshold: IoU for a background sample to count as a hidden instance.

  Returns:
    (num_background, num_hidden_target) ints.
  """
  background = (np.asarray(class_targets).reshape(-1) == 0) & (
      np.asarray(valid).reshape(-1) > 0)
  boxes = np.asarray(sampled_boxes, np.float64).reshape(-1, 4)[background]
  hidden = np.asarray(hidden_boxes, np.float64).reshape(-1, 4)
  if not len(boxes) or not len(hidden):
    return int(len(boxes)), 0
  hits = mining_metrics.iou_matrix(boxes, hidden).max(axis=1) >= iou_threshold
  return int(len(boxes)), int(hits.sum())


def new_box_mask(mined_classes, previous_classes):
  """bool [K]: mined boxes whose class B^{t-1} had not on this image (c)."""
  previous = set(int(c) for c in np.asarray(previous_classes).reshape(-1))
  return np.array([int(c) not in previous
                   for c in np.asarray(mined_classes).reshape(-1)], bool)


def consensus_failures(det_cls_scores, det_cls_a_scores, thresholds):
  """(d): which mined boxes a single head would not have passed (score ≤ θ).

  Returns:
    (fail_det_cls bool [K], fail_det_cls_a bool [K] or None).
  """
  limits = np.asarray(thresholds, np.float64).reshape(-1)
  fail_cls = np.asarray(det_cls_scores, np.float64).reshape(-1) <= limits
  if det_cls_a_scores is None:
    return fail_cls, None
  return fail_cls, (np.asarray(det_cls_a_scores, np.float64).reshape(-1) <=
                    limits)


def _ratio(numerator, denominator):
  return float(numerator) / denominator if denominator else None


def score_summary(scores, thresholds):
  """{'median', 'share_above_threshold'} of scores (None when empty/absent)."""
  if scores is None or not len(scores):
    return {D.median: None, D.above_threshold: None}
  scores = np.asarray(scores, np.float64)
  return {D.median: float(np.median(scores)),
          D.above_threshold: float(np.mean(
              scores > np.asarray(thresholds, np.float64)))}


_MINED_COUNTS = 7  # boxes, tp, new, new tp, fail det-cls, -a, either


@dataclasses.dataclass
class DiagnosticsStats:
  """Per-class accumulators of one iteration's diagnostics.

  ``hidden``: class → {'scores': {head: [floats]}, 'covered': [bools],
  'thresholds': [floats]}; ``mined``: class → [boxes, tp, new, new tp,
  fail det-cls, fail det-cls-a, fail either]; ``recall_hidden``: class →
  hidden boxes; ``background``: [sampled background, of which hidden
  target]; ``has_det_cls_a`` / ``previous_known``: whether the det-cls-a
  and new-box figures exist (False: they are None).
  """
  images: int = 0
  mined_images: int = 0
  hidden: dict = dataclasses.field(default_factory=dict)
  mined: dict = dataclasses.field(default_factory=dict)
  recall_hidden: dict = dataclasses.field(default_factory=dict)
  background: list = dataclasses.field(default_factory=lambda: [0, 0])
  has_det_cls_a: bool = True
  previous_known: bool = True

  def add_hidden(self, hidden_classes, scores, covered, thresholds):
    """One image's hidden instances (``best_proposal_scores`` output).

    Args:
      hidden_classes: int [H].
      scores: {head: float [H] or None} for the DiagnosticsFields heads.
      covered: bool [H].
      thresholds: float [H], θ of each instance's class.
    """
    if scores.get(D.det_cls_a) is None:
      self.has_det_cls_a = False
    for i, label in enumerate(np.asarray(hidden_classes).reshape(-1)):
      entry = self.hidden.setdefault(int(label), {
          'scores': {h: [] for h in D.heads}, 'covered': [],
          'thresholds': []})
      for head in D.heads:
        if scores.get(head) is not None:
          entry['scores'][head].append(float(scores[head][i]))
      entry['covered'].append(bool(covered[i]))
      entry['thresholds'].append(float(thresholds[i]))
      self.recall_hidden[int(label)] = self.recall_hidden.get(int(label),
                                                              0) + 1

  def add_mined(self, mined_classes, hits, is_new, fail_cls, fail_cls_a):
    """One image's mined boxes.

    Args:
      mined_classes: int [K].
      hits: bool [K], true positives.
      is_new: bool [K] (``new_box_mask``).
      fail_cls, fail_cls_a: bool [K] (``consensus_failures``); fail_cls_a
        None without a det-cls-a head.
    """
    classes = np.asarray(mined_classes).reshape(-1)
    self.mined_images += int(len(classes) > 0)
    if fail_cls_a is None:
      self.has_det_cls_a = False
    for i, label in enumerate(classes):
      a = bool(fail_cls_a[i]) if fail_cls_a is not None else False
      flags = (True, hits[i], is_new[i], is_new[i] and hits[i], fail_cls[i],
               a, fail_cls[i] or a)
      entry = self.mined.setdefault(int(label), [0] * _MINED_COUNTS)
      for k, flag in enumerate(flags):
        entry[k] += int(bool(flag))

  def add_background(self, num_background, num_hidden_target):
    """One mined image's ``background_composition``."""
    self.background[0] += int(num_background)
    self.background[1] += int(num_hidden_target)

  def _hidden_summary(self, entries):
    scores = {h: [s for e in entries for s in e['scores'][h]]
              for h in D.heads}
    thresholds = [t for e in entries for t in e['thresholds']]
    covered = [c for e in entries for c in e['covered']]
    out = {D.hidden_boxes: len(covered),
           D.covered: _ratio(sum(covered), len(covered))}
    for head in D.heads:
      present = head != D.det_cls_a or self.has_det_cls_a
      out[head] = score_summary(scores[head] if present else None,
                                thresholds)
    return out

  def _mined_summary(self, counts, hidden):
    boxes, tp, new, new_tp, fail_cls, fail_cls_a, fail_either = counts
    known, has_a = self.previous_known, self.has_det_cls_a
    return {D.boxes: boxes, D.true_positives: tp, D.hidden_boxes: hidden,
            D.precision: _ratio(tp, boxes), D.recall: _ratio(tp, hidden),
            D.new_boxes: {D.boxes: new if known else None,
                          D.true_positives: new_tp if known else None,
                          D.precision: _ratio(new_tp, new) if known else None},
            D.consensus: {
                D.boxes: boxes,
                D.fail_det_cls: _ratio(fail_cls, boxes),
                D.fail_det_cls_a: _ratio(fail_cls_a, boxes) if has_a else None,
                D.fail_either: _ratio(fail_either, boxes) if has_a else None}}

  def summary(self, id_to_name=None):
    """JSON-ready dict (DiagnosticsFields keys), None for undefined values.

    Layout: images; hidden_instance_scores {hidden_boxes, covered_share,
    det_cls|det_cls_a|mean: {median, share_above_threshold}, per_category};
    background_proposals {mined_images, sampled_background, hidden_target,
    source_object, nothing}; mined {boxes, true_positives, hidden_boxes,
    precision, recall, new_boxes, consensus, per_category}; new_boxes
    {previous_known, boxes, true_positives, precision}; consensus {boxes,
    fail_det_cls, fail_det_cls_a, fail_either}.
    """
    id_to_name = id_to_name or {}
    name = lambda c: id_to_name.get(c, str(c))
    hidden = self._hidden_summary(list(self.hidden.values()))
    hidden[D.per_category] = {name(c): self._hidden_summary([self.hidden[c]])
                              for c in sorted(self.hidden)}
    totals = [0] * _MINED_COUNTS
    for counts in self.mined.values():
      totals = [a + b for a, b in zip(totals, counts)]
    mined = self._mined_summary(totals, sum(self.recall_hidden.values()))
    mined[D.per_category] = {
        name(c): self._mined_summary(self.mined.get(c, [0] * _MINED_COUNTS),
                                     self.recall_hidden.get(c, 0))
        for c in sorted(set(self.mined) | set(self.recall_hidden))}
    background, hidden_target = self.background
    new_boxes = dict(mined[D.new_boxes])
    new_boxes[D.previous_known] = self.previous_known
    return {
        D.images: self.images,
        D.hidden_scores: hidden,
        D.background: {
            D.mined_images: self.mined_images,
            D.sampled_background: background,
            D.hidden_target: _ratio(hidden_target, background),
            D.source_object: None,
            D.nothing: _ratio(background - hidden_target, background)},
        D.mined: mined,
        D.new_boxes: new_boxes,
        D.consensus: mined[D.consensus],
    }
