"""BOLT 3 witness scripts against the Appendix C comments and the Appendix F transactions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.script import disassemble, p2wpkh_script_for_pubkey, p2wsh_script, ripemd160
from lncli.bitcoin.tx import Transaction
from lncli.proto.scripts import (
    anchor_script,
    htlc_tx_output_script,
    offered_htlc_script,
    payment_hash_of,
    received_htlc_script,
    to_local_script,
    to_remote_anchor_script,
    to_remote_script_pubkey,
)
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
P = V["commitment_params"]
H = bytes.fromhex
REVOCATION = H(P["local_revocation_pubkey"])
LOCAL_DELAYED = H(P["local_delayedpubkey"])
LOCAL_HTLC = H(P["local_htlcpubkey"])
REMOTE_HTLC = H(P["remote_htlcpubkey"])
HTLCS = {h["id"]: h for h in V["htlcs"]}


def _payment_hash(htlc_id: int) -> bytes:
    return hashlib.sha256(H(HTLCS[htlc_id]["payment_preimage"])).digest()


def _script_for(kind: str, htlc_id: int | None, anchors: bool) -> bytes:
    if kind == "to_local":
        return to_local_script(REVOCATION, P["local_delay"], LOCAL_DELAYED)
    if kind == "htlc_offered":
        return offered_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, _payment_hash(htlc_id), anchors)
    assert kind == "htlc_received"
    return received_htlc_script(
        REVOCATION, LOCAL_HTLC, REMOTE_HTLC, _payment_hash(htlc_id), HTLCS[htlc_id]["expiry"], anchors
    )


def _comment_scripts():
    seen = {}
    for case in V["static_remotekey_no_anchors"]:
        for out in case.get("outputs_in_comments", []):
            if "wscript" in out:
                seen[(out["type"], out.get("htlc_id"))] = out["wscript"]
    return sorted(seen.items(), key=lambda kv: (kv[0][0], kv[0][1] if kv[0][1] is not None else -1))


COMMENT_SCRIPTS = _comment_scripts()


@pytest.mark.parametrize("key,wscript", COMMENT_SCRIPTS, ids=[f"{k[0]}-{k[1]}" for k, _ in COMMENT_SCRIPTS])
def test_appendix_c_witness_scripts(key, wscript):
    kind, htlc_id = key
    assert _script_for(kind, htlc_id, anchors=False).hex() == wscript


def test_all_script_kinds_covered():
    kinds = {k[0] for k, _ in COMMENT_SCRIPTS}
    assert kinds == {"to_local", "htlc_offered", "htlc_received"}
    assert {k[1] for k, _ in COMMENT_SCRIPTS if k[0] != "to_local"} == set(range(7))


def test_payment_hash_of():
    assert payment_hash_of(bytes(32)) == hashlib.sha256(bytes(32)).digest()
    with pytest.raises(ValueError):
        payment_hash_of(b"\x00" * 31)


def test_to_remote_without_anchors_is_p2wpkh():
    remote = H(P["remote_payment_basepoint"])
    assert to_remote_script_pubkey(remote, anchors=False) == p2wpkh_script_for_pubkey(remote)
    commit = Transaction.from_hex(V["static_remotekey_no_anchors"][0]["commit_tx"])
    assert to_remote_script_pubkey(remote, anchors=False) in [o.script_pubkey for o in commit.outputs]


def test_anchor_scripts_in_appendix_f():
    local_funding = H(P["local_funding_pubkey"])
    remote_funding = H(P["remote_funding_pubkey"])
    remote = H(P["remote_payment_basepoint"])
    case = next(a for a in V["anchors"] if a["Name"] == "simple commitment tx with no HTLCs")
    spks = {o.script_pubkey for o in Transaction.from_hex(case["ExpectedCommitmentTxHex"]).outputs}
    assert p2wsh_script(anchor_script(local_funding)) in spks
    assert p2wsh_script(anchor_script(remote_funding)) in spks
    assert to_remote_script_pubkey(remote, anchors=True) in spks
    assert p2wsh_script(to_local_script(REVOCATION, P["local_delay"], LOCAL_DELAYED)) in spks
    assert disassemble(anchor_script(local_funding)) == (
        f"{local_funding.hex()} OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF"
    )
    assert disassemble(to_remote_anchor_script(remote)) == f"{remote.hex()} OP_CHECKSIGVERIFY OP_1 OP_CHECKSEQUENCEVERIFY"


def _anchor_htlc_witness_scripts():
    out = []
    for case in V["anchors"]:
        for desc in case["HtlcDescs"]:
            tx = Transaction.from_hex(desc["ResolutionTxHex"])
            witness = tx.inputs[0].witness
            offered = witness[3] == b""  # HTLC-timeout has an empty preimage slot
            out.append((case["Name"], offered, tx.locktime, witness[4], tx.outputs[0].script_pubkey))
    return out


def test_anchor_htlc_scripts_in_appendix_f():
    cases = _anchor_htlc_witness_scripts()
    assert len(cases) == 15
    for _name, offered, _locktime, wscript, out_spk in cases:
        candidates = set()
        for htlc_id, h in HTLCS.items():
            if offered == (h["direction"] == "local->remote"):
                candidates.add(_script_for("htlc_offered" if offered else "htlc_received", htlc_id, anchors=True))
        assert wscript in candidates
        assert wscript.endswith(bytes.fromhex("6851b27568"))  # OP_ENDIF 1 OP_CSV OP_DROP OP_ENDIF
        assert out_spk == p2wsh_script(htlc_tx_output_script(REVOCATION, P["local_delay"], LOCAL_DELAYED))


def test_htlc_script_shapes():
    ph = bytes(range(32))
    offered = offered_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, ph, False)
    assert disassemble(offered).split()[-14:] == [
        "OP_NOTIF", "OP_DROP", "OP_2", "OP_SWAP", LOCAL_HTLC.hex(), "OP_2", "OP_CHECKMULTISIG",
        "OP_ELSE", "OP_HASH160", ripemd160(ph).hex(),
        "OP_EQUALVERIFY", "OP_CHECKSIG", "OP_ENDIF", "OP_ENDIF",
    ]
    received = received_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, ph, 500_000, True)
    text = disassemble(received)
    assert "20a107 OP_CHECKLOCKTIMEVERIFY" in text  # 500000 as a 3-byte script number
    assert text.endswith("OP_ENDIF OP_1 OP_CHECKSEQUENCEVERIFY OP_DROP OP_ENDIF")


def test_bad_arguments():
    with pytest.raises(ValueError):
        to_local_script(REVOCATION, 1 << 16, LOCAL_DELAYED)
    with pytest.raises(ValueError):
        to_local_script(REVOCATION[:32], 144, LOCAL_DELAYED)
    with pytest.raises(ValueError):
        anchor_script(b"\x04" + bytes(32))
    with pytest.raises(ValueError):
        offered_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, bytes(20), False)
    with pytest.raises(ValueError):
        received_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, bytes(32), -1, False)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.binary(min_size=32, max_size=32), st.booleans())
def test_scripts_parse_and_differ(delay, cltv, ph, anchors):
    a = to_local_script(REVOCATION, delay, LOCAL_DELAYED)
    b = offered_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, ph, anchors)
    c = received_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, ph, cltv, anchors)
    for s in (a, b, c):
        disassemble(s)  # well formed
    assert len({a, b, c}) == 3
    assert offered_htlc_script(REVOCATION, LOCAL_HTLC, REMOTE_HTLC, ph, not anchors) != b
