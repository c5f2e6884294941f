"""Aggregation and rendering of the ablation results (ablation.{json,md,png}).

The results dict (``ablation.json``) that ``bench/run_ablation.py`` builds:

  {
    'schema_version': 1, 'created': str, 'command': [str],
    'via_make': bool (run by `make ablation`),
    'machine': bench/machine.describe() dict,
    'seeds': [int], 'variants': [variant key],
    'variant_settings': {variant: {'label', 'config', 'rpn_cls_a',
                         'det_cls_a', 'mask_mined_background',
                         'distillation'}},
    'budget': {...}  (iterations, epochs, batch, mining threshold, S steps),
    'dataset': dataset_parameters(manifest),
    'source': {'checkpoint': str, 'seconds': float | None},
    'runs': {variant: {seed (str): {
        'model_dir': str, 'status': 'complete' | 'partial' | 'failed'
                                    | 'pending',
        'error': str (failed only), 'seconds': float (summed over
        invocations), 'iteration_seconds': {t (str): float},
        'rows': [object_detection_note.iterate.report.collect rows]}}},
    'summary': summarise(runs, seeds),
    'total_seconds': float (S + every run, summed over invocations),
    'invocation_seconds': float (wall time of the last invocation),
    'load_avg_start', 'load_avg_end': [1, 5, 15-minute load averages],
  }

A row is ``{'iteration': t, 'mAP': float, 'mAP@0.5': float, 'mined_boxes':
int | None, 'mined_precision': float | None, 'mined_recall': float | None,
'distillation': bool, 'num_steps': int, 'diagnostics': iterate/loop_health.row
dict | None, ...}`` (mining fields None at T^0).
"""
import io
import math
import os
import shlex
import statistics

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

# Paper §4.3 order: (key = configs/ablation/<key>.config, label).
VARIANTS = (
    ('naive', 'Naive'),
    ('det_a', 'Det-A'),
    ('det_az', 'Det-AZ'),
    ('det_az_rpn_a', 'Det-AZ&RPN-A'),
    ('det_az_rpn_a_distill', 'Det-AZ&RPN-A&Distill'),
    ('half_distill', 'half-distill'),
)
LABELS = dict(VARIANTS)
METRICS = ('mAP', 'mAP@0.5', 'mined_boxes', 'mined_precision',
           'mined_recall')
# Loop-health figures (the row's 'diagnostics', iterate/loop_health.row);
# None where a run has no hidden boxes or audit set.
HEALTH_METRICS = ('new_box_precision', 'consensus_fail_det_cls',
                  'consensus_fail_det_cls_a', 'hidden_above_mean',
                  'background_hidden_target')


# ---------------------------------------------------------------- aggregation
def _stats(values):
  """{'mean', 'std' (sample std, None below 2 values), 'n', 'values'}."""
  values = [v for v in values if v is not None]
  if not values:
    return None
  return {'mean': statistics.fmean(values),
          'std': statistics.stdev(values) if len(values) > 1 else None,
          'n': len(values), 'values': values}


def _value(row, metric):
  """The row's metric, None when undefined.

  Precision is undefined when nothing was mined (0 boxes), and so is any
  value missing from the row or not finite (e.g. a recall without hidden
  boxes to score against).
  """
  if metric == 'mined_precision' and not row.get('mined_boxes'):
    return None
  if metric in HEALTH_METRICS:
    value = (row.get('diagnostics') or {}).get(metric)
  else:
    value = row.get(metric)
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return None
  return value


def summarise(runs, seeds):
  """Mean ± std over seeds of every metric, per variant and iteration.

  Args:
    runs: ``{variant: {seed (str): {'rows': [row, ...], ...}}}``.
    seeds: the seeds asked for (ints); a seed without rows counts as missing.

  Returns:
    ``{variant: [{'iteration': t, 'n': seeds with iteration t,
    'seeds': len(seeds), metric: _stats(...) | None for metric in METRICS},
    ...]}`` for t = 0 .. the last iteration finished by any seed. Mined
    precision of an iteration that mined no box is left out (undefined).
  """
  summary = {}
  for variant, by_seed in runs.items():
    per_iteration = {}
    for seed in seeds:
      for row in (by_seed.get(str(seed)) or {}).get('rows') or []:
        per_iteration.setdefault(row['iteration'], []).append(row)
    entries = []
    for t in sorted(per_iteration):
      rows = per_iteration[t]
      entry = {'iteration': t, 'n': len(rows), 'seeds': len(seeds)}
      for metric in METRICS + HEALTH_METRICS:
        entry[metric] = _stats([_value(r, metric) for r in rows])
      entries.append(entry)
    summary[variant] = entries
  return summary


def dataset_parameters(manifest):
  """The synthetic dataset's documented parameters from its manifest.json.

  Returns ``{'seed', 'image_size', 'objects_per_image': [min, max],
  'seed_images_per_category', 'source_categories': [names],
  'target_categories': [names], 'splits': {split: {'images', 'boxes',
  'hidden_boxes', 'image_level_labels'}}, 'scene': scene_config}``.
  """
  parameters = manifest.get('parameters', {})
  scene = parameters.get('scene_config', {})
  splits = {}
  for name, split in sorted(manifest.get('splits', {}).items()):
    splits[name] = {key: split.get(key) for key in (
        'images', 'boxes', 'hidden_boxes', 'image_level_labels')}
  return {
      'seed': parameters.get('seed'),
      'image_size': scene.get('image_size'),
      'objects_per_image': [scene.get('min_objects'), scene.get('max_objects')],
      'seed_images_per_category': parameters.get('seed_images_per_category'),
      'source_categories': [c['name'] for c in
                            manifest.get('source_categories', [])],
      'target_categories': [c['name'] for c in
                            manifest.get('target_categories', [])],
      'splits': splits,
      'scene': scene,
  }


# ------------------------------------------------------------------ rendering
def _number(stats, pattern, runs=None):
  """'0.2532', '0.2532 ± 0.0100'; '—' when undefined in every run.

  With ``runs`` (runs that reached the iteration) and a value defined in
  fewer of them (e.g. precision where some seeds mined 0 boxes), '(n=k)'
  follows.
  """
  if stats is None:
    return '—'
  text = pattern % stats['mean']
  if stats['std'] is not None:
    text += ' ± ' + pattern % stats['std']
  if runs is not None and stats['n'] < runs:
    text += ' (n=%d)' % stats['n']
  return text


def _cell(entry, metrics, patterns):
  if entry is None:
    return '—'
  text = ' / '.join(_number(entry[m], p, entry['n'])
                    for m, p in zip(metrics, patterns))
  if entry['n'] < entry['seeds']:
    text += ' (n=%d)' % entry['n']
  return text


def _iteration_table(results, first, metrics, patterns, prefix):
  summary = results.get('summary') or {}
  last = max([results['budget']['iterations']] +
             [e['iteration'] for entries in summary.values()
              for e in entries])
  columns = list(range(first, last + 1))
  lines = ['| variant | %s |' % ' | '.join('%s%d' % (prefix, t)
                                            for t in columns),
           '|---|%s' % ('---|' * len(columns))]
  for variant in results['variants']:
    by_t = {e['iteration']: e for e in summary.get(variant, [])}
    lines.append('| %s | %s |' % (LABELS.get(variant, variant), ' | '.join(
        _cell(by_t.get(t), metrics, patterns) for t in columns)))
  return lines


def duration(seconds):
  """'12m05s' for 725.0 seconds; '—' for None."""
  if seconds is None:
    return '—'
  minutes, secs = divmod(int(round(seconds)), 60)
  return '%dm%02ds' % (minutes, secs)


def _status(run, iterations):
  done = len(run.get('rows') or [])
  if run.get('status') == 'failed':
    return 'failed after %d/%d iterations: %s' % (
        done, iterations + 1, (run.get('error') or '').splitlines()[-1:][0]
        if run.get('error') else '')
  if run.get('status') == 'complete':
    return 'complete'
  if done:
    return 'partial: %d/%d iterations' % (done, iterations + 1)
  if run.get('seconds'):
    return 'started, T^0 not finished'
  return 'not run yet'


def _load(values):
  return '/'.join('%.2f' % v for v in values) if values else '–'


def _variant_lines(results):
  lines = ['| variant | config | rpn-cls-a | det-cls-a | mined background '
           'masked (Eq. 2) | distillation (Eq. 3) |',
           '|---|---|---|---|---|---|']
  yes = lambda flag: 'yes' if flag else 'no'
  for variant in results['variants']:
    s = results['variant_settings'][variant]
    lines.append('| %s | `%s` | %s | %s | %s | %s |' % (
        s['label'], s['config'], yes(s['rpn_cls_a']), yes(s['det_cls_a']),
        yes(s['mask_mined_background']), s['distillation']))
  return lines


def _budget_lines(budget):
  return [
      '- N = %d iterations: T^0 on the seed set B0 for %g epochs (%s '
      'steps), then T^t from T^{t-1} on B0 ∪ B^t for %g epochs each; batch '
      '%s, optimizer `%s`.' % (budget['iterations'], budget['initial_epochs'],
               budget['initial_steps'], budget['epochs_per_iteration'],
               budget['batch_size'], budget['learning_rate']) + (
                   ' Every T^t (t >= 1) trains at least %d steps.' %
                   budget['min_steps_per_iteration']
                   if budget.get('min_steps_per_iteration') else ''),
      '- Mining: B^t = M(A, T^{t-1}, θb = %g) afresh from all %s image-level '
      'images, one box per image-level label.' % (
          budget['score_threshold'], budget['image_level_images']),
      '- One source detector S (`%s`, %s steps) shared by every variant and '
      'seed: T^0 starts from it (new class heads), distillation targets come '
      'from it.' % (budget['source_config'], budget['source_steps']),
  ]


# Make targets that write the result files (by results name).
_MAKE_ABLATION = {'ablation': 'make ablation',
                  'ablation_noisy': 'make ablation-noisy',
                  'ablation_paper': 'make ablation-paper'}
# Make targets that generate the bundled datasets.
_MAKE_DATA = {'data/synthetic': 'make data',
              'data/synthetic_noisy': 'make data-noisy',
              'data/synthetic_paper': 'make data-paper'}


def _dataset_lines(dataset):
  splits = dataset['splits']
  def split(name, what):
    s = splits.get(name) or {}
    return '%s images (%s)' % (s.get('images'), what % s)
  data_dir = dataset.get('data_dir') or 'data/synthetic'
  scene = dataset.get('scene') or {}
  scene_text = ', '.join('%s %s' % (key, scene[key]) for key in (
      'min_scale', 'max_scale', 'min_visible', 'mixed_fraction',
      'min_strokes', 'max_strokes', 'noise_std', 'max_decoys') if key in scene)
  return [
      '- `%s` (`%s`, generator seed %s): %d×%d procedural '
      'scenes, %s–%s objects per image, %s seed images per target category '
      'on average.' % (
          data_dir, _MAKE_DATA.get(data_dir, 'make data DATA_DIR=' +
                                   data_dir),
          dataset['seed'], dataset['image_size'] or 0,
          dataset['image_size'] or 0, dataset['objects_per_image'][0],
          dataset['objects_per_image'][1],
          dataset['seed_images_per_category']),
      '- Scene statistics: %s.' % (scene_text or '—'),
      '- Source categories (S): %s.' % ', '.join(
          dataset['source_categories']),
      '- Target categories: %s.' % ', '.join(dataset['target_categories']),
      '- Splits: source_train %s; seed B0 %s; image-level A %s; target_val '
      '%s.' % (split('source_train', '%(boxes)s boxes'),
               split('seed', '%(boxes)s boxes'),
               split('image_level', '%(image_level_labels)s image-level '
                     'labels, %(hidden_boxes)s hidden boxes'),
               split('target_val', '%(boxes)s boxes')),
  ]


def _machine_lines(m):
  return [
      '- CPU: %s, %s logical CPUs (%s usable), flags %s' % (
          m['cpu_model'], m['logical_cpus'], m['usable_cpus'],
          ', '.join(m['cpu_flags']) or '–'),
      '- RAM: %s GiB; %s' % (m['memory_gib'], m['os']),
      '- Python %s, TensorFlow %s, tf-keras %s, Apache Beam %s; oneDNN: %s' % (
          m['python'], m['tensorflow'], m['tf_keras'], m['apache_beam'],
          m['onednn_opts']),
  ]


def markdown(results):
  """The whole ablation.md text."""
  seeds = results['seeds']
  budget = results['budget']
  several = len(seeds) > 1
  lines = [
      '# NOTE-RCNN ablation (paper §4.3) on the synthetic dataset%s' % (
          ' `%s`' % results['dataset']['data_dir']
          if results['dataset'].get('data_dir', 'data/synthetic') !=
          'data/synthetic' else ''),
      '',
      'Made by %s`%s` on %s. Seeds: %s%s' % (
          '`%s`: ' % _MAKE_ABLATION.get(results.get('results_name'),
                                        'make ablation')
          if results.get('via_make') else '',
          shlex.join(results['command']), results['created'],
          ', '.join(str(s) for s in seeds),
          ' (cells: mean ± sample standard deviation over seeds; "n=k": '
          'only k seeds have that iteration yet).' if several else
          ' (one run per variant; run-to-run noise is not shown: pass '
          'several seeds, e.g. `make ablation SEEDS=0,1,2`, for mean ± std).'),
      '',
      'Total wall time: %s (S %s, variants %s), summed over invocations '
      '(the last one: %s); load average at start %s, at end %s.' % (
          duration(results.get('total_seconds')),
          duration((results.get('source') or {}).get('seconds')),
          duration(sum(r.get('seconds') or 0 for v in results['runs']
                        .values() for r in v.values())),
          duration(results.get('invocation_seconds')),
          _load(results.get('load_avg_start')),
          _load(results.get('load_avg_end'))),
      '',
      '## Variants',
      '',
  ] + _variant_lines(results) + [
      '',
      'Same data, seed(s) and budget for every variant:',
      '',
  ] + _budget_lines(budget) + [
      '',
      '## Target-val mAP per iteration (paper Fig. 4 / 8)',
      '',
      'Cells: mAP@[.5:.95] / mAP@.5 of T^t on `target_val`.',
      '',
  ] + _iteration_table(results, 0, ('mAP', 'mAP@0.5'), ('%.4f', '%.4f'),
                       'T^') + [
      '',
      '## Mined boxes per iteration (paper Table 1)',
      '',
      'Cells: mined boxes / precision / recall of B^t (mined with T^{t-1}; '
      'scored against the hidden boxes of A).',
      '',
  ] + _iteration_table(results, 1, ('mined_boxes', 'mined_precision',
                                    'mined_recall'),
                       ('%.0f', '%.3f', '%.3f'), 'B^') + _health_lines(
                           results) + [
      '',
      '## Time per variant',
      '',
      '| variant | seed | wall time | per iteration | steps trained | status |',
      '|---|---|---|---|---|---|',
  ]
  for variant in results['variants']:
    for seed in seeds:
      run = results['runs'].get(variant, {}).get(str(seed)) or {}
      per_t = run.get('iteration_seconds') or {}
      lines.append('| %s | %s | %s | %s | %s | %s |' % (
          LABELS.get(variant, variant), seed, duration(run.get('seconds')),
          ', '.join('T^%s %s' % (t, duration(s)) for t, s in
                    sorted(per_t.items(), key=lambda kv: int(kv[0]))) or '—',
          sum(r.get('num_steps') or 0 for r in run.get('rows') or []) or '—',
          _status(run, budget['iterations'])))
  lines += ['', '## Dataset', ''] + _dataset_lines(results['dataset'])
  lines += ['', '## Machine', ''] + _machine_lines(results['machine'])
  name = results.get('results_name', 'ablation')
  lines += ['', '![%s](%s.png)' % (name, name)]
  return '\n'.join(lines) + '\n'


def _health_lines(results):
  """Loop-health tables (new-box precision, consensus, ...), if any run has
  diagnostics."""
  summary = results.get('summary') or {}
  if not any(e.get(m) for entries in summary.values() for e in entries
             for m in HEALTH_METRICS):
    return []
  return [
      '',
      '## Loop health per iteration (mining diagnostics)',
      '',
      'Cells: precision of the boxes new in B^t (not in B^{t-1}) / share of '
      'B^t that det-cls alone / det-cls-a alone would not pass θ '
      '(consensus). Definitions: '
      '`object_detection_note/mining/loop_diagnostics.py`.',
      '',
  ] + _iteration_table(results, 1, ('new_box_precision',
                                    'consensus_fail_det_cls',
                                    'consensus_fail_det_cls_a'),
                       ('%.3f', '%.3f', '%.3f'), 'B^') + [
      '',
      'Cells: share of the hidden instances of A that T^{t-1} scores above θ '
      '(mean of det-cls and det-cls-a, the mined score) / share of the '
      'background proposals sampled on mined images that lie on a hidden '
      'instance (false negatives).',
      '',
  ] + _iteration_table(results, 1, ('hidden_above_mean',
                                    'background_hidden_target'),
                       ('%.3f', '%.3f'), 'B^')


_PANELS = (
    ('mAP', 'target-val mAP@[.5:.95]'),
    ('mAP@0.5', 'target-val mAP@.5'),
    ('mined_precision', 'mined box precision'),
    ('mined_boxes', 'mined boxes'),
)


def plot(results):
  """PNG bytes: one line per variant vs iteration, one panel per metric."""
  summary = results.get('summary') or {}
  figure, axes = plt.subplots(2, 2, figsize=(12, 8))
  colours = plt.get_cmap('tab10')
  last = max([results['budget']['iterations']] +
             [e['iteration'] for entries in summary.values()
              for e in entries])
  for axis, (metric, title) in zip(axes.flat, _PANELS):
    for index, variant in enumerate(results['variants']):
      points = [(e['iteration'], e[metric]) for e in summary.get(variant, [])
                if e[metric] is not None]
      if not points:
        continue
      its = [t for t, _ in points]
      means = [s['mean'] for _, s in points]
      errors = [s['std'] or 0.0 for _, s in points]
      axis.errorbar(its, means, yerr=errors if any(errors) else None,
                    fmt='o-', capsize=3, color=colours(index),
                    label=LABELS.get(variant, variant))
    axis.set(title=title, xlabel='iteration t', xticks=range(last + 1),
             xlim=(-0.3, last + 0.3))
    if metric == 'mined_boxes':
      axis.set_ylim(bottom=0)
    elif metric == 'mined_precision' and axis.has_data():
      axis.set_ylim(top=min(1.005, axis.get_ylim()[1]))
  handles, labels = axes.flat[0].get_legend_handles_labels()
  if handles:
    axes.flat[0].legend(handles, labels, fontsize='small')
  seeds = results['seeds']
  figure.suptitle('NOTE-RCNN ablation on %s (%s)' % (
      (results.get('dataset') or {}).get('data_dir') or 'data/synthetic',
      'seed %s' % seeds[0] if len(seeds) == 1 else
      'mean ± std over seeds %s' % ', '.join(str(s) for s in seeds)))
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=100)
  plt.close(figure)
  return buffer.getvalue()


def write_results(results, output_dir, name='ablation'):
  """Writes <name>.json, <name>.md and <name>.png atomically.

  ``results['summary']`` is (re)computed from ``results['runs']`` first and
  ``results['results_name']`` set to ``name``. Returns the three paths.
  """
  from object_detection_note.core import file_io  # pylint: disable=g-import-not-at-top
  results['summary'] = summarise(results['runs'], results['seeds'])
  results['results_name'] = name
  paths = [os.path.join(output_dir, name + '.' + ext)
           for ext in ('json', 'md', 'png')]
  file_io.write_json_atomically(paths[0], _finite(results))
  file_io.write_atomically(paths[1], markdown(results))
  file_io.write_atomically(paths[2], plot(results))
  return paths


def _finite(value):
  """NaN/inf → None, recursively (strict JSON)."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite(v) for v in value]
  return value
