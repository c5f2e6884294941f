"""FLOP/s and the fraction of the measured matmul peak per bench case.

A case is a result dict of ``bench/run_bench.py`` that holds
``compute_dtype`` and ``achieved_flops_per_s`` (and, where measured,
``achieved_flops_per_cpu_s``); ``results['peak'][dtype]`` is
``flops.peak_flops``'s dict. ``add_utilisation`` adds ``peak_flops_per_s``,
``fraction_of_peak`` and ``fraction_of_peak_cpu`` to each case in place.
"""


def cases(results):
  """(name, case dict) of every measured case that can carry FLOP/s: the
  training steps, the mining detector alone and each mining pipeline run
  (per image), the evaluation (per image)."""
  found = sorted((results.get('train') or {}).items())
  mining = results.get('mining') or {}
  if mining.get('detector_only'):
    found.append(('mining detector only (per image)',
                  mining['detector_only']))
  for run in mining.get('pipeline') or []:
    found.append(('mining pipeline, %d worker(s) (per image)' %
                  run.get('num_workers', 0), run))
  if results.get('eval'):
    found.append(('eval (per image)', results['eval']))
  return found


def add_utilisation(results):
  """Fraction of the measured matmul peak of its dtype, per case."""
  peak = {dtype: p for dtype, p in (results.get('peak') or {}).items()
          if isinstance(p, dict) and 'flops_per_s' in p}
  measured = [case for _, case in cases(results)]
  for block in (results.get('peer_comparison') or {}).values():
    for record in block.get('rounds', []):
      measured.extend(record[side] for side in ('project', 'odapi')
                      if isinstance(record.get(side), dict))
  for case in measured:
    dtype = case.get('compute_dtype')
    if dtype in peak and 'achieved_flops_per_s' in case:
      case['peak_flops_per_s'] = peak[dtype]['flops_per_s']
      case['fraction_of_peak'] = (case['achieved_flops_per_s'] /
                                  peak[dtype]['flops_per_s'])
      if 'achieved_flops_per_cpu_s' in case and (
          'flops_per_cpu_s' in peak[dtype]):
        # Per CPU-second: the figure that survives a shared machine.
        case['fraction_of_peak_cpu'] = (case['achieved_flops_per_cpu_s'] /
                                        peak[dtype]['flops_per_cpu_s'])


def markdown(results):
  """A table of FLOPs, FLOP/s and fraction of the peak per case."""
  rows = [(n, c) for n, c in cases(results)
          if 'fraction_of_peak' in c]
  if not rows:
    return ''
  peak = {dtype: p for dtype, p in results['peak'].items()
          if isinstance(p, dict) and 'flops_per_s' in p}
  lines = ['', '## Utilisation', '',
           'Peak: %s (a %d² matmul, measured in this run; wall / CPU '
           'second).' % (
               ', '.join('%s %.1f / %.1f GFLOP/s' % (
                   d, p['flops_per_s'] / 1e9,
                   p.get('flops_per_cpu_s', float('nan')) / 1e9)
                         for d, p in sorted(peak.items())),
               next(iter(peak.values())).get('size', 0)),
           '',
           '| case | dtype | GFLOP per step or image | achieved GFLOP/s | '
           'fraction of peak | GFLOP per CPU-s | fraction of peak per CPU-s |',
           '|---|---|---:|---:|---:|---:|---:|']
  for name, case in rows:
    count = case.get('flops_per_step', case.get('flops_per_image', 0))
    lines.append('| %s | %s | %.2f | %.1f | %.2f | %s | %s |' % (
        name, case['compute_dtype'], count / 1e9,
        case['achieved_flops_per_s'] / 1e9, case['fraction_of_peak'],
        '%.1f' % (case['achieved_flops_per_cpu_s'] / 1e9)
        if 'achieved_flops_per_cpu_s' in case else '—',
        '%.2f' % case['fraction_of_peak_cpu']
        if 'fraction_of_peak_cpu' in case else '—'))
  return '\n'.join(lines) + '\n'
