"""FLOPs counted from traced graphs, and the machine's measured matmul peak.

``graph_flops`` sums the ``flops`` statistics TensorFlow registers per op
(MatMul, Conv2D and its gradients, element-wise ops, ...) with
``tf.compat.v1.profiler`` over a graph and every function in its library
(``strategy.run``, nested ``tf.function`` bodies, ``tf.cond`` branches), at
each call site. Ops without a registered statistic count 0, so
the figure is a lower bound dominated by the convolutions and matmuls.

``peak_flops`` times a large square matmul in a dtype: the machine's
achievable peak for that dtype, measured in the same run as the steps.
"""
import resource
import statistics
import time

import tensorflow as tf


def _own_flops(graph):
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options['output'] = 'none'
  profile = tf.compat.v1.profiler.profile(graph=graph, cmd='op',
                                          options=options)
  return int(profile.total_float_ops)


_CALLS = ('PartitionedCall', 'StatefulPartitionedCall')
_CONDS = ('If', 'StatelessIf')


def _library(graph, outer):
  functions = dict(outer)
  functions.update(getattr(graph, '_functions', {}))
  return functions


def graph_flops(graph, functions=None):
  """Float operations of ``graph`` and of the functions it calls.

  A function is counted at each call site; of a ``tf.cond`` the larger
  branch counts. Loop bodies (``While``) count 0: their trip count is not in
  the graph.

  Args:
    graph: a ``tf.Graph`` / ``FuncGraph`` with static shapes.
    functions: library functions of the enclosing graphs (internal).

  Returns:
    int.
  """
  functions = _library(graph, functions or {})
  total = _own_flops(graph)

  def called(name):
    function = functions.get(name)
    if function is None or not hasattr(function, 'graph'):
      return 0
    return graph_flops(function.graph, functions)

  for op in graph.get_operations():
    if op.type in _CALLS:
      total += called(op.get_attr('f').name)
    elif op.type in _CONDS:
      total += max(called(op.get_attr('then_branch').name),
                   called(op.get_attr('else_branch').name))
  return total


def function_flops(tf_function, *args):
  """FLOPs of one call of a ``tf.function`` on ``args`` (traced, not run)."""
  return graph_flops(tf_function.get_concrete_function(*args).graph)


def peak_flops(dtype=tf.float32, size=2048, repeats=5):
  """Measured FLOP/s of a [size, size] x [size, size] matmul in ``dtype``.

  Returns:
    dict: dtype, size, flops (per matmul), median_s, flops_per_s, and per
    CPU-second of the process (median_cpu_s, flops_per_cpu_s: steadier than
    wall time on a shared machine).
  """
  dtype = tf.as_dtype(dtype)
  a = tf.cast(tf.random.uniform([size, size]), dtype)
  b = tf.cast(tf.random.uniform([size, size]), dtype)
  matmul = tf.function(tf.matmul)
  matmul(a, b).numpy()  # trace and warm up
  seconds, cpu_seconds = [], []
  for _ in range(max(1, repeats)):
    cpu_start, start = _cpu_seconds(), time.perf_counter()
    matmul(a, b).numpy()
    seconds.append(time.perf_counter() - start)
    cpu_seconds.append(_cpu_seconds() - cpu_start)
  flops = 2 * size ** 3
  median = statistics.median(seconds)
  median_cpu = statistics.median(cpu_seconds)
  return {'dtype': dtype.name, 'size': size, 'flops': flops,
          'median_s': median, 'flops_per_s': flops / median,
          'median_cpu_s': median_cpu, 'flops_per_cpu_s': flops / median_cpu}


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def utilisation(flops_per_step, step_seconds, peak_flops_per_s):
  """(achieved FLOP/s, fraction of the peak) of a step."""
  achieved = flops_per_step / step_seconds
  return achieved, achieved / peak_flops_per_s
