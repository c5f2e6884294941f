r"""B^1 against θb from T^0's threshold sweep: the calibration table.

  python bench/ablation_calibration.py --runs_dir=runs/ablation_paper_calib \
    --data_dir=data/synthetic_paper --output=bench/results/x.md \
    [--variants=naive,det_a,...] [--seed=0] [--command="..."]

Reads ``<runs_dir>/<seed>/<variant>/iteration_01/mined/mining_metrics.json``
(B^1 = M(A, T^0, θ), with the precision-vs-boxes sweep of every θ) and the
dataset manifest (hidden instances and image-level labels of A), and writes
a markdown table per variant: θ, mined boxes, precision, recall (correct
boxes / hidden instances of A), share of image-level labels mined. T^0's mAP
comes from ``iteration_00/eval/metrics.json`` when present. The file is
written atomically.
"""
import json
import os
import sys

from absl import app
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.append(REPO_ROOT)

from object_detection_note.core import file_io  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags():
  """This binary's flags (defined only when it runs: tests import it)."""
  flags.DEFINE_string('runs_dir', None, 'Run directories <runs_dir>/<seed>/<variant>.')
  flags.DEFINE_string('data_dir', None, 'Dataset (its manifest.json).')
  flags.DEFINE_list('variants', ['naive', 'det_a', 'det_az_rpn_a',
                                 'det_az_rpn_a_distill'], 'Variants.')
  flags.DEFINE_integer('seed', 0, 'Training seed of the runs.')
  flags.DEFINE_string('output', None, 'Markdown file to write.')
  flags.DEFINE_string('command', '', 'The commands that made the runs (quoted '
                      'in the file).')
  flags.mark_flags_as_required(['runs_dir', 'data_dir', 'output'])


def calibration_rows(metrics, hidden, labels):
  """Rows ``{threshold, boxes, precision, recall, labels_mined}`` of a sweep.

  Args:
    metrics: mining_metrics.json of B^1 (its ``threshold_sweep``).
    hidden: hidden instances of A; labels: image-level labels of A.
  """
  rows, seen = [], set()
  for point in metrics['threshold_sweep']:
    # A float32 config value (0.7 -> 0.699999988) may repeat a default one.
    threshold = float('%.6g' % point['threshold'])
    if threshold in seen:
      continue
    seen.add(threshold)
    n, tp = point['mined_boxes'], point['true_positives']
    rows.append({'threshold': threshold, 'boxes': n,
                 'precision': tp / n if n else None,
                 'recall': tp / hidden if hidden else None,
                 'labels_mined': n / labels if labels else None})
  return rows


def _fmt(value, pattern):
  return '—' if value is None else pattern % value


def markdown(tables, dataset, command):
  """The calibration file: dataset line, then one table per variant."""
  split = dataset['splits']['image_level']
  lines = ['# Paper-regime calibration: B^1 = M(A, T^0, θ) against θ', '',
           'Made by:', '', '```', command or '(not given)', '```', '',
           '- A: %d images, %d image-level labels, %d hidden instances '
           '(%.2f per label); seed B0: %d images.' % (
               split['images'], split['image_level_labels'],
               split['hidden_boxes'], split['hidden_boxes'] /
               max(1, split['image_level_labels']),
               dataset['splits']['seed']['images']),
           '- Bands (issue 17): precision 0.85-0.92, recall 3-10% of the '
           'hidden instances, at θb >= 0.8.', '']
  for variant, (map_, rows) in tables.items():
    lines += ['## %s (T^0 mAP %s)' % (variant, _fmt(map_, '%.4f')), '',
              '| θ | boxes | precision | recall | labels mined |',
              '|---|---|---|---|---|']
    for r in rows:
      lines.append('| %g | %d | %s | %s | %s |' % (
          r['threshold'], r['boxes'], _fmt(r['precision'], '%.3f'),
          _fmt(r['recall'], '%.3f'), _fmt(r['labels_mined'], '%.2f')))
    lines.append('')
  return '\n'.join(lines)


def main(argv):
  del argv
  with open(os.path.join(FLAGS.data_dir, 'manifest.json')) as f:
    dataset = json.load(f)
  split = dataset['splits']['image_level']
  tables = {}
  for variant in FLAGS.variants:
    run = os.path.join(FLAGS.runs_dir, str(FLAGS.seed), variant)
    path = os.path.join(run, 'iteration_01', 'mined', 'mining_metrics.json')
    metrics = file_io.read_json(path)
    if metrics is None:
      raise app.UsageError('%s is missing: mine B^1 first' % path)
    evaluation = file_io.read_json(os.path.join(
        run, 'iteration_00', 'eval', 'metrics.json')) or {}
    tables[variant] = (evaluation.get('DetectionBoxes_Precision/mAP'),
                       calibration_rows(metrics, split['hidden_boxes'],
                                        split['image_level_labels']))
  file_io.write_atomically(FLAGS.output, markdown(tables, dataset,
                                                  FLAGS.command) + '\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
