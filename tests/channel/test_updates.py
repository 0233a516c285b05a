"""The updates (lncli/channel/updates.py): update_add_htlc, update_fulfill_htlc,
update_fail_htlc, update_fail_malformed_htlc, update_fee, the sender's and receiver's checks.

Two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import hashlib

import pytest

from lncli.channel import events as ev
from lncli.channel.channel import ProtocolError
from lncli.channel.params import ChannelError
from lncli.channel.state import LOCAL, REMOTE, InboundHTLCState, OutboundHTLCState
from lncli.proto import commitment as bolt3
from lncli.proto.wire import decode_message
from tests.channel.harness import ONION, OTHER, A, B, normal_pair, of_type, phash, preimage


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
