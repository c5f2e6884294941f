"""In-graph counting of skipped bad records (no host Python callback).

``guard_transform`` (``skip_bad_records``) counts each skipped record with
native TF ops only, so the input pipeline can run where no Python runs
(e.g. a remote TPU host's tf.data service). The state is a set of
``tf.lookup.experimental.MutableHashTable`` resources created on the device
where the dataset is built (inside ``distribute_datasets_from_function``'s
``dataset_fn``: that input pipeline's host):

  * ``seen``: ``<file>, <index>, <source_id>, <problem>`` joined by
    ``\\x1f`` -> order in which the record was first skipped (0, 1, ...;
    a record's source_id and problem are the same on every read);
  * ``totals``: ``'events'`` -> skips counted, re-reads in later epochs
    included.

The first ``max_logged`` distinct skips are also printed (to stderr, by the
pipeline's own ``tf.print``) as ``<what>: skipped bad record in <file>: ...``.
The host reads the tables (``entries``, ``events``) through
``record_errors.SkippedRecords``, which merges every pipeline's counter.
"""
import sys

import tensorflow as tf

_EVENTS = 'events'
_SEPARATOR = '\x1f'


class SkipCounter:
  """Skip state of one input pipeline; ``count_skip`` is its graph op."""

  def __init__(self, what, max_logged):
    self._what = what
    self._max_logged = max_logged
    table = tf.lookup.experimental.MutableHashTable
    self._seen = table(tf.string, tf.int64, default_value=-1)
    self._totals = table(tf.string, tf.int64, default_value=0)

  def count_skip(self, path, index, source_id, problem, message):
    """Counts one skip (graph ops on scalar tensors); returns False.

    Args:
      path: string, the record's file.
      index: int64, the record's index in its file.
      source_id: string ('' when unknown).
      problem: string, a ``record_errors`` problem.
      message: string, the located message printed for the first skips.
    """
    key = tf.strings.join([path, tf.strings.as_string(index), source_id,
                           problem], _SEPARATOR)
    events = self._totals.lookup(tf.constant(_EVENTS)) + 1
    with tf.control_dependencies([self._totals.insert(
        tf.constant(_EVENTS), events)]):
      order = self._seen.lookup(key)
      size = self._seen.size()
    is_new = order < 0
    order = tf.where(is_new, size, order)
    with tf.control_dependencies([order]):
      inserted = [self._seen.insert(key, order)]

    def log():
      return tf.print(tf.strings.join([self._what + ': skipped ', message]),
                      output_stream=sys.stderr)
    logged = tf.cond(is_new & (order < self._max_logged),
                     lambda: tf.group(log()), tf.no_op)
    with tf.control_dependencies(inserted + [logged]):
      return tf.constant(False)

  def events(self):
    """Skips counted so far (int)."""
    return int(self._totals.lookup(tf.constant(_EVENTS)).numpy())

  def entries(self):
    """``[(order, path, index, source_id, problem)]`` of the distinct skips,
    in the order first met."""
    keys, orders = self._seen.export()
    out = []
    for key, order in zip(keys.numpy(), orders.numpy()):
      path, index, source_id, problem = key.decode('utf8', 'replace').split(
          _SEPARATOR, 3)
      out.append((int(order), path, int(index), source_id, problem))
    return sorted(out)
