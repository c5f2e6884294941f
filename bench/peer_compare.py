"""Side-by-side training step: this project vs the upstream OD API (peer).

``run_bench.py --peer_python=PEER/bin/python`` times, for each IRv2 setting,
rounds that alternate the project's ``train:<setting>/plain`` worker and the
OD API's own step (``peer_odapi_step.py`` in the peer venv) in one window,
so both see the same machine load. Each round records both medians (wall and
process CPU seconds per step) and project / OD API ratios.

The peer venv is built by ``/work/shared/odapi-reference/peer_setup.sh``; its
``peer.env`` (next to ``bin/``) holds the environment the OD API needs on
TF 2.20 (legacy Keras, pure-Python protobuf, a stub ``tensorflow_io``).
"""
import json
import os
import shlex
import statistics
import subprocess
import time

# setting -> (height, width, first_stage_max_proposals, second_stage_batch)
PEER_SETTINGS = {
    'irv2_320': (320, 320, 64, 64),
    'irv2_600x1024': (600, 1024, 300, 64),
}
_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'peer_odapi_step.py')


def peer_environment(peer_python):
  """os.environ plus the exports of the peer venv's ``peer.env``."""
  environment = dict(os.environ)
  env_file = os.path.join(os.path.dirname(os.path.dirname(peer_python)),
                          'peer.env')
  if not os.path.exists(env_file):
    raise ValueError('--peer_python=%s: no %s (build the venv with '
                     'peer_setup.sh)' % (peer_python, env_file))
  with open(env_file) as f:
    for word in shlex.split(f.read()):
      if '=' in word:
        key, value = word.split('=', 1)
        environment[key] = value
  environment.pop('PYTHONHOME', None)
  return environment


def run_peer(peer_python, setting, steps, warmup, timeout):
  """The OD API's step at `setting`; its JSON result or an error dict."""
  height, width, proposals, batch = PEER_SETTINGS[setting]
  command = [peer_python, _SCRIPT] + [str(v) for v in (
      height, width, proposals, batch, steps, warmup)]
  start = time.perf_counter()
  try:
    completed = subprocess.run(command, capture_output=True, text=True,
                               timeout=timeout, check=False,
                               env=peer_environment(peer_python),
                               cwd=os.path.dirname(_SCRIPT))
  except subprocess.TimeoutExpired:
    return {'error': 'timed out after %d s' % timeout}
  lines = [l for l in completed.stdout.splitlines() if l.startswith('{')]
  if completed.returncode != 0 or not lines:
    return {'error': 'exit code %d\n%s' % (completed.returncode,
                                            completed.stderr[-3000:])}
  result = json.loads(lines[-1])
  result['process_seconds'] = time.perf_counter() - start
  return result


def round_record(index, order, project, peer, load_before, load_after):
  """One round: both results, and the project / OD API ratios."""
  record = {'round': index, 'order': order, 'project': project,
            'odapi': peer, 'load_avg_before': load_before,
            'load_avg_after': load_after}
  if 'median_s' in project and 'median_s' in peer:
    record['wall_ratio'] = project['median_s'] / peer['median_s']
    record['cpu_ratio'] = project['median_cpu_s'] / peer['median_cpu_s']
  return record


def summary(rounds):
  """Median of the per-round ratios (None when no round has both sides)."""
  walls = [r['wall_ratio'] for r in rounds if 'wall_ratio' in r]
  cpus = [r['cpu_ratio'] for r in rounds if 'cpu_ratio' in r]
  return {'rounds': len(rounds), 'complete_rounds': len(walls),
          'median_wall_ratio': statistics.median(walls) if walls else None,
          'median_cpu_ratio': statistics.median(cpus) if cpus else None}


def _fmt(value, pattern='%.2f'):
  return pattern % value if isinstance(value, (int, float)) else 'n/a'


def markdown(comparison):
  """The side-by-side section of bench.md."""
  if not comparison:
    return ''
  lines = ['', '## Project vs the upstream OD API (same machine, alternating '
           'rounds)', '',
           'Training step of Faster R-CNN IRv2, batch 1, random weights, '
           '64 sampled proposals; OD API = its own `faster_rcnn_inception_'
           'resnet_v2_keras` model and loss (peer venv), project = '
           '`train:<setting>/plain`. Ratios < 1: the project is faster. '
           'Differences the step includes: the OD API trains the batch-norm '
           'betas (its Keras IRv2 keeps them trainable), the project freezes '
           'batch norm (`batch_norm_trainable: false`, as the OD API TF1 '
           'zoo configs); the project\'s step clips the gradient global norm '
           'at 10 (`gradient_clipping_by_norm` of configs/synthetic.config), '
           'the OD API step does not clip. Trainable variables are listed '
           'per round.', '',
           '| setting | round | first | project s/step (CPU s) | OD API '
           's/step (CPU s) | wall ratio | CPU ratio | trainable vars '
           'project / OD API | load before |',
           '|---|---|---|---|---|---|---|---|---|']
  for setting, block in comparison.items():
    for r in block['rounds']:
      project, peer = r['project'], r['odapi']
      lines.append('| %s | %d | %s | %s (%s) | %s (%s) | %s | %s | %s / %s '
                   '| %s |' % (
                       setting, r['round'], r['order'][0],
                       _fmt(project.get('median_s')),
                       _fmt(project.get('median_cpu_s')),
                       _fmt(peer.get('median_s')),
                       _fmt(peer.get('median_cpu_s')),
                       _fmt(r.get('wall_ratio')), _fmt(r.get('cpu_ratio')),
                       project.get('num_trainable_variables', 'n/a'),
                       peer.get('trainable_variables', 'n/a'),
                       _fmt(r['load_avg_before'][0]
                            if r.get('load_avg_before') else None)))
      for side, result in (('project', project), ('OD API', peer)):
        if 'error' in result:
          lines.append('|  |  | %s error: %s |' % (
              side, result['error'].splitlines()[-1][:200]
              if result['error'] else ''))
    s = block['summary']
    lines.append('| %s | median of %d | | | | %s | %s | | |' % (
        setting, s['complete_rounds'], _fmt(s['median_wall_ratio']),
        _fmt(s['median_cpu_ratio'])))
  return '\n'.join(lines) + '\n'
