"""The script interpreter on the BOLT 3 vectors, hand-built lock scripts, and random input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import pubkey_from_privkey, sign, witness_signature
from lncli.bitcoin.script import (
    OP_CHECKLOCKTIMEVERIFY,
    OP_CHECKSEQUENCEVERIFY,
    OP_CHECKSIG,
    OP_DROP,
    OP_ELSE,
    OP_ENDIF,
    OP_IF,
    build_script,
    p2wsh_script,
)
from lncli.bitcoin.sighash import segwit_v0_sighash
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.chain.interpreter import (
    MANDATORY_FLAGS,
    STANDARD_FLAGS,
    ScriptError,
    eval_script,
    verify_input,
    verify_input_policy,
)
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
FUNDING = Transaction.from_hex(V["funding_tx"]["funding_tx"])
FUND_OUT = FUNDING.outputs[0]


def _commit_cases():
    out = []
    for c in V["static_remotekey_no_anchors"]:
        out.append((c["name"], c["commit_tx"], [h["tx"] for h in c["htlc_txs"]]))
    for c in V["anchors"]:
        out.append(("anchors: " + c["Name"], c["ExpectedCommitmentTxHex"], [h["ResolutionTxHex"] for h in c["HtlcDescs"]]))
    return out


CASES = _commit_cases()


def _flip_sig_byte(tx: Transaction, item: int) -> Transaction:
    w = list(tx.inputs[0].witness)
    sig = bytearray(w[item])
    sig[10] ^= 0x01  # inside R
    w[item] = bytes(sig)
    return tx.with_witness(0, w)


@pytest.mark.parametrize("name,commit_hex,htlc_hexes", CASES, ids=[c[0] for c in CASES])
def test_bolt3_commitment_and_htlc_txs_verify(name, commit_hex, htlc_hexes):
    commit = Transaction.from_hex(commit_hex)
    assert commit.inputs[0].prevout == FUNDING.outpoint(0)
    verify_input(commit, 0, FUND_OUT.script_pubkey, FUND_OUT.value_sat)
    for htlc_hex in htlc_hexes:
        htlc = Transaction.from_hex(htlc_hex)
        prevout = htlc.inputs[0].prevout
        assert prevout.txid == commit.txid()
        out = commit.outputs[prevout.vout]
        verify_input(htlc, 0, out.script_pubkey, out.value_sat)
        verify_input(htlc, 0, out.script_pubkey, out.value_sat, MANDATORY_FLAGS)


def test_bolt3_counts():
    n_htlc = sum(len(c[2]) for c in CASES)
    assert len(CASES) == 25 and n_htlc == 33 + 15


def test_funding_tx_spends_legacy_p2pkh_coinbase():
    cb = Transaction.from_hex(V["funding_tx"]["block1_coinbase_tx"])
    verify_input(FUNDING, 0, cb.outputs[0].script_pubkey, cb.outputs[0].value_sat)


def test_mutated_commitment_signature_fails_nullfail():
    commit = Transaction.from_hex(CASES[0][1])
    bad = _flip_sig_byte(commit, 1)
    with pytest.raises(ScriptError) as e:
        verify_input_policy(bad, 0, FUND_OUT.script_pubkey, FUND_OUT.value_sat)
    assert e.value.reason == "Signature must be zero for failed CHECK(MULTI)SIG operation"
    assert e.value.bitcoind_reason == (
        "mempool-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)"
    )
    with pytest.raises(ScriptError) as e:
        verify_input(bad, 0, FUND_OUT.script_pubkey, FUND_OUT.value_sat, MANDATORY_FLAGS)
    assert e.value.reason.startswith("Script evaluated without error but finished with a false")


def test_wrong_amount_fails():
    commit = Transaction.from_hex(CASES[0][1])
    with pytest.raises(ScriptError):
        verify_input(commit, 0, FUND_OUT.script_pubkey, FUND_OUT.value_sat + 1)


def test_mutated_htlc_signature_and_script():
    name, commit_hex, htlcs = CASES[1]
    commit = Transaction.from_hex(commit_hex)
    htlc = Transaction.from_hex(htlcs[0])
    out = commit.outputs[htlc.inputs[0].prevout.vout]
    verify_input(htlc, 0, out.script_pubkey, out.value_sat)
    with pytest.raises(ScriptError, match="Signature must be zero"):
        verify_input(_flip_sig_byte(htlc, 1), 0, out.script_pubkey, out.value_sat)
    w = list(htlc.inputs[0].witness)
    w[-1] = w[-1][:-1] + b"\x69"  # change the witness script's last opcode
    with pytest.raises(ScriptError) as e:
        verify_input(htlc.with_witness(0, w), 0, out.script_pubkey, out.value_sat)
    assert e.value.reason == "Witness program hash mismatch"


def test_htlc_timeout_locktime_matters():
    # an HTLC-timeout tx (locktime = cltv_expiry) whose locktime is lowered breaks its signature
    commit = Transaction.from_hex(CASES[1][1])
    for h in CASES[1][2]:
        htlc = Transaction.from_hex(h)
        if htlc.locktime:
            out = commit.outputs[htlc.inputs[0].prevout.vout]
            from dataclasses import replace

            with pytest.raises(ScriptError):
                verify_input(replace(htlc, locktime=htlc.locktime - 1), 0, out.script_pubkey, out.value_sat)
            return
    pytest.fail("no HTLC-timeout tx found")


# ---------------------------------------------------------------------------------------------
# Hand-built lock scripts

REVOKE_KEY = bytes(31) + b"\x11"
DELAY_KEY = bytes(31) + b"\x22"
DELAY = 144


def to_local_script(delay: int = DELAY) -> bytes:
    return build_script([
        OP_IF, pubkey_from_privkey(REVOKE_KEY),
        OP_ELSE, delay, OP_CHECKSEQUENCEVERIFY, OP_DROP, pubkey_from_privkey(DELAY_KEY),
        OP_ENDIF, OP_CHECKSIG,
    ])


def spend(script: bytes, key: bytes, extra: list[bytes], *, sequence=0xFFFFFFFE, locktime=0, version=2, amount=100_000):
    prev = OutPoint(b"\x42" * 32, 0)
    tx = Transaction(version, [TxIn(prev, sequence=sequence)], [TxOut(amount - 1000, b"\x00\x14" + bytes(20))], locktime)
    sighash = segwit_v0_sighash(tx, 0, script, amount)
    sig = witness_signature(sign(key, sighash))
    return tx.with_witness(0, [sig, *extra, script]), p2wsh_script(script), amount


def test_to_local_delayed_path_after_delay():
    tx, spk, amount = spend(to_local_script(), DELAY_KEY, [b""], sequence=DELAY)
    verify_input(tx, 0, spk, amount)
    tx, spk, amount = spend(to_local_script(), DELAY_KEY, [b""], sequence=DELAY + 50)
    verify_input(tx, 0, spk, amount)


@pytest.mark.parametrize("sequence,version", [(DELAY - 1, 2), (DELAY, 1), (0xFFFFFFFF, 2), (DELAY | (1 << 22), 2)])
def test_to_local_delayed_path_too_early(sequence, version):
    tx, spk, amount = spend(to_local_script(), DELAY_KEY, [b""], sequence=sequence, version=version)
    with pytest.raises(ScriptError) as e:
        verify_input_policy(tx, 0, spk, amount)
    assert e.value.reason == "Locktime requirement not satisfied"
    assert e.value.bitcoind_reason == "mempool-script-verify-flag-failed (Locktime requirement not satisfied)"


def test_to_local_revocation_path():
    tx, spk, amount = spend(to_local_script(), REVOKE_KEY, [b"\x01"], sequence=0)
    verify_input(tx, 0, spk, amount)
    # the wrong key on the revocation path
    tx, spk, amount = spend(to_local_script(), DELAY_KEY, [b"\x01"], sequence=0)
    with pytest.raises(ScriptError, match="Signature must be zero"):
        verify_input(tx, 0, spk, amount)


def test_minimalif():
    tx, spk, amount = spend(to_local_script(), REVOKE_KEY, [b"\x02"], sequence=0)
    with pytest.raises(ScriptError) as e:
        verify_input_policy(tx, 0, spk, amount)
    assert e.value.reason == "OP_IF/NOTIF argument must be minimal" and e.value.mandatory is False
    verify_input(tx, 0, spk, amount, MANDATORY_FLAGS)  # consensus allows it in segwit v0


def cltv_script(n: int) -> bytes:
    return build_script([n, OP_CHECKLOCKTIMEVERIFY, OP_DROP, pubkey_from_privkey(DELAY_KEY), OP_CHECKSIG])


@pytest.mark.parametrize(
    "n,locktime,sequence,ok,reason",
    [
        (500, 500, 0xFFFFFFFE, True, None),
        (500, 800, 0xFFFFFFFE, True, None),
        (500, 499, 0xFFFFFFFE, False, "Locktime requirement not satisfied"),
        (500, 500, 0xFFFFFFFF, False, "Locktime requirement not satisfied"),
        (500, 600_000_000, 0xFFFFFFFE, False, "Locktime requirement not satisfied"),
        (600_000_000, 600_000_000, 0, True, None),
        (-1, 500, 0, False, "Negative locktime"),
    ],
)
def test_cltv(n, locktime, sequence, ok, reason):
    tx, spk, amount = spend(cltv_script(n), DELAY_KEY, [], sequence=sequence, locktime=locktime)
    if ok:
        verify_input(tx, 0, spk, amount)
    else:
        with pytest.raises(ScriptError) as e:
            verify_input(tx, 0, spk, amount)
        assert e.value.reason == reason


def csv_script(n: int) -> bytes:
    return build_script([n, OP_CHECKSEQUENCEVERIFY, OP_DROP, pubkey_from_privkey(DELAY_KEY), OP_CHECKSIG])


@pytest.mark.parametrize(
    "n,sequence,ok",
    [
        (1 << 31, 0xFFFFFFFF, True),  # disable flag in the operand: a NOP
        ((1 << 22) | 10, (1 << 22) | 10, True),  # time-based, equal
        ((1 << 22) | 10, 10, False),  # type mismatch
        (10, (1 << 22) | 10, False),
        (10, 10 | (1 << 31), False),  # the input's sequence disables locks
        (0, 0, True),
    ],
)
def test_csv(n, sequence, ok):
    tx, spk, amount = spend(csv_script(n), DELAY_KEY, [], sequence=sequence)
    if ok:
        verify_input(tx, 0, spk, amount)
    else:
        with pytest.raises(ScriptError, match="Locktime requirement not satisfied"):
            verify_input(tx, 0, spk, amount)


def test_equalverify_and_cleanstack_and_minimaldata():
    def run(script: bytes, stack: list[bytes], flags=STANDARD_FLAGS):
        eval_script(stack, script, flags, None)
        return stack

    with pytest.raises(ScriptError, match="OP_EQUALVERIFY"):
        run(b"\x88", [b"a", b"b"])
    with pytest.raises(ScriptError, match="Data push larger than necessary"):
        run(b"\x01\x05", [])
    assert run(b"\x01\x05", [], MANDATORY_FLAGS) == [b"\x05"]
    with pytest.raises(ScriptError, match="Invalid OP_IF construction"):
        run(b"\x51\x63", [])
    with pytest.raises(ScriptError, match="disabled opcode"):
        run(b"\x00\x63\x7e\x68", [])
    assert run(b"\x52\x53\x93\x55\x87", []) == [b"\x01"]  # 2 3 ADD 5 EQUAL
    assert run(b"\x53\x51\x55\xa5", []) == [b"\x01"]  # 3 WITHIN [1, 5)
    # segwit leaves more than one element: CLEANSTACK (consensus in witness v0)
    script = b"\x51\x51"
    tx = Transaction(2, [TxIn(OutPoint(b"\x01" * 32, 0))], [TxOut(1, b"\x00\x14" + bytes(20))]).with_witness(0, [script])
    with pytest.raises(ScriptError) as e:
        verify_input_policy(tx, 0, p2wsh_script(script), 1000)
    assert e.value.reason == "Stack size must be exactly one after execution" and e.value.mandatory


def test_nulldummy():
    from lncli.bitcoin.script import funding_script

    commit = Transaction.from_hex(CASES[0][1])
    w = list(commit.inputs[0].witness)
    assert w[0] == b"" and w[-1] == funding_script(bytes.fromhex(V["funding_tx"]["local_funding_pubkey"]), bytes.fromhex(V["funding_tx"]["remote_funding_pubkey"]))
    w[0] = b"\x01"
    with pytest.raises(ScriptError) as e:
        verify_input_policy(commit.with_witness(0, w), 0, FUND_OUT.script_pubkey, FUND_OUT.value_sat)
    assert e.value.reason == "Dummy CHECKMULTISIG argument must be zero" and e.value.mandatory


# ---------------------------------------------------------------------------------------------
# Robustness

_TX = Transaction.from_hex(CASES[1][1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.lists(st.binary(max_size=12), max_size=6))
def test_random_scripts_only_raise_script_error(script, stack):
    try:
        verify_input(_TX.with_witness(0, [*stack, script]), 0, p2wsh_script(script), 1000)
    except ScriptError:
        pass
    try:
        eval_script(list(stack), script, MANDATORY_FLAGS, None)
    except ScriptError:
        pass


_HTLC = Transaction.from_hex(CASES[1][2][0])
_HTLC_OUT = Transaction.from_hex(CASES[1][1]).outputs[_HTLC.inputs[0].prevout.vout]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_witness_only_raises_script_error(data):
    w = list(_HTLC.inputs[0].witness)
    i = data.draw(st.integers(0, len(w) - 1))
    item = bytearray(w[i])
    if item:
        pos = data.draw(st.integers(0, len(item) - 1))
        item[pos] = data.draw(st.integers(0, 255))
    else:
        item = bytearray(data.draw(st.binary(max_size=3)))
    w[i] = bytes(item)
    tx = _HTLC.with_witness(0, w)
    try:
        verify_input_policy(tx, 0, _HTLC_OUT.script_pubkey, _HTLC_OUT.value_sat)
    except ScriptError as err:
        assert err.mandatory in (True, False)
