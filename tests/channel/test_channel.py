"""Channel state machine: two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import hashlib

import pytest

from lncli.bitcoin.ecdsa import verify
from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.chain.interpreter import verify_input as interpret
from lncli.channel import events as ev
from lncli.channel.channel import Channel, ProtocolError, WeAreBehind
from lncli.channel.params import ChannelError
from lncli.channel.state import LOCAL, REMOTE, ChannelState, InboundHTLCState, OutboundHTLCState
from lncli.proto import commitment as bolt3
from lncli.proto.scid import channel_id
from lncli.proto.wire import decode_message

from tests.channel.harness import A, B, ONION, OTHER, Pair, phash, preimage, roundtrip, script_for

S = ChannelState


def normal_pair(**kw) -> Pair:
    p = Pair(**kw)
    p.lock_in()
    return p


def names(p: Pair, side: str) -> list[str]:
    return p.sent[side]


def of_type(items, cls):
    return [x for x in items if isinstance(x, cls)]


# ------------------------------------------------------------------------------- opening


@pytest.mark.parametrize("anchors", [False, True])
@pytest.mark.parametrize("opener", [A, B])
def test_open_both_roles(anchors, opener):
    p = Pair(anchors=anchors, opener=opener, push_msat=1_000_000)
    acc = OTHER[opener]
    o, a = p.ch[opener], p.ch[acc]
    assert o.is_opener and not a.is_opener
    assert o.state == a.state == S.AWAITING_LOCKIN
    assert o.channel_id == a.channel_id == channel_id(p.funding_tx.txid(), 1)
    assert p.sent[opener] == ["funding_created"] and p.sent[acc] == ["funding_signed"]
    # the opener may broadcast only after funding_signed; the accepter only watches
    assert of_type(p.events[opener], ev.BroadcastFunding)
    assert not of_type(p.events[acc], ev.BroadcastFunding)
    (watch,) = of_type(p.events[acc], ev.WatchFunding)
    assert watch.minimum_depth == 3
    assert p.funding_tx.outputs[1].script_pubkey == p2wsh_script(o.funding_script)
    for side in (A, B):
        ids = [u.update_id for u in p.monitor[side]]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        kinds = [type(u) for u in p.monitor[side]]
        assert kinds == [ev.ChannelSetup, ev.LatestHolderCommitment, ev.LatestCounterpartyCommitment]
        p.verify_holder(side)
    assert p.balance(opener)[1] == 1_000_000 and p.balance(acc)[0] == 1_000_000
    p.lock_in()
    p.check_agree()
    assert of_type(p.events[A], ev.ChannelReady) and of_type(p.events[B], ev.ChannelReady)


def test_channel_ready_waits_for_minimum_depth():
    p = Pair()
    out = p.call(A, "funding_confirmed", 2)
    assert not out.messages and not p.ch[A].channel_ready_sent
    out = p.call(A, "funding_confirmed", 3, 0x6F0000000100)
    assert [m.name for m in out.messages] == ["channel_ready"]
    p.step(B)
    assert p.ch[B].state == S.AWAITING_LOCKIN  # B has not seen depth 3 itself
    p.call(B, "funding_confirmed", 3)
    p.step(A)
    assert p.ch[A].state == p.ch[B].state == S.NORMAL
    (ready,) = of_type(p.events[A], ev.ChannelReady)
    assert str(ready.short_channel_id) == "111x0x256"


def test_funding_signature_is_checked():
    p = Pair.__new__(Pair)
    # Build a pair by hand up to funding_created, then corrupt the signature.
    q = Pair()
    ch = q.ch[B]
    bad = decode_message(
        bytes.fromhex("0023") + ch.channel_id + bytes(64)
    )  # funding_signed with a zero signature
    c = Channel.from_record(q.ch[A].to_record())
    c.state = S.AWAITING_FUNDING_SIGNED
    with pytest.raises(ProtocolError):
        c.on_funding_signed(bad)
    assert p is not None


# ------------------------------------------------------------------------------- HTLCs


@pytest.mark.parametrize("anchors", [False, True])
@pytest.mark.parametrize("sender", [A, B])
@pytest.mark.parametrize("how", ["fulfill", "fail", "fail_malformed"])
def test_add_and_remove(anchors, sender, how):
    p = normal_pair(anchors=anchors, push_msat=300_000_000)
    recv = OTHER[sender]
    before = {s: p.balance(s) for s in (A, B)}
    p.call(sender, "add_htlc", 50_000_000, phash(1), 600, ONION)
    assert p.ch[sender].htlc_states()[("out", 0)] == OutboundHTLCState.LOCAL_ANNOUNCED
    p.flush()
    p.check_agree()
    assert p.ch[recv].htlc_states()[("in", 0)] == InboundHTLCState.COMMITTED
    assert p.ch[sender].htlc_states()[("out", 0)] == OutboundHTLCState.COMMITTED
    (got,) = of_type(p.events[recv], ev.HtlcReceived)
    assert (got.htlc_id, got.amount_msat, got.payment_hash, got.cltv_expiry) == (0, 50_000_000, phash(1), 600)
    p.verify_holder(A)
    p.verify_holder(B)
    if how == "fulfill":
        p.call(recv, "fulfill_htlc", 0, preimage(1))
    elif how == "fail":
        p.call(recv, "fail_htlc", 0, b"\x01" * 300)
    else:
        p.call(recv, "fail_malformed_htlc", 0, hashlib.sha256(ONION).digest(), 0x8000 | 0x4000 | 5)
    p.flush()
    p.check_agree()
    assert not p.ch[A].offered and not p.ch[A].received and not p.ch[B].offered and not p.ch[B].received
    moved = 50_000_000 if how == "fulfill" else 0
    assert p.balance(sender)[0] == before[sender][0] - moved
    assert p.balance(recv)[0] == before[recv][0] + moved
    if how == "fulfill":
        (f,) = of_type(p.events[sender], ev.HtlcFulfilled)
        assert f.payment_preimage == preimage(1)
        # the receiver's monitor gets the preimage (to claim on chain); the sender's would have
        # nothing to claim with it
        assert [u.payment_preimage for u in of_type(p.monitor[recv], ev.PaymentPreimage)] == [preimage(1)]
        assert of_type(p.monitor[sender], ev.PaymentPreimage) == []
    else:
        (f,) = of_type(p.events[sender], ev.HtlcFailed)
        if how == "fail":
            assert f.reason == b"\x01" * 300
        else:
            assert f.failure_code == 0xC005 and f.sha256_of_onion == hashlib.sha256(ONION).digest()
    p.verify_holder(A)
    p.verify_holder(B)


def test_a_fulfilled_offer_gives_the_monitor_its_preimage_only_for_a_received_htlc_of_that_hash():
    """A route through us twice on one channel: B offers an HTLC with the hash of the one A
    offered; when B fulfills A's, A's monitor learns the preimage, which claims B's on chain."""
    p = normal_pair(push_msat=300_000_000)
    p.call(A, "add_htlc", 50_000_000, phash(1), 600, ONION)
    p.flush()
    p.call(B, "add_htlc", 40_000_000, phash(1), 590, ONION)
    p.flush()
    p.monitor[A].clear()
    p.call(B, "fulfill_htlc", 0, preimage(1))
    p.flush()
    assert [(u.payment_hash, u.payment_preimage) for u in of_type(p.monitor[A], ev.PaymentPreimage)] == [
        (phash(1), preimage(1))
    ]


def test_many_htlcs_interleaved_commitments():
    p = normal_pair(push_msat=400_000_000, anchors=True)
    # both sides add, both commit before seeing the other's commitment (crossing)
    for i in range(3):
        p.call(A, "add_htlc", 10_000_000 + i, phash(i), 500 + i, ONION)
    for i in range(3, 5):
        p.call(B, "add_htlc", 1_000 + i, phash(i), 500, ONION)  # trimmed (dust)
    p.call(B, "add_htlc", 20_000_000, phash(5), 510, ONION)
    p.call(A, "send_commitment")
    p.call(B, "send_commitment")
    p.flush()
    p.check_agree()
    assert len(p.ch[A].offered) == 3 and len(p.ch[A].received) == 3
    ctx, _ = p.ch[A].commitment(LOCAL, p.ch[A].local_ctn)
    assert len(ctx.trimmed_htlcs) == 2
    for s in (A, B):
        p.verify_holder(s)
    # settle some, fail others, interleaving
    p.call(B, "fulfill_htlc", 0, preimage(0))
    p.call(A, "fail_htlc", 0, b"x")  # B's HTLC ids are 0, 1, 2 (hashes 3, 4, 5)
    p.call(B, "send_commitment")
    p.call(A, "fulfill_htlc", 2, preimage(5))
    p.call(A, "send_commitment")
    p.flush()
    p.check_agree()
    p.call(B, "fail_htlc", 1, b"y")
    p.call(B, "fulfill_htlc", 2, preimage(2))
    p.call(A, "fulfill_htlc", 1, preimage(4))
    p.flush()
    p.check_agree()
    assert not p.ch[A].offered and not p.ch[A].received
    a_ours, a_theirs = p.balance(A)
    assert a_ours == 600_000_000 - 10_000_000 - 10_000_002 + 20_000_000 + 1_004


def test_update_fee():
    p = normal_pair(push_msat=100_000_000)
    p.call(A, "add_htlc", 30_000_000, phash(1), 500, ONION)
    p.flush()
    out = p.call(A, "update_fee", 5000)
    assert [m.name for m in out.messages] == ["update_fee"]
    p.flush()
    p.check_agree()
    for s in (A, B):
        c = p.ch[s]
        assert c.feerate(LOCAL, c.local_ctn) == 5000 and c.feerate(REMOTE, c.remote_ctn) == 5000
        ctx, _ = c.commitment(LOCAL, c.local_ctn)
        assert ctx.base_fee_sat == bolt3.commitment_fee_sat(5000, 1, False)
    with pytest.raises(ChannelError, match="opener"):
        p.ch[B].update_fee(3000)
    with pytest.raises(ChannelError, match="afford"):
        p.ch[A].update_fee(100_000_000)


def test_update_fee_from_non_opener_is_a_protocol_error():
    p = normal_pair()
    msg = decode_message(
        __import__("lncli.proto.wire", fromlist=["encode_message"]).encode_message(
            "update_fee", channel_id=p.ch[A].channel_id, feerate_per_kw=3000
        )
    )
    with pytest.raises(ProtocolError, match="non-opener"):
        p.ch[A].on_update_fee(msg)


def test_sender_side_checks():
    p = normal_pair(push_msat=10_000_000)
    a, b = p.ch[A], p.ch[B]
    with pytest.raises(ChannelError, match="positive"):
        a.add_htlc(0, phash(1), 500, ONION)
    with pytest.raises(ChannelError, match="block height"):
        a.add_htlc(1000, phash(1), 500_000_000, ONION)
    with pytest.raises(ChannelError, match="reserve"):
        a.add_htlc(990_000_000, phash(1), 500, ONION)
    # B (not the opener) has 10_000 sat, reserve 10_000 sat: cannot send anything
    with pytest.raises(ChannelError, match="reserve"):
        b.add_htlc(1_000, phash(1), 500, ONION)
    with pytest.raises(ChannelError, match="not irrevocably committed|no incoming"):
        b.fulfill_htlc(0, preimage(0))
    a.remote_config = a.remote_config.__class__(**{**a.remote_config.to_json(), "max_accepted_htlcs": 2})
    a.add_htlc(1000, phash(1), 500, ONION)
    a.add_htlc(1000, phash(1), 500, ONION)
    with pytest.raises(ChannelError, match="at most 2 HTLCs"):
        a.add_htlc(1000, phash(1), 500, ONION)


def test_receiver_side_checks():
    p = normal_pair(push_msat=10_000_000)
    from lncli.proto.wire import encode_message

    def add(**kw):
        f = dict(
            channel_id=p.ch[A].channel_id, id=0, amount_msat=1000, payment_hash=phash(1), cltv_expiry=500,
            onion_routing_packet=ONION,
        )
        f.update(kw)
        return decode_message(encode_message("update_add_htlc", **f))

    with pytest.raises(ProtocolError, match="id 5"):
        p.ch[B].on_update_add_htlc(add(id=5))
    with pytest.raises(ProtocolError, match="htlc_minimum_msat"):
        p.ch[B].on_update_add_htlc(add(amount_msat=0))
    with pytest.raises(ProtocolError, match="block height"):
        p.ch[B].on_update_add_htlc(add(cltv_expiry=500_000_001))
    with pytest.raises(ProtocolError, match="reserve"):
        p.ch[B].on_update_add_htlc(add(amount_msat=995_000_000))
    with pytest.raises(ProtocolError, match="reserve"):
        p.ch[A].on_update_add_htlc(add(amount_msat=5_000_000))
    fulfill = decode_message(
        encode_message("update_fulfill_htlc", channel_id=p.ch[A].channel_id, id=0, payment_preimage=preimage(1))
    )
    with pytest.raises(ProtocolError, match="not in our current commitment"):
        p.ch[A].on_update_fulfill_htlc(fulfill)


def test_bad_commitment_signature_is_refused_and_state_kept():
    p = normal_pair()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.step(B)  # the add
    p.call(A, "send_commitment")
    data = bytearray(p.queue[B].pop(0))
    data[40] ^= 1  # corrupt the signature
    before = p.ch[B].to_record()
    with pytest.raises(ProtocolError, match="signature"):
        p.ch[B].handle(decode_message(bytes(data)))
    assert p.ch[B].to_record() == before


def test_revoke_and_ack_with_wrong_secret():
    p = normal_pair()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    p.step(B)
    p.step(B)
    raw = bytearray(p.queue[A].pop(0))
    raw[34] ^= 1
    with pytest.raises(ProtocolError, match="does not match"):
        p.ch[A].handle(decode_message(bytes(raw)))


# ------------------------------------------------------------------------------- force close


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


def test_every_commitment_signature_verifies():
    """Each commitment_signed on the wire verifies with ecdsa against the BIP 143 sighash."""
    p = normal_pair(push_msat=200_000_000)
    p.call(A, "add_htlc", 20_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    p.step(B)
    raw = p.queue[B][0]
    msg = decode_message(raw)
    p.step(B)
    ctx, keys = p.ch[B].commitment(LOCAL, p.ch[B].local_ctn)
    from lncli.bitcoin.ecdsa import compact_to_der

    script = funding_script(p.ch[A].secrets.funding_pubkey, p.ch[B].secrets.funding_pubkey)
    sighash = SighashCache(ctx.tx).segwit_v0(0, script, 1_000_000, SIGHASH_ALL)
    assert verify(p.ch[A].secrets.funding_pubkey, sighash, compact_to_der(msg.signature))
    (hsig,) = msg.htlc_signature
    (vout,) = [i for i, o in enumerate(ctx.outputs) if o.htlc is not None]
    htx = bolt3.build_htlc_tx(
        commitment_txid=ctx.tx.txid(), vout=vout, htlc=ctx.outputs[vout].htlc, keys=keys,
        to_self_delay=p.ch[B].remote_config.to_self_delay, feerate_per_kw=2500, anchors=False,
    )
    hs = SighashCache(htx).segwit_v0(0, ctx.outputs[vout].witness_script, 20_000, SIGHASH_ALL)
    assert verify(keys.remote_htlc_pubkey, hs, compact_to_der(hsig))
    p.flush()
    p.check_agree()


# ------------------------------------------------------------------------------- reestablish


def _state_snapshot(p: Pair):
    return {s: (p.balance(s), p.ch[s].local_ctn, p.ch[s].remote_ctn) for s in (A, B)}


@pytest.mark.parametrize("cut", range(0, 9))
def test_reestablish_after_lost_messages(cut):
    """Drop every message in flight after ``cut`` deliveries of an add/commit/revoke/fulfill
    exchange; reconnect; the channel converges and balances add up."""
    p = normal_pair(push_msat=200_000_000)
    p.call(A, "add_htlc", 10_000_000, phash(1), 500, ONION)
    p.call(B, "add_htlc", 7_000_000, phash(2), 500, ONION)
    p.call(A, "send_commitment")
    p.call(B, "send_commitment")
    steps = 0
    while steps < cut and (p.queue[A] or p.queue[B] or any(p.ch[s].needs_commitment() for s in (A, B))):
        for s in (A, B):
            if p.queue[s] and steps < cut:
                p.step(s)
                steps += 1
        for s in (A, B):
            if not p.queue[OTHER[s]] and p.ch[s].needs_commitment() and steps < cut:
                p.call(s, "send_commitment")
    p.drop(A)
    p.drop(B)
    p.reconnect()
    p.flush()
    p.check_agree()
    assert len(p.ch[A].offered) == 1 and len(p.ch[B].offered) == 1
    p.call(B, "fulfill_htlc", 0, preimage(1))
    p.call(A, "fail_htlc", 0, b"no")
    p.flush()
    p.check_agree()
    assert p.balance(A) == (800_000_000 - 10_000_000, 200_000_000 + 10_000_000)


@pytest.mark.parametrize("drop_at", range(1, 8))
def test_reestablish_during_removal(drop_at):
    p = normal_pair(push_msat=200_000_000)
    p.call(A, "add_htlc", 10_000_000, phash(1), 500, ONION)
    p.flush()
    p.call(B, "fulfill_htlc", 0, preimage(1))
    p.call(B, "send_commitment")
    n = 0
    while n < drop_at:
        moved = False
        for s in (A, B):
            if p.queue[s] and n < drop_at:
                p.step(s)
                n += 1
                moved = True
        for s in (A, B):
            if p.ch[s].needs_commitment() and n < drop_at:
                p.call(s, "send_commitment")
                moved = True
        if not moved:
            break
    p.drop(A)
    p.drop(B)
    p.reconnect()
    p.flush()
    p.check_agree()
    assert not p.ch[A].offered and not p.ch[B].received
    assert p.balance(B) == (210_000_000, 790_000_000)


def test_reestablish_twice_in_a_row_and_channel_ready_retransmit():
    p = Pair()
    p.call(A, "funding_confirmed", 3)
    p.call(B, "funding_confirmed", 3)
    p.drop(A)
    p.drop(B)  # both channel_ready lost
    p.reconnect()
    assert "channel_ready" in [decode_message(m).name for m in p.queue[A]]
    p.flush()
    assert p.ch[A].state == p.ch[B].state == S.NORMAL
    p.reconnect()
    p.reconnect()
    p.flush()
    p.call(A, "add_htlc", 1_000_000, phash(1), 500, ONION)
    p.flush()
    p.check_agree()


def test_reestablish_detects_that_we_are_behind():
    p = normal_pair(push_msat=200_000_000)
    old_a = p.ch[A].to_record()
    for i in range(2):
        p.call(A, "add_htlc", 1_000_000, phash(i), 500, ONION)
        p.flush()
    stale = Channel.from_record(old_a)
    theirs = decode_message(p.ch[B].reestablish_message().encode())
    with pytest.raises(WeAreBehind, match="out of date"):
        stale.on_channel_reestablish(theirs)
    assert stale.data_loss
    with pytest.raises(WeAreBehind):
        stale.force_close()
    # and it survives persistence
    with pytest.raises(WeAreBehind):
        roundtrip(stale).latest_holder_commitment()


def test_reestablish_rejects_a_wrong_secret():
    p = normal_pair()
    p.call(A, "add_htlc", 1_000_000, phash(1), 500, ONION)
    p.flush()
    msg = p.ch[B].reestablish_message()
    f = msg.fields()
    f["your_last_per_commitment_secret"] = bytes(32)
    from lncli.proto.wire import encode_message

    bad = decode_message(encode_message("channel_reestablish", **f))
    with pytest.raises(ProtocolError, match="your_last_per_commitment_secret"):
        p.ch[A].on_channel_reestablish(bad)


# ------------------------------------------------------------------------------- close


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


# ------------------------------------------------------------------------------- persistence


def test_record_round_trip_is_stable():
    p = normal_pair(push_msat=50_000_000, anchors=True)
    p.call(A, "add_htlc", 1_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    rec = p.ch[A].to_record()
    again = roundtrip(p.ch[A]).to_record()
    assert rec == again
    with pytest.raises(ValueError):
        Channel.from_record({**rec, "version": 99})


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
    assert p.ch[A].expiring_htlcs(616) == [("out", 0)]
    assert p.ch[A].expiring_htlcs(617) == [("out", 0), ("in", 0)]
    p.flush()
    assert p.ch[A].expiring_htlcs(617) == [("out", 0)]  # settled: no longer at risk


@pytest.mark.parametrize("how", ["fulfill", "fail"])
def test_only_settlements_pending_and_a_merged_commitment(how):
    """After the peer settles our HTLC and signs it, our commitment_signed for it may wait
    (only_settlements_pending); the next add then rides in the same commitment, which both
    sides verify, and the channel ends where the unbatched flow ends."""
    p = normal_pair()
    p.call(A, "add_htlc", 10_000_000, phash(1), 600, ONION)
    p.flush()
    assert not p.ch[A].only_settlements_pending() and not p.ch[B].only_settlements_pending()
    if how == "fulfill":
        p.call(B, "fulfill_htlc", 0, preimage(1))
    else:
        p.call(B, "fail_htlc", 0, b"\x01" * 100)
    # B's own fulfill may wait (the preimage went with the update); its fail may not
    assert p.ch[B].only_settlements_pending() == (how == "fulfill")
    p.call(B, "send_commitment")
    p.step(A)  # the removal
    p.step(A)  # commitment_signed -> revoke_and_ack
    p.step(B)  # revoke_and_ack
    assert p.ch[A].needs_commitment() and p.ch[A].only_settlements_pending()
    assert not p.ch[B].needs_commitment()
    # the next payment joins: one commitment_signed covers the removal and the add
    p.call(A, "add_htlc", 20_000_000, phash(2), 600, ONION)
    assert not p.ch[A].only_settlements_pending()
    ctn = p.ch[A].remote_ctn
    p.call(A, "send_commitment")
    assert p.ch[A].remote_ctn == ctn + 1
    p.flush()
    p.check_agree()
    p.verify_holder(A)
    p.verify_holder(B)
    assert list(p.ch[B].received) == [1] and list(p.ch[A].offered) == [1]
    moved = 10_000_000 if how == "fulfill" else 0
    assert p.balance(B)[0] == moved


def test_speculation_prepares_the_next_exchange():
    """In the usual flow, what speculate() prepares while a node waits is what the next messages
    need: the payee checks the payer's commitment_signed and signs its own, and the payer checks
    the payee's, without building a commitment or signing anew."""
    p = normal_pair(persist=False)
    built = {A: 0, B: 0}
    signed = {A: 0, B: 0}
    for side in (A, B):
        ch = p.ch[side]
        build, sigs = ch._build_commitment, ch._remote_signatures

        def count_build(*a, side=side, build=build):
            built[side] += 1
            return build(*a)

        def count_sigs(*a, side=side, sigs=sigs):
            signed[side] += 1
            return sigs(*a)

        ch._build_commitment, ch._remote_signatures = count_build, count_sigs
    for n in range(1, 4):
        p.call(A, "add_htlc", 10_000_000, phash(n), 600, ONION)
        p.call(A, "send_commitment")
        p.ch[A].speculate()  # A waits for B's revoke_and_ack and commitment_signed
        p.step(B)  # update_add_htlc
        p.ch[B].speculate()  # B waits for A's commitment_signed
        before = dict(built), dict(signed)
        p.step(B)  # commitment_signed -> revoke_and_ack
        p.call(B, "send_commitment")
        p.step(A)  # revoke_and_ack
        p.step(A)  # commitment_signed -> revoke_and_ack
        assert (built, signed) == before  # all of it prepared
        p.step(B)
        p.call(B, "fulfill_htlc", n - 1, preimage(n))
        p.step(A)
    p.flush()
    p.check_agree()
    assert p.balance(B)[0] == 30_000_000


def test_onions_leave_the_record_once_no_message_can_need_them():
    """An offered HTLC keeps its onion until the peer acknowledges the add (a reestablish may
    still have to send the update_add_htlc again); a received one until we settle it. After
    that the record (and the channel loaded from it) carries null."""
    p = normal_pair()
    p.call(A, "add_htlc", 10_000_000, phash(1), 600, ONION)
    p.call(A, "send_commitment")
    assert p.ch[A].offered[0].onion_routing_packet == ONION
    p.step(B)  # update_add_htlc
    p.step(B)  # commitment_signed -> revoke_and_ack
    p.call(B, "send_commitment")
    assert p.ch[B].received[0].onion_routing_packet == ONION
    p.step(A)  # revoke_and_ack: B has the add for good
    assert p.ch[A].offered[0].onion_routing_packet is None
    assert '"onion_routing_packet":null' in p.ch[A].record_json()
    p.step(A)  # commitment_signed -> revoke_and_ack
    p.step(B)
    assert p.ch[B].received[0].onion_routing_packet == ONION  # still to be settled
    p.call(B, "fulfill_htlc", 0, preimage(1))
    assert p.ch[B].received[0].onion_routing_packet is None
    p.flush()
    p.check_agree()
    assert p.balance(B)[0] == 10_000_000


def test_fulfill_without_commitment_then_one_commitment_per_payment():
    """The payee sends update_fulfill_htlc alone (its commitment waits); the next payment's add
    and that fulfill then ride in one commitment each way: one commitment_signed and one
    revoke_and_ack per side per payment. A revoke_and_ack for a commitment that an add entered
    cannot wait; one for a commitment that only fulfills entered can (a flag of the live
    channel: no persistence round trip here)."""
    p = normal_pair(persist=False)

    def queued(side):
        return [decode_message(d).name for d in p.queue[side]]

    for n in range(1, 4):
        p.call(A, "add_htlc", 10_000_000, phash(n), 600, ONION)
        p.call(A, "send_commitment")
        assert queued(B) == ["update_add_htlc", "commitment_signed"]
        p.step(B)
        p.step(B)  # -> revoke_and_ack
        assert not p.ch[B].revocation_can_wait  # the add entered
        if n > 1:
            # B's last fulfill and A's add, in A's commitment at once
            assert p.ch[B].needs_commitment() and not p.ch[B].only_settlements_pending()
        p.call(B, "send_commitment")
        p.step(A)  # revoke_and_ack
        p.step(A)  # commitment_signed -> revoke_and_ack
        assert not p.ch[A].revocation_can_wait
        # B's earlier fulfill, now acked, may wait in B's commitment
        assert p.ch[A].needs_commitment() == (n > 1) and p.ch[A].only_settlements_pending() == (n > 1)
        p.step(B)  # revoke_and_ack: the HTLC is irrevocably B's to settle
        p.call(B, "fulfill_htlc", n - 1, preimage(n))
        assert p.ch[B].needs_commitment() and p.ch[B].only_settlements_pending()
        assert not p.ch[A].peer_owes_commitment()  # a fulfill: A's next add need not wait
        assert queued(A) == ["update_fulfill_htlc"]
        p.step(A)
        assert not p.ch[A].peer_owes_commitment()
    # nothing follows: the waiting commitments go (timer), and only fulfills enter A's
    p.call(B, "send_commitment")
    p.step(A)  # commitment_signed -> revoke_and_ack
    assert p.ch[A].revocation_can_wait
    p.flush()
    p.check_agree()
    p.verify_holder(A)
    p.verify_holder(B)
    assert not p.ch[A].offered and not p.ch[B].received
    assert p.balance(B)[0] == 30_000_000
