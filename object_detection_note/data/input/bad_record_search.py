"""Names the record behind an input error that TF reports without one.

The default input path (``safe_records.checked_map``) names every record
that fails a check, but a record that does not parse, or whose image does
not decode, fails inside TF ops whose errors name neither file nor record
(``jpeg::Uncompress failed``). Rather than pay for per-record error
catching on every record of every run, ``with_located_errors`` catches such
an error where the batches are consumed, reads the same input once more with
the per-record machinery (``skip_bad_records`` mode, in file order) until
the first bad record, and raises ``InvalidArgumentError`` naming it.
"""
import contextlib

from absl import logging
import tensorflow as tf

from object_detection_note.core.fields import BadRecordFields as K
from object_detection_note.data.input import inputs
from object_detection_note.data.records import record_errors

_LOCATED = 'bad record in '


def find_first_bad_record(input_reader, model_config):
  """The first bad record of ``input_reader``'s files (in file order).

  Returns:
    the ``record_errors.SkippedRecords`` entry dict of that record, or None
    if every record reads, checks and transforms.
  """
  reader = type(input_reader)()
  reader.CopyFrom(input_reader)
  reader.skip_bad_records = True
  reader.shuffle = False
  reader.num_epochs = 1
  skipped = record_errors.SkippedRecords('search', max_logged=0)
  dataset = inputs.build_dataset(reader, model_config, 1, False,
                                 skipped_records=skipped)
  for _ in dataset:
    if skipped.count:
      break
  first = skipped.to_dict()[K.first]
  return first[0] if first else None


def readers_of(input_reader, note_config=None):
  """The readers whose files a training input reads: ``input_reader`` and,
  when ``note_config.mined_input`` is set, the same reader over B^t."""
  readers = [input_reader]
  if note_config is not None and note_config.mined_input.input_path:
    mined = type(input_reader)()
    mined.CopyFrom(input_reader)
    del mined.tf_record_input_reader.input_path[:]
    mined.tf_record_input_reader.input_path.extend(
        note_config.mined_input.input_path)
    readers.append(mined)
  return readers


def with_located_errors(batches, input_readers, model_config):
  """Yields ``batches``; an input error without a location is re-raised
  as ``InvalidArgumentError`` naming the file, record and problem.

  Args:
    batches: the iterable the input error comes from (a dataset).
    input_readers: InputReader proto, or a list of them, whose files are
      searched in order (see ``readers_of``).
    model_config: DetectionModel proto the input was built for.
  """
  with located_errors(input_readers, model_config):
    yield from batches


@contextlib.contextmanager
def located_errors(input_readers, model_config):
  """Context in which an input error without a location is re-raised as
  ``InvalidArgumentError`` naming the file, record and problem (see
  ``with_located_errors``)."""
  if not isinstance(input_readers, (list, tuple)):
    input_readers = [input_readers]
  try:
    yield
  # TF's message for an unparsable record may hold its raw bytes, which
  # Python then fails to decode: UnicodeDecodeError is an input error too.
  except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as error:
    if _LOCATED in str(error):
      raise
    logging.warning('input error without a record location (%s); reading '
                    'the input again to find the bad record',
                    (str(error).strip().splitlines() or [''])[0][:200])
    for reader in input_readers:
      entry = find_first_bad_record(reader, model_config)
      if entry is not None:
        raise tf.errors.InvalidArgumentError(
            None, None, '%s (%s)' % (record_errors.locate(
                entry[K.file], entry[K.record], entry[K.source_id],
                entry[K.problem]), record_errors.SKIP_HINT)) from error
    raise
