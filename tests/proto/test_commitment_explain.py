"""lncli.proto.commitment_explain on the BOLT 3 vectors (Appendix C and F).

Every vector commitment is local's commitment 42; here we are the vector's *remote* and local is
the cheater who revealed its per-commitment secret: the offline view is built from the keys BOLT 3
needs (our revocation basepoint secret, their delayed and htlc basepoints, ours) and must
recognise every output the vectors list, with the vectors' scripts, and yield a justice tx whose
signatures verify."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.script import p2wpkh_script_for_pubkey
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.chain.interpreter import verify_input as interpret_input
from lncli.errors import InputError
from lncli.proto import commitment_explain as cx
from lncli.proto import justice
from lncli.proto.commitment import verify_input
from lncli.proto.keys import obscure_factor
from tests.proto.test_commitment import (
    CASES,
    COMMITMENT_NUMBER,
    FACTOR,
    FUNDING_OUTPOINT,
    INTERNAL,
    LOCAL_BASEPOINTS,
    PER_COMMITMENT_SECRET,
    REMOTE_BASEPOINTS,
    REMOTE_REVOCATION_BASEPOINT_SECRET,
    TO_SELF_DELAY,
    P,
    build_case,
    vector_htlc,
)

H = bytes.fromhex
DEST = p2wpkh_script_for_pubkey(pubkey_from_privkey(b"\x77" * 32))


def vector_view(case, with_htlcs=True):
    return cx.offline_view(
        per_commitment_secret=PER_COMMITMENT_SECRET,
        revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET,
        remote_delayed_payment_basepoint=H(INTERNAL["local_delayed_payment_basepoint"]),
        to_self_delay=TO_SELF_DELAY,
        remote_htlc_basepoint=LOCAL_BASEPOINTS.htlc_basepoint,
        local_htlc_basepoint=REMOTE_BASEPOINTS.htlc_basepoint,
        local_payment_basepoint=REMOTE_BASEPOINTS.payment_basepoint,
        htlcs=[vector_htlc(i) for i in case["htlc_ids"]] if with_htlcs else (),
        anchors=case["anchors"],
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_offline_view_reads_every_vector_commitment(case):
    tx = Transaction.from_hex(case["commit_tx"])
    view, priv = vector_view(case)
    assert view.keys.revocation_pubkey == H(P["local_revocation_pubkey"])
    assert view.keys.local_delayed_pubkey == H(P["local_delayedpubkey"])
    assert pubkey_from_privkey(priv) == view.keys.revocation_pubkey
    assert cx.obscured_number(tx) ^ FACTOR == COMMITMENT_NUMBER
    outs = cx.explain_commitment(tx, view)
    built = build_case(case)  # our builder, checked byte for byte against the same vector elsewhere
    kinds = {"to_local": cx.TO_LOCAL, "to_remote": cx.TO_REMOTE, "offered_htlc": cx.OFFERED_HTLC, "received_htlc": cx.RECEIVED_HTLC}
    for o, b in zip(outs, built.outputs, strict=True):
        assert o.amount_sat == b.value_sat
        if b.kind in kinds:
            assert o.type == kinds[b.kind], (o.vout, b.kind)
            if b.witness_script is not None and b.kind != "to_remote":
                assert o.witness_script == b.witness_script
        else:  # the anchors: their funding keys are not among the offline keys
            assert o.type == cx.UNKNOWN and o.amount_sat == 330
    for vec_out in case["raw"].get("outputs_in_comments", ()):  # Appendix C lists the to_local script
        if vec_out["type"] == "to_local":
            (mine,) = [o for o in outs if o.type == cx.TO_LOCAL]
            assert mine.witness_script == H(vec_out["wscript"]) and mine.amount_sat == vec_out["amount_sat"]
    # the justice tx takes to_local and every HTLC output; each signature verifies
    revoked = [o for o in outs if o.type in (cx.TO_LOCAL, cx.OFFERED_HTLC, cx.RECEIVED_HTLC)]
    assert len(revoked) == len(built.htlc_outputs) + (built.to_local_vout is not None)
    if not revoked:  # only to_remote is left: nothing to punish
        return
    swept = [justice.RevokedOutput(tx.outpoint(o.vout), o.amount_sat, o.witness_script, o.type) for o in revoked]
    jtx = justice.sweep_revoked_outputs(swept, priv, feerate_per_kw=253, destination_script=DEST)
    for i, (txin, o) in enumerate(zip(jtx.inputs, revoked, strict=True)):
        sig, second, ws = txin.witness
        assert ws == o.witness_script and txin.prevout == tx.outpoint(o.vout)
        assert verify_input(jtx, i, ws, o.amount_sat, view.keys.revocation_pubkey, sig[:-1])
        assert second == (b"\x01" if o.type == cx.TO_LOCAL else view.keys.revocation_pubkey)
        interpret_input(jtx, i, tx.outputs[o.vout].script_pubkey, o.amount_sat)  # the script interpreter agrees


def test_claims_of_the_vector_outputs():
    case = next(c for c in CASES if c["id"].startswith("C:") and len(c["htlc_ids"]) == 5)
    outs = {o.type: o for o in cx.explain_commitment(Transaction.from_hex(case["commit_tx"]), vector_view(case)[0])}
    assert [c.to_json() for c in outs[cx.TO_LOCAL].claims] == [
        {"who": "us", "how": "with the revocation key (justice)", "when": "now"},
        {"who": "them", "how": "with the delayed payment key (to_local)", "when": f"after to_self_delay {TO_SELF_DELAY} blocks from confirmation"},
    ]
    assert [(c.who, c.when) for c in outs[cx.TO_REMOTE].claims] == [("us", "now")]
    offered = outs[cx.OFFERED_HTLC]
    assert [(c.who, c.when) for c in offered.claims] == [("us", "now"), ("us", "now"), ("them", f"after cltv_expiry {offered.htlc.cltv_expiry}")]
    received = outs[cx.RECEIVED_HTLC]
    assert received.claims[-1].to_json() == {"who": "us", "how": "by timing it out", "when": f"after cltv_expiry {received.htlc.cltv_expiry}"}
    assert received.to_json()["payment_hash"] == received.htlc.payment_hash.hex()


def test_without_htlcs_only_to_local_and_to_remote_are_known():
    case = next(c for c in CASES if c["id"].startswith("C:") and len(c["htlc_ids"]) == 5)
    outs = cx.explain_commitment(Transaction.from_hex(case["commit_tx"]), vector_view(case, with_htlcs=False)[0])
    assert sorted(o.type for o in outs if o.type != cx.UNKNOWN) == [cx.TO_LOCAL, cx.TO_REMOTE]


def test_explain_transaction_kinds():
    case = CASES[0]
    tx = Transaction.from_hex(case["commit_tx"])
    view, _ = vector_view(case)
    e = cx.explain_transaction(tx, funding_outpoint=FUNDING_OUTPOINT, obscure_factor=FACTOR, views=[view],
                               secret_of=lambda v: PER_COMMITMENT_SECRET)
    j = e.to_json()
    assert (j["kind"], j["owner"], j["commitment_number"], j["revoked"]) == ("commitment", "remote", 42, True)
    assert j["per_commitment_secret"] == PER_COMMITMENT_SECRET.hex() and j["spends_channel"]
    assert obscure_factor(H(P["local_payment_basepoint"]), H(P["remote_payment_basepoint"])) == FACTOR
    # another channel's funding: a commitment, of no channel of ours
    other = cx.explain_transaction(tx, funding_outpoint=OutPoint(b"\x01" * 32, 0), views=[view])
    assert (other.kind, other.spends_channel, other.owner, other.revoked) == ("commitment", False, None, False)
    # the same input with locktime 0: a mutual close
    close = Transaction(2, (TxIn(FUNDING_OUTPOINT, b"", 0xFFFFFFFF),), (TxOut(9_000_000, DEST),), 0)
    c = cx.explain_transaction(close, funding_outpoint=FUNDING_OUTPOINT, views=[view])
    assert (c.kind, c.revoked, [o.type for o in c.outputs]) == ("mutual_close", False, ["close_output"])
    assert "nothing to punish" in c.summary


def test_offline_view_refuses_bad_keys():
    case = CASES[0]
    good = dict(
        per_commitment_secret=PER_COMMITMENT_SECRET, revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET,
        remote_delayed_payment_basepoint=H(INTERNAL["local_delayed_payment_basepoint"]), to_self_delay=144,
    )
    cx.offline_view(**good)
    for bad in (
        dict(per_commitment_secret=b"\x00" * 32),
        dict(revocation_basepoint_secret=b"\xff" * 32),
        dict(remote_delayed_payment_basepoint=b"\x02" + b"\x00" * 32),
        dict(remote_delayed_payment_basepoint=b"\x02" * 32),
        dict(to_self_delay=70_000),
        dict(htlcs=[vector_htlc(0)]),  # HTLCs without the htlc basepoints
    ):
        with pytest.raises(InputError):
            cx.offline_view(**{**good, **bad})
    assert case


@pytest.mark.parametrize("text,ok", [
    ("offered:" + "11" * 32 + ":500", True),
    ("received:" + "11" * 32 + ":0", True),
    ("sent:" + "11" * 32 + ":500", False),
    ("offered:" + "11" * 31 + ":500", False),
    ("offered:zz:500", False),
    ("offered:" + "11" * 32 + ":-1", False),
    ("offered:" + "11" * 32 + ":4294967296", False),
    ("offered", False),
])
def test_parse_htlc_spec(text, ok):
    if ok:
        h = cx.parse_htlc_spec(text)
        assert h.offered == text.startswith("offered") and h.payment_hash == b"\x11" * 32
    else:
        with pytest.raises(InputError) as e:
            cx.parse_htlc_spec(text)
        assert len(str(e.value)) < 120  # quotes a short prefix at most


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_explaining_random_bytes_raises_only_clean_errors(data):
    """Random bytes as a transaction: either no transaction (DecodeError), or explained."""
    from lncli.errors import DecodeError

    try:
        tx = Transaction.from_bytes(data)
    except DecodeError:
        return
    view, _ = vector_view(CASES[0])
    e = cx.explain_transaction(tx, funding_outpoint=FUNDING_OUTPOINT, obscure_factor=FACTOR, views=[view])
    assert e.to_json()["txid"] == tx.txid_hex()
    cx.explain_commitment(tx, view)
