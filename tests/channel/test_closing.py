"""Closing (lncli/channel/closing.py): force close, shutdown, closing_signed, HTLC timeouts.

Two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import pytest

from lncli.bitcoin.ecdsa import verify
from lncli.bitcoin.script import p2wsh_script
from lncli.bitcoin.sighash import SighashCache
from lncli.chain.interpreter import verify_input as interpret
from lncli.channel import events as ev
from lncli.channel.channel import Channel
from lncli.channel.closing import FULFILL_SAFETY_DELTA
from lncli.channel.params import ChannelError
from lncli.channel.state import LOCAL, ChannelState
from lncli.proto import commitment as bolt3
from tests.channel.harness import ONION, A, B, normal_pair, of_type, phash, preimage, script_for

S = ChannelState


def test_force_close_returns_latest_unrevoked_commitment():
    p = normal_pair(push_msat=100_000_000)
    a_tx0, _ = p.ch[A].latest_holder_commitment()
    p.call(B, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.call(B, "send_commitment")
    p.step(A)  # the add
    p.step(A)  # commitment_signed -> A revokes commitment 0
    assert p.sent[A][-1] == "revoke_and_ack"
    tx, _ = p.ch[A].latest_holder_commitment()
    assert tx.txid() != a_tx0.txid()
    assert p.ch[A].local_ctn == 1
    out = p.call(A, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    assert bc.tx.txid() == tx.txid()
    from lncli.proto.keys import commitment_number_from_tx

    assert commitment_number_from_tx(bc.tx.locktime, bc.tx.inputs[0].sequence, p.ch[A].obscure_factor) == 1
    assert p.ch[A].state == S.FORCE_CLOSING
    assert of_type(out.monitor_updates, ev.ChannelForceClosed)


@pytest.mark.parametrize("anchors", [False, True])
def test_force_close_txs_pass_the_interpreter(anchors):
    p = normal_pair(push_msat=300_000_000, anchors=anchors)
    p.call(A, "add_htlc", 40_000_000, phash(1), 700, ONION)
    p.call(B, "add_htlc", 30_000_000, phash(2), 710, ONION)
    p.flush()
    p.call(A, "fulfill_htlc", 0, preimage(2))  # A knows the preimage of B's HTLC
    for side in (A, B):
        c = p.ch[side]
        tx, htlc_txs = c.latest_holder_commitment()
        interpret(tx, 0, p2wsh_script(c.funding_script), c.funding_satoshis)
        assert len(htlc_txs) == 2
        for h in htlc_txs:
            if not h.complete:
                assert not h.offered and side == B
                continue
            vout = h.tx.inputs[0].prevout.vout
            out = tx.outputs[vout]
            interpret(h.tx, 0, out.script_pubkey, out.value_sat)
            # the remote signature verifies under its own sighash type
            stype = bolt3.htlc_remote_sighash_type(anchors)
            sighash = SighashCache(h.tx).segwit_v0(0, h.witness_script, out.value_sat, stype)
            assert verify(c.remote_basepoints.htlc_basepoint and _remote_htlc_key(c, side), sighash, h.remote_signature)


def _remote_htlc_key(c: Channel, side: str) -> bytes:
    _, keys = c.commitment(LOCAL, c.local_ctn)
    return keys.remote_htlc_pubkey


@pytest.mark.parametrize("initiator", [A, B])
@pytest.mark.parametrize("anchors", [False, True])
def test_cooperative_close(initiator, anchors):
    p = normal_pair(push_msat=300_000_000, anchors=anchors)
    p.call(A, "add_htlc", 10_000_000, phash(1), 500, ONION)
    p.flush()
    p.ch[A].local_shutdown_script = script_for("A-close")
    p.ch[B].local_shutdown_script = script_for("B-close")
    p.call(initiator, "shutdown", feerate_per_kw=1000)
    p.flush()
    assert p.ch[A].state == p.ch[B].state == S.SHUTDOWN  # the HTLC is still pending
    with pytest.raises(ChannelError):
        p.ch[A].add_htlc(1000, phash(9), 500, ONION)
    p.call(B, "fulfill_htlc", 0, preimage(1))
    p.flush()
    assert p.ch[A].state == p.ch[B].state == S.CLOSING
    (ca,) = of_type(p.events[A], ev.BroadcastClosing)
    (cb,) = of_type(p.events[B], ev.BroadcastClosing)
    assert ca.tx.txid() == cb.tx.txid() and ca.tx.to_bytes() == cb.tx.to_bytes()
    interpret(ca.tx, 0, p2wsh_script(p.ch[A].funding_script), 1_000_000)
    outs = {o.script_pubkey: o.value_sat for o in ca.tx.outputs}
    assert outs[script_for("B-close")] == 310_000
    assert outs[script_for("A-close")] == 690_000 - ca.fee_satoshis
    p.ch[A].mark_closed()
    assert p.ch[A].state == S.CLOSED


def test_shutdown_without_our_script_is_refused():
    p = normal_pair(push_msat=300_000_000)
    with pytest.raises(ChannelError, match="no shutdown script"):
        p.ch[A].shutdown()
    p.ch[A].local_shutdown_script = script_for("A")
    p.call(A, "shutdown", feerate_per_kw=5000)
    with pytest.raises(ChannelError, match="no shutdown script"):
        p.step(B)  # the node must configure B's script (at open, or before answering)


def test_close_negotiation_counter_proposal():
    p = normal_pair(push_msat=300_000_000)
    p.ch[A].local_shutdown_script = script_for("A")
    p.ch[B].local_shutdown_script = script_for("B")
    p.call(A, "shutdown", feerate_per_kw=20000)
    p.step(B)
    p.ch[B].closing_feerate_per_kw = 1000  # B wants a much lower fee
    p.flush()
    (ca,) = of_type(p.events[A], ev.BroadcastClosing)
    (cb,) = of_type(p.events[B], ev.BroadcastClosing)
    assert ca.tx.txid() == cb.tx.txid()


def test_shutdown_needs_a_standard_script():
    p = normal_pair()
    with pytest.raises(ChannelError, match="standard"):
        p.ch[A].shutdown(b"\x6a\x01\x00\x00\x00")


def test_close_survives_a_reconnect_during_negotiation():
    p = normal_pair(push_msat=300_000_000)
    p.ch[A].local_shutdown_script = script_for("A")
    p.ch[B].local_shutdown_script = script_for("B")
    p.call(A, "shutdown", feerate_per_kw=1000)
    p.step(B)  # B answers shutdown
    p.step(A)  # A (opener) sends closing_signed
    assert p.ch[A].state == S.NEGOTIATING_CLOSING
    p.drop(B)  # closing_signed lost
    p.reconnect()
    p.flush()
    assert p.ch[A].state == p.ch[B].state == S.CLOSING
    (ca,) = of_type(p.events[A], ev.BroadcastClosing)
    (cb,) = of_type(p.events[B], ev.BroadcastClosing)
    assert ca.tx.txid() == cb.tx.txid()


def test_expiring_htlcs():
    p = normal_pair(push_msat=300_000_000)
    p.call(A, "add_htlc", 5_000_000, phash(1), 600, ONION)
    p.call(B, "add_htlc", 5_000_000, phash(2), 620, ONION)
    p.flush()
    assert p.ch[A].expiring_htlcs(599) == []
    assert p.ch[A].expiring_htlcs(600) == [("out", 0)]
    p.call(A, "fulfill_htlc", 0, preimage(2))
    # fulfilled but still on the commitments: FULFILL_SAFETY_DELTA (2R+G+S = 18) blocks before 620
    assert FULFILL_SAFETY_DELTA == 18
    assert p.ch[A].expiring_htlcs(601) == [("out", 0)]
    assert p.ch[A].expiring_htlcs(602) == [("out", 0), ("in", 0)]
    assert p.ch[A].expiring_htlcs(616, fulfill_margin=3) == [("out", 0)]
    assert p.ch[A].expiring_htlcs(617, fulfill_margin=3) == [("out", 0), ("in", 0)]
    assert p.ch[A].expiring_htlcs(601, offered_grace=2) == []
    assert p.ch[A].expiring_htlcs(602, offered_grace=2) == [("out", 0), ("in", 0)]
    p.flush()
    assert p.ch[A].expiring_htlcs(617) == [("out", 0)]  # settled: no longer at risk
