"""Test helper: runs a module as N TF_CONFIG workers on 127.0.0.1."""
import json
import os
import socket
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def run_workers(module, args, num_workers=2, timeout=600):
  """Starts ``python -m module args`` once per worker, each with its
  TF_CONFIG; returns [(return code, stderr)] in worker order."""
  hosts = ['127.0.0.1:%d' % p for p in free_ports(num_workers)]
  processes = []
  for index in range(num_workers):
    tf_config = {'cluster': {'worker': hosts},
                 'task': {'type': 'worker', 'index': index}}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=ROOT, TF_CONFIG=json.dumps(tf_config))
    processes.append(subprocess.Popen(
        [sys.executable, '-m', module] + list(args), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  results = []
  for process in processes:
    try:
      _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      for p in processes:
        p.kill()
      raise
    results.append((process.returncode, stderr))
  return results
