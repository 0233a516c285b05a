"""BOLT 4 failure messages and the return (error) onion.

The erring node builds ``hmac || u16 failure_len || failuremsg || u16 pad_len || pad``, where the
HMAC (key ``um``) covers everything after it, and obfuscates it with the ``ammag`` ChaCha20 stream.
Every node on the way back XORs its own ``ammag`` stream over the packet. The origin peels the
streams off hop by hop and the first hop whose ``um`` HMAC matches is the one that failed.

``failuremsg`` is ``u16 failure_code || data fields || optional TLV stream``; the top bits of the
code are flags (BADONION, PERM, NODE, UPDATE).

Attribution data (``option_attribution_data``) is not handled here.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from lncli.errors import DecodeError
from lncli.proto import bigsize, tlv

__all__ = [
    "BADONION",
    "PERM",
    "NODE",
    "UPDATE",
    "FAILURE_CODES",
    "FAILURE_NAMES",
    "FailureDecodeError",
    "DecodedFailure",
    "code_for",
    "failure_name",
    "failure_flags",
    "encode_failure_message",
    "decode_failure_message",
    "create_failure",
    "wrap_failure",
    "decode_failure",
    "generate_key",
    "hmac_sha256",
]

BADONION = 0x8000
PERM = 0x4000
NODE = 0x2000
UPDATE = 0x1000

_FLAG_NAMES = ((BADONION, "BADONION"), (PERM, "PERM"), (NODE, "NODE"), (UPDATE, "UPDATE"))

# Field kinds used in the failure schemas below.
_U16, _U32, _U64, _SHA256, _UPDATE, _BIGSIZE = "u16", "u32", "u64", "sha256", "channel_update", "bigsize"

# name -> (code, ((field_name, kind), ...)). A ``channel_update`` field is ``u16 len || len bytes``.
_SCHEMAS: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "temporary_node_failure": (NODE | 2, ()),
    "permanent_node_failure": (PERM | NODE | 2, ()),
    "required_node_feature_missing": (PERM | NODE | 3, ()),
    "invalid_onion_version": (BADONION | PERM | 4, (("sha256_of_onion", _SHA256),)),
    "invalid_onion_hmac": (BADONION | PERM | 5, (("sha256_of_onion", _SHA256),)),
    "invalid_onion_key": (BADONION | PERM | 6, (("sha256_of_onion", _SHA256),)),
    "temporary_channel_failure": (UPDATE | 7, (("channel_update", _UPDATE),)),
    "permanent_channel_failure": (PERM | 8, ()),
    "required_channel_feature_missing": (PERM | 9, ()),
    "unknown_next_peer": (PERM | 10, ()),
    "amount_below_minimum": (UPDATE | 11, (("htlc_msat", _U64), ("channel_update", _UPDATE))),
    "fee_insufficient": (UPDATE | 12, (("htlc_msat", _U64), ("channel_update", _UPDATE))),
    "incorrect_cltv_expiry": (UPDATE | 13, (("cltv_expiry", _U32), ("channel_update", _UPDATE))),
    "expiry_too_soon": (UPDATE | 14, (("channel_update", _UPDATE),)),
    "incorrect_or_unknown_payment_details": (PERM | 15, (("htlc_msat", _U64), ("height", _U32))),
    "final_incorrect_cltv_expiry": (18, (("cltv_expiry", _U32),)),
    "final_incorrect_htlc_amount": (19, (("incoming_htlc_amt", _U64),)),
    "channel_disabled": (
        UPDATE | 20,
        (("disabled_flags", _U16), ("channel_update", _UPDATE)),
    ),
    "expiry_too_far": (21, ()),
    "invalid_onion_payload": (PERM | 22, (("type", _BIGSIZE), ("offset", _U16))),
    "mpp_timeout": (23, ()),
    "invalid_onion_blinding": (BADONION | PERM | 24, (("sha256_of_onion", _SHA256),)),
}

FAILURE_CODES: dict[str, int] = {name: code for name, (code, _) in _SCHEMAS.items()}
FAILURE_NAMES: dict[int, str] = {code: name for name, code in FAILURE_CODES.items()}
_FIELDS_BY_CODE = dict(_SCHEMAS.values())

_FIXED = {_U16: 2, _U32: 4, _U64: 8, _SHA256: 32}
_STRUCTS = {_U16: struct.Struct(">H"), _U32: struct.Struct(">I"), _U64: struct.Struct(">Q")}
_HEADER = struct.Struct(">H")
_ZERO_NONCE = bytes(16)


class FailureDecodeError(DecodeError):
    """A return packet or failure message that cannot be decoded (or matches no hop)."""

    def __init__(self, message: str, hop_index: int | None = None):
        super().__init__(message)
        self.hop_index = hop_index


def code_for(name_or_code: str | int) -> int:
    """The numeric ``failure_code`` for a spec name (or a number, passed through)."""
    if isinstance(name_or_code, int):
        if not 0 <= name_or_code <= 0xFFFF:
            raise ValueError(f"failure_code out of range: {name_or_code}")
        return name_or_code
    try:
        return FAILURE_CODES[name_or_code]
    except KeyError:
        raise ValueError(f"unknown failure name {name_or_code!r}") from None


def failure_name(code: int) -> str:
    """The spec name for a code, or ``unknown_0xNNNN``."""
    return FAILURE_NAMES.get(code) or f"unknown_{code:#06x}"


def failure_flags(code: int) -> list[str]:
    return [name for bit, name in _FLAG_NAMES if code & bit]


_IPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x36 for b in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x5C for b in range(256)))


def _pad_states(key: bytes):
    k = key.ljust(64, b"\0")
    return hashlib.sha256(k.translate(_IPAD)), hashlib.sha256(k.translate(_OPAD))


# HMAC states for the fixed key-type strings, so each key costs two hash-state copies.
_KEY_STATES = {t: _pad_states(t) for t in (b"rho", b"mu", b"um", b"pad", b"ammag")}


def generate_key(key_type: bytes, secret: bytes) -> bytes:
    """BOLT 4 key generation: HMAC-SHA256 keyed with the key-type string over the secret."""
    states = _KEY_STATES.get(key_type)
    if states is None:
        return _hmac.digest(key_type, secret, "sha256")
    inner = states[0].copy()
    inner.update(secret)
    outer = states[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (built on hashlib: cheaper per call than OpenSSL's HMAC for short keys)."""
    if len(key) > 64:
        return _hmac.digest(key, msg, "sha256")
    k = key.ljust(64, b"\0")
    inner = hashlib.sha256(k.translate(_IPAD) + msg).digest()
    return hashlib.sha256(k.translate(_OPAD) + inner).digest()


def _xor_stream(key: bytes, data: bytes) -> bytes:
    """``data`` XOR the ChaCha20 stream for ``key`` (zero nonce, counter 0)."""
    return Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), None).encryptor().update(data)


# --------------------------------------------------------------------------- failure messages


def encode_failure_message(
    code: str | int, fields: dict[str, Any] | None = None, tlvs: dict[int, bytes] | None = None
) -> bytes:
    """Build ``failuremsg`` from a code and its data fields (by spec name), plus optional TLVs.

    Unknown codes take no fields. Missing ``channel_update`` defaults to empty (len 0).
    """
    code = code_for(code)
    fields = fields or {}
    parts = [_HEADER.pack(code)]
    for fname, kind in _FIELDS_BY_CODE.get(code, ()):
        if kind == _UPDATE:
            value = bytes(fields.get(fname, b""))
            parts.append(_HEADER.pack(len(value)))
            parts.append(value)
            continue
        value = fields[fname]
        if kind == _SHA256:
            if len(value) != 32:
                raise ValueError(f"{fname} must be 32 bytes")
            parts.append(bytes(value))
        elif kind == _BIGSIZE:
            parts.append(bigsize.encode(value))
        else:
            parts.append(_STRUCTS[kind].pack(value))
    if tlvs:
        parts.append(tlv.encode_stream(tlvs))
    return b"".join(parts)


def decode_failure_message(msg: bytes) -> tuple[int, dict[str, Any], dict[int, bytes]]:
    """Split ``failuremsg`` into (code, {field: value}, {tlv type: value}).

    Unknown codes keep their body as ``{"data": bytes}`` (it cannot be told apart from a TLV
    stream). Raises FailureDecodeError if the message is shorter than its fields or the trailing
    TLV stream is malformed.
    """
    if len(msg) < 2:
        raise FailureDecodeError("failure message is shorter than its 2-byte failure_code")
    (code,) = _HEADER.unpack_from(msg, 0)
    schema = _FIELDS_BY_CODE.get(code)
    if schema is None:
        return code, ({"data": bytes(msg[2:])} if len(msg) > 2 else {}), {}
    offset = 2
    out: dict[str, Any] = {}
    name = failure_name(code)
    for fname, kind in schema:
        if kind == _BIGSIZE:
            try:
                out[fname], offset = bigsize.read(msg, offset)
            except DecodeError as e:
                raise FailureDecodeError(f"{name}: bad {fname}: {e}") from None
            continue
        if kind == _UPDATE:
            if offset + 2 > len(msg):
                raise FailureDecodeError(f"{name}: truncated before {fname} length")
            (ln,) = _HEADER.unpack_from(msg, offset)
            offset += 2
            if offset + ln > len(msg):
                raise FailureDecodeError(f"{name}: {fname} length {ln} runs past the message end")
            out[fname] = bytes(msg[offset : offset + ln])
            offset += ln
            continue
        size = _FIXED[kind]
        if offset + size > len(msg):
            raise FailureDecodeError(f"{name}: truncated in field {fname}")
        if kind == _SHA256:
            out[fname] = bytes(msg[offset : offset + 32])
        else:
            (out[fname],) = _STRUCTS[kind].unpack_from(msg, offset)
        offset += size
    try:
        tlvs = tlv.decode_stream(msg, None, offset)
    except DecodeError as e:
        raise FailureDecodeError(f"{name}: bad TLV extension: {e}") from None
    return code, out, tlvs


# --------------------------------------------------------------------------- return packets


def create_failure(
    shared_secret: bytes, failure_code: str | int | bytes, failure_data: bytes = b"", pad_to: int = 256
) -> bytes:
    """The erring node's obfuscated return packet.

    ``failure_code`` is a name or a number (``failure_data`` then follows it as the raw data
    fields and any TLV stream), or a complete ``failuremsg`` as bytes. ``pad`` is zeros so that
    ``failure_len + pad_len`` reaches ``pad_to`` (256 per the spec's SHOULD; the spec's current
    test vector uses 1024).
    """
    if isinstance(failure_code, (bytes, bytearray)):
        msg = bytes(failure_code) + failure_data
    else:
        msg = _HEADER.pack(code_for(failure_code)) + failure_data
    if len(msg) > 0xFFFF:
        raise ValueError("failure message longer than 65535 bytes")
    pad_len = max(0, pad_to - len(msg))
    body = _HEADER.pack(len(msg)) + msg + _HEADER.pack(pad_len) + bytes(pad_len)
    mac = hmac_sha256(generate_key(b"um", shared_secret), body)
    return _xor_stream(generate_key(b"ammag", shared_secret), mac + body)


def wrap_failure(shared_secret: bytes, packet: bytes) -> bytes:
    """An intermediate node's step on the way back: XOR its ``ammag`` stream over the packet."""
    return _xor_stream(generate_key(b"ammag", shared_secret), bytes(packet))


def _hex_or_value(v: Any) -> Any:
    return v.hex() if isinstance(v, (bytes, bytearray)) else v


@dataclass(frozen=True)
class DecodedFailure:
    hop_index: int
    code: int
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)
    failure_message: bytes = b""

    @property
    def flags(self) -> list[str]:
        return failure_flags(self.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "hop_index": self.hop_index,
            "failure_code": self.code,
            "failure_code_hex": f"{self.code:#06x}",
            "name": self.name,
            "flags": self.flags,
            **{k: _hex_or_value(v) for k, v in self.fields.items()},
            "tlvs": {str(t): v.hex() for t, v in self.tlvs.items()},
            "failure_message": self.failure_message.hex(),
        }


def decode_failure(packet: bytes, shared_secrets: list[bytes]) -> DecodedFailure:
    """At the origin: peel each hop's stream in route order and find the hop whose HMAC matches.

    ``shared_secrets`` are the route's per-hop shared secrets (first hop first). Raises
    FailureDecodeError when the packet is too short, no hop's HMAC matches, or the matching
    hop's failure message is malformed (the error then carries ``hop_index``). Decryption stops
    at the matching hop (the spec's SHOULD of 27 dummy rounds against timing is not done).
    """
    packet = bytes(packet)
    if len(packet) < 32 + 4:
        raise FailureDecodeError(f"return packet is {len(packet)} bytes, shorter than the 36-byte minimum")
    for index, ss in enumerate(shared_secrets):
        packet = _xor_stream(generate_key(b"ammag", ss), packet)
        mac = hmac_sha256(generate_key(b"um", ss), packet[32:])
        if not _hmac.compare_digest(mac, packet[:32]):
            continue
        (flen,) = _HEADER.unpack_from(packet, 32)
        if 34 + flen + 2 > len(packet):
            raise FailureDecodeError(f"hop {index}: failure_len {flen} runs past the packet end", index)
        msg = packet[34 : 34 + flen]
        (pad_len,) = _HEADER.unpack_from(packet, 34 + flen)
        if 36 + flen + pad_len > len(packet):
            raise FailureDecodeError(f"hop {index}: pad_len {pad_len} runs past the packet end", index)
        try:
            code, fields, tlvs = decode_failure_message(msg)
        except FailureDecodeError as e:
            raise FailureDecodeError(f"hop {index}: {e}", index) from None
        return DecodedFailure(index, code, failure_name(code), fields, tlvs, msg)
    raise FailureDecodeError(
        f"no hop's HMAC matches the return packet (tried {len(shared_secrets)} hops)"
    )

