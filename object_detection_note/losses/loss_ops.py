"""Element-wise losses and the masked normalisation shared by all losses.

Normalisation (one rule for every NOTE loss): a loss is the sum of the
per-sample losses over the samples a head may learn from, divided by the
number of those samples, floored at 1:

    loss = sum_i w_i * l_i / max(sum_i n_i, 1)

where ``w_i`` is the sample's weight (sampled x per-image head weight x any
per-sample mask) and ``n_i`` is its normaliser weight (``w_i`` for
classification; for localization the classification weight, so that the box
loss is the sum over positives divided by the number of sampled examples, as
in the OD API). Pooling over the batch (rather than a per-image mean) keeps a
batch with few unmasked images from inflating their weight, and the floor of
1 makes a fully masked batch a loss of exactly 0 with zero gradient, not NaN.
"""
import tensorflow as tf


def normalized_sum(losses, weights, normalizer_weights=None):
  """sum(losses * weights) / max(sum(normalizer_weights), 1).

  Args:
    losses: float [...] per-sample losses (finite).
    weights: float, same shape; 0 removes a sample (and its gradient).
    normalizer_weights: float, same shape; defaults to ``weights``.

  Returns:
    float32 scalar.
  """
  if normalizer_weights is None:
    normalizer_weights = weights
  total = tf.reduce_sum(losses * weights)
  return total / tf.maximum(tf.reduce_sum(normalizer_weights), 1.0)


def sigmoid_cross_entropy(logits, labels):
  """Binary cross-entropy, float [...] -> float [...]."""
  return tf.nn.sigmoid_cross_entropy_with_logits(
      labels=tf.cast(labels, logits.dtype), logits=logits)


def softmax_cross_entropy(logits, target_probabilities):
  """Cross-entropy to a distribution: [..., K], [..., K] -> [...]."""
  return tf.nn.softmax_cross_entropy_with_logits(
      labels=tf.cast(target_probabilities, logits.dtype), logits=logits)


def smooth_l1(predictions, targets, delta=1.0):
  """Huber loss summed over the last (coordinate) axis: [..., 4] -> [...]."""
  diff = tf.abs(predictions - targets)
  quadratic = tf.minimum(diff, delta)
  linear = diff - quadratic
  return tf.reduce_sum(0.5 * quadratic * quadratic / delta + linear, axis=-1)
