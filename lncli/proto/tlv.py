"""BOLT 1 type-length-value streams.

A stream is a sequence of records ``bigsize type || bigsize length || value``, with types strictly
increasing. A reader that meets an unknown *even* type must fail; an unknown *odd* type is skipped.
Which types are known is the caller's business (``known``); values stay raw bytes here and are
given meaning by the schema layer (``lncli.proto.wire``) or by the module that owns the namespace.

Truncated integers (tu16, tu32, tu64) are big-endian with no leading zero bytes; zero is empty.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from lncli.errors import DecodeError
from lncli.proto import bigsize

__all__ = [
    "TlvError",
    "encode_stream",
    "decode_stream",
    "iter_records",
    "encode_tu",
    "decode_tu",
]


class TlvError(DecodeError):
    pass


def iter_records(data: bytes, offset: int = 0, end: int | None = None) -> Iterable[tuple[int, bytes]]:
    """Yield ``(type, value)`` for each record, checking framing and strict ordering only."""
    if end is None:
        end = len(data)
    last = -1
    while offset < end:
        try:
            typ, offset = bigsize.read(data, offset)
            length, offset = bigsize.read(data, offset)
        except bigsize.BigSizeError as e:
            raise TlvError(f"bad TLV record header: {e}") from None
        if offset > end:
            raise TlvError("TLV record header runs past the end of the stream")
        if length > end - offset:
            raise TlvError(f"TLV record type {typ} has length {length} beyond the end of the stream")
        if typ <= last:
            raise TlvError(
                f"TLV type {typ} after type {last}: types must be strictly increasing"
                if typ < last
                else f"duplicate TLV type {typ}"
            )
        last = typ
        yield typ, bytes(data[offset : offset + length])
        offset += length


def decode_stream(
    data: bytes, known: Collection[int] | None = None, offset: int = 0
) -> dict[int, bytes]:
    """Decode a whole TLV stream into ``{type: raw value}``.

    With ``known`` given, unknown even types raise and unknown odd types are dropped from the
    result. With ``known=None`` every record is returned (the caller applies the even/odd rule).
    """
    out: dict[int, bytes] = {}
    for typ, value in iter_records(data, offset):
        if known is not None and typ not in known:
            if typ % 2 == 0:
                raise TlvError(f"unknown even TLV type {typ}")
            continue
        out[typ] = value
    return out


def encode_stream(records: Mapping[int, bytes] | Iterable[tuple[int, bytes]]) -> bytes:
    """Encode records (any order given; written sorted by type). ``None`` values are omitted."""
    items = records.items() if isinstance(records, Mapping) else records
    parts = []
    for typ, value in sorted(items, key=lambda kv: kv[0]):
        if value is None:
            continue
        parts.append(bigsize.encode(typ))
        parts.append(bigsize.encode(len(value)))
        parts.append(value)
    return b"".join(parts)


def encode_tu(value: int, max_bytes: int = 8) -> bytes:
    """Truncated unsigned integer (tu16/tu32/tu64 for max_bytes 2/4/8): minimal big-endian."""
    if value < 0 or value >= 1 << (8 * max_bytes):
        raise ValueError(f"tu{8 * max_bytes} out of range: {value}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_tu(data: bytes, max_bytes: int = 8) -> int:
    if len(data) > max_bytes:
        raise TlvError(f"tu{8 * max_bytes} longer than {max_bytes} bytes")
    if data and data[0] == 0:
        raise TlvError(f"tu{8 * max_bytes} is not minimally encoded (leading zero byte)")
    return int.from_bytes(data, "big")
