"""BOLT 1 message encoding, driven by the BOLTs' CSV schemas ("schema as data").

A schema is a set of message types, subtypes and TLV streams read from CSV lines
(``msgtype``, ``msgdata``, ``subtype``, ``subtypedata``, ``tlvtype``, ``tlvdata``). The default
schema is ``schema/peer_wire.csv`` (BOLT 1, 2 and 7), loaded on first use.

Decoded values:

- ``byte``/``u8``, ``u16``, ``u32``, ``u64``, ``s8``..``s64``, ``tu16``..``tu64``, ``bigsize``: int
- ``short_channel_id``: :class:`lncli.proto.scid.ShortChannelId` (an ``int`` that prints as ``BLOCKxTXxOUT``)
- ``chain_hash``, ``channel_id``, ``sha256``, ``secret``, ``point``, ``signature``, ...: bytes
- an array of ``byte``: bytes; of ``utf8``: str; of anything else: a tuple
- a subtype: a dict of its fields
- a TLV stream: a dict ``{record name: {field: value}}``; unknown odd records are kept as
  ``{type number: raw bytes}`` so that re-encoding gives the same bytes.

Integer fields that only give the length of a later array (``len``, ``flen``, ...) are implicit:
they are computed when encoding and left out of decoded values.

A message is ``type (u16) || fields [|| extension]``. When the schema gives the message a TLV
stream, that stream is its extension and is fully checked (unknown even types fail). Otherwise
trailing bytes are an extension this reader does not understand: BOLT 1 lets a reader ignore it,
so it is kept uninterpreted in ``Message.extension`` (it is part of signed bytes) and re-encoded
as is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from lncli.errors import DecodeError, InputError
from lncli.proto import bigsize, tlv
from lncli.proto.scid import ShortChannelId

__all__ = [
    "MAX_MESSAGE_SIZE",
    "DecodeError",
    "EncodeError",
    "SchemaError",
    "UnknownMessage",
    "UnknownMandatoryMessage",
    "UnknownOptionalMessage",
    "ShortChannelId",
    "Message",
    "Schema",
    "FieldSpec",
    "MessageSpec",
    "TlvRecordSpec",
    "TlvStreamSpec",
    "SubtypeSpec",
    "default_schema",
    "decode_message",
    "encode_message",
    "message_names",
    "message_type",
]

MAX_MESSAGE_SIZE = 65535
_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")


class EncodeError(InputError, ValueError):
    """Values that cannot be encoded under the schema (missing field, out of range, ...)."""


class SchemaError(ValueError):
    """The CSV schema itself is malformed (a programming error, not bad input)."""


class UnknownMessage(DecodeError):
    """A message type the schema does not define. ``msg_type`` holds its number."""

    def __init__(self, msg_type: int, message: str):
        super().__init__(message)
        self.msg_type = msg_type


class UnknownMandatoryMessage(UnknownMessage):
    """Unknown even message type: the connection must be closed (BOLT 1)."""


class UnknownOptionalMessage(UnknownMessage):
    """Unknown odd message type: the message must be ignored (BOLT 1)."""


# --------------------------------------------------------------------------- fundamental types


class _Codec:
    """A fundamental type. ``size`` is its byte length, or None when variable."""

    size: int | None = None
    to_end = False  # reads all bytes up to the end of its scope (truncated integers)

    def read(self, buf, off: int, end: int):  # pragma: no cover - interface
        raise NotImplementedError

    def write(self, value) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


class _Int(_Codec):
    def __init__(self, name: str, size: int, signed: bool):
        self.name, self.size, self.signed = name, size, signed
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        self.st = struct.Struct(">" + (fmt.lower() if signed else fmt))
        bits = 8 * size
        self.lo, self.hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def read(self, buf, off, end):
        return self.st.unpack_from(buf, off)[0], off + self.size

    def write(self, value):
        v = _as_int(value, self.name)
        if not self.lo <= v <= self.hi:
            raise EncodeError(f"{self.name} out of range: {v}")
        return self.st.pack(v)


class _Scid(_Int):
    def __init__(self):
        super().__init__("short_channel_id", 8, False)

    def read(self, buf, off, end):
        return int.__new__(ShortChannelId, self.st.unpack_from(buf, off)[0]), off + 8

    def write(self, value):
        if isinstance(value, str):
            try:
                value = ShortChannelId.parse(value.strip())
            except DecodeError as e:
                raise EncodeError(str(e)) from None
        return super().write(value)


class _Trunc(_Codec):
    to_end = True

    def __init__(self, name: str, max_bytes: int):
        self.name, self.max_bytes = name, max_bytes

    def read(self, buf, off, end):
        if end - off > self.max_bytes:
            raise DecodeError(f"{self.name} longer than {self.max_bytes} bytes")
        if end > off and buf[off] == 0:
            raise DecodeError(f"{self.name} is not minimally encoded (leading zero byte)")
        return int.from_bytes(buf[off:end], "big"), end

    def write(self, value):
        v = _as_int(value, self.name)
        if not 0 <= v < 1 << (8 * self.max_bytes):
            raise EncodeError(f"{self.name} out of range: {v}")
        return v.to_bytes((v.bit_length() + 7) // 8, "big")


class _BigSize(_Codec):
    name = "bigsize"

    def read(self, buf, off, end):
        value, new = bigsize.read(buf, off)
        if new > end:
            raise DecodeError("unexpected end of data reading a bigsize")
        return value, new

    def write(self, value):
        v = _as_int(value, "bigsize")
        try:
            return bigsize.encode(v)
        except ValueError as e:
            raise EncodeError(str(e)) from None


class _Fixed(_Codec):
    """Fixed-length bytes (hashes, signatures, points)."""

    def __init__(self, name: str, size: int, prefixes: bytes | None = None):
        self.name, self.size, self.prefixes = name, size, prefixes

    def read(self, buf, off, end):
        v = bytes(buf[off : off + self.size])
        if self.prefixes is not None and v[0] not in self.prefixes:
            raise DecodeError(f"not a valid {self.name}: first byte 0x{v[0]:02x}")
        return v, off + self.size

    def write(self, value):
        v = _as_bytes(value, self.name)
        if len(v) != self.size:
            raise EncodeError(f"{self.name} must be {self.size} bytes, got {len(v)}")
        if self.prefixes is not None and v[0] not in self.prefixes:
            raise EncodeError(f"not a valid {self.name}: first byte 0x{v[0]:02x}")
        return v


class _SciddirOrPubkey(_Codec):
    name = "sciddir_or_pubkey"

    def read(self, buf, off, end):
        if off >= end:
            raise DecodeError("truncated sciddir_or_pubkey")
        n = 9 if buf[off] in (0, 1) else 33 if buf[off] in (2, 3) else 0
        if not n:
            raise DecodeError(f"not a valid sciddir_or_pubkey: first byte 0x{buf[off]:02x}")
        if end - off < n:
            raise DecodeError("truncated sciddir_or_pubkey")
        return bytes(buf[off : off + n]), off + n

    def write(self, value):
        v = _as_bytes(value, self.name)
        if not ((len(v) == 9 and v[0] in (0, 1)) or (len(v) == 33 and v[0] in (2, 3))):
            raise EncodeError("sciddir_or_pubkey must be 0|1 + 8 bytes or a 33-byte point")
        return v


def _fundamentals() -> dict[str, _Codec]:
    t: dict[str, _Codec] = {}
    for name, size in (("byte", 1), ("u8", 1), ("u16", 2), ("u32", 4), ("u64", 8)):
        t[name] = _Int(name, size, False)
    for name, size in (("s8", 1), ("s16", 2), ("s32", 4), ("s64", 8)):
        t[name] = _Int(name, size, True)
    for name, size in (("tu16", 2), ("tu32", 4), ("tu64", 8)):
        t[name] = _Trunc(name, size)
    t["bigsize"] = _BigSize()
    t["short_channel_id"] = _Scid()
    for name in ("chain_hash", "channel_id", "sha256", "secret", "point32"):
        t[name] = _Fixed(name, 32)
    for name in ("signature", "bip340sig"):
        t[name] = _Fixed(name, 64)
    t["point"] = _Fixed("point", 33, b"\x02\x03")
    t["utf8"] = _Int("utf8", 1, False)
    t["sciddir_or_pubkey"] = _SciddirOrPubkey()
    return t


def _as_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{what} must be an integer, got {type(value).__name__}")
    return value


def _as_bytes(value, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise EncodeError(f"{what}: not a hex string") from None
    raise EncodeError(f"{what} must be bytes (or hex), got {type(value).__name__}")


# --------------------------------------------------------------------------- schema objects


class FieldSpec:
    """One field: ``name``, ``type`` (type name) and ``count`` (None, int, field name or '...')."""

    __slots__ = ("name", "type", "count", "codec", "kind")

    def __init__(self, name: str, type: str, count: int | str | None):
        self.name, self.type, self.count = name, type, count
        self.codec: Any = None  # resolved: _Codec, SubtypeSpec or TlvStreamSpec
        self.kind = ""  # "fund", "subtype", "tlv"

    def __repr__(self) -> str:
        return f"FieldSpec({self.name!r}, {self.type!r}, {self.count!r})"


_MISSING = object()


class _FixedPrefix:
    """The leading fields of a scope that have one fixed size (integers, fixed-length bytes and
    byte arrays of a fixed count), read and written with one ``struct`` call. Only a shortcut:
    whenever a value or the input is not plainly valid, the scope's field-by-field code runs
    instead and gives its usual result or error."""

    __slots__ = ("st", "size", "n", "names", "checks", "prefixed")

    def __init__(self, fields: list[FieldSpec]):
        fmt = [">"]
        checks = []
        prefixed = []
        for i, f in enumerate(fields):
            codec = f.codec
            if f.kind != "fund":
                break
            if f.count is None and type(codec) is _Int:
                fmt.append(codec.st.format[1:])
                checks.append((f.name, True, codec.lo, codec.hi))
            elif f.count is None and type(codec) is _Fixed:
                fmt.append(f"{codec.size}s")
                checks.append((f.name, False, codec.size, codec.prefixes))
                if codec.prefixes is not None:
                    prefixed.append((i, codec.prefixes))
            elif isinstance(f.count, int) and f.type in ("byte", "u8"):
                fmt.append(f"{f.count}s")
                checks.append((f.name, False, f.count, None))
            else:
                break
        self.st = struct.Struct("".join(fmt))
        self.size = self.st.size
        self.n = len(checks)
        self.names = tuple(c[0] for c in checks)
        self.checks = tuple(checks)
        self.prefixed = tuple(prefixed)

    def read(self, buf, off: int, end: int) -> tuple | None:
        """The prefix's values, or None to let the general reader handle (and report) it."""
        if end - off < self.size:
            return None
        vals = self.st.unpack_from(buf, off)
        for i, prefixes in self.prefixed:
            if vals[i][0] not in prefixes:
                return None
        return vals

    def pack(self, values, counts) -> bytes | None:
        """The prefix's bytes, or None unless every value is exactly of its plain type and valid."""
        args = []
        for name, is_int, a, b in self.checks:
            v = counts[name] if name in counts else values.get(name, _MISSING)
            if is_int:
                if type(v) is not int or not a <= v <= b:
                    return None
            elif type(v) is not bytes or len(v) != a or (b is not None and v[0] not in b):
                return None
            args.append(v)
        return self.st.pack(*args)


class _Scope:
    """An ordered list of fields (a message, subtype or TLV record body)."""

    def __init__(self, name: str, label: str | None = None):
        self.name = name
        self.label = label or name  # for error messages
        self.fields: list[FieldSpec] = []
        self.implicit: dict[str, list[str]] = {}  # count field -> the array fields it sizes
        self._name_set: set[str] = set()
        self._prefix: _FixedPrefix | None = None

    def _finalize(self, schema: Schema) -> None:
        seen: dict[str, FieldSpec] = {}
        self.implicit = {}
        self._name_set = {f.name for f in self.fields}
        last = len(self.fields) - 1
        for i, f in enumerate(self.fields):
            if f.name in seen:
                raise SchemaError(f"{self.label}: duplicate field {f.name}")
            schema._resolve(f, self.label)
            if isinstance(f.count, str) and f.count != "...":
                src = seen.get(f.count)
                if src is None or src.kind != "fund" or not isinstance(src.codec, (_Int, _BigSize)):
                    raise SchemaError(f"{self.label}.{f.name}: count {f.count} is not an earlier integer field")
                self.implicit.setdefault(f.count, []).append(f.name)
            open_ended = f.count == "..." or f.kind == "tlv" or (f.count is None and getattr(f.codec, "to_end", False))
            if open_ended and i != last:
                raise SchemaError(f"{self.label}.{f.name}: a field read to the end must be last")
            if f.count is not None and f.kind == "tlv":
                raise SchemaError(f"{self.label}.{f.name}: a TLV stream cannot be an array")
            if f.count is not None and getattr(f.codec, "to_end", False):
                raise SchemaError(f"{self.label}.{f.name}: an array of truncated integers is ambiguous")
            seen[f.name] = f
        prefix = _FixedPrefix(self.fields)
        self._prefix = prefix if prefix.n >= 2 else None

    # -- decoding

    def read(self, buf, off: int, end: int) -> tuple[dict, int]:
        name = self.label
        fields = self.fields
        prefix = self._prefix
        vals = prefix.read(buf, off, end) if prefix is not None else None
        if vals is not None:
            values: dict[str, Any] = dict(zip(prefix.names, vals))
            off += prefix.size
            fields = fields[prefix.n :]
        else:
            values = {}
        for f in fields:
            codec, count = f.codec, f.count
            try:
                if count is None:
                    if f.kind == "fund":
                        size = codec.size
                        if size is not None and end - off < size:
                            raise DecodeError(f"truncated: {size} bytes needed, {end - off} left")
                    values[f.name], off = codec.read(buf, off, end)
                else:
                    values[f.name], off = _read_array(f, buf, off, end, values)
            except UnknownMessage:
                raise
            except DecodeError as e:
                raise DecodeError(f"{name}.{f.name}: {e}") from None
        for k in self.implicit:
            del values[k]
        return values, off

    # -- encoding

    def write(self, values: Mapping[str, Any], out: list) -> None:
        names = self._name_set
        for k in values:
            if k not in names:
                raise EncodeError(f"{self.label}: unknown field {k!r}")
        counts: dict[str, int] = {}
        for cnt, arrays in self.implicit.items():
            n = None
            for a in arrays:
                if a not in values:
                    raise EncodeError(f"{self.label}: missing field {a!r}")
                ln = _array_len(values[a])
                if n is not None and ln != n:
                    raise EncodeError(f"{self.label}: arrays sized by {cnt} differ in length")
                n = ln
            if cnt in values and values[cnt] != n:
                raise EncodeError(f"{self.label}: {cnt}={values[cnt]!r} but the array has {n} elements")
            counts[cnt] = n
        fields = self.fields
        prefix = self._prefix
        if prefix is not None:
            packed = prefix.pack(values, counts)
            if packed is not None:
                out.append(packed)
                fields = fields[prefix.n :]
        for f in fields:
            if f.name in counts:
                v = counts[f.name]
            elif f.name in values:
                v = values[f.name]
            elif f.kind == "tlv":
                v = {}
            else:
                raise EncodeError(f"{self.label}: missing field {f.name!r}")
            try:
                if f.count is None:
                    if f.kind == "fund":
                        out.append(f.codec.write(v))
                    else:
                        f.codec.write(v, out)
                else:
                    _write_array(f, v, out)
            except EncodeError as e:
                raise EncodeError(f"{self.label}.{f.name}: {e}") from None


def _read_array(f: FieldSpec, buf, off: int, end: int, values: dict):
    count = f.count
    if count == "...":
        n = None
    elif isinstance(count, int):
        n = count
    else:
        n = values[count]
    codec = f.codec
    if f.kind == "fund" and codec.size == 1 and f.type in ("byte", "u8", "utf8"):
        stop = end if n is None else off + n
        if stop > end:
            raise DecodeError(f"truncated: {n} bytes needed, {end - off} left")
        raw = bytes(buf[off:stop])
        if f.type == "utf8":
            try:
                return raw.decode("utf-8"), stop
            except UnicodeDecodeError:
                raise DecodeError("not valid UTF-8") from None
        return raw, stop
    items = []
    size = codec.size if f.kind == "fund" else None
    if n is None:
        if size is not None and (end - off) % size:
            raise DecodeError(f"{end - off} bytes left is not a multiple of the {f.type} size {size}")
        while off < end:
            v, new = codec.read(buf, off, end)
            if new == off:
                raise DecodeError(f"{f.type} of zero length in an open-ended array")
            off = new
            items.append(v)
        return tuple(items), off
    if size is not None and end - off < n * size:
        raise DecodeError(f"truncated: {n} x {f.type} needs {n * size} bytes, {end - off} left")
    for _ in range(n):
        v, off = codec.read(buf, off, end)
        items.append(v)
    return tuple(items), off


def _array_len(value) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    try:
        return len(value)
    except TypeError:
        raise EncodeError(f"expected an array, got {type(value).__name__}") from None


def _write_array(f: FieldSpec, value, out: list) -> None:
    count = f.count
    if f.kind == "fund" and f.type in ("byte", "u8", "utf8") and not isinstance(value, (list, tuple)):
        if f.type == "utf8" and isinstance(value, str):
            raw = value.encode("utf-8")
        else:
            raw = _as_bytes(value, f.name)
        if isinstance(count, int) and len(raw) != count:
            raise EncodeError(f"must be {count} bytes, got {len(raw)}")
        out.append(raw)
        return
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise EncodeError(f"expected a sequence of {f.type}")
    value = list(value)
    if isinstance(count, int) and len(value) != count:
        raise EncodeError(f"must have {count} elements, got {len(value)}")
    if f.kind == "fund":
        w = f.codec.write
        out.extend(w(v) for v in value)
    else:
        for v in value:
            f.codec.write(v, out)


class SubtypeSpec(_Scope):
    def write(self, value, out):  # type: ignore[override]
        if not isinstance(value, Mapping):
            raise EncodeError(f"{self.name} must be a mapping of its fields")
        _Scope.write(self, value, out)


class MessageSpec(_Scope):
    def __init__(self, name: str, number: int):
        super().__init__(name)
        self.number = number
        self.tlv_field: FieldSpec | None = None

    def _finalize(self, schema: Schema) -> None:
        super()._finalize(schema)
        self.tlv_field = next((f for f in self.fields if f.kind == "tlv"), None)
        for f in self.fields:
            if f.name in _MESSAGE_ATTRS:
                raise SchemaError(f"{self.name}: field name {f.name!r} clashes with a Message attribute")

    @property
    def public_fields(self) -> list[FieldSpec]:
        """Fields that appear in decoded values (not the implicit count fields)."""
        return [f for f in self.fields if f.name not in self.implicit]


class TlvRecordSpec(_Scope):
    def __init__(self, name: str, number: int, stream: str = ""):
        super().__init__(name, f"{stream}.{name}" if stream else name)
        self.number = number


class TlvStreamSpec:
    """A TLV namespace: records by number and by name."""

    def __init__(self, name: str):
        self.name = name
        self.records: dict[int, TlvRecordSpec] = {}
        self.by_name: dict[str, TlvRecordSpec] = {}

    def read(self, buf, off: int, end: int) -> tuple[dict, int]:
        out: dict[Any, Any] = {}
        if off >= end:  # an empty stream (the usual case)
            return out, end
        records = self.records
        for typ, value in tlv.iter_records(buf, off, end):
            rec = records.get(typ)
            if rec is None:
                if typ % 2 == 0:
                    raise DecodeError(f"{self.name}: unknown even TLV type {typ}")
                out[typ] = value
                continue
            fields, used = rec.read(value, 0, len(value))
            if used != len(value):
                raise DecodeError(
                    f"{rec.label}: length {len(value)} is more than its fields use ({used})"
                )
            out[rec.name] = fields
        return out, end

    def write(self, value, out: list) -> None:
        if not isinstance(value, Mapping):
            raise EncodeError(f"{self.name} must be a mapping of records")
        if not value:  # an empty stream encodes to nothing
            return
        records: list[tuple[int, bytes]] = []
        for key, v in value.items():
            if v is None:
                continue
            if isinstance(key, int) and not isinstance(key, bool):
                if key < 0 or key >= 1 << 64:
                    raise EncodeError(f"{self.name}: TLV type {key} out of range")
                records.append((key, _as_bytes(v, f"{self.name} record {key}")))
                continue
            rec = self.by_name.get(key)
            if rec is None:
                raise EncodeError(f"{self.name}: unknown record {key!r}")
            if v is True:
                v = {}
            if not isinstance(v, Mapping):
                raise EncodeError(f"{self.name}.{key} must be a mapping of its fields")
            parts: list[bytes] = []
            rec.write(v, parts)
            records.append((rec.number, b"".join(parts)))
        numbers = [n for n, _ in records]
        if len(set(numbers)) != len(numbers):
            raise EncodeError(f"{self.name}: a record type is given twice")
        out.append(tlv.encode_stream(records))


_MESSAGE_ATTRS = frozenset(
    {"type", "name", "extension", "spec", "fields", "to_json", "encode", "get", "_values"}
)


# --------------------------------------------------------------------------- Message


class Message:
    """A decoded message: ``.type``, ``.name``, one attribute per field, ``.extension``.

    Immutable. ``msg["field"]`` and ``msg.get("field")`` work too; ``fields()`` gives a copy
    of the values and ``to_json()`` a JSON-ready dict (bytes as hex).
    """

    __slots__ = ("spec", "_values", "extension")

    def __init__(self, spec: MessageSpec, values: dict, extension: bytes = b""):
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "extension", extension)

    @property
    def type(self) -> int:
        return self.spec.number

    @property
    def name(self) -> str:
        return self.spec.name

    def __getattr__(self, key: str):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{self.spec.name} has no field {key!r}") from None

    def __getitem__(self, key: str):
        return self._values[key]

    def get(self, key: str, default=None):
        return self._values.get(key, default)

    def __setattr__(self, key, value):
        raise AttributeError("Message is immutable")

    def __delattr__(self, key):
        raise AttributeError("Message is immutable")

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.spec.number == other.spec.number
            and self._values == other._values
            and self.extension == other.extension
        )

    __hash__ = None  # type: ignore[assignment]

    def fields(self) -> dict[str, Any]:
        return dict(self._values)

    def encode(self) -> bytes:
        out = [self.spec.number.to_bytes(2, "big")]
        self.spec.write(self._values, out)
        if self.extension:
            out.append(self.extension)
        data = b"".join(out)
        if len(data) > MAX_MESSAGE_SIZE:
            raise EncodeError(f"{self.spec.name}: message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
        return data

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.spec.number, "name": self.spec.name}
        for k, v in self._values.items():
            d[k] = _jsonable(v)
        if self.extension:
            d["extension"] = self.extension.hex()
        return d

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        ext = f", extension={self.extension.hex()}" if self.extension else ""
        return f"Message<{self.spec.name}>({inner}{ext})"


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, ShortChannelId):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


# --------------------------------------------------------------------------- Schema


class Schema:
    """Messages, subtypes and TLV streams defined by BOLT-style CSV lines."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageSpec] = {}
        self.by_number: dict[int, MessageSpec] = {}
        self.subtypes: dict[str, SubtypeSpec] = {}
        self.tlv_streams: dict[str, TlvStreamSpec] = {}
        self._types = _fundamentals()
        self._final = False

    # -- loading

    @classmethod
    def from_csv(cls, text: str | Iterable[str]) -> Schema:
        s = cls()
        s.add_csv(text)
        return s

    @classmethod
    def from_file(cls, path: str) -> Schema:
        with open(path, encoding="utf-8") as f:
            return cls.from_csv(f.read())

    def add_csv(self, text: str | Iterable[str]) -> None:
        lines = text.splitlines() if isinstance(text, str) else text
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                self._add_line(line.split(","))
            except (IndexError, ValueError) as e:
                raise SchemaError(f"schema line {lineno} ({line!r}): {e}") from None
        self._final = False

    def _add_line(self, cols: list[str]) -> None:
        kind = cols[0]
        if kind == "msgtype":
            name, number = cols[1], int(cols[2])
            if name in self.messages or number in self.by_number:
                raise SchemaError(f"message {name} ({number}) defined twice")
            spec = MessageSpec(name, number)
            self.messages[name] = spec
            self.by_number[number] = spec
        elif kind == "msgdata":
            self.messages[cols[1]].fields.append(_field(cols[2], cols[3], cols[4] if len(cols) > 4 else ""))
        elif kind == "subtype":
            if cols[1] in self.subtypes:
                raise SchemaError(f"subtype {cols[1]} defined twice")
            self.subtypes[cols[1]] = SubtypeSpec(cols[1])
        elif kind == "subtypedata":
            self.subtypes[cols[1]].fields.append(_field(cols[2], cols[3], cols[4] if len(cols) > 4 else ""))
        elif kind == "tlvtype":
            stream = self.tlv_streams.setdefault(cols[1], TlvStreamSpec(cols[1]))
            rec = TlvRecordSpec(cols[2], int(cols[3]), cols[1])
            if rec.number in stream.records or cols[2] in stream.by_name:
                raise SchemaError(f"TLV record {cols[1]}.{cols[2]} defined twice")
            stream.records[rec.number] = rec
            stream.by_name[cols[2]] = rec
        elif kind == "tlvdata":
            rec = self.tlv_streams[cols[1]].by_name[cols[2]]
            rec.fields.append(_field(cols[3], cols[4], cols[5] if len(cols) > 5 else ""))
        else:
            raise SchemaError(f"unknown line kind {kind!r}")

    def _resolve(self, f: FieldSpec, where: str) -> None:
        t = f.type
        if t in self._types:
            f.codec, f.kind = self._types[t], "fund"
        elif t in self.subtypes:
            f.codec, f.kind = self.subtypes[t], "subtype"
        elif t in self.tlv_streams:
            f.codec, f.kind = self.tlv_streams[t], "tlv"
        elif t.endswith("]") and "[.." in t:
            base, _, n = t[:-1].partition("[..")
            if not n.isdigit():
                raise SchemaError(f"{where}.{f.name}: bad truncated type {t}")
            f.codec, f.kind = _Fixed(t, int(n)), "fund"
        else:
            raise SchemaError(f"{where}.{f.name}: unknown type {t}")

    def finalize(self) -> Schema:
        """Resolve type names and check the schema (done automatically on first use)."""
        if not self._final:
            # subtypes first, checking that none contains itself
            for sub in self.subtypes.values():
                sub._finalize(self)
            self._check_subtype_cycles()
            for stream in self.tlv_streams.values():
                for rec in stream.records.values():
                    rec._finalize(self)
            for msg in self.messages.values():
                msg._finalize(self)
            self._final = True
        return self

    def _check_subtype_cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(name: str) -> None:
            if state.get(name) == 1:
                raise SchemaError(f"subtype {name} contains itself")
            if state.get(name) == 2:
                return
            state[name] = 1
            for f in self.subtypes[name].fields:
                if f.kind == "subtype":
                    visit(f.type)
            state[name] = 2

        for name in self.subtypes:
            visit(name)

    # -- messages

    def decode_message(self, data: bytes) -> Message:
        if not self._final:
            self.finalize()
        n = len(data)
        if n < 2:
            raise DecodeError(f"message too short for its 2-byte type ({n} bytes)")
        if n > MAX_MESSAGE_SIZE:
            raise DecodeError(f"message of {n} bytes exceeds the maximum of {MAX_MESSAGE_SIZE}")
        typ = (data[0] << 8) | data[1]
        spec = self.by_number.get(typ)
        if spec is None:
            if typ & 1:
                raise UnknownOptionalMessage(typ, f"unknown odd message type {typ} (ignore it)")
            raise UnknownMandatoryMessage(typ, f"unknown even message type {typ}")
        values, off = spec.read(data, 2, n)
        extension = bytes(data[off:]) if off < n else b""
        return Message(spec, values, extension)

    def encode_message(self, name: str, **fields) -> bytes:
        if not self._final:
            self.finalize()
        spec = self.messages.get(name)
        if spec is None:
            raise EncodeError(f"unknown message {name!r}")
        extension = fields.pop("extension", b"") or b""
        if extension and spec.tlv_field is not None:
            raise EncodeError(f"{name}: pass its TLV records in {spec.tlv_field.name!r}, not as extension")
        return Message(spec, fields, _as_bytes(extension, "extension")).encode()

    def message(self, name: str, **fields) -> Message:
        """Build a Message from field values (checked by encoding and decoding it)."""
        return self.decode_message(self.encode_message(name, **fields))

    # -- TLV streams and subtypes on their own

    def decode_tlv_stream(self, stream: str, data: bytes, keep_unknown: bool = True) -> dict:
        if not self._final:
            self.finalize()
        spec = self.tlv_streams.get(stream)
        if spec is None:
            raise KeyError(f"unknown TLV stream {stream!r}")
        out, _ = spec.read(data, 0, len(data))
        if not keep_unknown:
            out = {k: v for k, v in out.items() if isinstance(k, str)}
        return out

    def encode_tlv_stream(self, stream: str, records: Mapping) -> bytes:
        if not self._final:
            self.finalize()
        spec = self.tlv_streams.get(stream)
        if spec is None:
            raise KeyError(f"unknown TLV stream {stream!r}")
        out: list[bytes] = []
        spec.write(records, out)
        return b"".join(out)

    def decode_subtype(self, name: str, data: bytes) -> dict:
        """Decode bytes holding exactly one ``name`` subtype value."""
        if not self._final:
            self.finalize()
        spec = self.subtypes[name]
        values, off = spec.read(data, 0, len(data))
        if off != len(data):
            raise DecodeError(f"{name}: {len(data) - off} trailing bytes")
        return values

    def encode_subtype(self, name: str, value: Mapping) -> bytes:
        if not self._final:
            self.finalize()
        out: list[bytes] = []
        self.subtypes[name].write(value, out)
        return b"".join(out)


def _field(name: str, type_: str, count: str) -> FieldSpec:
    count = count.strip()
    if not name or not type_:
        raise SchemaError("empty field name or type")
    if count == "":
        c: int | str | None = None
    elif count == "...":
        c = "..."
    elif count.isdigit():
        c = int(count)
    else:
        c = count
    return FieldSpec(name.strip(), type_.strip(), c)


# --------------------------------------------------------------------------- default schema

_default: Schema | None = None


def default_schema() -> Schema:
    """The BOLT 1/2/7 peer message schema (``schema/peer_wire.csv``), loaded once."""
    global _default
    if _default is None:
        _default = Schema.from_file(os.path.join(_SCHEMA_DIR, "peer_wire.csv")).finalize()
    return _default


def decode_message(data: bytes) -> Message:
    """Decode ``type || payload``. Raises DecodeError (UnknownOptionalMessage for odd unknown
    types, which the caller ignores; UnknownMandatoryMessage for even unknown types)."""
    return default_schema().decode_message(data)


def encode_message(name: str, **fields) -> bytes:
    """Encode message ``name``; every field except implicit lengths and TLV streams is required."""
    return default_schema().encode_message(name, **fields)


def message_names() -> list[str]:
    return list(default_schema().messages)


def message_type(name: str) -> int:
    return default_schema().messages[name].number
