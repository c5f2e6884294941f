"""Ratios and the Markdown rendering of bench/results/bench.json."""

# The upstream OD API's Faster R-CNN IRv2 train step at 320x320 / 64
# proposals on the project's 2-core reference machine (tf.function, TF 2.20).
OD_API_IRV2_320_SECONDS = 9.5
REFERENCE_CASE = 'irv2_320/plain'
RATIOS = (('note', 'plain'), ('distill', 'plain'), ('distill', 'note'))


def ratios(train_results):
  """{setting: {'note/plain': {'wall': r, 'cpu': r}, ...}} from train cases."""
  by_setting = {}
  for case, result in train_results.items():
    if 'error' in result:
      continue
    setting, variant = case.split('/')
    by_setting.setdefault(setting, {})[variant] = result
  out = {}
  for setting, variants in by_setting.items():
    for top, bottom in RATIOS:
      if top in variants and bottom in variants:
        a, b = variants[top], variants[bottom]
        out.setdefault(setting, {})['%s/%s' % (top, bottom)] = {
            'wall': a['median_s'] / b['median_s'],
            'cpu': a['median_cpu_s'] / b['median_cpu_s'],
        }
  return out


def reference_comparison(train_results, usable_cpus):
  """Plain IRv2 320 step against the OD API figure, if it was measured.

  ``cpu_bound_s`` (median CPU time / usable cores) is the step time the
  process would need with every core to itself and perfect parallelism.
  """
  result = train_results.get(REFERENCE_CASE)
  if not result or 'error' in result:
    return None
  return {
      'od_api_seconds': OD_API_IRV2_320_SECONDS,
      'plain_median_s': result['median_s'],
      'ratio': result['median_s'] / OD_API_IRV2_320_SECONDS,
      'cpu_bound_s': result['median_cpu_s'] / max(1, usable_cpus or 1),
  }


def _fmt(value, digits=2):
  if value is None:
    return '–'
  if isinstance(value, float):
    return '%.*f' % (digits, value)
  return str(value)


def _load(values):
  return '/'.join('%.2f' % v for v in values) if values else '–'


def _train_table(train):
  lines = [
      '| case | median s/step | median CPU s/step | cores used | steps (s) '
      '| warm-up s | peak RSS MiB | load 1/5/15 before → after |',
      '|---|---:|---:|---:|---|---:|---:|---|',
  ]
  for case, r in train.items():
    if 'error' in r:
      lines.append('| %s | failed: %s | | | | | | |' %
                   (case, r['error'].splitlines()[-1][:120]))
      continue
    lines.append('| %s | %s | %s | %s | %s | %s | %s | %s → %s |' % (
        case, _fmt(r['median_s']), _fmt(r['median_cpu_s']),
        _fmt(r['median_cpu_s'] / r['median_s'], 1),
        ', '.join('%.2f' % s for s in r['step_seconds']),
        _fmt(r['first_step_s'], 0), _fmt(r.get('peak_rss_mib'), 0),
        _load(r['load_avg_before']), _load(r['load_avg_after'])))
  return lines


def _ratio_table(ratio_dict):
  lines = ['| setting | ratio | wall | CPU |', '|---|---|---:|---:|']
  for setting, values in ratio_dict.items():
    for name, r in values.items():
      lines.append('| %s | %s | %.3f | %.3f |' % (setting, name, r['wall'],
                                                  r['cpu']))
  return lines


def _mining_lines(mining):
  if 'error' in mining:
    return ['Mining benchmark failed: %s' % mining['error'].splitlines()[-1]]
  d = mining['detector_only']
  lines = [
      'Tiny model (`%s`), fresh weights; input: %s. Detector alone (one '
      'process, batch %d, %d images in memory): **%.1f images/s**. The '
      'pipeline figures are end to end: pipeline start, one model load per '
      'worker, decoding, detection, mining and writing.' % (
          mining['config'], mining.get('input', 'image_level set'),
          d['batch_size'], d['images'], d['images_per_s']),
      '',
      '| Beam workers | images | seconds | images/s | load before → after |',
      '|---:|---:|---:|---:|---|',
  ]
  for run in mining['pipeline']:
    lines.append('| %d | %d | %.1f | %.1f | %s → %s |' % (
        run['num_workers'], run['images'], run['seconds'],
        run['images_per_s'], _load(run['load_avg_before']),
        _load(run['load_avg_after'])))
  lines += ['', 'Peak RSS: %s MiB for the benchmark process (pipeline with '
            'in-process worker), %s MiB summed over it and its worker '
            'processes.' % (_fmt(mining.get('peak_rss_mib'), 0),
                            _fmt(mining.get('peak_tree_rss_mib'), 0))]
  return lines


def _eval_lines(evaluation):
  if 'error' in evaluation:
    return ['Evaluation benchmark failed: %s' %
            evaluation['error'].splitlines()[-1]]
  return [
      'Tiny model (`%s`), `evaluate_model` (input pipeline, detection, COCO '
      'metrics), batch %d: %d images in %.1f s = **%.1f images/s** (second '
      'pass; the first, with tracing, took %.1f s); peak RSS %s MiB; load '
      '%s → %s.' % (
          evaluation['config'], evaluation['batch_size'],
          evaluation['images'], evaluation['seconds'],
          evaluation['images_per_s'], evaluation['first_pass_seconds'],
          evaluation.get('peak_rss_mib', '–'),
          _load(evaluation['load_avg_before']),
          _load(evaluation['load_avg_after']))]


def markdown(results):
  """The whole bench.md text."""
  m = results['machine']
  lines = [
      '# NOTE-RCNN benchmark',
      '',
      'Generated by `make bench` (`%s`) on %s.' % (
          ' '.join(results['command']), results['created']),
      '',
      '## Machine',
      '',
      '- CPU: %s, %s logical CPUs (%s usable), flags %s' % (
          m['cpu_model'], m['logical_cpus'], m['usable_cpus'],
          ', '.join(m['cpu_flags']) or '–'),
      '- RAM: %s GiB; %s' % (m['memory_gib'], m['os']),
      '- Python %s, TensorFlow %s, tf-keras %s, Apache Beam %s; oneDNN: %s; '
      'TF threads intra/inter: %s / %s' % (
          m['python'], m['tensorflow'], m['tf_keras'], m['apache_beam'],
          m['onednn_opts'], m['intra_op_threads'], m['inter_op_threads']),
      '- Load average (1/5/15 min) at start: %s, at end: %s' % (
          _load(results['load_avg_start']), _load(results['load_avg_end'])),
      '',
      'Wall-clock times depend on what else runs on the machine; the CPU '
      'time of the process is steadier under load. Medians are over the '
      'timed steps, after %d warm-up step(s). "Cores used" is CPU time over '
      'wall time: below the number of cores, other jobs took the rest, and '
      'the CPU-time ratios are the ones to compare.' %
      results['options']['warmup'],
  ]
  train = results.get('train')
  if train:
    lines += ['', '## Training step', '',
              'Batch 1 for IRv2 (4 groundtruth boxes, 64 sampled proposals '
              'in the second stage), the synthetic config\'s batch for the '
              'tiny model; `Trainer.distributed_step` on a fixed batch.', '']
    lines += _train_table(train)
    ratio_dict = results.get('ratios') or {}
    if ratio_dict:
      lines += ['', '### Ratios', ''] + _ratio_table(ratio_dict)
    reference = results.get('reference')
    if reference:
      lines += ['', 'Plain IRv2 320×320 / 64 proposals: %.2f s/step, %.2f× '
                'the OD API reference (%.1f s); its CPU time over the usable '
                'cores (the step time with every core free) is %.2f s.' % (
                    reference['plain_median_s'], reference['ratio'],
                    reference['od_api_seconds'], reference['cpu_bound_s'])]
  if results.get('mining'):
    lines += ['', '## Mining throughput', ''] + _mining_lines(
        results['mining'])
  if results.get('eval'):
    lines += ['', '## Evaluation throughput', ''] + _eval_lines(
        results['eval'])
  return '\n'.join(lines) + '\n'
