"""A plain reader of TFRecord files for host-side Python code.

TFRecord framing, per record::

  uint64 length (little-endian)
  uint32 masked CRC-32C of the 8 length bytes (little-endian)
  bytes  data[length]
  uint32 masked CRC-32C of data (little-endian)

where ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2^32).

Host code that reads a file record by record (merging sorted runs, counting
records, mining's record checks, review) uses this reader instead of one
``tf.data`` iterator per file: each tf.data iterator owns background threads
(e.g. the autotuning loop), and tearing it down waits for them, which stalls
for seconds per file when the CPU is busy. Both CRCs are verified; a bad CRC,
a corrupt length or a truncated file raises ``TFRecordReadError`` naming the
file, the byte offset and the record index. Files are opened with
``tf.io.gfile.GFile``, so any TF file system path (e.g. ``gs://``) works.
``compression_type='GZIP'`` reads GZIP-compressed TFRecord files (offsets
then count uncompressed bytes).
"""
import gzip
import struct

import google_crc32c
import tensorflow as tf

_HEADER = struct.Struct('<QI')  # length, masked CRC of the length
_FOOTER = struct.Struct('<I')  # masked CRC of the data
_MASK_DELTA = 0xa282ead8
# Lengths above this are taken as a corrupt length field (the length CRC
# catches most corruption first).
_MAX_RECORD_LENGTH = 1 << 40
COMPRESSION_TYPES = ('', 'GZIP')


class TFRecordReadError(ValueError):
  """A TFRecord file that cannot be read past ``offset``.

  Attributes:
    path: the file.
    offset: byte offset of the first unreadable record's framing.
    index: index (from 0) of the first unreadable record.
    detail: what is wrong (e.g. ``data CRC mismatch``).
  """

  def __init__(self, path, offset, index, detail):
    self.path, self.offset, self.index, self.detail = (path, offset, index,
                                                       detail)
    super().__init__('%s: record #%d at byte offset %d: %s' % (
        path, index, offset, detail))


def masked_crc(data: bytes) -> int:
  """The masked CRC-32C that TFRecord stores for ``data``."""
  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) & 0xffffffff) + _MASK_DELTA) & 0xffffffff


def _open(path, compression_type):
  if compression_type not in COMPRESSION_TYPES:
    raise ValueError('%s: compression_type %r is not one of %s' % (
        path, compression_type, COMPRESSION_TYPES))
  f = tf.io.gfile.GFile(path, 'rb')
  return gzip.GzipFile(fileobj=f, mode='rb') if compression_type else f


def read_records(path, compression_type=''):
  """Yields the records (bytes) of one TFRecord file, streaming.

  Args:
    path: the file (any ``tf.io.gfile`` path).
    compression_type: '' or 'GZIP'.

  Raises:
    TFRecordReadError: a length or data CRC mismatch, an impossible length,
      or a file that ends inside a record; raised when that record is
      reached, after the records before it were yielded.
  """
  for _, record in read_indexed_records(path, compression_type):
    yield record


def read_indexed_records(path, compression_type=''):
  """Yields ``(index, record bytes)`` of one TFRecord file; see read_records."""
  path = str(path)
  with _open(path, compression_type) as f:
    offset = 0
    index = 0
    while True:
      try:
        header = f.read(_HEADER.size)
      except (OSError, EOFError) as error:  # e.g. a broken GZIP stream
        raise TFRecordReadError(path, offset, index,
                                'unreadable: %s' % error) from None
      if not header:
        return
      if len(header) < _HEADER.size:
        raise TFRecordReadError(path, offset, index, 'truncated: %d of %d '
                                'header bytes' % (len(header), _HEADER.size))
      length, length_crc = _HEADER.unpack(header)
      if masked_crc(header[:8]) != length_crc:
        raise TFRecordReadError(path, offset, index,
                                'length CRC mismatch (corrupt length field)')
      if length > _MAX_RECORD_LENGTH:
        raise TFRecordReadError(path, offset, index,
                                'corrupt length field (%d)' % length)
      try:
        body = f.read(length + _FOOTER.size)
      except (OSError, EOFError) as error:
        raise TFRecordReadError(path, offset, index,
                                'unreadable: %s' % error) from None
      if len(body) < length + _FOOTER.size:
        raise TFRecordReadError(path, offset, index, 'truncated: %d of %d '
                                'data and CRC bytes' % (
                                    len(body), length + _FOOTER.size))
      data = body[:length]
      (data_crc,) = _FOOTER.unpack(body[length:])
      if masked_crc(data) != data_crc:
        raise TFRecordReadError(path, offset, index,
                                'data CRC mismatch (corrupt record data)')
      yield index, data
      offset += _HEADER.size + length + _FOOTER.size
      index += 1


def count_records(paths, compression_type=''):
  """Number of records in the TFRecord files ``paths`` (all verified)."""
  return sum(sum(1 for _ in read_indexed_records(p, compression_type))
             for p in paths)
