"""Serialises ``tf.train.Example`` protos with numpy alone (no TensorFlow in the worker processes).

A record is a map of named features; each feature is a bytes, float32 or int64 list. The encoders
here return the wire bytes of one map entry, so an image's entries can be built once and joined
into many pair records: ``example_bytes(entries)`` wraps any collection of entries into a complete
``tf.train.Example``. Parsing the result with ``tf.train.Example.FromString`` gives exactly the
features that ``tf.train.Example(features=tf.train.Features(feature={...}))`` would hold (packed
repeated fields, float values rounded to float32, negative int64 as 10-byte two's complement).
"""

from collections.abc import Iterable

import numpy as np

_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> bytes:
    """Concatenated varints of int64 values (negative ones as uint64)."""
    unsigned = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64).ravel()
    if unsigned.size == 0:
        return b""
    if int(unsigned.max()) < 0x80:
        return unsigned.astype(np.uint8).tobytes()
    byte_counts = np.ones(unsigned.shape, np.int64)
    remaining = unsigned >> np.uint64(7)
    while remaining.any():
        byte_counts += remaining > 0
        remaining = remaining >> np.uint64(7)
    ends = np.cumsum(byte_counts)
    starts = ends - byte_counts
    out = np.zeros(int(ends[-1]), np.uint8)
    for position in range(int(byte_counts.max())):
        has_byte = byte_counts > position
        chunk = (unsigned[has_byte] >> np.uint64(7 * position)) & np.uint64(0x7F)
        more = byte_counts[has_byte] > position + 1
        out[starts[has_byte] + position] = chunk.astype(np.uint8) | (more.astype(np.uint8) << 7)
    return out.tobytes()


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _packed(payload: bytes) -> bytes:
    # A packed repeated field with no element is omitted from the wire.
    return _field(1, payload) if payload else b""


def bytes_feature(values: bytes | Iterable[bytes]) -> bytes:
    """An encoded ``Feature`` holding a bytes list.

    Args:
        values: one bytes or str value, or an iterable of them (str is UTF-8 encoded).

    Returns:
        The serialized ``tf.train.Feature``.
    """
    if isinstance(values, (bytes, str)):
        values = [values]
    payload = b"".join(
        _field(1, value.encode() if isinstance(value, str) else bytes(value)) for value in values
    )
    return _field(1, payload)


def float_feature(values) -> bytes:
    """An encoded ``Feature`` holding a float32 list.

    Args:
        values: a scalar or an array of any shape (flattened, cast to float32).

    Returns:
        The serialized ``tf.train.Feature`` (packed little-endian float32).
    """
    array = np.asarray(values, dtype=np.float64).ravel().astype("<f4")
    return _field(2, _packed(array.tobytes()))


def int64_feature(values) -> bytes:
    """An encoded ``Feature`` holding an int64 list.

    Args:
        values: a scalar or an array of any shape (flattened; non-integers cast to int64).

    Returns:
        The serialized ``tf.train.Feature`` (packed varints).
    """
    array = np.asarray(values).ravel()
    if array.size and not np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.int64)
    return _field(3, _packed(_varints(array.astype(np.int64))))


def feature_entry(key: str, encoded_feature: bytes) -> bytes:
    """One entry of the ``Features.feature`` map.

    Args:
        key: the feature's name.
        encoded_feature: a serialized ``Feature`` (:func:`bytes_feature`, ...).

    Returns:
        The serialized map entry.
    """
    return _field(1, _field(1, key.encode()) + _field(2, encoded_feature))


def example_bytes(entries: Iterable[bytes]) -> bytes:
    """A serialized ``tf.train.Example``.

    Args:
        entries: map entries made by :func:`feature_entry`, in the order to write.

    Returns:
        The ``Example``'s bytes, as ``tf.train.Example.SerializeToString`` gives them.
    """
    return _field(1, b"".join(entries))
