"""Mining thresholds per class: the paper's fixed θb, or the adaptive mode.

Paper §3.2 keeps the best box of an image-level label when its score > θb,
one θb for every class. ``note.mining.adaptive_threshold`` (beyond the
paper, for weak detectors) lowers it per class c:

    θ_c = min(θb, max(min_score, q_c))

where q_c is the (1 - keep_fraction) quantile of the scores of class c's
candidates (each image's best box per image-level label of class c). A
candidate is kept when its score > θ_c, so at most about ``keep_fraction``
of a class's candidates are added below θb, none at or under min_score.

A thresholds mapping is ``{class id: θ_c}``; classes missing from it use θb.
"""
import numpy as np


def adaptive(scores_by_class, score_threshold, keep_fraction, min_score):
  """θ_c for every class with candidates.

  Args:
    scores_by_class: {class id: iterable of candidate scores}.
    score_threshold: θb.
    keep_fraction: in (0, 1].
    min_score: in [0, 1).

  Returns:
    {class id: θ_c} (floats).
  """
  if not 0.0 < keep_fraction <= 1.0:
    raise ValueError('note.mining.adaptive_threshold.keep_fraction must be in '
                     '(0, 1], got %r' % keep_fraction)
  if not 0.0 <= min_score < 1.0:
    raise ValueError('note.mining.adaptive_threshold.min_score must be in '
                     '[0, 1), got %r' % min_score)
  thresholds = {}
  for label, scores in scores_by_class.items():
    scores = np.sort(np.asarray(list(scores), np.float64))
    if not scores.size:
      continue
    # Keep the ceil(keep_fraction * n) best: threshold just below the
    # lowest kept score (strict comparison keeps it).
    kept = int(np.ceil(keep_fraction * scores.size))
    quantile = float(np.nextafter(scores[scores.size - kept], -np.inf))
    thresholds[int(label)] = min(float(score_threshold),
                                 max(float(min_score), quantile))
  return thresholds


def keep_mask(classes, scores, score_threshold, thresholds=None):
  """bool [K]: which candidates pass their class's threshold (strict >)."""
  classes = np.asarray(classes).reshape(-1)
  scores = np.asarray(scores).reshape(-1)
  thresholds = thresholds or {}
  limits = np.array([thresholds.get(int(c), score_threshold) for c in classes],
                    np.float64)
  return scores > limits


def too_few_boxes_message(mined_boxes, minimum, score_threshold, sweep):
  """Text of the too-few-boxes warning, or None when ``mined_boxes`` is enough.

  Args:
    mined_boxes: boxes mined at θb.
    minimum: note.mining.min_mined_boxes (0 = no check).
    score_threshold: θb.
    sweep: mining_metrics.json's threshold_sweep (list of dicts with
      threshold, mined_boxes, precision).
  """
  if minimum <= 0 or mined_boxes >= minimum:
    return None
  lines = ['mined %d boxes at θb = %g, fewer than note.mining.min_mined_boxes '
           '= %d. Threshold sweep of the candidates (best box per '
           'image-level label):' % (mined_boxes, score_threshold, minimum)]
  for point in sweep:
    precision = point.get('precision')
    lines.append('  θb > %-6g %6d boxes  precision %s' % (
        point['threshold'], point['mined_boxes'],
        '—' if precision is None else '%.3f' % precision))
  enough = [p for p in sweep if p['mined_boxes'] >= minimum]
  if enough:
    best = max(enough, key=lambda p: p['threshold'])
    lines.append('θb = %g would have mined %d boxes; set '
                 'note.mining.score_threshold, or note.mining.'
                 'adaptive_threshold for a weak detector.' %
                 (best['threshold'], best['mined_boxes']))
  else:
    lines.append('no swept θb mines %d boxes: the detector finds (almost) no '
                 'box of the image-level labels.' % minimum)
  return '\n'.join(lines)
