"""Reading and validating the image-level records of a mining job (Beam).

  file paths ──► ReadRecordsFn ──► (path, index, serialized)
             ──► ValidateRecordsFn ──► serialized good records
                        └─(tagged 'bad')─► BadRecordsCombineFn ──► report

Each record is checked before any detection work (``record_errors``
problems: not a tf.Example, missing or undecodable image, bad or zero-area
boxes, box or image-level labels outside the label map), and a truncated or
corrupt TFRecord file is caught where it is read. A bad record either stops
the job with ``BadRecordError`` naming the file, the record index, its
source_id and the field, or, with ``skip_bad_records``, is dropped and
counted: the report (count, first few locations sorted by file and index,
count per problem) goes into ``mining_metrics.json`` as ``skipped_records``.
"""
import collections

import apache_beam as beam

from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.data.records import record_errors
from object_detection_note.data.records import tf_example_codec

BAD = 'bad'
GOOD = 'good'
SKIP_HINT = ('set note.mining.skip_bad_records: true (or mine_boxes '
             '--skip_bad_records) to skip and count such records')
_MAX_LISTED = 10


def _entry(path, index, source_id, problem):
  return {K.file: path, K.record: int(index), K.source_id: source_id,
          K.problem: problem}


class ReadRecordsFn(beam.DoFn):
  """TFRecord file path → ``(path, index, serialized)`` per record."""

  def __init__(self, skip_bad_records):
    self._skip = skip_bad_records

  def process(self, path):
    try:
      for index, serialized in record_errors.iterate_file_records(path):
        yield path, index, serialized
    except record_errors.BadRecordError as error:
      if not self._skip:
        raise record_errors.BadRecordError(
            error.path, error.index, error.source_id, error.problem,
            SKIP_HINT) from None
      yield beam.pvalue.TaggedOutput(BAD, _entry(
          error.path, error.index, error.source_id, error.problem))


class ReadValidBatchesFn(beam.DoFn):
  """TFRecord file path → lists of at most ``batch_size`` good records.

  Reads, validates and batches one file in one step: batches are emitted as
  the file is read (one batch in memory), never from ``finish_bundle``, which
  some runners (Beam's DaskRunner) drop. Bad records go to the ``bad``
  output (with ``skip_bad_records``) or stop the job.
  """

  def __init__(self, valid_class_ids, skip_bad_records, batch_size):
    self._validate = ValidateRecordsFn(valid_class_ids, skip_bad_records)
    self._read = ReadRecordsFn(skip_bad_records)
    self._batch_size = max(1, int(batch_size))

  def process(self, path):
    """Yields ``(GOOD, batch)`` and ``(BAD, entry)`` pairs (one output: some
    runners mishandle tagged outputs)."""
    batch = []
    for element in self._read.process(path):
      if isinstance(element, beam.pvalue.TaggedOutput):
        yield BAD, element.value
        continue
      for checked in self._validate.process(element):
        if isinstance(checked, beam.pvalue.TaggedOutput):
          yield BAD, checked.value
          continue
        batch.append(checked)
        if len(batch) == self._batch_size:
          yield GOOD, batch
          batch = []
    if batch:
      yield GOOD, batch


class ValidateRecordsFn(beam.DoFn):
  """``(path, index, serialized)`` → serialized, if the record is good."""

  def __init__(self, valid_class_ids, skip_bad_records):
    self._valid_class_ids = tuple(int(i) for i in valid_class_ids)
    self._skip = skip_bad_records

  def process(self, element):
    path, index, serialized = element
    _, source_id, problem = record_errors.decode_checked(
        serialized, self._valid_class_ids, tf_example_codec.example_to_record)
    if not problem:
      yield serialized
    elif self._skip:
      yield beam.pvalue.TaggedOutput(BAD, _entry(path, index, source_id,
                                                 problem))
    else:
      raise record_errors.BadRecordError(path, index, source_id, problem,
                                         SKIP_HINT)


class BadRecordsCombineFn(beam.CombineFn):
  """Bad-record entries → ``{count, first, by_problem}`` (deterministic)."""

  def create_accumulator(self):
    return 0, [], collections.Counter()

  def add_input(self, accumulator, entry):
    count, first, by_problem = accumulator
    first = sorted(first + [entry],
                   key=lambda e: (e[K.file], e[K.record]))[:_MAX_LISTED]
    by_problem = by_problem + collections.Counter({entry[K.problem]: 1})
    return count + 1, first, by_problem

  def merge_accumulators(self, accumulators):
    count, first, by_problem = self.create_accumulator()
    for other_count, other_first, other_by_problem in accumulators:
      count += other_count
      first = first + other_first
      by_problem = by_problem + other_by_problem
    first = sorted(first, key=lambda e: (e[K.file], e[K.record]))
    return count, first[:_MAX_LISTED], by_problem

  def extract_output(self, accumulator):
    count, first, by_problem = accumulator
    return {K.count: count, K.first: first,
            K.by_problem: dict(sorted(by_problem.items()))}


class ReadValidatedRecords(beam.PTransform):
  """PCollection of file paths → (good serialized records, report).

  ``expand`` returns a dict: ``records`` (PCollection of bytes, or of lists
  of at most ``batch_size`` of them when it is set) and
  ``report`` (PCollection with one ``BadRecordsCombineFn`` dict).
  """

  def __init__(self, valid_class_ids, skip_bad_records=False, batch_size=None):
    super().__init__()
    self._valid_class_ids = valid_class_ids
    self._skip = skip_bad_records
    self._batch_size = batch_size

  def expand(self, paths):
    if self._batch_size:
      tagged = paths | 'ReadValidBatches' >> beam.ParDo(ReadValidBatchesFn(
          self._valid_class_ids, self._skip, self._batch_size))
      records = (tagged | 'Good' >> beam.Filter(lambda te: te[0] == GOOD)
                 | 'GoodValue' >> beam.Map(lambda te: te[1]))
      bad = (tagged | 'Bad' >> beam.Filter(lambda te: te[0] == BAD)
             | 'BadValue' >> beam.Map(lambda te: te[1]))
    else:
      read = paths | 'Read' >> beam.ParDo(
          ReadRecordsFn(self._skip)).with_outputs(BAD, main='records')
      checked = read.records | 'Validate' >> beam.ParDo(
          ValidateRecordsFn(self._valid_class_ids, self._skip)).with_outputs(
              BAD, main='records')
      records = checked.records
      bad = (read[BAD], checked[BAD]) | 'AllBad' >> beam.Flatten()
    report = bad | 'CountBad' >> beam.CombineGlobally(BadRecordsCombineFn())
    return {'records': records, 'report': report}
