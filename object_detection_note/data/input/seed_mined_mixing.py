"""Seed and mined examples in one training stream, well mixed.

The seed set B0 and the mined set B^t are read as two datasets and combined
by ``tf.data.Dataset.sample_from_datasets``: every example is drawn from the
seed stream with probability ``w`` and from the mined stream otherwise, so
seed images reach the seed-only heads (rpn-cls, rpn-reg, det-cls, det-reg)
at a steady rate instead of in file-sized bursts.

``w`` defaults to the seed share of the union B0 ∪ B^t, i.e. the union's
proportions; ``note.seed_fraction`` (beyond the paper) fixes it instead.
"""
import tensorflow as tf


def seed_weight(num_seed, num_mined, seed_fraction=None):
  """Probability that a training example is a seed example.

  Args:
    num_seed: images in the seed input (> 0).
    num_mined: images in the mined input (>= 0).
    seed_fraction: optional fixed share in (0, 1); None = the union's
      proportions.

  Returns:
    float in (0, 1].
  """
  if seed_fraction is not None:
    if not 0.0 < seed_fraction < 1.0:
      raise ValueError('note.seed_fraction must be in (0, 1), got %r' %
                       (seed_fraction,))
    return float(seed_fraction)
  if num_seed <= 0:
    raise ValueError('the seed input holds no examples (num_seed=%d)' %
                     num_seed)
  return num_seed / float(num_seed + max(num_mined, 0))


def mix(seed_records, mined_records, weight, seed=None):
  """Draws each element from ``seed_records`` with probability ``weight``.

  Args:
    seed_records: tf.data.Dataset (repeated for training).
    mined_records: tf.data.Dataset with the same element spec.
    weight: seed probability from ``seed_weight``.
    seed: optional op seed for the draw.

  Returns:
    tf.data.Dataset of the same element spec. When one input is finite and
    runs out, the other continues.
  """
  if weight >= 1.0:
    return seed_records
  return tf.data.Dataset.sample_from_datasets(
      [seed_records, mined_records], weights=[weight, 1.0 - weight],
      seed=seed, stop_on_empty_dataset=False)
