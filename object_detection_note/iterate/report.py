"""The run report: report.json, report.md (paper Table 1 style), report.png.

report.json: ``{"iterations": [{"iteration": t, "mAP": …, "mAP@0.5": …,
"mined_boxes": …, "mined_precision": …, "mined_recall": …,
"mining_warning": …, "diagnostics": {…} or null, "stages": {stage:
{"wall_s", "peak_rss_bytes", "measured"}}}, …]}`` (mining fields are
null for T^0, which is trained on seeds only; precision is null when nothing
was mined, shown as "—"; diagnostics: ``loop_health.row``, null without
hidden boxes or an audit set).
report.md: the table, the loop-health tables (``loop_health``), the stage
times and memory.
report.png: mAP per iteration; mined boxes and precision per iteration; the
precision-vs-number-of-boxes curve of every iteration's threshold sweep
(paper Fig. 6); with diagnostics, a loop-health panel (``loop_health``).
report.md also links each mining stage's ``iteration_NN/mined/gallery.png``
(``mining.gallery``).
"""
import io
import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection_note.core import file_io  # pylint: disable=wrong-import-position
from object_detection_note.core.fields import DiagnosticsFields  # pylint: disable=wrong-import-position
from object_detection_note.iterate import loop_health  # pylint: disable=wrong-import-position
from object_detection_note.iterate import run_layout as layout  # pylint: disable=wrong-import-position
from object_detection_note.iterate import stage_stats  # pylint: disable=wrong-import-position
from object_detection_note.mining import gallery  # pylint: disable=wrong-import-position
from object_detection_note.mining import mining_pipeline  # pylint: disable=wrong-import-position
from object_detection_note.core import progress  # pylint: disable=wrong-import-position

MAP = 'DetectionBoxes_Precision/mAP'
MAP50 = 'DetectionBoxes_Precision/mAP@.50IOU'


def collect(model_dir, num_iterations):
  """Rows of the finished iterations, in order."""
  rows, sweeps = [], {}
  for t in range(num_iterations + 1):
    manifest = layout.read_json(os.path.join(
        layout.iteration_dir(model_dir, t), layout.MANIFEST))
    if manifest is None:
      break
    mining = manifest.get('mining') or {}
    evaluation = manifest.get('eval') or {}
    rows.append({
        'iteration': t,
        'mAP': evaluation.get(MAP),
        'mAP@0.5': evaluation.get(MAP50),
        'mined_boxes': mining.get('mined_boxes'),
        'mined_images': mining.get('images_with_boxes'),
        'mined_precision': mining.get('precision'),
        'mined_recall': mining.get('recall'),
        'mining_warning': mining.get('warning'),
        'distillation': manifest.get('distillation'),
        'num_steps': manifest.get('num_steps'),
        'diagnostics': loop_health.row(mining.get(
            DiagnosticsFields.diagnostics)),
        'stages': manifest.get('stages') or {},
    })
    metrics = layout.read_json(os.path.join(layout.mined_dir(model_dir, t),
                                            mining_pipeline.METRICS_FILE))
    if t and metrics:
      sweeps[t] = metrics.get('threshold_sweep', [])
  return rows, sweeps


def _fmt(value, pattern='%.4f'):
  return '—' if value is None else pattern % value


def markdown_table(rows):
  lines = ['| iteration | mAP@[.5:.95] | mAP@.5 | mined boxes | mined '
           'precision | mined recall | distill |',
           '|---|---|---|---|---|---|---|']
  warned = []
  for row in rows:
    boxes = _fmt(row['mined_boxes'], '%d')
    if row.get('mining_warning'):
      boxes += ' ⚠'
      warned.append('T^%d' % row['iteration'])
    lines.append('| T^%d | %s | %s | %s | %s | %s | %s |' % (
        row['iteration'], _fmt(row['mAP']), _fmt(row['mAP@0.5']),
        boxes, _fmt(row['mined_precision'], '%.3f'),
        _fmt(row['mined_recall'], '%.3f'),
        'yes' if row['distillation'] else 'no'))
  if warned:
    lines += ['', '⚠ %s: fewer boxes mined than note.mining.min_mined_boxes '
              '(threshold sweep and a θb that would have mined boxes: '
              'iteration_NN/mined/manifest.json).' % ', '.join(warned)]
  return '\n'.join(lines)


def stage_table(rows):
  """Wall time and peak resident memory of each stage, per iteration."""
  if not any(row.get('stages') for row in rows):
    return ''
  names = [n for n in stage_stats.ORDER
           if any(n in (row.get('stages') or {}) for row in rows)]
  lines = ['| iteration | %s |' % ' | '.join(
      '%s wall / peak memory' % n for n in names),
           '|---|%s' % ('---|' * len(names))]
  measured = set()
  for row in rows:
    cells = []
    for name in names:
      entry = (row.get('stages') or {}).get(name)
      if entry:
        measured.add(entry.get('measured'))
        cells.append('%s / %s' % (
            progress.format_duration(entry['wall_s']),
            stage_stats.format_bytes(entry['peak_rss_bytes'])))
      else:
        cells.append('—')
    lines.append('| T^%d | %s |' % (row['iteration'], ' | '.join(cells)))
  lines += ['', 'Peak resident memory measured per stage (%s); the source '
            'stage is listed with iteration 0.' % ', '.join(
                sorted(m for m in measured if m))]
  return '\n'.join(lines)


def _or_nan(value):
  return float('nan') if value is None else value


def _plot(rows, sweeps):
  with_health = any(r.get('diagnostics') for r in rows)
  figure, axes = plt.subplots(1, 4 if with_health else 3,
                              figsize=(20 if with_health else 15, 4))
  its = [r['iteration'] for r in rows]
  axes[0].plot(its, [r['mAP'] or 0 for r in rows], 'o-', label='mAP@[.5:.95]')
  axes[0].plot(its, [r['mAP@0.5'] or 0 for r in rows], 's-', label='mAP@.5')
  axes[0].set(title='target-val mAP per iteration', xlabel='iteration t',
              xticks=its)
  axes[0].legend()
  mined = [r for r in rows if r['mined_boxes'] is not None]
  axes[1].bar([r['iteration'] for r in mined],
              [r['mined_boxes'] for r in mined], color='lightsteelblue')
  axes[1].set(title='mined boxes and precision', xlabel='iteration t',
              ylabel='mined boxes', xticks=[r['iteration'] for r in mined])
  twin = axes[1].twinx()
  twin.plot([r['iteration'] for r in mined],
            [_or_nan(r['mined_precision']) for r in mined], 'ro-')
  twin.set(ylabel='precision', ylim=(0, 1.05))
  for t, sweep in sorted(sweeps.items()):
    points = [p for p in sweep if p['mined_boxes'] > 0]
    axes[2].plot([p['mined_boxes'] for p in points],
                 [p['precision'] for p in points], '.-', label='T^%d' % (t - 1))
  axes[2].set(title='precision vs #boxes (threshold sweep)',
              xlabel='mined boxes', ylabel='precision', ylim=(0, 1.05))
  if sweeps:
    axes[2].legend(title='miner')
  if with_health:
    loop_health.plot(axes[3], rows)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=100)
  plt.close(figure)
  return buffer.getvalue()


def gallery_links(model_dir, num_iterations):
  """Markdown section linking each mining stage's gallery ('' if none)."""
  lines = []
  for t in range(1, num_iterations + 1):
    path = os.path.join(layout.mined_dir(model_dir, t), gallery.GALLERY_NAME)
    if tf.io.gfile.exists(path):
      relative = os.path.relpath(path, model_dir)
      lines.append('- B^%d: [%s](%s)' % (t, relative, relative))
  if not lines:
    return ''
  return ('\n## Mined images\n\nA sample of each mined set (mined boxes '
          'with class and score; hidden boxes, where the records carry them, '
          'in the second colour):\n\n' + '\n'.join(lines) + '\n')


def write_report(model_dir, num_iterations, command=None):
  """Writes report.{json,md,png} atomically; returns the markdown table."""
  rows, sweeps = collect(model_dir, num_iterations)
  layout.write_json(os.path.join(model_dir, 'report.json'),
                    {'iterations': rows})
  table = markdown_table(rows)
  text = '# NOTE-RCNN run report\n\n'
  if command:
    text += 'Made by: `%s`\n\n' % command
  text += table + '\n\n'
  health = loop_health.markdown(rows)
  if health:
    text += health + '\n\n'
  text += '![report](report.png)\n'
  text += gallery_links(model_dir, num_iterations)
  stages_text = stage_table(rows)
  if stages_text:
    text += '\n## Stage times and memory\n\n' + stages_text + '\n'
  file_io.write_atomically(os.path.join(model_dir, 'report.md'), text)
  file_io.write_atomically(os.path.join(model_dir, 'report.png'),
                           _plot(rows, sweeps))
  return table
