"""Static-shape balanced positive/negative sampling.

Model Garden's ``sampling_ops.BalancedPositiveNegativeSampler(is_static=True)``
permutes with N x N one-hot matrices, which is too large for the tens of
thousands of anchors of a Faster R-CNN image; this sampler draws the same
distribution (up to ``round_down(sample_size * positive_fraction)`` random
positives, the rest random negatives) with one random key per element and a
top-k threshold, batched and XLA-compilable.
"""
import tensorflow as tf


def _take_random(mask, keys, count, k_max):
  """Keeps ``count`` [B] random True entries of ``mask`` [B, N] (<= k_max)."""
  num_elements = mask.shape[1]
  k_max = min(k_max, num_elements)
  if k_max <= 0:
    return tf.zeros_like(mask)
  scores = tf.where(mask, keys, -1.0)
  top_values = tf.math.top_k(scores, k=k_max, sorted=True).values
  threshold = tf.gather(top_values, tf.maximum(count - 1, 0), batch_dims=1)
  return tf.logical_and(
      tf.logical_and(mask, scores >= threshold[:, tf.newaxis]),
      (count > 0)[:, tf.newaxis])


def balanced_sample(positive, negative, sample_size, positive_fraction):
  """Samples a balanced minibatch per row.

  Args:
    positive: bool [B, N] (static N), candidates labelled positive.
    negative: bool [B, N], candidates labelled negative (disjoint from
      ``positive``).
    sample_size: int, minibatch size per row.
    positive_fraction: float in [0, 1], maximum fraction of positives.

  Returns:
    bool [B, N]: the sampled entries; ``min(#pos, max_pos)`` positives and
    ``min(#neg, sample_size - #sampled_pos)`` negatives per row.
  """
  max_positives = int(sample_size * positive_fraction)
  keys = tf.random.uniform(tf.shape(positive), dtype=tf.float32)
  num_pos = tf.minimum(
      tf.reduce_sum(tf.cast(positive, tf.int32), axis=1), max_positives)
  num_neg = tf.minimum(
      tf.reduce_sum(tf.cast(negative, tf.int32), axis=1),
      sample_size - num_pos)
  return tf.logical_or(
      _take_random(positive, keys, num_pos, max_positives),
      _take_random(negative, keys, num_neg, sample_size))


def sampled_indices(sampled, sample_size):
  """Indices of the sampled entries, padded to a fixed count.

  Args:
    sampled: bool [B, N].
    sample_size: int K.

  Returns:
    (indices int32 [B, K], valid bool [B, K]); sampled entries come first (in
    index order), padding entries point at unsampled rows and are not valid.
  """
  k = min(sample_size, sampled.shape[1])
  _, indices = tf.math.top_k(tf.cast(sampled, tf.int32), k=k, sorted=True)
  valid = tf.gather(sampled, indices, batch_dims=1)
  if k < sample_size:
    pad = sample_size - k
    indices = tf.pad(indices, [[0, 0], [0, pad]])
    valid = tf.pad(valid, [[0, 0], [0, pad]])
  return indices, valid
