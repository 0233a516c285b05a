"""BOLT 4 Sphinx payment onions: build, parse and peel.

Packet (1366 bytes): ``version (0) || public_key (33) || hop_payloads (1300) || hmac (32)``.
``hop_payloads`` holds, per hop, ``bigsize length || payload (TLV) || hmac`` followed by filler.

Keys: ``ss_i = SHA256(compressed(e_i * N_i))`` (libsecp256k1's default ECDH hash), and
``rho``/``mu``/``um``/``pad``/``ammag`` = HMAC-SHA256(key=type string, msg=ss). The ephemeral
private key evolves as ``e_{i+1} = e_i * SHA256(E_i || ss_i) mod n``; the builder multiplies
scalars (one base-point multiplication per hop) rather than re-blinding points.

Everything here is pure: the session key is a parameter. Peeling failures raise ``OnionError``
(a DecodeError) naming the BOLT 4 failure to return and carrying ``sha256_of_onion``.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey, PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from lncli.errors import DecodeError
from lncli.proto import bigsize
from lncli.proto.onion_failure import (
    FAILURE_CODES,
    encode_failure_message,
    failure_name,
    generate_key,
    hmac_sha256,
)
from lncli.proto.scid import ShortChannelId
from lncli.proto.tlv import encode_tu

try:  # Direct libsecp256k1 calls: avoid coincurve's per-object key derivations on hot paths.
    from coincurve._libsecp256k1 import ffi as _ffi
    from coincurve._libsecp256k1 import lib as _lib
    from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

    _CTX = _GLOBAL_CONTEXT.ctx
    _COMPRESSED = _lib.SECP256K1_EC_COMPRESSED
except ImportError:  # pragma: no cover - only with an unexpected coincurve layout
    _lib = None

__all__ = [
    "ONION_PACKET_SIZE",
    "HOP_PAYLOADS_SIZE",
    "OnionError",
    "HopPayloadError",
    "PaymentOnion",
    "PaymentData",
    "HopPayload",
    "PeeledOnion",
    "OnionSession",
    "build_onion",
    "onion_session",
    "peel_onion",
    "compute_shared_secrets",
    "prefix_payload",
]

HOP_PAYLOADS_SIZE = 1300
HMAC_SIZE = 32
ONION_PACKET_SIZE = 1 + 33 + HOP_PAYLOADS_SIZE + HMAC_SIZE  # 1366
_HMAC_OFFSET = 1 + 33 + HOP_PAYLOADS_SIZE
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ZERO_NONCE = bytes(16)
_ZERO32 = bytes(32)
_ZEROS_HOP = bytes(HOP_PAYLOADS_SIZE)
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_sha256 = hashlib.sha256


# --------------------------------------------------------------------------- secp256k1 helpers

if _lib is not None:

    def _parse_point(data: bytes):
        """Parsed public key, or None if not a valid compressed point."""
        if len(data) != 33 or data[0] not in (2, 3):
            return None
        pk = _ffi.new("secp256k1_pubkey *")
        if not _lib.secp256k1_ec_pubkey_parse(_CTX, pk, data, 33):
            return None
        return pk

    def _ecdh(point, secret: bytes) -> bytes:
        """SHA256 of the compressed ``secret * point`` (what secp256k1_ecdh computes by default),
        through pubkey_tweak_mul on a copy: the same constant-time multiplication
        (secp256k1_ecmult_const), about 9 us cheaper per call than secp256k1_ecdh here."""
        pk = _ffi.new("secp256k1_pubkey *")
        _ffi.memmove(pk, point, 64)
        if not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, pk, secret):
            raise ValueError("invalid private key for ECDH")
        return _sha256(_serialize(pk)).digest()

    def _serialize(pk) -> bytes:
        out = _ffi.new("unsigned char [33]")
        outlen = _ffi.new("size_t *", 33)
        _lib.secp256k1_ec_pubkey_serialize(_CTX, out, outlen, pk, _COMPRESSED)
        return bytes(_ffi.buffer(out, 33))

    def _tweak_mul(point, scalar: bytes) -> bytes:
        """``scalar * point``, compressed. Overwrites ``point`` (callers are done with it)."""
        if not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, scalar):
            raise ValueError("blinding factor out of range")
        return _serialize(point)

    def _pub_from_secret(secret: bytes) -> bytes:
        pk = _ffi.new("secp256k1_pubkey *")
        if not _lib.secp256k1_ec_pubkey_create(_CTX, pk, secret):
            raise ValueError("invalid private key")
        return _serialize(pk)

else:  # pragma: no cover

    def _parse_point(data: bytes):
        if len(data) != 33 or data[0] not in (2, 3):
            return None
        try:
            return PublicKey(bytes(data))
        except ValueError:
            return None

    def _ecdh(point, secret: bytes) -> bytes:
        return PrivateKey(secret).ecdh(point.format())

    def _tweak_mul(point, scalar: bytes) -> bytes:
        return point.multiply(scalar).format()

    def _pub_from_secret(secret: bytes) -> bytes:
        return PublicKey.from_valid_secret(secret).format()


def _chacha(key: bytes, data: bytes) -> bytes:
    """``data`` XOR the ChaCha20 stream of ``key`` (nonce 0, counter 0)."""
    return Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), None).encryptor().update(data)


def _xor(a: bytes, b: bytes) -> bytes:
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")


# --------------------------------------------------------------------------- errors


class OnionError(DecodeError):
    """An onion that cannot be processed, with the BOLT 4 failure the node should return.

    ``failure_code``/``failure_name`` name that failure (None only for a packet of the wrong
    size, which is a malformed message rather than an onion failure); ``fields`` holds its data
    fields by spec name (``sha256_of_onion``, or ``type``/``offset`` for invalid_onion_payload),
    ``failure_data`` those encoded and ``failure_message`` the complete ``failuremsg``. BADONION failures go back in
    ``update_fail_malformed_htlc`` with ``sha256_of_onion``; the others (invalid_onion_payload)
    in ``update_fail_htlc``, built with ``create_failure(err.shared_secret, ...)``.
    """

    shared_secret: bytes | None = None

    def __init__(
        self,
        message: str,
        failure_code: int | None = None,
        sha256_of_onion: bytes | None = None,
        fields: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.failure_code = failure_code
        self.failure_name = failure_name(failure_code) if failure_code is not None else None
        self.sha256_of_onion = sha256_of_onion
        self.fields = dict(fields or {})
        if failure_code is not None and sha256_of_onion is not None and "sha256_of_onion" not in self.fields:
            if failure_code & 0x8000:
                self.fields["sha256_of_onion"] = sha256_of_onion

    @property
    def failure_message(self) -> bytes | None:
        if self.failure_code is None:
            return None
        return encode_failure_message(self.failure_code, self.fields)

    @property
    def failure_data(self) -> bytes:
        msg = self.failure_message
        return msg[2:] if msg else b""


class HopPayloadError(DecodeError):
    """A hop payload TLV stream that is malformed or has an unknown even type.

    ``type`` is the offending TLV type (0 when the framing is broken before a type is read) and
    ``offset`` its byte offset within the payload.
    """

    def __init__(self, message: str, tlv_type: int = 0, offset: int = 0):
        super().__init__(message)
        self.type = tlv_type
        self.offset = offset


_INVALID_VERSION = FAILURE_CODES["invalid_onion_version"]
_INVALID_HMAC = FAILURE_CODES["invalid_onion_hmac"]
_INVALID_KEY = FAILURE_CODES["invalid_onion_key"]
_INVALID_PAYLOAD = FAILURE_CODES["invalid_onion_payload"]


# --------------------------------------------------------------------------- packet


@dataclass(frozen=True)
class PaymentOnion:
    version: int
    public_key: bytes
    hop_payloads: bytes
    hmac: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> PaymentOnion:
        data = bytes(data)
        if len(data) != ONION_PACKET_SIZE:
            raise OnionError(f"onion packet is {len(data)} bytes, expected {ONION_PACKET_SIZE}")
        if data[0] != 0:
            raise OnionError(
                f"unknown onion version {data[0]}", _INVALID_VERSION, _sha256(data).digest()
            )
        if _parse_point(data[1:34]) is None:
            raise OnionError(
                "onion public_key is not a valid point", _INVALID_KEY, _sha256(data).digest()
            )
        return cls(0, data[1:34], data[34:_HMAC_OFFSET], data[_HMAC_OFFSET:])

    def to_bytes(self) -> bytes:
        return bytes((self.version,)) + self.public_key + self.hop_payloads + self.hmac

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "public_key": self.public_key.hex(),
            "hop_payloads": self.hop_payloads.hex(),
            "hmac": self.hmac.hex(),
        }


# --------------------------------------------------------------------------- hop payload


@dataclass(frozen=True)
class PaymentData:
    payment_secret: bytes
    total_msat: int


_KNOWN_TYPES = (2, 4, 6, 8, 10, 12, 16, 18)


def _tu(value: bytes, max_bytes: int, typ: int, offset: int) -> int:
    if len(value) > max_bytes:
        raise HopPayloadError(f"TLV type {typ}: tu{8 * max_bytes} longer than {max_bytes} bytes", typ, offset)
    if value and value[0] == 0:
        raise HopPayloadError(f"TLV type {typ}: tu{8 * max_bytes} has a leading zero byte", typ, offset)
    return int.from_bytes(value, "big")


@dataclass(frozen=True)
class HopPayload:
    """The onion ``payload`` TLV stream for one hop (types 2..18; unknown odd types kept)."""

    amt_to_forward: int | None = None
    outgoing_cltv_value: int | None = None
    short_channel_id: int | None = None
    payment_data: PaymentData | None = None
    encrypted_recipient_data: bytes | None = None
    current_path_key: bytes | None = None
    payment_metadata: bytes | None = None
    total_amount_msat: int | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes) -> HopPayload:
        """Decode the TLV stream (without its length prefix). Raises HopPayloadError."""
        data = bytes(data)
        end = len(data)
        offset = 0
        last = -1
        fields: dict[str, Any] = {}
        unknown = []
        while offset < end:
            start = offset
            typ = data[offset]
            if typ < 0xFD:  # one-byte BigSize: the common case, read inline
                offset += 1
            else:
                try:
                    typ, offset = bigsize.read(data, offset)
                except DecodeError as e:
                    raise HopPayloadError(f"bad TLV type at offset {start}: {e}", 0, start) from None
            if offset < end and data[offset] < 0xFD:
                length = data[offset]
                offset += 1
            else:
                try:
                    length, offset = bigsize.read(data, offset)
                except DecodeError as e:
                    raise HopPayloadError(f"bad TLV length for type {typ}: {e}", typ, start) from None
            if length > end - offset:
                raise HopPayloadError(
                    f"TLV type {typ} has length {length} past the end of the payload", typ, start
                )
            if typ <= last:
                raise HopPayloadError(
                    f"TLV type {typ} after {last}: types must be strictly increasing", typ, start
                )
            last = typ
            value = data[offset : offset + length]
            offset += length
            if typ == 2:
                fields["amt_to_forward"] = _tu(value, 8, typ, start)
            elif typ == 4:
                fields["outgoing_cltv_value"] = _tu(value, 4, typ, start)
            elif typ == 6:
                if length != 8:
                    raise HopPayloadError(f"short_channel_id must be 8 bytes, got {length}", typ, start)
                fields["short_channel_id"] = _U64.unpack(value)[0]
            elif typ == 8:
                if length < 32:
                    raise HopPayloadError("payment_data shorter than its 32-byte payment_secret", typ, start)
                fields["payment_data"] = PaymentData(value[:32], _tu(value[32:], 8, typ, start))
            elif typ == 10:
                fields["encrypted_recipient_data"] = value
            elif typ == 12:
                if length != 33 or value[0] not in (2, 3):
                    raise HopPayloadError("current_path_key must be a 33-byte compressed point", typ, start)
                fields["current_path_key"] = value
            elif typ == 16:
                fields["payment_metadata"] = value
            elif typ == 18:
                fields["total_amount_msat"] = _tu(value, 8, typ, start)
            elif typ & 1:
                unknown.append((typ, value))
            else:
                raise HopPayloadError(f"unknown even TLV type {typ} in hop payload", typ, start)
        return cls(**fields, unknown=tuple(unknown))

    def to_bytes(self) -> bytes:
        """The TLV stream, without the BigSize length prefix."""
        recs: list[tuple[int, bytes]] = []
        if self.amt_to_forward is not None:
            recs.append((2, encode_tu(self.amt_to_forward, 8)))
        if self.outgoing_cltv_value is not None:
            recs.append((4, encode_tu(self.outgoing_cltv_value, 4)))
        if self.short_channel_id is not None:
            recs.append((6, _U64.pack(self.short_channel_id)))
        if self.payment_data is not None:
            secret = bytes(self.payment_data.payment_secret)
            if len(secret) != 32:
                raise ValueError("payment_secret must be 32 bytes")
            recs.append((8, secret + encode_tu(self.payment_data.total_msat, 8)))
        if self.encrypted_recipient_data is not None:
            recs.append((10, bytes(self.encrypted_recipient_data)))
        if self.current_path_key is not None:
            if len(self.current_path_key) != 33:
                raise ValueError("current_path_key must be 33 bytes")
            recs.append((12, bytes(self.current_path_key)))
        if self.payment_metadata is not None:
            recs.append((16, bytes(self.payment_metadata)))
        if self.total_amount_msat is not None:
            recs.append((18, encode_tu(self.total_amount_msat, 8)))
        for typ, value in self.unknown:
            if not typ & 1 or typ in _KNOWN_TYPES:
                raise ValueError(f"extra TLV type {typ} must be odd and not a known type")
            recs.append((typ, bytes(value)))
        recs.sort(key=lambda r: r[0])
        return b"".join(bigsize.encode(t) + bigsize.encode(len(v)) + v for t, v in recs)

    def to_onion_payload(self) -> bytes:
        """The TLV stream with its BigSize length prefix, as placed in ``hop_payloads``."""
        return prefix_payload(self.to_bytes())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.amt_to_forward is not None:
            out["amt_to_forward"] = self.amt_to_forward
        if self.outgoing_cltv_value is not None:
            out["outgoing_cltv_value"] = self.outgoing_cltv_value
        if self.short_channel_id is not None:
            out["short_channel_id"] = str(ShortChannelId.from_int(self.short_channel_id))
            out["short_channel_id_u64"] = str(self.short_channel_id)
        if self.payment_data is not None:
            out["payment_data"] = {
                "payment_secret": self.payment_data.payment_secret.hex(),
                "total_msat": self.payment_data.total_msat,
            }
        if self.encrypted_recipient_data is not None:
            out["encrypted_recipient_data"] = self.encrypted_recipient_data.hex()
        if self.current_path_key is not None:
            out["current_path_key"] = self.current_path_key.hex()
        if self.payment_metadata is not None:
            out["payment_metadata"] = self.payment_metadata.hex()
        if self.total_amount_msat is not None:
            out["total_amount_msat"] = self.total_amount_msat
        if self.unknown:
            out["unknown_tlvs"] = {str(t): v.hex() for t, v in self.unknown}
        return out


def prefix_payload(tlv_stream: bytes) -> bytes:
    """Prefix a hop's TLV stream with its BigSize length."""
    return bigsize.encode(len(tlv_stream)) + tlv_stream


# --------------------------------------------------------------------------- building


def _session_scalar(session_key: bytes) -> int:
    if len(session_key) != 32:
        raise ValueError("session_key must be 32 bytes")
    e = int.from_bytes(session_key, "big")
    if not 0 < e < _N:
        raise ValueError("session_key is not a valid secp256k1 private key")
    return e


@dataclass(frozen=True)
class OnionSession:
    """A session key with what its first hop needs (the ephemeral public key and the shared
    secret with that hop) and the filler pad, made ahead of the payment by :func:`onion_session`
    (two point multiplications off the payment's path). One session builds one onion: a session
    key used twice would let the hops link the two payments."""

    session_key: bytes
    first_node: bytes
    first_ephemeral: bytes
    first_secret: bytes
    pad: bytes


def onion_session(session_key: bytes, first_node: bytes) -> OnionSession:
    """The :class:`OnionSession` of ``session_key`` for onions whose first hop is ``first_node``.
    ValueError if the key is not a valid private key or the node id not a valid point."""
    e_bytes = _session_scalar(session_key).to_bytes(32, "big")
    point = _parse_point(bytes(first_node))
    if point is None:
        raise ValueError("hop 0 public key is not a valid compressed point")
    return OnionSession(
        bytes(session_key),
        bytes(first_node),
        _pub_from_secret(e_bytes),
        _ecdh(point, e_bytes),
        _chacha(generate_key(b"pad", bytes(session_key)), _ZEROS_HOP),
    )


def _hop_keys(session_key: bytes, pubkeys: list[bytes], need_last_ephemeral: bool = False,
              first: OnionSession | None = None):
    """(first ephemeral public key, [shared secret per hop]); hop 0's from ``first`` if it is
    the session of this key and that hop."""
    e = _session_scalar(session_key)
    secrets = []
    first_ephemeral = b""
    last = len(pubkeys) - 1
    for i, node in enumerate(pubkeys):
        made = i == 0 and first is not None  # hop 0's work was done ahead
        if made:
            ss = first.first_secret
        else:
            point = _parse_point(bytes(node))
            if point is None:
                raise ValueError(f"hop {i} public key is not a valid compressed point")
            e_bytes = e.to_bytes(32, "big")
            ss = _ecdh(point, e_bytes)
        secrets.append(ss)
        if i < last or i == 0 or need_last_ephemeral:
            ephemeral = first.first_ephemeral if made else _pub_from_secret(e_bytes)
            if i == 0:
                first_ephemeral = ephemeral
            if i < last:
                blind = int.from_bytes(_sha256(ephemeral + ss).digest(), "big")
                e = e * blind % _N
                if e == 0:  # pragma: no cover - probability 2^-256
                    raise ValueError("degenerate ephemeral key")
    return first_ephemeral, secrets


def compute_shared_secrets(session_key: bytes, hop_pubkeys: list[bytes]) -> list[bytes]:
    """The per-hop shared secrets an onion built with ``session_key`` along the route has."""
    if not hop_pubkeys:
        return []
    return _hop_keys(session_key, list(hop_pubkeys))[1]


def _check_prefixed(i: int, payload: bytes) -> None:
    try:
        length, off = bigsize.read(payload, 0)
    except DecodeError as e:
        raise ValueError(f"hop {i} payload: bad length prefix ({e})") from None
    if off + length != len(payload):
        raise ValueError(
            f"hop {i} payload: length prefix says {length} bytes but {len(payload) - off} follow"
        )


def build_onion(
    session_key: bytes | OnionSession, hops: list[tuple[bytes, bytes | HopPayload]], associated_data: bytes
) -> tuple[bytes, list[bytes]]:
    """Build a version-0 payment onion; return ``(packet, shared_secrets)``.

    ``session_key`` is 32 bytes, or an :class:`OnionSession` (the same onion, with its first
    hop's work done ahead; for another first hop only its key is used). ``hops`` is
    ``[(node_id (33 bytes), payload)]`` in route order; each payload is the
    BigSize-length-prefixed TLV stream (or a HopPayload). Payloads may differ in size; their
    total plus 32 bytes of HMAC per hop must fit in 1300 bytes. Raises ValueError on bad input.
    """
    session = None
    if isinstance(session_key, OnionSession):
        session, session_key = session_key, session_key.session_key
    n = len(hops)
    if n == 0:
        raise ValueError("an onion needs at least one hop")
    pubkeys = []
    payloads = []
    for i, (node, payload) in enumerate(hops):
        if isinstance(payload, HopPayload):
            payload = payload.to_onion_payload()
        else:
            payload = bytes(payload)
            _check_prefixed(i, payload)
        pubkeys.append(node)
        payloads.append(payload)
    shifts = [len(p) + HMAC_SIZE for p in payloads]
    if sum(shifts) > HOP_PAYLOADS_SIZE:
        raise ValueError(
            f"hop payloads need {sum(shifts)} bytes with their HMACs; only {HOP_PAYLOADS_SIZE} fit"
        )
    associated_data = bytes(associated_data)
    if session is not None and session.first_node != bytes(pubkeys[0]):
        session = None
    first_ephemeral, secrets = _hop_keys(session_key, pubkeys, first=session)
    rhos = [generate_key(b"rho", ss) for ss in secrets]

    # Filler: what hops 0..n-2 append (zeros, then encrypted) and the last hop sees at its tail.
    # The streams are kept for the wrapping loop below (the last hop's is made there).
    filler = b""
    streams = []
    for i in range(n - 1):
        filled = len(filler)
        shift = shifts[i]
        stream = _chacha(rhos[i], bytes(HOP_PAYLOADS_SIZE + shift))
        streams.append(stream)
        filler = _xor(filler + bytes(shift), stream[HOP_PAYLOADS_SIZE - filled :])

    buf = session.pad if session is not None else _chacha(generate_key(b"pad", bytes(session_key)), _ZEROS_HOP)
    next_hmac = _ZERO32
    for i in range(n - 1, -1, -1):
        shifted = payloads[i] + next_hmac + buf[: HOP_PAYLOADS_SIZE - shifts[i]]
        if i == n - 1:
            buf = _chacha(rhos[i], shifted)
        else:
            buf = _xor(shifted, streams[i][:HOP_PAYLOADS_SIZE])
        if i == n - 1 and filler:
            buf = buf[: HOP_PAYLOADS_SIZE - len(filler)] + filler
        mu = generate_key(b"mu", secrets[i])
        next_hmac = hmac_sha256(mu, buf + associated_data)
    return b"\x00" + first_ephemeral + buf + next_hmac, secrets


# --------------------------------------------------------------------------- peeling


@dataclass(frozen=True)
class PeeledOnion:
    """One hop's view of an onion.

    ``payload`` is the raw TLV stream (length prefix removed), ``hop_payload`` its decoding (None
    if peeled with ``parse_payload=False``), ``next_packet`` the onion to forward (None when
    ``is_final``: the next HMAC is all zero).
    """

    payload: bytes
    hop_payload: HopPayload | None
    shared_secret: bytes
    next_hmac: bytes
    next_packet: bytes | None
    is_final: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": self.payload.hex(),
            "hop_payload": self.hop_payload.to_json() if self.hop_payload is not None else None,
            "shared_secret": self.shared_secret.hex(),
            "is_final": self.is_final,
            "next_hmac": self.next_hmac.hex(),
            "next_packet": self.next_packet.hex() if self.next_packet is not None else None,
        }


def _payload_error(
    packet: bytes, ss: bytes, message: str, tlv_type: int, offset: int
) -> OnionError:
    err = OnionError(
        message,
        _INVALID_PAYLOAD,
        _sha256(packet).digest(),
        {"type": tlv_type, "offset": min(offset, 0xFFFF)},
    )
    err.shared_secret = ss
    return err


def peel_onion(
    packet: bytes, node_privkey: bytes, associated_data: bytes, parse_payload: bool = True
) -> PeeledOnion:
    """Process an incoming onion with our node key (``associated_data`` is the payment hash).

    Raises OnionError whose ``failure_code`` is invalid_onion_version, invalid_onion_key,
    invalid_onion_hmac or invalid_onion_payload (``type``/``offset`` counted from the start
    of the decrypted ``hop_payloads``, i.e. including the length prefix).
    """
    if len(node_privkey) != 32:  # the C call below reads exactly 32 bytes
        raise ValueError("node_privkey must be 32 bytes")
    node_privkey = bytes(node_privkey)
    associated_data = bytes(associated_data)
    packet = bytes(packet)
    if len(packet) != ONION_PACKET_SIZE:
        raise OnionError(f"onion packet is {len(packet)} bytes, expected {ONION_PACKET_SIZE}")
    if packet[0] != 0:
        raise OnionError(
            f"unknown onion version {packet[0]}", _INVALID_VERSION, _sha256(packet).digest()
        )
    ephemeral = packet[1:34]
    point = _parse_point(ephemeral)
    if point is None:
        raise OnionError("onion public_key is not a valid point", _INVALID_KEY, _sha256(packet).digest())
    ss = _ecdh(point, node_privkey)
    hop_payloads = packet[34:_HMAC_OFFSET]
    mu = generate_key(b"mu", ss)
    expected = hmac_sha256(mu, hop_payloads + associated_data)
    if not _hmac.compare_digest(expected, packet[_HMAC_OFFSET:]):
        raise OnionError("onion HMAC does not match", _INVALID_HMAC, _sha256(packet).digest())
    plain = _chacha(generate_key(b"rho", ss), hop_payloads + _ZEROS_HOP)
    try:
        length, start = bigsize.read(plain, 0)
    except DecodeError as e:
        raise _payload_error(packet, ss, f"bad hop payload length: {e}", 0, 0) from None
    if length < 2:
        raise _payload_error(packet, ss, f"hop payload length {length} is reserved", 0, 0)
    end = start + length
    if end + HMAC_SIZE > HOP_PAYLOADS_SIZE:
        raise _payload_error(packet, ss, f"hop payload length {length} overruns hop_payloads", 0, 0)
    payload = plain[start:end]
    next_hmac = plain[end : end + HMAC_SIZE]
    hop = None
    if parse_payload:
        try:
            hop = HopPayload.from_bytes(payload)
        except HopPayloadError as e:
            raise _payload_error(packet, ss, f"invalid hop payload: {e}", e.type, start + e.offset) from None
    is_final = next_hmac == _ZERO32
    next_packet = None
    if not is_final:
        blind = _sha256(ephemeral + ss).digest()
        next_packet = (
            b"\x00"
            + _tweak_mul(point, blind)
            + plain[end + HMAC_SIZE : end + HMAC_SIZE + HOP_PAYLOADS_SIZE]
            + next_hmac
        )
    return PeeledOnion(payload, hop, ss, next_hmac, next_packet, is_final)
