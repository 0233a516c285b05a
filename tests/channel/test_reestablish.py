"""Reconnection (lncli/channel/reestablish.py): channel_reestablish and retransmission.

Two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import pytest

from lncli.channel.channel import Channel, ProtocolError, WeAreBehind
from lncli.channel.state import ChannelState
from lncli.proto.wire import decode_message
from tests.channel.harness import ONION, OTHER, A, B, Pair, normal_pair, phash, preimage, roundtrip

S = ChannelState


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
