"""Channel establishment (lncli/channel/establish.py): open_channel, accept_channel,
funding_created, funding_signed, channel_ready.

Two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import pytest

from lncli.bitcoin.script import p2wsh_script
from lncli.channel import events as ev
from lncli.channel.channel import Channel, ProtocolError
from lncli.channel.state import ChannelState
from lncli.proto.scid import channel_id
from lncli.proto.wire import decode_message
from tests.channel.harness import OTHER, A, B, Pair, of_type

S = ChannelState


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
