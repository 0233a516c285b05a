"""lncli.proto.gossip_pending: gossip kept until its block (and its announcement) can be checked."""

from __future__ import annotations

from lncli.proto.gossip_pending import PendingGossip
from lncli.proto.scid import ShortChannelId

N1, N2, N3 = b"\x02" + bytes(32), b"\x03" + bytes(32), b"\x02" + b"\x01" * 32


def _scid(block: int) -> int:
    return ShortChannelId(block, 1, 0).to_int()


def test_an_announcement_waits_until_its_block_with_what_followed_it():
    p = PendingGossip()
    s = _scid(110)
    assert p.add_announcement(s, 110, b"ann", "peer b", (N1, N2)) is None
    assert s in p and len(p) == 1
    assert p.add_update(s, 0, 100, b"upd0", "peer b") and p.add_update(s, 1, 100, b"upd1", "peer b")
    assert p.add_node_announcement(N2, 100, b"na2", "peer b")
    assert p.counts() == {"channel_announcements": 1, "channel_updates": 2, "node_announcements": 1}
    assert p.due(109) == [] and s in p  # the block below: not yet
    (w,) = p.due(110)
    assert (w.raw, w.origin, w.block) == (b"ann", "peer b", 110) and s not in p
    # updates first: the node_announcement needs the channel the announcement brings
    assert PendingGossip.released(w) == [("channel_update", b"upd0", "peer b"), ("channel_update", b"upd1", "peer b"),
                                         ("node_announcement", b"na2", "peer b")]
    assert p.counts() == {"channel_announcements": 0, "channel_updates": 0, "node_announcements": 0}
    assert not p.dropped


def test_a_later_block_releases_it_too_and_a_repeat_is_not_kept_twice():
    p = PendingGossip()
    s = _scid(110)
    assert p.add_announcement(s, 110, b"ann", "b", (N1, N2)) is None
    assert p.add_announcement(s, 110, b"ann", "c", (N1, N2)) is None  # the same from another peer
    assert len(p) == 1
    (w,) = p.due(115)  # the node caught up several blocks at once
    assert w.origin == "b"


def test_only_the_newest_update_per_direction_and_node_waits():
    p = PendingGossip()
    s = _scid(7)
    p.add_announcement(s, 7, b"ann", "b", (N1, N2))
    assert p.add_update(s, 0, 200, b"new", "b") and p.add_update(s, 0, 100, b"old", "c")
    assert p.add_node_announcement(N1, 5, b"na-old", "b") and p.add_node_announcement(N1, 6, b"na-new", "c")
    (w,) = p.due(7)
    assert PendingGossip.released(w) == [("channel_update", b"new", "b"), ("node_announcement", b"na-new", "c")]
    assert not p.dropped  # superseded is not lost


def test_what_cannot_wait_is_counted_not_silently_lost():
    p = PendingGossip(max_pending=2)
    assert p.add_announcement(_scid(1), 1, b"a", "b", (N1, N2)) is None
    assert p.add_announcement(_scid(2), 2, b"b", "b", (N1, N3)) is None
    assert p.add_announcement(_scid(3), 3, b"c", "b", (N2, N3)) == "pending_full"
    assert not p.add_update(_scid(9), 0, 1, b"u", "b")  # no announcement for it anywhere
    assert not p.add_node_announcement(b"\x03" + b"\x09" * 32, 1, b"n", "b")  # no channel names it
    assert p.dropped == {"pending_full": 1, "update_for_unknown_channel": 1, "node_announcement_for_unknown_node": 1}
    assert p.counts()["channel_announcements"] == 2


def test_a_refused_announcement_counts_what_waited_with_it():
    p = PendingGossip()
    s = _scid(50)
    p.add_announcement(s, 50, b"ann", "b", (N1, N2))
    p.add_update(s, 1, 1, b"u", "b")
    p.add_node_announcement(N1, 1, b"n", "b")
    (w,) = p.due(50)
    p.refuse(w)  # its funding output does not check out: ignoring it is right, not counted
    assert p.dropped == {"announcement_refused": 2}
    assert s not in p


def test_a_failed_chain_lookup_is_retried_then_dropped():
    p = PendingGossip(max_lookup_retries=2)
    s = _scid(50)
    p.add_announcement(s, 50, b"ann", "b", (N1, N2))
    p.add_update(s, 0, 1, b"u", "b")
    (w,) = p.due(50)
    assert p.retry(w) and s in p  # tried again at the next block
    (w,) = p.due(51)
    assert p.retry(w) and s in p
    (w,) = p.due(52)
    assert not p.retry(w) and s not in p
    assert p.dropped == {"chain_lookup_failed": 1, "announcement_refused": 1}
