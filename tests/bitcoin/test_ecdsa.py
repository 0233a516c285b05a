"""ECDSA: signing, verification, strict DER, low-S, compact form."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import (
    CURVE_ORDER,
    compact_to_der,
    decode_der_signature,
    der_to_compact,
    encode_der_signature,
    is_low_s,
    is_strict_der,
    is_valid_pubkey,
    normalize_s,
    pubkey_from_privkey,
    sign,
    sign_compact,
    split_witness_signature,
    verify,
    verify_compact,
    witness_signature,
)
from lncli.errors import DecodeError

PRIV = bytes.fromhex("30ff4956bbdd3222d44cc5e8a1261dab1e07957bdac5ae88fe3261ef321f3749")
PUB = bytes.fromhex("023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb")
MSG = hashlib.sha256(b"lncli").digest()

# BIP 143 native P2WPKH example (bitcoin/bips bip-0143.mediawiki)
BIP143_PRIV = bytes.fromhex("619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9")
BIP143_PUB = bytes.fromhex("025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357")
BIP143_SIGHASH = bytes.fromhex("c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670")
BIP143_SIG = bytes.fromhex(
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c45183315"
    "61406f90300e8f3358f51928d43c212a8caed02de67eebee"
)


def test_keys() -> None:
    assert pubkey_from_privkey(PRIV) == PUB
    assert pubkey_from_privkey(BIP143_PRIV) == BIP143_PUB
    assert len(pubkey_from_privkey(PRIV, compressed=False)) == 65
    assert is_valid_pubkey(PUB) and is_valid_pubkey(pubkey_from_privkey(PRIV, False))
    assert not is_valid_pubkey(b"\x02" + b"\x00" * 32)
    assert not is_valid_pubkey(PUB[:-1])
    assert not is_valid_pubkey(b"\x05" + PUB[1:])


def test_sign_verify_deterministic_low_s() -> None:
    sig = sign(BIP143_PRIV, BIP143_SIGHASH)
    assert sig == BIP143_SIG == sign(BIP143_PRIV, BIP143_SIGHASH)
    assert verify(BIP143_PUB, BIP143_SIGHASH, sig)
    assert not verify(PUB, BIP143_SIGHASH, sig)
    assert not verify(BIP143_PUB, MSG, sig)
    for i in range(20):
        r, s = decode_der_signature(sign(PRIV, hashlib.sha256(bytes([i])).digest()))
        assert is_low_s(s)


def test_high_s_rejected_unless_allowed() -> None:
    r, s = decode_der_signature(sign(PRIV, MSG))
    high = encode_der_signature(r, CURVE_ORDER - s)
    assert not is_low_s(CURVE_ORDER - s) and normalize_s(CURVE_ORDER - s) == s
    assert not verify(PUB, MSG, high)
    assert verify(PUB, MSG, high, require_low_s=False)


def test_verify_never_raises_on_garbage() -> None:
    sig = sign(PRIV, MSG)
    assert not verify(b"\x02" * 33, MSG, sig)
    assert not verify(b"", MSG, sig)
    assert not verify(PUB, MSG[:31], sig)
    assert not verify(PUB, MSG, b"")
    assert not verify(PUB, MSG, sig + b"\x01")  # sighash byte left on


def test_compact() -> None:
    sig64 = sign_compact(PRIV, MSG)
    assert len(sig64) == 64 and verify_compact(PUB, MSG, sig64)
    assert compact_to_der(sig64) == sign(PRIV, MSG)
    assert der_to_compact(sign(PRIV, MSG)) == sig64
    assert not verify_compact(PUB, MSG, sig64[:63])
    assert not verify_compact(PUB, MSG, bytes(64))
    with pytest.raises(DecodeError):
        compact_to_der(b"\xff" * 64)


def test_witness_signature() -> None:
    item = witness_signature(BIP143_SIG, 0x83)
    assert item[-1] == 0x83 and split_witness_signature(item) == (BIP143_SIG, 0x83)
    with pytest.raises(DecodeError):
        split_witness_signature(b"\x01")
    with pytest.raises(DecodeError):
        split_witness_signature(b"\x31" + BIP143_SIG[1:] + b"\x01")


# malformed DER (no sighash byte), one rule each (BIP 66)
GOOD = BIP143_SIG
LEN_R = GOOD[3]


def _with(index: int, value: int) -> bytes:
    b = bytearray(GOOD)
    b[index] = value
    return bytes(b)


BAD_DER = {
    "too short": bytes.fromhex("3006020101020101")[:-1],
    "too long": b"\x30\x47" + b"\x02\x21\x00" + b"\x80" * 32 + b"\x02\x22\x00" + b"\x80" * 33,
    "wrong tag": _with(0, 0x31),
    "wrong length": _with(1, GOOD[1] + 1),
    "r not integer": _with(2, 0x03),
    "r length zero": bytes.fromhex("3006020002020101"),
    "r runs past end": _with(3, 0x40),
    "s not integer": _with(4 + LEN_R, 0x03),
    "r negative": _with(4, 0x80 | GOOD[4]),
    "s negative": _with(6 + LEN_R, 0x80 | GOOD[6 + LEN_R]),
    "r leading zero": bytes.fromhex("300702020001020101"),
    "s leading zero": bytes.fromhex("300702010102020001"),
    "r zero": bytes.fromhex("3006020100020101"),
    "s zero": bytes.fromhex("3006020101020100"),
    "r too big": b"\x30\x26\x02\x21\x00" + CURVE_ORDER.to_bytes(32, "big") + b"\x02\x01\x01",
    "trailing garbage": GOOD + b"\x00",
}


@pytest.mark.parametrize("name", sorted(BAD_DER))
def test_bad_der(name: str) -> None:
    with pytest.raises(DecodeError):
        decode_der_signature(BAD_DER[name])
    assert not verify(BIP143_PUB, BIP143_SIGHASH, BAD_DER[name])


def test_minimal_der() -> None:
    assert decode_der_signature(bytes.fromhex("3006020101020101")) == (1, 1)
    assert is_strict_der(bytes.fromhex("3006020101020101"))
    assert encode_der_signature(0x80, 1).hex() == "300702020080020101"


@settings(max_examples=300, deadline=None)
@given(st.integers(1, CURVE_ORDER - 1), st.integers(1, CURVE_ORDER - 1))
def test_der_round_trip(r: int, s: int) -> None:
    der = encode_der_signature(r, s)
    assert is_strict_der(der) and decode_der_signature(der) == (r, s)
    compact = der_to_compact(der)
    assert compact_to_der(compact) == der


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_decode_random_only_decode_error(data: bytes) -> None:
    try:
        r, s = decode_der_signature(data)
    except DecodeError:
        return
    assert encode_der_signature(r, s) == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_der_only_decode_error(data: st.DataObject) -> None:
    raw = bytearray(GOOD)
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    try:
        r, s = decode_der_signature(bytes(raw))
    except DecodeError:
        return
    assert encode_der_signature(r, s) == bytes(raw)
