"""ECDSA over secp256k1 for Bitcoin: signing, verification, DER (BIP 66) and compact forms.

Signatures are made by libsecp256k1 (via coincurve): deterministic nonces (RFC 6979) and
always low-S. All functions take a 32-byte message digest (a sighash); none hashes again.

Three signature forms are in use:

- DER (``30 len 02 lenR R 02 lenS S``), 8..72 bytes, in Bitcoin scripts and witnesses;
- DER + one sighash-type byte, the item that goes on the witness stack;
- compact 64 bytes ``r || s`` (big-endian), in Lightning wire messages.
"""

from __future__ import annotations

from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

from lncli.errors import DecodeError

__all__ = [
    "CURVE_ORDER",
    "sign",
    "sign_compact",
    "verify",
    "verify_compact",
    "pubkey_from_privkey",
    "is_valid_pubkey",
    "encode_der_signature",
    "decode_der_signature",
    "is_strict_der",
    "is_low_s",
    "normalize_s",
    "der_to_compact",
    "compact_to_der",
    "witness_signature",
    "split_witness_signature",
]

#: n, the order of the secp256k1 group
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = CURVE_ORDER // 2

# libsecp256k1 straight through coincurve's cffi binding: no key objects (coincurve's PrivateKey
# computes its public keys, two point multiplications, before it can sign), no DER round trips.
_CTX = _GLOBAL_CONTEXT.ctx
_NULL = _ffi.NULL
_COMPRESSED = _lib.SECP256K1_EC_COMPRESSED
_UNCOMPRESSED = _lib.SECP256K1_EC_UNCOMPRESSED
_PARSED: dict[bytes, object] = {}  # SEC encoding -> parsed point (peers' keys are verified against often)


def _check_digest(msg32: bytes) -> None:
    if len(msg32) != 32:
        raise ValueError(f"ECDSA signs a 32-byte digest, got {len(msg32)} bytes")


# ---------------------------------------------------------------------------------------------
# Keys


def _secret(privkey: bytes) -> bytes:
    if not isinstance(privkey, (bytes, bytearray)) or len(privkey) != 32:
        raise ValueError("a private key is 32 bytes")
    return bytes(privkey)


def pubkey_from_privkey(privkey: bytes, compressed: bool = True) -> bytes:
    """The SEC public key (33 bytes compressed, or 65) of a 32-byte private key."""
    point = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_create(_CTX, point, _secret(privkey)):
        raise ValueError("not a valid secp256k1 private key (zero or not below the group order)")
    return _serialize(point, compressed)


def _serialize(point, compressed: bool = True) -> bytes:
    n = 33 if compressed else 65
    out = _ffi.new("unsigned char[65]")
    size = _ffi.new("size_t *", n)
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, point, _COMPRESSED if compressed else _UNCOMPRESSED)
    return _ffi.buffer(out, n)[:]


def _parsed_pubkey(pubkey: bytes):
    """The libsecp256k1 point of a SEC-encoded public key (cached; read-only), or None."""
    if type(pubkey) is not bytes:
        if not isinstance(pubkey, (bytes, bytearray)):
            return None
        pubkey = bytes(pubkey)
    p = _PARSED.get(pubkey)
    if p is None:
        if len(pubkey) not in (33, 65):
            return None
        p = _ffi.new("secp256k1_pubkey *")
        if not _lib.secp256k1_ec_pubkey_parse(_CTX, p, pubkey, len(pubkey)):
            return None
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        _PARSED[pubkey] = p
    return p


def is_valid_pubkey(pubkey: bytes) -> bool:
    """True if ``pubkey`` is a valid SEC-encoded point (33 or 65 bytes)."""
    return _parsed_pubkey(pubkey) is not None


# ---------------------------------------------------------------------------------------------
# DER


def _der_int(x: int) -> bytes:
    b = x.to_bytes((x.bit_length() + 8) // 8, "big")  # one extra bit keeps it non-negative
    return b"\x02" + bytes((len(b),)) + b


def encode_der_signature(r: int, s: int) -> bytes:
    """The strict DER encoding of ``(r, s)``."""
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        raise ValueError("signature r and s must be in [1, n-1]")
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes((len(body),)) + body


def _der_structure_error(sig: bytes) -> str | None:
    """Why ``sig`` (DER, no sighash byte) breaks BIP 66, or None if it conforms."""
    n = len(sig)
    if n < 8:
        return f"DER signature too short ({n} bytes)"
    if n > 72:
        return f"DER signature too long ({n} bytes)"
    if sig[0] != 0x30:
        return "DER signature does not start with 0x30"
    if sig[1] != n - 2:
        return f"DER signature length byte {sig[1]} does not match {n - 2} bytes of content"
    if sig[2] != 0x02:
        return "DER signature R is not an integer"
    len_r = sig[3]
    if len_r == 0:
        return "DER signature R has zero length"
    if 5 + len_r >= n:
        return "DER signature R length runs past the end"
    len_s = sig[5 + len_r]
    if len_r + len_s + 6 != n:
        return "DER signature lengths of R and S do not add up"
    if sig[4 + len_r] != 0x02:
        return "DER signature S is not an integer"
    if len_s == 0:
        return "DER signature S has zero length"
    if sig[4] & 0x80:
        return "DER signature R is negative"
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return "DER signature R has a superfluous leading zero"
    i = 6 + len_r
    if sig[i] & 0x80:
        return "DER signature S is negative"
    if len_s > 1 and sig[i] == 0 and not sig[i + 1] & 0x80:
        return "DER signature S has a superfluous leading zero"
    return None


def is_strict_der(sig: bytes) -> bool:
    """BIP 66 strict DER check of a signature *without* its sighash byte."""
    return _der_structure_error(sig) is None


def decode_der_signature(sig: bytes) -> tuple[int, int]:
    """Decode a strict (BIP 66) DER signature without sighash byte into ``(r, s)``.

    Raises DecodeError on any encoding error, or if r or s is 0 or not below the curve order.
    High-S values are returned as they are; check them with ``is_low_s``.
    """
    err = _der_structure_error(sig)
    if err is not None:
        raise DecodeError(err)
    len_r = sig[3]
    r = int.from_bytes(sig[4 : 4 + len_r], "big")
    s = int.from_bytes(sig[6 + len_r :], "big")
    if not 0 < r < CURVE_ORDER:
        raise DecodeError("DER signature R is out of range")
    if not 0 < s < CURVE_ORDER:
        raise DecodeError("DER signature S is out of range")
    return r, s


def is_low_s(s: int) -> bool:
    """BIP 146 LOW_S: s <= n/2."""
    return 0 < s <= _HALF_ORDER


def normalize_s(s: int) -> int:
    """The low-S twin of ``s`` (n - s when s > n/2)."""
    return CURVE_ORDER - s if s > _HALF_ORDER else s


def der_to_compact(sig: bytes) -> bytes:
    """DER (no sighash byte) to the 64-byte ``r || s`` form. Raises DecodeError."""
    r, s = decode_der_signature(sig)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def compact_to_der(sig64: bytes) -> bytes:
    """64-byte ``r || s`` to DER. Raises DecodeError if malformed or r/s out of range."""
    if len(sig64) != 64:
        raise DecodeError(f"compact signature must be 64 bytes, got {len(sig64)}")
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        raise DecodeError("compact signature r or s out of range")
    return encode_der_signature(r, s)


# ---------------------------------------------------------------------------------------------
# Sign / verify


def _sign(privkey: bytes, msg32: bytes):
    _check_digest(msg32)
    sig = _ffi.new("secp256k1_ecdsa_signature *")
    # default nonce function: RFC 6979; libsecp256k1 always produces low-S
    if not _lib.secp256k1_ecdsa_sign(_CTX, sig, bytes(msg32), _secret(privkey), _NULL, _NULL):
        raise ValueError("not a valid secp256k1 private key (zero or not below the group order)")
    return sig


def sign(privkey: bytes, msg32: bytes) -> bytes:
    """Sign a 32-byte digest: DER, low-S, RFC 6979 deterministic."""
    sig = _sign(privkey, msg32)
    out = _ffi.new("unsigned char[72]")
    size = _ffi.new("size_t *", 72)
    _lib.secp256k1_ecdsa_signature_serialize_der(_CTX, out, size, sig)
    return _ffi.buffer(out, size[0])[:]


def sign_compact(privkey: bytes, msg32: bytes) -> bytes:
    """Sign a 32-byte digest; the 64-byte ``r || s`` form (Lightning wire format)."""
    sig = _sign(privkey, msg32)
    out = _ffi.new("unsigned char[64]")
    _lib.secp256k1_ecdsa_signature_serialize_compact(_CTX, out, sig)
    return _ffi.buffer(out, 64)[:]


def _verify64(pubkey: bytes, msg32: bytes, sig64: bytes) -> bool:
    """libsecp256k1 verification of ``r || s``: False for r or s out of range, high S, a bad
    pubkey or a wrong signature."""
    point = _parsed_pubkey(pubkey)
    if point is None:
        return False
    sig = _ffi.new("secp256k1_ecdsa_signature *")
    if not _lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, sig64):
        return False
    return bool(_lib.secp256k1_ecdsa_verify(_CTX, sig, bytes(msg32), point))


def verify(pubkey: bytes, msg32: bytes, der_sig: bytes, *, require_low_s: bool = True) -> bool:
    """Verify a DER signature (no sighash byte) on a 32-byte digest.

    Returns False for anything invalid: a bad pubkey, non-strict DER, r/s out of range, a
    high-S value (unless ``require_low_s=False``, then it is normalized first), or a signature
    that does not match. Use ``decode_der_signature`` to learn why an encoding is rejected.
    """
    if len(msg32) != 32:
        return False
    try:
        r, s = decode_der_signature(der_sig)
    except DecodeError:
        return False
    if s > _HALF_ORDER:
        if require_low_s:
            return False
        s = CURVE_ORDER - s
    return _verify64(pubkey, msg32, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def verify_compact(pubkey: bytes, msg32: bytes, sig64: bytes) -> bool:
    """Verify a 64-byte ``r || s`` signature (low-S required, as BOLT 2 peers produce)."""
    if len(msg32) != 32 or not isinstance(sig64, (bytes, bytearray)) or len(sig64) != 64:
        return False
    return _verify64(pubkey, msg32, bytes(sig64))


# ---------------------------------------------------------------------------------------------
# Witness / scriptSig items


def witness_signature(der_sig: bytes, sighash_type: int = 0x01) -> bytes:
    """The stack item: DER signature followed by the one-byte sighash type."""
    if not 0 <= sighash_type <= 0xFF:
        raise ValueError(f"sighash type must fit one byte, got {sighash_type}")
    return der_sig + bytes((sighash_type,))


def split_witness_signature(item: bytes) -> tuple[bytes, int]:
    """Split a stack item into ``(der_signature, sighash_type)``, checking strict DER.
    Raises DecodeError."""
    if len(item) < 9:
        raise DecodeError(f"signature with sighash byte too short ({len(item)} bytes)")
    der, sighash_type = item[:-1], item[-1]
    err = _der_structure_error(der)
    if err is not None:
        raise DecodeError(err)
    return der, sighash_type
