"""Which ablation run comes next, and where each one stands (resume).

Runs go seed by seed, variant by variant in the paper's order. A run's
state comes from its run directory (``run_state``: complete, partial,
pending or failed, its rows and accumulated time), so a new invocation skips
complete runs and resumes partial ones after their last finished iteration
(the iterate driver resumes per run directory). The results dict is saved
after S and after every run.
"""
import datetime
import os
import sys
import time

import ablation_progress
import ablation_report
import ablation_workers
import machine
from object_detection_note.core import file_io
from object_detection_note.iterate import report


def run_state(plan, seed, variant, error=None):
  """The ``runs[variant][seed]`` entry from the run directory."""
  model_dir = os.path.join(plan.runs_dir, str(seed), variant)
  rows, _ = report.collect(model_dir, plan.iterations)
  timing = file_io.read_json(ablation_workers.timing_path(
      plan.runs_dir, seed, variant)) or {}
  if error:
    status = 'failed'
  elif len(rows) == plan.iterations + 1:
    status = 'complete'
  else:
    status = 'partial' if rows else 'pending'
  state = {'model_dir': model_dir, 'status': status, 'rows': rows,
           'seconds': timing.get('seconds'),
           'iteration_seconds': timing.get('iteration_seconds', {}),
           'invocations': timing.get('invocations', 0)}
  if error:
    state['error'] = error
  return state


def results_skeleton(plan, seeds, variants, dataset):
  """The results dict (``ablation_report``) before any run of this
  invocation."""
  return {
      'schema_version': 1,
      'created': datetime.datetime.now().astimezone().isoformat(
          timespec='seconds'),
      'command': ['bench/run_ablation.py'] + sys.argv[1:],
      'via_make': bool(os.environ.get('MAKELEVEL')),
      'machine': machine.describe(),
      'load_avg_start': machine.load_average(),
      'seeds': seeds,
      'variants': variants,
      'variant_settings': plan.variant_settings(),
      'budget': plan.budget(dataset),
      'dataset': dataset,
      'source': {'checkpoint_dir': plan.source_dir, 'seconds': None},
      'runs': {v: {str(s): run_state(plan, s, v) for s in seeds}
               for v in variants},
  }


def save_results(results, start, output_dir, results_name):
  """Adds the totals and load to ``results`` and writes its files."""
  results['load_avg_end'] = machine.load_average()
  results['invocation_seconds'] = time.monotonic() - start
  results['total_seconds'] = ((results['source'].get('seconds') or 0.0) + sum(
      r.get('seconds') or 0.0 for v in results['runs'].values()
      for r in v.values()))
  ablation_report.write_results(results, output_dir, results_name)


def run_all(plan, results, start, poll_seconds, save):
  """Runs every (seed, variant) of ``results`` not yet complete.

  Args:
    plan: ablation_configs.Plan.
    results: the results dict (``results_skeleton``); its ``runs`` entries
      are updated after every run.
    start: time.monotonic() of the invocation (progress lines).
    poll_seconds: seconds between progress checks of a running worker.
    save: ``save()`` writes the results files.

  Returns:
    the number of failed runs.
  """
  failures = 0
  seeds, variants = results['seeds'], results['variants']
  total = len(variants) * len(seeds)
  for seed_index, seed in enumerate(seeds):
    for index, variant in enumerate(variants):
      state = results['runs'][variant][str(seed)]
      name = 'seed %d %s (%d/%d)' % (seed, ablation_report.LABELS[variant],
                                     seed_index * len(variants) + index + 1,
                                     total)
      if state['status'] == 'complete':
        ablation_progress.say(start, '%s: complete, skipped' % name)
        continue
      ablation_progress.say(start, '%s: %s' % (
          name, 'resuming after T^%d' % (len(state['rows']) - 1)
          if state['rows'] else 'starting'))
      error = None
      try:
        error = ablation_workers.run_variant(plan, seed, variant, start, name,
                                             poll_seconds)
      finally:
        results['runs'][variant][str(seed)] = run_state(plan, seed, variant,
                                                        error)
        save()
      if error:
        failures += 1
        ablation_progress.say(start, '%s: FAILED (%s)' % (
            name, error.splitlines()[0]))
      else:
        ablation_progress.say(start, '%s: done, %s in all' % (
            name, ablation_report.duration(
                results['runs'][variant][str(seed)]['seconds'])))
  return failures
