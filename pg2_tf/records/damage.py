"""Locating read errors: which file and record a TensorFlow read error means.

TensorFlow reports a corrupted or truncated record file as a ``DataLossError`` with a byte offset
and no file name; the per-record checks of :mod:`pg2_tf.records.decoder` fail inside a dataset
pipeline with an Assert message; an undecodable JPEG fails with no location at all. This module
turns each into a one-line DataError naming the file and record: it walks the TFRecord framing
(uint64 length, its masked CRC-32C, the data, the data's masked CRC-32C) to find the record at an
offset, reads the checks' marker back, and otherwise re-reads the files (:func:`find_bad_record`).

Rule: it only explains errors after the fact; reading the records is :mod:`pg2_tf.records.reader`.
"""

import os
import re
import struct

import tensorflow as tf

from pg2_tf.core.errors import DataError
from pg2_tf.records import decoder

GET_DATA = (
    "point --data_dir/--dataset at the folder of the converted records (download the ones "
    "linked from the original PG2 README, or run the record converter)"
)
_DAMAGED_FILE_RE = re.compile(r"(truncated|corrupted) record at (\d+)")
_DAMAGED_FIX = "the file is damaged: copy it again or re-run the record converter for it"
_BAD_RECORD_FIX = "re-run the record converter for this file, or remove the file"
_RECORD_HEADER_BYTES = 12  # uint64 length + masked crc32c of the length
_RECORD_FOOTER_BYTES = 4  # masked crc32c of the data


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _damaged_record_at(path, offset):
    """(record_index, problem) of the damaged record of ``path`` spanning byte ``offset``, or None.

    Walks the TFRecord framing (length header, data, data checksum) up to ``offset``.
    """
    try:
        file_size = os.path.getsize(path)
        file = open(path, "rb")
    except OSError:
        return None
    with file:
        index, start = 0, 0
        while start <= offset and start < file_size:
            file.seek(start)
            header = file.read(_RECORD_HEADER_BYTES)
            if len(header) < _RECORD_HEADER_BYTES:
                return index, "is truncated (the file ends inside its header)"
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if _masked_crc32c(header[:8]) != length_crc:
                return index, "has a corrupted length header"
            end = start + _RECORD_HEADER_BYTES + length + _RECORD_FOOTER_BYTES
            if end > file_size:
                return index, "is truncated (the file ends inside it)"
            if start <= offset < end:
                data = file.read(length)
                (data_crc,) = struct.unpack("<I", file.read(_RECORD_FOOTER_BYTES))
                if _masked_crc32c(data) != data_crc:
                    return index, "fails its checksum (corrupted bytes)"
                return None
            index, start = index + 1, end
    return None


def short_tf_message(error) -> str:
    """The first meaningful line of a TensorFlow error message.

    Args:
        error: an exception (its ``message`` attribute when it has one).

    Returns:
        The first line, without TensorFlow's function-node and user-defined-function prefixes and
        its ``[Op:...]`` suffix.
    """
    text = str(getattr(error, "message", None) or error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(
        r"Error in user-defined function passed to .*? transformation with iterator: "
        r"[^:]*:\s*",
        "",
        text,
    )
    text = text.split("\n")[0]
    return re.sub(r"\s*\[Op:\w+\].*$", "", text).strip()


def locate_damaged(error, files):
    """The record behind a ``DataLossError``'s byte offset, found by walking the files' framing.

    Args:
        error: the error; its message must say ``truncated|corrupted record at <offset>``.
        files: the record files that may hold it, searched in order.

    Returns:
        ``(file, record_index, problem)``, problem naming the offset, or None when the message
        holds no offset or no file is damaged there.
    """
    match = _DAMAGED_FILE_RE.search(str(error))
    if not match:
        return None
    offset = int(match.group(2))
    for path in files:
        found = _damaged_record_at(path, offset)
        if found:
            index, problem = found
            return path, index, f"{problem} (byte offset {offset})"
    return None


def _decoded_checksum(record, file_name, record_index, img_H, img_W):
    """A scalar that depends on every decoded tensor of a record (so no decoding is pruned)."""
    pair = decoder.parse_pair(record, img_H, img_W, file_name=file_name, record_index=record_index)
    return tf.add_n([tf.reduce_sum(pair[key]) for key in decoder.ELEMENT_KEYS])


_SCAN_BATCH = 256


def _first_failing_record(records, first_index):
    """Index of the first element of ``records`` that raises, or None if none does."""
    index = first_index
    try:
        for _ in records:
            index += 1
    except tf.errors.OpError:
        return index
    return None


def find_bad_record(files: list[str], img_H: int, img_W: int):
    """The first record of ``files`` that fails to read or decode, by re-reading them in order.

    Costs a full decoding pass over the files (parallel, in order); :func:`explain_read_error`
    uses it for errors TensorFlow reports without a location (e.g. a JPEG that does not decode).

    Args:
        files: the record files, in the order the dataset read them.
        img_H: the model's image height; the records must be of this size.
        img_W: the model's image width.

    Returns:
        ``(file, record_index, problem)``: problem is a phrase such as ``"cannot be decoded
        (<TensorFlow's message>)"``, record_index None if the failure could not be pinned to one
        record; or None when every record decodes.
    """

    def checksum(record, file_name, record_index):
        return _decoded_checksum(record, file_name, record_index, img_H, img_W)

    for path in files:
        decoded = (
            decoder.located_records(path)
            .map(checksum, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(_SCAN_BATCH)
        )
        batches_read = 0
        try:
            for _ in decoded:
                batches_read += 1
        except tf.errors.DataLossError as error:
            located = locate_damaged(error, [path])
            return located or (
                path,
                None,
                f"is unreadable ({short_tf_message(error)})",
            )
        except tf.errors.InvalidArgumentError as error:
            located = decoder.parse_bad_record(error)
            if located:
                return located
            # TensorFlow did not say which record: re-read the failing batch record by record.
            first = batches_read * _SCAN_BATCH
            batch = decoder.located_records(path).skip(first).take(_SCAN_BATCH).map(checksum)
            return (
                path,
                _first_failing_record(batch, first),
                (f"cannot be decoded ({short_tf_message(error)})"),
            )
    return None


def explain_read_error(error, files, img_H=None, img_W=None) -> DataError:
    """A one-line DataError naming the file and record behind a TensorFlow read error.

    Args:
        error: a ``tf.errors.OpError`` raised while fetching an element of a dataset made by
            :func:`pg2_tf.records.reader.make_dataset` (``DataLossError``,
            ``InvalidArgumentError``, ``NotFoundError``).
        files: the record files of that dataset (:func:`pg2_tf.records.reader.record_files`).
        img_H: the records' image height, or None.
        img_W: the records' image width, or None. With both, errors TensorFlow raised without a
            location (an undecodable JPEG) are located by re-reading the files
            (:func:`find_bad_record`, a full decoding pass); without them that pass is skipped.

    Returns:
        The DataError (the caller raises it, ``from error`` if it wants the chain), naming: for a
        record that failed the reader's checks, its file, index and problem; for a corrupted or
        truncated file (``DataLossError`` at a byte offset), the file and record found by walking
        the record framing of ``files``; otherwise the file and index found by the re-read, or the
        TensorFlow message.
    """
    located = decoder.parse_bad_record(error)
    if located:
        path, index, problem = located
        return DataError(f"{path}: record {index} {problem}; {_BAD_RECORD_FIX}")
    if isinstance(error, tf.errors.NotFoundError):
        return DataError(f"a record file could not be read: {short_tf_message(error)}; {GET_DATA}")
    if isinstance(error, tf.errors.DataLossError):
        located = locate_damaged(error, files)
        if located:
            path, index, problem = located
            return DataError(f"{path}: record {index} {problem}; {_DAMAGED_FIX}")
        return DataError(
            f"one of {len(files)} record files ({files[0]}, ...) is damaged "
            f"({short_tf_message(error)}); {_DAMAGED_FIX}"
        )
    message = short_tf_message(error)
    if img_H is not None and img_W is not None:
        found = find_bad_record(files, img_H, img_W)
        if found:
            path, index, problem = found
            where = f"record {index}" if index is not None else "a record"
            return DataError(f"{path}: {where} {problem}; {_BAD_RECORD_FIX}")
        return DataError(
            f"reading the records failed ({message}) but a re-read of all {len(files)} files found "
            "no bad record; the failure may be transient (disk or network): try again"
        )
    return DataError(
        f"reading the records in {os.path.dirname(files[0]) if files else '?'} failed ({message}); "
        f"{_BAD_RECORD_FIX}"
    )
