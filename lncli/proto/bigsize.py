"""BOLT 1 BigSize: a big-endian variable-length unsigned integer (up to 64 bits).

Values below 0xfd take one byte; 0xfd, 0xfe and 0xff prefix a u16, u32 and u64. Decoding rejects
encodings that are not minimal ("not canonical") and truncated input.
"""

from __future__ import annotations

import struct

from lncli.errors import DecodeError

__all__ = ["BigSizeError", "encode", "decode", "read"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class BigSizeError(DecodeError):
    pass


def encode(value: int) -> bytes:
    if value < 0xFD:
        if value < 0:
            raise ValueError("BigSize cannot encode a negative number")
        return bytes((value,))
    if value <= 0xFFFF:
        return b"\xfd" + _U16.pack(value)
    if value <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(value)
    if value <= 0xFFFFFFFFFFFFFFFF:
        return b"\xff" + _U64.pack(value)
    raise ValueError("BigSize cannot encode a number above 2^64-1")


def read(buf: bytes, offset: int = 0) -> tuple[int, int]:
    """Read one BigSize at ``offset``; return ``(value, offset_after)``."""
    try:
        first = buf[offset]
    except IndexError:
        raise BigSizeError("unexpected end of data reading a bigsize") from None
    if first < 0xFD:
        return first, offset + 1
    if first == 0xFD:
        end, minimum, fmt = offset + 3, 0xFD, _U16
    elif first == 0xFE:
        end, minimum, fmt = offset + 5, 0x10000, _U32
    else:
        end, minimum, fmt = offset + 9, 0x100000000, _U64
    if end > len(buf):
        raise BigSizeError("unexpected end of data reading a bigsize")
    (value,) = fmt.unpack_from(buf, offset + 1)
    if value < minimum:
        raise BigSizeError("decoded bigsize is not canonical")
    return value, end


def decode(buf: bytes) -> int:
    """Decode a buffer that holds exactly one BigSize."""
    value, end = read(buf, 0)
    if end != len(buf):
        raise BigSizeError("trailing bytes after a bigsize")
    return value
