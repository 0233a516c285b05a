"""BOLT 7 gossip that cannot be checked yet: kept, bounded, and released when it can be.

A ``channel_announcement`` is checked against the funding output on chain; when its block is not
known to us yet (a peer saw the block before we did), it waits here, keyed by short_channel_id,
until a block at or above that height arrives (BOLT 7 allows accepting an announcement "close to 6
confirmations, in case the receiving node hasn't received the latest block(s) yet"). There is no
bound on how far ahead the block may be, since a node catching up on the chain is behind by any
number of blocks; the bound is on the count (:data:`MAX_PENDING`).

The ``channel_update`` and ``node_announcement`` messages that follow a waiting announcement (the peer
floods them right after it) cannot be checked either: the update's signer and the node's channel
come from the announcement. They wait with it (the newest per direction, per node) and are released
when it is accepted, or dropped with it. Updates for a channel that is neither known nor waiting are
not kept (BOLT 7: "MUST ignore"), only counted.

Nothing leaves silently: every message refused or evicted here is counted by reason in
:attr:`PendingGossip.dropped`, which the node shows in ``lncli graph``.

Pure: the caller gives the heights; no clock, no I/O. ``origin`` is opaque (the peer it came from).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: at most this many channel_announcements wait at once (each with up to 2 updates, 2 node_announcements)
MAX_PENDING = 1000
#: a chain lookup that fails (backend unreachable) is retried at this many later blocks, then dropped
MAX_LOOKUP_RETRIES = 3

# drop reasons (the keys of PendingGossip.dropped)
FULL = "pending_full"
LOOKUP_FAILED = "chain_lookup_failed"
ANNOUNCEMENT_REFUSED = "announcement_refused"  # an update or node_announcement whose announcement failed its check
UNKNOWN_CHANNEL = "update_for_unknown_channel"
UNKNOWN_NODE = "node_announcement_for_unknown_node"


@dataclass
class Waiting:
    """One channel_announcement waiting for its block, with what arrived for it meanwhile."""

    scid: int
    block: int  # the short_channel_id's block height
    raw: bytes
    origin: Any
    node_ids: tuple[bytes, bytes]
    tries: int = 0
    updates: dict[int, tuple[int, bytes, Any]] = field(default_factory=dict)  # direction -> (timestamp, raw, origin)
    node_anns: dict[bytes, tuple[int, bytes, Any]] = field(default_factory=dict)  # node_id -> (timestamp, raw, origin)


class PendingGossip:
    """The waiting announcements, by short_channel_id (as an int)."""

    def __init__(self, max_pending: int = MAX_PENDING, max_lookup_retries: int = MAX_LOOKUP_RETRIES):
        self.max_pending = max_pending
        self.max_lookup_retries = max_lookup_retries
        self.waiting: dict[int, Waiting] = {}
        self.dropped: Counter[str] = Counter()

    def __contains__(self, scid: int) -> bool:
        return scid in self.waiting

    def __len__(self) -> int:
        return len(self.waiting)

    # -- arrivals -------------------------------------------------------------------------------

    def add_announcement(self, scid: int, block: int, raw: bytes, origin: Any,
                         node_ids: tuple[bytes, bytes]) -> str | None:
        """Keep a channel_announcement whose block (``block``) we have not seen yet. Returns None if
        kept (or already waiting), else the reason it was dropped (counted)."""
        if scid in self.waiting:
            return None
        if len(self.waiting) >= self.max_pending:
            return self._drop(FULL)
        self.waiting[scid] = Waiting(scid, block, raw, origin, (bytes(node_ids[0]), bytes(node_ids[1])))
        return None

    def add_update(self, scid: int, direction: int, timestamp: int, raw: bytes, origin: Any) -> bool:
        """Keep a channel_update for a waiting announcement (the newest per direction: an older one
        is superseded, not lost). False (and counted) if no announcement for ``scid`` is waiting."""
        w = self.waiting.get(scid)
        if w is None:
            self._drop(UNKNOWN_CHANNEL)
            return False
        old = w.updates.get(direction)
        if old is None or timestamp > old[0]:
            w.updates[direction] = (timestamp, raw, origin)
        return True

    def add_node_announcement(self, node_id: bytes, timestamp: int, raw: bytes, origin: Any) -> bool:
        """Keep a node_announcement for a node of a waiting announcement (the newest). False (and
        counted) if no waiting announcement names ``node_id``."""
        node_id = bytes(node_id)
        for w in self.waiting.values():
            if node_id in w.node_ids:
                old = w.node_anns.get(node_id)
                if old is None or timestamp > old[0]:
                    w.node_anns[node_id] = (timestamp, raw, origin)
                return True
        self._drop(UNKNOWN_NODE)
        return False

    # -- departures -----------------------------------------------------------------------------

    def due(self, height: int) -> list[Waiting]:
        """Take out the announcements whose block is at or below ``height`` (to check now)."""
        out = [w for w in self.waiting.values() if w.block <= height]
        for w in out:
            del self.waiting[w.scid]
        return out

    def retry(self, w: Waiting) -> bool:
        """Put back an announcement whose chain lookup failed, to try at a later block; False (and
        all it holds counted as dropped) after :attr:`max_lookup_retries` tries."""
        w.tries += 1
        if w.tries > self.max_lookup_retries or len(self.waiting) >= self.max_pending:
            self.refuse(w, LOOKUP_FAILED if w.tries > self.max_lookup_retries else FULL)
            return False
        self.waiting[w.scid] = w
        return True

    def refuse(self, w: Waiting, reason: str | None = None) -> None:
        """``w``'s announcement is given up: counted under ``reason`` if given (an announcement that
        failed its check is not counted: ignoring it is right), and what waited with it under
        ``announcement_refused``."""
        self.waiting.pop(w.scid, None)
        if reason is not None:
            self._drop(reason)
        held = len(w.updates) + len(w.node_anns)
        if held:
            self.dropped[ANNOUNCEMENT_REFUSED] += held

    @staticmethod
    def released(w: Waiting) -> list[tuple[str, bytes, Any]]:
        """What waited with an accepted announcement, to handle now: ("channel_update" | "node_announcement", raw, origin),
        updates first (a node_announcement needs its node's channel, which the announcement gave)."""
        return ([("channel_update", raw, o) for _, raw, o in w.updates.values()]
                + [("node_announcement", raw, o) for _, raw, o in w.node_anns.values()])

    # -- views ----------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "channel_announcements": len(self.waiting),
            "channel_updates": sum(len(w.updates) for w in self.waiting.values()),
            "node_announcements": sum(len(w.node_anns) for w in self.waiting.values()),
        }

    def _drop(self, reason: str) -> str:
        self.dropped[reason] += 1
        return reason


__all__ = ["PendingGossip", "Waiting", "MAX_PENDING", "MAX_LOOKUP_RETRIES"]
