"""Every option of one mining job, M(A, T, θb), in one frozen object.

``MiningSpec.from_config`` is the one place that reads them from the
``note.mining`` proto; callers override what a run decides (flags, the
review directory, the input size). The mining pipeline, its DoFns and the
per-image rule (``mining_pipeline.mine_best``) read only this object, so a
new mining option is a field here and a line in ``from_config``.

The spec pickles (Beam ships it to every worker): plain values, tuples and
the small ``AdaptiveThreshold`` below, no proto message.
"""
import dataclasses
import typing

# θb values of the precision-vs-#boxes sweep (paper Fig. 6) always reported.
DEFAULT_SWEEP = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
DEFAULT_OUTPUT_NAME = 'mined.tfrecord'


@dataclasses.dataclass(frozen=True)
class AdaptiveThreshold:
  """note.mining.adaptive_threshold: θ_c = min(θb, max(min_score, q_c)),
  q_c the (1 - keep_fraction) quantile of class c's candidate scores
  (``class_thresholds.adaptive``)."""
  keep_fraction: float
  min_score: float


@dataclasses.dataclass(frozen=True)
class MiningSpec:
  """The options of one mining job.

  Attributes:
    id_to_name: ((label id, name), ...) of the target label map, in the
      label map's order (a dict given here is stored as its items);
      ``names`` gives it back as a dict.
    score_threshold: θb (strict: a box is kept when its score > θb).
    num_shards: output shards ``<output_name>-0000i-of-0000N``.
    batch_size: images per detector call.
    iou_threshold: IoU for a mined box to count as a true positive
      (note.mining.match_iou_threshold; the report only).
    sweep: θb values of the precision-vs-#boxes sweep, ascending.
    output_name: file name prefix of the mined shards.
    review_dir: where the human-review candidates go (``review``); needed
      when ``review_count`` > 0.
    review_count: how many unmined candidates to export; 0 = none.
    adaptive_threshold: ``AdaptiveThreshold`` (per-class thresholds computed
      from all candidates first) or None for the paper's fixed θb; a
      note.mining.adaptive_threshold proto given here is converted.
    skip_bad_records: skip and count bad records (``record_validation``)
      instead of stopping at the first.
    total_images: the number of input records, if known: progress lines then
      carry an ETA.
    oracle: the ORACLE control of note.mining.control (``mine_best``).
  """
  id_to_name: typing.Tuple[typing.Tuple[int, str], ...]
  score_threshold: float = 0.99
  num_shards: int = 4
  batch_size: int = 8
  iou_threshold: float = 0.5
  sweep: typing.Tuple[float, ...] = DEFAULT_SWEEP
  output_name: str = DEFAULT_OUTPUT_NAME
  review_dir: typing.Optional[str] = None
  review_count: int = 0
  adaptive_threshold: typing.Optional[AdaptiveThreshold] = None
  skip_bad_records: bool = False
  total_images: typing.Optional[int] = None
  oracle: bool = False

  def __post_init__(self):
    pairs = (self.id_to_name.items() if isinstance(self.id_to_name, dict)
             else self.id_to_name)
    object.__setattr__(self, 'id_to_name', tuple(tuple(p) for p in pairs))
    object.__setattr__(self, 'sweep', tuple(self.sweep))
    adaptive = self.adaptive_threshold
    if adaptive is not None and not isinstance(adaptive, AdaptiveThreshold):
      # A note.mining.adaptive_threshold proto, or any object with the two.
      object.__setattr__(self, 'adaptive_threshold', AdaptiveThreshold(
          adaptive.keep_fraction, adaptive.min_score))
    if self.review_count > 0 and not self.review_dir:
      raise ValueError('mining: review_count %d needs a review_dir' %
                       self.review_count)

  @property
  def names(self):
    """{label id: name} of the target label map."""
    return dict(self.id_to_name)

  @property
  def with_review(self):
    """Whether the unmined candidates are listed for human review."""
    return self.review_count > 0

  @classmethod
  def from_config(cls, mining, id_to_name, **overrides):
    """The spec of ``note.mining`` (a ``note_pb2.Mining``, or None).

    Args:
      mining: the note.mining proto; None gives the defaults above (a
        pipeline config without a note section).
      id_to_name: {label id: name} of the target label map.
      **overrides: field values that replace the config's (command-line
        flags, ``review_dir``, ``total_images``, ...).

    Returns:
      MiningSpec. The sweep is ``DEFAULT_SWEEP`` joined with
      note.mining.threshold_sweep, sorted; note.mining.export_review gives
      ``review_count``.
    """
    values = {}
    if mining is not None:
      values = dict(
          score_threshold=mining.score_threshold,
          num_shards=mining.num_shards,
          batch_size=mining.batch_size,
          iou_threshold=mining.match_iou_threshold,
          sweep=tuple(sorted(set(DEFAULT_SWEEP) |
                             set(mining.threshold_sweep))),
          review_count=mining.export_review,
          adaptive_threshold=(mining.adaptive_threshold
                              if mining.HasField('adaptive_threshold')
                              else None),
          skip_bad_records=mining.skip_bad_records,
          oracle=mining.control == mining.ORACLE)
    values.update(overrides)
    return cls(id_to_name=id_to_name, **values)
