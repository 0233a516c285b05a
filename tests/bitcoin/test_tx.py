"""Transaction serialization: BOLT 3 and BIP 143 transactions, strictness, properties."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.bitcoin.tx import (
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    decode_compact_size,
    encode_compact_size,
    fee_for_vsize,
    fee_for_weight,
    feerate_per_kw,
    per_kw_to_sat_per_vbyte,
    sat_per_vbyte_to_per_kw,
)
from lncli.errors import DecodeError
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
FUNDING = V["funding_tx"]
PARAMS = V["commitment_params"]

# BIP 143 signed transactions (bitcoin/bips bip-0143.mediawiki, "Example" section)
BIP143_NATIVE_P2WPKH_SIGNED = (
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f00000000494830"
    "450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b194ba3f928"
    "1a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182d279655c3aa89e81"
    "5b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f6"
    "6f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988"
    "ac000247304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c"
    "4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee0121025476c2e83188368da1ff3e292e7aca"
    "fcdb3566bb0ad253f62fc70f07aeee635711000000"
)
BIP143_NATIVE_P2WPKH_UNSIGNED = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
    "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206"
    "000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42db"
    "ee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)


def all_vector_txs() -> list[str]:
    txs = [FUNDING["funding_tx"], FUNDING["block1_coinbase_tx"]]
    for case in V["static_remotekey_no_anchors"]:
        txs.append(case["commit_tx"])
        txs.extend(h["tx"] for h in case["htlc_txs"])
    for case in V["anchors"]:
        txs.append(case["ExpectedCommitmentTxHex"])
        txs.extend(h["ResolutionTxHex"] for h in case["HtlcDescs"])
    return txs


@pytest.mark.parametrize("tx_hex", all_vector_txs())
def test_bolt3_transactions_round_trip(tx_hex: str) -> None:
    tx = Transaction.from_hex(tx_hex)
    assert tx.to_hex() == tx_hex
    rebuilt = Transaction(tx.version, list(tx.inputs), list(tx.outputs), tx.locktime)
    assert rebuilt == tx
    assert rebuilt.to_hex() == tx_hex  # serialized afresh, not from the parse cache
    assert Transaction.from_bytes(tx.to_bytes(include_witness=False)) == tx.without_witnesses()
    assert tx.weight() == 3 * len(tx.to_bytes(False)) + len(tx.to_bytes())


def test_funding_tx() -> None:
    tx = Transaction.from_hex(FUNDING["funding_tx"])
    assert tx.txid_hex() == FUNDING["funding_txid"]
    assert tx.txid() == bytes.fromhex(FUNDING["funding_txid"])[::-1]
    assert not tx.has_witness() and tx.wtxid() == tx.txid()
    assert tx.inputs[0].prevout == OutPoint.from_txid_hex(FUNDING["input_txid"], 0)
    out = tx.outputs[FUNDING["funding_output"]]
    assert out.value_sat == FUNDING["funding_satoshis"]
    script = funding_script(
        bytes.fromhex(FUNDING["remote_funding_pubkey"]),
        bytes.fromhex(FUNDING["local_funding_pubkey"]),
    )
    assert script.hex() == FUNDING["funding_witness_script"]
    assert out.script_pubkey == p2wsh_script(script)
    assert tx.outputs[1].value_sat == FUNDING["change_satoshis"]
    assert tx.fee([FUNDING["input_satoshis"]]) == (
        FUNDING["input_satoshis"] - FUNDING["funding_satoshis"] - FUNDING["change_satoshis"]
    )
    coinbase = Transaction.from_hex(FUNDING["block1_coinbase_tx"])
    assert coinbase.is_coinbase() and not tx.is_coinbase()
    assert coinbase.txid_hex() == FUNDING["input_txid"]


def test_commitment_txs_spend_funding_and_htlc_txs_spend_commitments() -> None:
    funding = Transaction.from_hex(FUNDING["funding_tx"])
    for case in V["static_remotekey_no_anchors"]:
        commit = Transaction.from_hex(case["commit_tx"])
        assert commit.inputs[0].prevout == funding.outpoint(0)
        assert commit.has_witness() and commit.wtxid() != commit.txid()
        if "actual_fee_sat" in case:  # the last case has no fee comment in the spec
            assert commit.fee([PARAMS["funding_amount_satoshi"]]) == case["actual_fee_sat"]
        for h in case["htlc_txs"]:
            htlc = Transaction.from_hex(h["tx"])
            assert htlc.inputs[0].prevout == commit.outpoint(h["commit_output_index"])


def test_bip143_signed_and_unsigned() -> None:
    signed = Transaction.from_hex(BIP143_NATIVE_P2WPKH_SIGNED)
    assert signed.to_hex() == BIP143_NATIVE_P2WPKH_SIGNED
    unsigned = Transaction.from_hex(BIP143_NATIVE_P2WPKH_UNSIGNED)
    with_script_sigs = replace(
        unsigned,
        inputs=tuple(
            replace(i, script_sig=s.script_sig) for i, s in zip(unsigned.inputs, signed.inputs)
        ),
    )
    assert signed.txid() == with_script_sigs.txid()
    # setting the witness on a copy of the unsigned tx gives the signed serialization back
    rebuilt = unsigned.with_script_sig(0, signed.inputs[0].script_sig).with_witness(
        1, signed.inputs[1].witness
    )
    assert rebuilt.to_hex() == BIP143_NATIVE_P2WPKH_SIGNED
    assert rebuilt.with_witnesses([(), signed.inputs[1].witness]) == rebuilt
    assert unsigned.version == 1 and unsigned.locktime == 0x11
    assert unsigned.inputs[0].sequence == 0xFFFFFFEE
    assert signed.vsize() == (signed.weight() + 3) // 4


# -- compact size --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,hex_",
    [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),
        (0x100000000, "ff0000000001000000"),
        (2**64 - 1, "ffffffffffffffffff"),
    ],
)
def test_compact_size(value: int, hex_: str) -> None:
    assert encode_compact_size(value).hex() == hex_
    assert decode_compact_size(bytes.fromhex(hex_)) == (value, len(hex_) // 2)


@pytest.mark.parametrize("hex_", ["fd0000", "fdfc00", "feffff0000", "ffffffffff00000000", "fd00", "", "ff"])
def test_compact_size_rejects(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode_compact_size(bytes.fromhex(hex_))


# -- strictness ----------------------------------------------------------------------------

COMMIT = V["static_remotekey_no_anchors"][0]["commit_tx"]


@pytest.mark.parametrize(
    "tx_hex,reason",
    [
        (FUNDING["funding_tx"] + "00", "trailing"),
        (COMMIT + "00", "trailing"),
        (FUNDING["funding_tx"][:-2], "truncated"),
        (COMMIT[:-10], "truncated"),
        ("02000000" + "0002" + COMMIT[12:], "flag"),
        ("0200000000", "short"),
        ("02000000000000000000", "no inputs"),
        # input count 1 written as fd0100
        (FUNDING["funding_tx"][:8] + "fd0100" + FUNDING["funding_tx"][10:], "non-minimal"),
        ("zz", "hex"),
    ],
)
def test_strict_decoding(tx_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError):
        Transaction.from_hex(tx_hex)


def test_superfluous_witness_flag_rejected() -> None:
    tx = Transaction.from_hex(FUNDING["funding_tx"])
    raw = tx.to_bytes()
    # marker + flag, then one empty witness stack before the locktime
    bad = raw[:4] + b"\x00\x01" + raw[4:-4] + b"\x00" + raw[-4:]
    with pytest.raises(DecodeError, match="witness"):
        Transaction.from_bytes(bad)
    good = raw[:4] + b"\x00\x01" + raw[4:-4] + b"\x01\x00" + raw[-4:]  # one empty item
    assert Transaction.from_bytes(good).inputs[0].witness == (b"",)


def test_outpoint_text() -> None:
    op = OutPoint.from_str(FUNDING["funding_txid"] + ":1")
    assert str(op) == FUNDING["funding_txid"] + ":1" and op.vout == 1
    for bad in ["abc:1", FUNDING["funding_txid"], FUNDING["funding_txid"] + ":-1", "zz" * 32 + ":0"]:
        with pytest.raises(DecodeError):
            OutPoint.from_str(bad)


# -- fees ----------------------------------------------------------------------------------


def test_fee_helpers() -> None:
    # BOLT 3: 724 weight (base commitment) at 15000 sat/kw -> 10860 sat
    assert fee_for_weight(724, 15000) == 10860
    assert fee_for_weight(1, 999) == 0  # rounded down
    assert fee_for_vsize(141, 1) == 141
    assert fee_for_vsize(141, 1.1) == 156  # 155.1 rounded up
    assert fee_for_vsize(100, Fraction(3, 2)) == 150
    assert sat_per_vbyte_to_per_kw(1) == 250
    assert sat_per_vbyte_to_per_kw(1.012) == 253
    assert per_kw_to_sat_per_vbyte(253) == Fraction(253, 250)
    assert feerate_per_kw(10860, 724) == 15000
    case = V["static_remotekey_no_anchors"][0]
    commit = Transaction.from_hex(case["commit_tx"])
    assert commit.fee([PARAMS["funding_amount_satoshi"]]) == case["base_fee_sat"]


# -- properties ----------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
outpoints = st.builds(OutPoint, st.binary(min_size=32, max_size=32), u32)
witnesses = st.lists(st.binary(max_size=80), max_size=4).map(tuple)
txins = st.builds(TxIn, outpoints, st.binary(max_size=120), u32, witnesses)
txouts = st.builds(TxOut, st.integers(0, 2**64 - 1), st.binary(max_size=60))
transactions = st.builds(
    Transaction,
    u32,
    st.lists(txins, min_size=1, max_size=4).map(tuple),
    st.lists(txouts, max_size=4).map(tuple),
    u32,
)


@settings(max_examples=200, deadline=None)
@given(transactions)
def test_round_trip(tx: Transaction) -> None:
    raw = tx.to_bytes()
    back = Transaction.from_bytes(raw)
    assert back == tx and back.to_bytes() == raw
    assert back.txid() == Transaction.from_bytes(tx.to_bytes(False)).txid()
    assert tx.vsize() * 4 >= tx.weight()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    try:
        tx = Transaction.from_bytes(data)
    except DecodeError:
        return
    assert tx.to_bytes() == data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(all_vector_txs()[:20]), st.data())
def test_mutated_vectors_only_decode_error(tx_hex: str, data: st.DataObject) -> None:
    raw = bytearray(bytes.fromhex(tx_hex))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            raw.insert(pos, data.draw(st.integers(0, 255)))
        elif kind == "delete" and raw:
            del raw[pos]
        else:
            del raw[pos:]
    try:
        tx = Transaction.from_bytes(bytes(raw))
    except DecodeError:
        return
    assert tx.to_bytes() == bytes(raw)


def _serialize_reference(tx: Transaction, include_witness: bool = True) -> bytes:
    """The BIP 144 / legacy serialization written out plainly (no struct fast paths, no caches)."""
    def var(b: bytes) -> bytes:
        return encode_compact_size(len(b)) + b

    segwit = include_witness and any(i.witness for i in tx.inputs)
    out = tx.version.to_bytes(4, "little") + (b"\x00\x01" if segwit else b"")
    out += encode_compact_size(len(tx.inputs))
    for i in tx.inputs:
        out += i.prevout.txid + i.prevout.vout.to_bytes(4, "little") + var(i.script_sig) + i.sequence.to_bytes(4, "little")
    out += encode_compact_size(len(tx.outputs))
    for o in tx.outputs:
        out += o.value_sat.to_bytes(8, "little") + var(o.script_pubkey)
    if segwit:
        for i in tx.inputs:
            out += encode_compact_size(len(i.witness)) + b"".join(var(w) for w in i.witness)
    return out + tx.locktime.to_bytes(4, "little")


_long_txouts = st.builds(TxOut, st.integers(0, 2**64 - 1), st.binary(min_size=250, max_size=300))
_mixed_transactions = st.builds(
    Transaction,
    u32,
    st.lists(st.builds(TxIn, outpoints, st.sampled_from([b""]) | st.binary(max_size=300), u32, witnesses), min_size=1, max_size=3).map(tuple),
    st.lists(txouts | _long_txouts, max_size=4).map(tuple),
    u32,
)


@settings(max_examples=200, deadline=None)
@given(_mixed_transactions)
def test_serialization_fast_paths_match_the_plain_encoding(tx: Transaction) -> None:
    assert tx.to_bytes() == _serialize_reference(tx)
    assert tx.to_bytes(False) == _serialize_reference(tx, False)
    for o in tx.outputs:
        assert o.to_bytes() == o.value_sat.to_bytes(8, "little") + encode_compact_size(len(o.script_pubkey)) + o.script_pubkey
    for i in tx.inputs:
        assert i.to_bytes() == i.prevout.to_bytes() + encode_compact_size(len(i.script_sig)) + i.script_sig + i.sequence.to_bytes(4, "little")


@settings(max_examples=150, deadline=None)
@given(_mixed_transactions, st.data())
def test_with_witness_copies_match_fresh_transactions(tx: Transaction, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        tx.txid(), tx.to_bytes()  # fill the caches the copies may carry over
    index = data.draw(st.integers(0, len(tx.inputs) - 1))
    witness = data.draw(witnesses)
    got = tx.with_witness(index, witness)
    inputs = list(tx.inputs)
    inputs[index] = replace(inputs[index], witness=witness)
    fresh = Transaction(tx.version, tuple(inputs), tx.outputs, tx.locktime)
    assert got == fresh
    assert (got.to_bytes(), got.to_bytes(False), got.txid(), got.wtxid()) == (
        fresh.to_bytes(), fresh.to_bytes(False), fresh.txid(), fresh.wtxid()
    )
    all_witnesses = [data.draw(witnesses) for _ in tx.inputs]
    got = tx.with_witnesses(all_witnesses)
    fresh = Transaction(tx.version, tuple(replace(i, witness=w) for i, w in zip(tx.inputs, all_witnesses)), tx.outputs, tx.locktime)
    assert got == fresh and got.to_bytes() == fresh.to_bytes() == _serialize_reference(fresh)
    assert got.txid() == fresh.txid()
