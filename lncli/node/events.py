"""The node's events: what one component tells the others, without reaching into them.

A small synchronous bus: :meth:`EventBus.emit` looks the event's type up in a dict and calls each
subscriber directly, in the order they subscribed, before it returns (no task, no queue), so an
event is acted on exactly where it is emitted, as a direct call would be. A subscriber's
exception propagates to the emitter, as it would from a direct call.

The events (each a small dataclass):

- :class:`PeerReady`, :class:`PeerClosed`: :class:`~lncli.node.peers.PeerManager`, once a
  connection becomes the node's current one for its peer (init exchanged), and when the current
  connection of a peer ends (channels: channel_reestablish / abandon an open; gossip: our graph);
- :class:`HtlcResults`: the channels, after the write that made them durable, with the
  fulfills and fails of HTLCs we offered (payments wake their waiters; forwarding settles the
  incoming HTLC);
- :class:`ChannelReady`: a channel reached channel_ready on both sides;
- :class:`PreimageOnChain`, :class:`ChannelResolved`: the chain watcher, through the channels: a
  preimage the peer revealed on chain; a force-closed channel resolved (payments, and the
  forwards still waiting on it: :mod:`lncli.node.onchain_htlcs`);
- :class:`HtlcResolvedOnChain`: the chain watcher, through the channels: an HTLC we offered on a
  force-closed channel was claimed by the peer with its preimage, or timed out deep enough
  (forwards settle the incoming HTLC: :mod:`lncli.node.onchain_htlcs`). Told again after a
  restart: subscribers are idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class PeerReady:
    peer: Any


@dataclass(slots=True)
class PeerClosed:
    peer: Any


@dataclass(slots=True)
class HtlcResults:
    """``results``: the :class:`lncli.channel.events.HtlcFulfilled` / ``HtlcFailed`` of one
    channel outcome, in order, now on disk."""

    entry: Any
    results: list


@dataclass(slots=True)
class ChannelReady:
    entry: Any
    short_channel_id: Any


@dataclass(slots=True)
class PreimageOnChain:
    payment_hash: bytes
    payment_preimage: bytes


@dataclass(slots=True)
class ChannelResolved:
    channel_id: bytes


@dataclass(slots=True)
class HtlcResolvedOnChain:
    """HTLC ``htlc_id`` we offered on ``channel_id``: claimed on chain with ``payment_preimage``,
    or (None) timed out on chain, ``ANTI_REORG_DELAY`` deep (BOLT 5 "reasonable depth")."""

    channel_id: bytes
    htlc_id: int
    payment_hash: bytes
    payment_preimage: bytes | None


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type, tuple[Callable[[Any], None], ...]] = {}

    def subscribe(self, kind: type, fn: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every event of type ``kind`` (after earlier subscribers);
        returns a function that unsubscribes it."""
        self._subscribers[kind] = self._subscribers.get(kind, ()) + (fn,)

        def unsubscribe() -> None:
            subs = self._subscribers.get(kind, ())
            if fn in subs:
                i = subs.index(fn)
                self._subscribers[kind] = subs[:i] + subs[i + 1:]

        return unsubscribe

    def emit(self, event: Any) -> None:
        for fn in self._subscribers.get(type(event), ()):
            fn(event)

    def wants(self, kind: type) -> bool:
        """Whether anything subscribed to ``kind`` (lets an emitter skip building the event)."""
        return bool(self._subscribers.get(kind))


__all__ = ["EventBus", "PeerReady", "PeerClosed", "HtlcResults", "ChannelReady", "PreimageOnChain", "ChannelResolved",
           "HtlcResolvedOnChain"]
