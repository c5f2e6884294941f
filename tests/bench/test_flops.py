"""FLOPs counted from a traced graph (bench/flops.py)."""
import os
import sys

import pytest
import tensorflow as tf

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import flops  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_matmul_of_known_shape():
  matmul = tf.function(tf.matmul)
  counted = flops.function_flops(matmul, tf.TensorSpec([64, 128]),
                                 tf.TensorSpec([128, 32]))
  assert counted == 2 * 64 * 128 * 32


def test_nested_functions_count_at_each_call_site():
  @tf.function
  def inner(a, b):
    return tf.matmul(a, b)

  @tf.function
  def outer(a, b):
    return inner(a, b) + inner(a, b)  # one library function, called twice

  counted = flops.function_flops(outer, tf.TensorSpec([8, 16]),
                                 tf.TensorSpec([16, 4]))
  # inner's matmul twice, plus the [8, 4] add.
  assert counted == 2 * (2 * 8 * 16 * 4) + 8 * 4


def test_larger_branch_of_a_cond():
  @tf.function
  def branchy(a, b, flag):
    return tf.cond(flag, lambda: tf.matmul(a, b),
                   lambda: tf.matmul(a, b) + 1.0)

  counted = flops.function_flops(branchy, tf.TensorSpec([8, 16]),
                                 tf.TensorSpec([16, 4]),
                                 tf.TensorSpec([], tf.bool))
  assert counted == 2 * 8 * 16 * 4 + 8 * 4


def test_peak_and_utilisation():
  peak = flops.peak_flops(tf.float32, size=128, repeats=2)
  assert peak['flops'] == 2 * 128 ** 3 and peak['flops_per_s'] > 0
  assert peak['flops_per_cpu_s'] > 0 and peak['dtype'] == 'float32'
  achieved, fraction = flops.utilisation(4e9, 2.0, 8e9)
  assert achieved == pytest.approx(2e9) and fraction == pytest.approx(0.25)
