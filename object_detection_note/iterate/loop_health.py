"""The loop-health section of the run report (``mining/loop_diagnostics``).

``row(diagnostics)``: the figures of one iteration's diagnostics that the
report shows, a flat dict (None where undefined):
  set, images, model                  what was diagnosed, with which T^{t-1}
  hidden_above_{det_cls,det_cls_a,mean}, hidden_median_{...}
                                      hidden instances' scores (all classes)
  hidden_covered                      share with a covering proposal
  background_hidden_target, background_nothing
                                      sampled background proposals of mined
                                      images on hidden instances / nothing
  mined_precision, mined_recall, new_boxes, new_box_precision
  consensus_fail_det_cls, consensus_fail_det_cls_a, consensus_fail_either
  per_category {name: {above_{head}, median_{head}, precision, recall}}
``markdown(rows)`` renders them ("—" for None); ``plot(axis, rows)`` draws
the shares per iteration.
"""
from object_detection_note.core.fields import DiagnosticsFields as D

_HEAD_LABELS = {D.det_cls: 'det-cls', D.det_cls_a: 'det-cls-a',
                D.mean: 'mean'}


def _scores(entry, prefix=''):
  out = {}
  for head in D.heads:
    figures = entry.get(head) or {}
    out[prefix + 'above_' + head] = figures.get(D.above_threshold)
    out[prefix + 'median_' + head] = figures.get(D.median)
  return out


def row(diagnostics):
  """Flat report figures of one iteration's diagnostics; None if absent."""
  if not diagnostics:
    return None
  hidden = diagnostics[D.hidden_scores]
  background = diagnostics[D.background]
  mined = diagnostics[D.mined]
  consensus = diagnostics[D.consensus]
  out = {'set': diagnostics.get(D.diagnosed_set),
         'images': diagnostics.get(D.images),
         'model': diagnostics.get(D.model),
         'hidden_covered': hidden.get(D.covered),
         'background_hidden_target': background.get(D.hidden_target),
         'background_nothing': background.get(D.nothing),
         'mined_precision': mined.get(D.precision),
         'mined_recall': mined.get(D.recall),
         'new_boxes': diagnostics[D.new_boxes].get(D.boxes),
         'new_box_precision': diagnostics[D.new_boxes].get(D.precision),
         'consensus_fail_det_cls': consensus.get(D.fail_det_cls),
         'consensus_fail_det_cls_a': consensus.get(D.fail_det_cls_a),
         'consensus_fail_either': consensus.get(D.fail_either)}
  for key, value in _scores(hidden).items():
    out['hidden_' + key] = value
  categories = {}
  for name, entry in hidden.get(D.per_category, {}).items():
    categories[name] = _scores(entry)
  for name, entry in mined.get(D.per_category, {}).items():
    categories.setdefault(name, {}).update(
        {'precision': entry.get(D.precision), 'recall': entry.get(D.recall)})
  out['per_category'] = categories
  return out


def _fmt(value, pattern='%.3f'):
  return '—' if value is None else pattern % value


def markdown(rows):
  """Loop-health tables of the iterations with diagnostics ('' if none)."""
  health = [(r['iteration'], r['diagnostics']) for r in rows
            if r.get('diagnostics')]
  if not health:
    return ''
  lines = [
      '## Loop health', '',
      'Hidden instances of A (or the audit set) under T^{t-1}: share scored '
      'above θ and median, per head (det-cls / det-cls-a / mean, the mined '
      'score); background proposals sampled on mined images that lie on a '
      'hidden instance (false negatives); precision of boxes new in B^t; '
      'consensus: share of B^t a single head would reject. Definitions: '
      '`object_detection_note/mining/loop_diagnostics.py`.', '',
      '| B^t | set (images) | hidden > θ: det-cls / -a / mean | median: '
      'det-cls / -a / mean | background on hidden | new boxes | new-box '
      'precision | fail det-cls | fail det-cls-a |',
      '|---|---|---|---|---|---|---|---|---|']
  for t, d in health:
    lines.append('| B^%d | %s (%s) | %s | %s | %s | %s | %s | %s | %s |' % (
        t, d['set'], _fmt(d['images'], '%d'),
        ' / '.join(_fmt(d['hidden_above_' + h]) for h in D.heads),
        ' / '.join(_fmt(d['hidden_median_' + h]) for h in D.heads),
        _fmt(d['background_hidden_target']), _fmt(d['new_boxes'], '%d'),
        _fmt(d['new_box_precision']), _fmt(d['consensus_fail_det_cls']),
        _fmt(d['consensus_fail_det_cls_a'])))
  lines += ['', '| B^t | class | hidden > θ: det-cls / -a / mean | mined '
            'precision | mined recall |', '|---|---|---|---|---|']
  for t, d in health:
    for name, c in sorted(d['per_category'].items()):
      lines.append('| B^%d | %s | %s | %s | %s |' % (
          t, name, ' / '.join(_fmt(c.get('above_' + h)) for h in D.heads),
          _fmt(c.get('precision')), _fmt(c.get('recall'))))
  return '\n'.join(lines)


def _nan(value):
  return float('nan') if value is None else value


def plot(axis, rows):
  """Shares per iteration on one matplotlib axis."""
  health = [(r['iteration'], r['diagnostics']) for r in rows
            if r.get('diagnostics')]
  its = [t for t, _ in health]
  series = [('hidden_above_' + h, 'hidden > θ (%s)' % _HEAD_LABELS[h], 'o-')
            for h in D.heads]
  series += [('new_box_precision', 'new-box precision', 's--'),
             ('consensus_fail_det_cls', 'fail det-cls', 'v:'),
             ('consensus_fail_det_cls_a', 'fail det-cls-a', '^:'),
             ('background_hidden_target', 'background on hidden', 'x-.')]
  for key, label, style in series:
    axis.plot(its, [_nan(d[key]) for _, d in health], style, label=label)
  axis.set(title='loop health (B^t, scores under T^{t-1})',
           xlabel='iteration t', ylabel='share', ylim=(-0.02, 1.05),
           xticks=its)
  axis.legend(fontsize=7)
