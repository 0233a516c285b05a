"""BOLT 3 key derivation (Appendix E) and the obscured commitment number (Appendix C)."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import keys
from lncli.proto.keys import (
    commitment_locktime_sequence,
    commitment_number_from_tx,
    derive_privkey,
    derive_pubkey,
    derive_revocation_privkey,
    derive_revocation_pubkey,
    obscure_factor,
    obscured_commitment_number,
    obscured_from_locktime_sequence,
    obscured_to_locktime_sequence,
    per_commitment_point,
)
from tests.conftest import load_vector

KEYS = load_vector("bolt03_keys.json")
COMMITMENTS = load_vector("bolt03_commitments.json")
PARAMS = COMMITMENTS["commitment_params"]


def _h(s: str) -> bytes:
    return bytes.fromhex(s)


# --- Appendix E ---------------------------------------------------------------------------


def test_base_values():
    base = KEYS["key_derivation_base"]
    assert per_commitment_point(_h(base["per_commitment_secret"])).hex() == base["per_commitment_point"]
    assert per_commitment_point(_h(base["base_secret"])).hex() == base["base_point"]


def _derive(case: dict) -> bytes:
    i = {k: _h(v) for k, v in case["inputs"].items()}
    name = case["output_name"]
    if name == "localpubkey":
        return derive_pubkey(i["basepoint"], i["per_commitment_point"])
    if name == "localprivkey":
        return derive_privkey(i["basepoint_secret"], i["per_commitment_point"])
    if name == "revocationpubkey":
        return derive_revocation_pubkey(i["revocation_basepoint"], i["per_commitment_point"])
    if name == "revocationprivkey":
        return derive_revocation_privkey(i["revocation_basepoint_secret"], i["per_commitment_secret"])
    raise AssertionError(f"unknown vector {name}")


@pytest.mark.parametrize("case", KEYS["key_derivation"], ids=lambda c: c["output_name"])
def test_key_derivation_vectors(case):
    assert _derive(case).hex() == case["output"]


def test_all_four_derivations_present():
    names = {c["output_name"] for c in KEYS["key_derivation"]}
    assert names == {"localpubkey", "localprivkey", "revocationpubkey", "revocationprivkey"}


def test_appendix_c_keys():
    """The Appendix C keys follow from the INTERNAL secrets and basepoints."""
    internal = COMMITMENTS["internal_derivation_values"]
    pcp = _h(internal["local_per_commitment_point"])
    secret = _h(internal["x_local_per_commitment_secret"])[:32]
    assert per_commitment_point(secret) == pcp
    assert derive_pubkey(_h(PARAMS["local_htlc_basepoint"]), pcp).hex() == PARAMS["local_htlcpubkey"]
    assert derive_pubkey(_h(PARAMS["remote_htlc_basepoint"]), pcp).hex() == PARAMS["remote_htlcpubkey"]
    delayed_base = _h(internal["local_delayed_payment_basepoint"])
    assert derive_pubkey(delayed_base, pcp).hex() == PARAMS["local_delayedpubkey"]
    delayed_secret = _h(internal["local_delayed_payment_basepoint_secret"])[:32]
    assert derive_privkey(delayed_secret, pcp).hex() == internal["local_delayed_privkey"][:64]
    revocation_base = _h(internal["remote_revocation_basepoint"])
    assert derive_revocation_pubkey(revocation_base, pcp).hex() == PARAMS["local_revocation_pubkey"]
    revocation_secret = _h(internal["remote_revocation_basepoint_secret"])[:32]
    priv = derive_revocation_privkey(revocation_secret, secret)
    assert PrivateKey(priv).public_key.format().hex() == PARAMS["local_revocation_pubkey"]


# --- obscured commitment number -----------------------------------------------------------


def _first_input_sequence_and_locktime(tx_hex: str) -> tuple[int, int]:
    tx = _h(tx_hex)
    assert tx[4:6] == b"\x00\x01" and tx[6] == 1  # segwit, one input
    sequence = int.from_bytes(tx[7 + 36 + 1 : 7 + 36 + 1 + 4], "little")  # empty scriptSig
    locktime = int.from_bytes(tx[-4:], "little")
    return locktime, sequence


def test_obscuring_factor_from_payment_basepoints():
    factor = obscure_factor(_h(PARAMS["local_payment_basepoint"]), _h(PARAMS["remote_payment_basepoint"]))
    assert factor == int(PARAMS["obscuring_factor"], 16) == 0x2BB038521914
    assert PARAMS["commitment_number"] == 42
    obscured = obscured_commitment_number(
        42, _h(PARAMS["local_payment_basepoint"]), _h(PARAMS["remote_payment_basepoint"])
    )
    assert obscured == 0x2BB038521914 ^ 42


def test_obscured_number_in_first_commitment_tx():
    factor = int(PARAMS["obscuring_factor"], 16)
    locktime, sequence = _first_input_sequence_and_locktime(COMMITMENTS["static_remotekey_no_anchors"][0]["commit_tx"])
    assert (locktime, sequence) == (0x2052193E, 0x802BB038)
    assert commitment_locktime_sequence(42, factor) == (locktime, sequence)
    assert obscured_to_locktime_sequence(0x2BB038521914 ^ 42) == (locktime, sequence)
    assert obscured_from_locktime_sequence(locktime, sequence) == 0x2BB038521914 ^ 42
    assert commitment_number_from_tx(locktime, sequence, factor) == 42


@pytest.mark.parametrize("case", COMMITMENTS["static_remotekey_no_anchors"], ids=lambda c: c["name"])
def test_every_appendix_c_tx_is_commitment_42(case):
    factor = int(PARAMS["obscuring_factor"], 16)
    locktime, sequence = _first_input_sequence_and_locktime(case["commit_tx"])
    assert commitment_number_from_tx(locktime, sequence, factor) == 42


@pytest.mark.parametrize(
    "locktime,sequence",
    [(0x0052193E, 0x802BB038), (0x2052193E, 0xFFFFFFFF), (-1, 0x80000000), (0x20000000, 1 << 32), ("x", 0)],
)
def test_not_a_commitment_tx(locktime, sequence):
    with pytest.raises(DecodeError):
        obscured_from_locktime_sequence(locktime, sequence)


def test_commitment_number_range():
    with pytest.raises(DecodeError):
        commitment_locktime_sequence(1 << 48, 0)
    with pytest.raises(DecodeError):
        obscured_commitment_number(-1, bytes(33), bytes(33))
    with pytest.raises(DecodeError):
        obscure_factor(bytes(32), bytes(33))


# --- properties ---------------------------------------------------------------------------

secrets = st.integers(min_value=1, max_value=keys.SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


@settings(max_examples=200)
@given(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 48) - 1))
def test_locktime_sequence_round_trip(number, factor):
    locktime, sequence = commitment_locktime_sequence(number, factor)
    assert locktime >> 24 == 0x20 and sequence >> 24 == 0x80
    assert commitment_number_from_tx(locktime, sequence, factor) == number


@settings(max_examples=40, deadline=None)
@given(secrets, secrets)
def test_privkeys_match_pubkeys(base_secret, commitment_secret):
    basepoint = per_commitment_point(base_secret)
    pcp = per_commitment_point(commitment_secret)
    assert per_commitment_point(derive_privkey(base_secret, pcp)) == derive_pubkey(basepoint, pcp)
    assert per_commitment_point(derive_revocation_privkey(base_secret, commitment_secret)) == (
        derive_revocation_pubkey(basepoint, pcp)
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_random_input_only_raises_decode_error(a, b):
    for fn in (derive_pubkey, derive_privkey, derive_revocation_pubkey, derive_revocation_privkey, obscure_factor):
        try:
            fn(a, b)
        except DecodeError:
            pass
    try:
        per_commitment_point(a)
    except DecodeError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([0x02, 0x03]), st.binary(min_size=32, max_size=32))
def test_random_points_only_raise_decode_error(prefix, x):
    point = bytes([prefix]) + x  # about half of these are not on the curve
    good = KEYS["key_derivation_base"]["per_commitment_point"]
    for args in ((point, _h(good)), (_h(good), point)):
        for fn in (derive_pubkey, derive_revocation_pubkey):
            try:
                assert len(fn(*args)) == 33
            except DecodeError:
                pass


@pytest.mark.parametrize("secret", [bytes(32), keys.SECP256K1_N.to_bytes(32, "big"), b"\xff" * 32, bytes(31)])
def test_bad_secrets(secret):
    with pytest.raises(DecodeError):
        per_commitment_point(secret)
    with pytest.raises(DecodeError):
        derive_revocation_privkey(secret, b"\x01" * 32)
