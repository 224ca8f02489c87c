"""The bytes of a remote write 1.0 request: a protobuf `prometheus.WriteRequest`, compressed
in snappy's block format. Both by hand: the message has four small types, and the
compressor is the greedy hash-table LZ77 of snappy's reference encoder, which keeps the
repetitive sample encoding (the same tags, close timestamps and values) to a fraction.

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

WireSeries = tuple[Sequence[tuple[str, str]], Sequence[tuple[int, float]]]
"""Labels (`__name__` among them, sorted by name) and samples (milliseconds, value), in
time order."""

_LEN = 2    # wire type: length-delimited
_I64 = 1    # wire type: fixed 64 bits
_VARINT = 0
_DOUBLE = struct.Struct("<d")
_U64 = (1 << 64) - 1


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint; negative numbers as their 64-bit two's complement."""
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def _field(field: int, payload: bytes) -> bytes:
    return _tag(field, _LEN) + varint(len(payload)) + payload


_SAMPLE_VALUE = _tag(1, _I64)
_SAMPLE_TIME = _tag(2, _VARINT)


def sample_bytes(millis: int, value: float) -> bytes:
    return _field(2, _SAMPLE_VALUE + _DOUBLE.pack(value) + _SAMPLE_TIME + varint(millis))


def series_bytes(labels: Sequence[tuple[str, str]], samples: Sequence[tuple[int, float]]
                 ) -> bytes:
    """One `TimeSeries`, framed as field 1 of the `WriteRequest`."""
    parts = [_field(1, _field(1, name.encode()) + _field(2, value.encode()))
             for name, value in labels]
    parts += [sample_bytes(millis, value) for millis, value in samples]
    return _field(1, b"".join(parts))


def write_request(series: Iterable[WireSeries]) -> bytes:
    """The uncompressed `WriteRequest` body."""
    return b"".join(series_bytes(labels, samples) for labels, samples in series)


_MAX_OFFSET = 1 << 16   # copies with a 2-byte offset; snappy's encoder never needs more
_MIN_MATCH = 4
_MAX_COPY = 64


def snappy_compress(data: bytes) -> bytes:
    """snappy's block format: the uncompressed length as a varint, then literals and
    copies. Greedy: at each position the last earlier position with the same 4 bytes (when
    within 64 KiB) is extended as far as it matches."""
    out = bytearray(varint(len(data)))
    table: dict[bytes, int] = {}
    end = len(data)
    last = end - _MIN_MATCH
    pending = 0     # start of the bytes not yet emitted
    i = 0
    misses = 0
    while i <= last:
        key = data[i:i + _MIN_MATCH]
        candidate = table.get(key)
        table[key] = i
        if candidate is None or i - candidate >= _MAX_OFFSET:
            # As snappy does: step further the longer nothing matches, so incompressible
            # data costs little time.
            misses += 1
            i += 1 + (misses >> 5)
            continue
        misses = 0
        length = _match_length(data, candidate, i, end)
        _literal(out, data, pending, i)
        _copy(out, i - candidate, length)
        i += length
        pending = i
        if i <= last:
            table[data[i - 1:i - 1 + _MIN_MATCH]] = i - 1
    _literal(out, data, pending, end)
    return bytes(out)


def _match_length(data: bytes, earlier: int, at: int, end: int) -> int:
    length = _MIN_MATCH
    # Whole 8-byte words first, then byte by byte.
    while at + length + 8 <= end and (data[earlier + length:earlier + length + 8]
                                      == data[at + length:at + length + 8]):
        length += 8
    while at + length < end and data[earlier + length] == data[at + length]:
        length += 1
    return length


def _literal(out: bytearray, data: bytes, start: int, stop: int) -> None:
    if stop <= start:
        return
    size = stop - start - 1
    if size < 60:
        out.append(size << 2)
    else:
        encoded = size.to_bytes((size.bit_length() + 7) // 8, "little")
        out.append((59 + len(encoded)) << 2)
        out += encoded
    out += data[start:stop]


def _copy(out: bytearray, offset: int, length: int) -> None:
    # Pieces of at most 64 bytes, none shorter than 4 (as snappy's reference encoder).
    while length >= 68:
        _copy_piece(out, offset, _MAX_COPY)
        length -= _MAX_COPY
    if length > _MAX_COPY:
        _copy_piece(out, offset, 60)
        length -= 60
    _copy_piece(out, offset, length)


def _copy_piece(out: bytearray, offset: int, length: int) -> None:
    if length < 12 and offset < 2048:
        out.append(1 | (length - 4) << 2 | (offset >> 8) << 5)
        out.append(offset & 0xFF)
    else:
        out.append(2 | (length - 1) << 2)
        out += offset.to_bytes(2, "little")
