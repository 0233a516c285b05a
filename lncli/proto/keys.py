"""BOLT 3 "Key Derivation" and the obscured commitment number.

Per-commitment keys (BOLT 3, "Key Derivation"):

* ``localpubkey``, ``remotepubkey``, ``local_htlcpubkey``, ``remote_htlcpubkey``,
  ``local_delayedpubkey``, ``remote_delayedpubkey`` are all
  ``basepoint + SHA256(per_commitment_point || basepoint) * G``  (:func:`derive_pubkey`);
  the matching secret is ``basepoint_secret + SHA256(per_commitment_point || basepoint)``
  (:func:`derive_privkey`).
* ``revocationpubkey`` is
  ``revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
  + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)``
  (:func:`derive_revocation_pubkey`); its secret needs both the revocation basepoint secret
  and the per-commitment secret (:func:`derive_revocation_privkey`).

Obscured commitment number (BOLT 3, "Commitment Transaction"): the 48-bit commitment number is
XORed with the lower 48 bits of ``SHA256(payment_basepoint from open_channel ||
payment_basepoint from accept_channel)``; the upper 24 bits go into the input's
``nSequence`` under a 0x80 top byte, the lower 24 bits into ``nLockTime`` under a 0x20 top byte.

Points are 33-byte compressed SEC1 encodings, secrets 32-byte big-endian scalars. Bad input
(wrong length, not a curve point, scalar out of range) raises :class:`DecodeError`.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha256

from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

from lncli.errors import DecodeError

__all__ = [
    "COMMITMENT_NUMBER_MAX",
    "commitment_locktime_sequence",
    "commitment_number_from_tx",
    "derive_privkey",
    "derive_pubkey",
    "derive_revocation_privkey",
    "derive_revocation_pubkey",
    "obscure_factor",
    "obscured_commitment_number",
    "obscured_from_locktime_sequence",
    "obscured_to_locktime_sequence",
    "per_commitment_point",
]

# Order of the secp256k1 group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: Commitment numbers are 48-bit.
COMMITMENT_NUMBER_MAX = (1 << 48) - 1
_MASK24 = 0xFFFFFF
_LOCKTIME_TOP = 0x20 << 24
_SEQUENCE_TOP = 0x80 << 24

# libsecp256k1 through coincurve's cffi binding (no key objects: coincurve's PrivateKey makes two
# point multiplications before anything else).
_CTX = _GLOBAL_CONTEXT.ctx
_COMPRESSED = _lib.SECP256K1_EC_COMPRESSED


# --- input checking -------------------------------------------------------------------------


def _point(value: bytes, name: str):
    """A fresh (mutable) libsecp256k1 point of a 33-byte compressed encoding."""
    if not isinstance(value, (bytes, bytearray)) or len(value) != 33:
        raise DecodeError(f"{name} must be a 33-byte compressed point")
    if value[0] not in (2, 3):
        raise DecodeError(f"{name} is not a compressed point (first byte must be 02 or 03)")
    p = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_parse(_CTX, p, bytes(value), 33):
        raise DecodeError(f"{name} is not a valid secp256k1 point")
    return p


def _format(point) -> bytes:
    out = _ffi.new("unsigned char[33]")
    size = _ffi.new("size_t *", 33)
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, point, _COMPRESSED)
    return _ffi.buffer(out, 33)[:]


@lru_cache(maxsize=256)
def _pubkey_of(secret: bytes) -> bytes:
    """``secret * G`` (compressed) of a checked secret; the same secrets come back often (a
    channel's basepoint secrets; each per-commitment secret is checked by the channel and again
    by its monitor)."""
    p = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_create(_CTX, p, secret):  # pragma: no cover - checked by _scalar
        raise DecodeError("not a valid secp256k1 secret")
    return _format(p)


def _scalar(value: bytes, name: str) -> int:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise DecodeError(f"{name} must be a 32-byte secret")
    k = int.from_bytes(value, "big")
    if not 0 < k < SECP256K1_N:
        raise DecodeError(f"{name} is not a valid secp256k1 secret (zero or not below the group order)")
    return k


def _to_secret(k: int) -> bytes:
    if k == 0:  # probability ~2^-256; never with honest inputs
        raise DecodeError("derived secret is zero")
    return k.to_bytes(32, "big")


# --- key derivation -------------------------------------------------------------------------


def per_commitment_point(secret: bytes) -> bytes:
    """``per_commitment_point = per_commitment_secret * G`` (33 bytes, compressed)."""
    _scalar(secret, "per_commitment_secret")
    return _pubkey_of(bytes(secret))


def derive_pubkey(basepoint: bytes, per_commitment_point: bytes) -> bytes:
    """``basepoint + SHA256(per_commitment_point || basepoint) * G``.

    Gives localpubkey/remotepubkey, htlcpubkey and delayedpubkey from the matching basepoint.
    """
    base = _point(basepoint, "basepoint")
    _point(per_commitment_point, "per_commitment_point")
    tweak = sha256(bytes(per_commitment_point) + bytes(basepoint)).digest()
    if not _lib.secp256k1_ec_pubkey_tweak_add(_CTX, base, tweak):  # tweak >= n or infinity: negligible
        raise DecodeError("key derivation failed: tweak out of range")
    return _format(base)


def derive_privkey(basepoint_secret: bytes, per_commitment_point: bytes) -> bytes:
    """``basepoint_secret + SHA256(per_commitment_point || basepoint) mod n`` (32 bytes)."""
    k = _scalar(basepoint_secret, "basepoint_secret")
    _point(per_commitment_point, "per_commitment_point")
    basepoint = _pubkey_of(bytes(basepoint_secret))
    tweak = int.from_bytes(sha256(bytes(per_commitment_point) + basepoint).digest(), "big")
    return _to_secret((k + tweak) % SECP256K1_N)


def derive_revocation_pubkey(revocation_basepoint: bytes, per_commitment_point: bytes) -> bytes:
    """``revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
    + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)``."""
    rb = _point(revocation_basepoint, "revocation_basepoint")
    pcp = _point(per_commitment_point, "per_commitment_point")
    rb_b, pcp_b = bytes(revocation_basepoint), bytes(per_commitment_point)
    # negligible failures: a hash >= n, or the sum is the point at infinity
    if not (
        _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, rb, sha256(rb_b + pcp_b).digest())
        and _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, pcp, sha256(pcp_b + rb_b).digest())
    ):
        raise DecodeError("revocation key derivation failed")
    total = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_combine(_CTX, total, [rb, pcp], 2):
        raise DecodeError("revocation key derivation failed")
    return _format(total)


def derive_revocation_privkey(revocation_basepoint_secret: bytes, per_commitment_secret: bytes) -> bytes:
    """``revocation_basepoint_secret * SHA256(revocation_basepoint || per_commitment_point)
    + per_commitment_secret * SHA256(per_commitment_point || revocation_basepoint) mod n``."""
    rs = _scalar(revocation_basepoint_secret, "revocation_basepoint_secret")
    ps = _scalar(per_commitment_secret, "per_commitment_secret")
    rb_b = _pubkey_of(bytes(revocation_basepoint_secret))
    pcp_b = _pubkey_of(bytes(per_commitment_secret))
    h1 = int.from_bytes(sha256(rb_b + pcp_b).digest(), "big")
    h2 = int.from_bytes(sha256(pcp_b + rb_b).digest(), "big")
    return _to_secret((rs * h1 + ps * h2) % SECP256K1_N)


# --- obscured commitment number -------------------------------------------------------------


def obscure_factor(opener_payment_basepoint: bytes, accepter_payment_basepoint: bytes) -> int:
    """Lower 48 bits of ``SHA256(open_channel payment_basepoint || accept_channel payment_basepoint)``.

    The order is by role (opener first), not by which side's commitment is being built.
    """
    for value, name in (
        (opener_payment_basepoint, "opener payment_basepoint"),
        (accepter_payment_basepoint, "accepter payment_basepoint"),
    ):
        if not isinstance(value, (bytes, bytearray)) or len(value) != 33:
            raise DecodeError(f"{name} must be a 33-byte compressed point")
    digest = sha256(bytes(opener_payment_basepoint) + bytes(accepter_payment_basepoint)).digest()
    return int.from_bytes(digest[26:], "big")


def _check_commitment_number(commitment_number: int) -> None:
    if not isinstance(commitment_number, int) or not 0 <= commitment_number <= COMMITMENT_NUMBER_MAX:
        raise DecodeError(f"commitment number {commitment_number!r} is not a 48-bit unsigned integer")


def obscured_commitment_number(
    commitment_number: int, opener_payment_basepoint: bytes, accepter_payment_basepoint: bytes
) -> int:
    """``commitment_number XOR obscure_factor(opener, accepter)`` (48 bits)."""
    _check_commitment_number(commitment_number)
    return commitment_number ^ obscure_factor(opener_payment_basepoint, accepter_payment_basepoint)


def obscured_to_locktime_sequence(obscured: int) -> tuple[int, int]:
    """Split a 48-bit obscured commitment number into the commitment tx's ``(locktime, sequence)``.

    locktime: upper 8 bits 0x20, lower 24 bits = lower 24 bits of the obscured number.
    sequence: upper 8 bits 0x80, lower 24 bits = upper 24 bits of the obscured number.
    """
    _check_commitment_number(obscured)
    return _LOCKTIME_TOP | (obscured & _MASK24), _SEQUENCE_TOP | (obscured >> 24)


def commitment_locktime_sequence(commitment_number: int, factor: int) -> tuple[int, int]:
    """``(locktime, sequence)`` of the commitment tx for ``commitment_number`` under ``factor``."""
    _check_commitment_number(commitment_number)
    _check_commitment_number(factor)
    return obscured_to_locktime_sequence(commitment_number ^ factor)


def obscured_from_locktime_sequence(locktime: int, sequence: int) -> int:
    """Rebuild the obscured commitment number from a commitment tx's locktime and sequence.

    Raises :class:`DecodeError` if the top bytes are not 0x20 (locktime) / 0x80 (sequence),
    i.e. the transaction is not a BOLT 3 commitment transaction.
    """
    for value, name in ((locktime, "locktime"), (sequence, "sequence")):
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise DecodeError(f"{name} {value!r} is not a 32-bit unsigned integer")
    if locktime >> 24 != 0x20:
        raise DecodeError(f"locktime 0x{locktime:08x} does not carry a commitment number (top byte must be 0x20)")
    if sequence >> 24 != 0x80:
        raise DecodeError(f"sequence 0x{sequence:08x} does not carry a commitment number (top byte must be 0x80)")
    return ((sequence & _MASK24) << 24) | (locktime & _MASK24)


def commitment_number_from_tx(locktime: int, sequence: int, factor: int) -> int:
    """The (unobscured) commitment number of a commitment tx, given the channel's obscuring factor."""
    _check_commitment_number(factor)
    return obscured_from_locktime_sequence(locktime, sequence) ^ factor
