"""lncli.node.events: the synchronous event bus."""

from __future__ import annotations

import pytest

from lncli.node.events import ChannelResolved, EventBus, PeerClosed, PeerReady


def test_subscribers_run_in_order_synchronously_and_only_for_their_type():
    bus, seen = EventBus(), []
    bus.subscribe(PeerReady, lambda e: seen.append(("a", e.peer)))
    bus.subscribe(PeerReady, lambda e: seen.append(("b", e.peer)))
    bus.subscribe(PeerClosed, lambda e: seen.append(("closed", e.peer)))
    assert not bus.wants(ChannelResolved) and bus.wants(PeerReady)
    bus.emit(PeerReady("p"))
    assert seen == [("a", "p"), ("b", "p")]  # before emit returned
    bus.emit(ChannelResolved(b"x"))  # no subscriber: nothing happens
    assert seen == [("a", "p"), ("b", "p")]


def test_unsubscribe_and_errors_reach_the_emitter():
    bus, seen = EventBus(), []
    off = bus.subscribe(PeerReady, seen.append)
    off()
    off()  # twice is harmless
    bus.emit(PeerReady(1))
    assert seen == []

    def boom(event):
        raise RuntimeError("subscriber bug")

    bus.subscribe(PeerClosed, boom)
    with pytest.raises(RuntimeError, match="subscriber bug"):
        bus.emit(PeerClosed(2))
