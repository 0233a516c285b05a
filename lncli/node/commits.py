"""Write before send: the group commit of channel outcomes, and the hand-over of monitor updates.

:meth:`CommitGroup.commit` takes what a channel handler returned (an ``Outcome``) and:

1. the channel record, its monitor updates, and every database effect of its events (payment
   results, forwards, ``extra``) are written in ONE SQLite transaction (:meth:`CommitGroup._write`,
   through a :class:`ChannelStore`);
2. only then are its messages sent to the peer;
3. then its events are acted on (the manager's ``act``).

Outcomes committed during one event-loop callback share one transaction (group commit). Some
messages deliberately go ahead of their write: an update_add_htlc alone commits nothing
(:meth:`CommitGroup.send_ahead`); an outcome that only waits for the channel's batched
commitment_signed may be held (:meth:`CommitGroup._holdable`, :data:`COMMIT_DELAY`).

Monitor updates are applied and written by the chain watcher
(:class:`lncli.monitor.watcher.ChainWatcher`, whose store shares the node's connection) inside
the channel's transaction; without a watcher, or if it refuses one, they wait in the
``channel_monitor_queue`` table and are handed over at the next start (:meth:`CommitGroup.drain_queue`).

The database is reached only through the small :class:`ChannelStore` interface, so a test can
pass a store whose writes fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from lncli.channel import events as ev
from lncli.channel.channel import Channel, ChannelError
from lncli.channel.events import Outcome
from lncli.errors import RefusedError
from lncli.node.entry import Entry
from lncli.store.db import transaction

log = logging.getLogger("lncli.channels")

#: Commitment batching: a commitment_signed that would only remove HTLCs (ones the peer fulfilled
#: or failed, ones we fulfilled) waits this long (seconds; ``commit-delay=MS`` in lncli.conf, 0 to
#: sign at once), so whatever comes next (the next payment's update_add_htlc) rides in the same
#: commitment: one round trip, one signature and one disk sync fewer. The update_fulfill_htlc
#: itself goes at once (the preimage is what the payer waits for); adds, fee updates and our
#: fails are signed at once.
COMMIT_DELAY = 0.010

# Messages that may wait, with the rest of their write, for the channel's batched
# commitment_signed: the updates it will cover (not a fulfill: its preimage is news), and the
# revoke_and_ack it follows when that lets the peer make no progress (revocation_can_wait).
_HOLDABLE_MESSAGES = frozenset(("revoke_and_ack", "update_add_htlc", "update_fail_htlc", "update_fail_malformed_htlc"))


class Store(Protocol):
    """What :class:`CommitGroup` needs from the database (:class:`ChannelStore` is the real one)."""

    def transaction(self) -> AbstractContextManager[Any]:
        """Begin a transaction; the context yields the connection (for the ``extra`` writes and
        the monitor store) and commits on exit (rolls back on an exception)."""

    def write_record(self, conn, row_id: int, state: str, record: str, now: int) -> None:
        """The usual write: only the channel's record (and state) moved."""

    def write_row(self, conn, row_id: int, state: str, record: str, meta: tuple, now: int) -> None:
        """The record and the other columns (``meta``: channel_id, funding_tx hex, ...)."""

    def queue_monitor_updates(self, conn, channel_id: bytes, updates: list) -> None:
        """Keep monitor updates the watcher did not take in ``channel_monitor_queue``."""

    def drop_queued(self, conn, channel_id: bytes, upto: int) -> None:
        """Forget the queued monitor updates of ``channel_id`` up to ``upto`` (handed over)."""

    def queued_monitor_updates(self) -> list[tuple[bytes, str]]:
        """Every queued monitor update: (channel_id, JSON body), by channel and update_id."""


class ChannelStore:
    """The ``channels`` and ``channel_monitor_queue`` tables on the node's connection."""

    def __init__(self, db):
        self.db = db

    def transaction(self):
        return transaction(self.db)

    def write_record(self, conn, row_id: int, state: str, record: str, now: int) -> None:
        conn.execute("UPDATE channels SET state=?, record=?, updated_at=? WHERE id=?", (state, record, now, row_id))

    def write_row(self, conn, row_id: int, state: str, record: str, meta: tuple, now: int) -> None:
        conn.execute(
            "UPDATE channels SET channel_id=?, state=?, record=?, funding_tx=?, funding_height=?, funding_txindex=?, "
            "watch_from=?, closing_tx=?, closing_txid=?, closing_height=?, close_reason=?, updated_at=? WHERE id=?",
            (meta[0], state, record, *meta[1:], now, row_id),
        )

    def queue_monitor_updates(self, conn, channel_id: bytes, updates: list) -> None:
        for u in updates:
            conn.execute(
                "INSERT OR REPLACE INTO channel_monitor_queue(channel_id, update_id, body) VALUES(?,?,?)",
                (channel_id, u.update_id, json.dumps(u.to_json(), separators=(",", ":"))),
            )

    def drop_queued(self, conn, channel_id: bytes, upto: int) -> None:
        conn.execute("DELETE FROM channel_monitor_queue WHERE channel_id=? AND update_id<=?", (channel_id, upto))

    def queued_monitor_updates(self) -> list[tuple[bytes, str]]:
        rows = self.db.execute("SELECT channel_id, body FROM channel_monitor_queue ORDER BY channel_id, update_id").fetchall()
        return [(bytes(cid), body) for cid, body in rows]


class Settlement(Protocol):
    """What the commit group asks of the payments component (:class:`lncli.node.payments.Payments`).
    Direct calls, not events: each returns something the commit needs, or runs inside its
    transaction, at a fixed point of the write-before-send order."""

    reported: set

    def settle_incoming(self, e: Entry, event: ev.HtlcReceived) -> Outcome: ...

    def in_transaction(self, conn, e: Entry, events: list) -> None: ...

    def take_paid(self) -> list: ...

    def write_paid(self, conn, paid: list) -> None: ...

    def prepare_sessions(self) -> None: ...

    def prepare(self, e: Entry) -> None: ...


def _tx_hex(e: Entry, attr: str) -> str | None:
    """``e.<attr>.to_hex()``, serialised once per transaction object (written at every flush)."""
    tx = getattr(e, attr)
    if tx is None:
        return None
    cached = e.hex_cache.get(attr)
    if cached is not None and cached[0] is tx:
        return cached[1]
    h = tx.to_hex()
    e.hex_cache[attr] = (tx, h)
    return h


def rollback(e: Entry, durable: bool = False) -> None:
    """Forget in-memory changes of a handler that raised (back to the last committed record),
    or with ``durable`` of a write that failed (back to the last record on disk)."""
    record = e.durable if durable else e.saved
    if record:
        e.channel = Channel.from_record(json.loads(record))
        e.saved = record


@dataclass
class _Pending:
    """An outcome committed in memory, waiting for its group write (:meth:`CommitGroup._flush`)."""

    entry: Entry
    out: Outcome
    extra: Any
    record: str
    now: int
    quiet: bool = False  # an update received: nothing to answer, nothing lost at a crash


class CommitGroup:
    """The write-before-send commit of channel outcomes (see the module doc).

    ``send_to(peer_id, messages)`` sends (nothing if the peer is away), ``peer(node_id)`` gives
    the connection (or None), ``act(entry, events)`` acts on the events of a written outcome,
    ``is_current(entry)`` tells whether the entry is still the open channel of its id. The
    watcher (None without a chain) and the payments (None: nothing to settle) are set by the
    manager that owns the group."""

    def __init__(self, store: Store, *, send_to: Callable[[bytes, list], None], peer: Callable[[bytes], Any],
                 act: Callable[[Entry, list], None], is_current: Callable[[Entry], bool],
                 commit_delay: float = COMMIT_DELAY, watcher=None, payments: Settlement | None = None):
        self.store = store
        self.send_to = send_to
        self.peer = peer
        self.act = act
        self.is_current = is_current
        self.commit_delay = commit_delay
        self.watcher = watcher  # lncli.monitor.watcher.ChainWatcher (None without a chain)
        self.payments = payments
        self._handed: dict[bytes, int] = {}  # channel_id -> last update handed to the watcher
        self._pending: list[_Pending] = []  # committed outcomes waiting for the next group write
        self._flush_handle: asyncio.Handle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None  # bounds how long _holdable outcomes wait

    def commit(self, e: Entry, out: Outcome, extra=None, *, auto_commit: bool = True, batch: bool = True,
               quiet: bool = False) -> None:
        """Persist ``e`` (record, monitor updates, event effects), then send the messages, then
        act on the events.

        Incoming HTLCs that ``out`` makes irrevocable are settled (fulfilled or failed) here, in
        memory, so their messages ride the same write. Group commit: every outcome committed
        while the event loop runs one callback (e.g. all the messages of one TCP read) is written
        by :meth:`_flush` in ONE SQLite transaction (one disk sync, ``synchronous=FULL``) at the
        loop's next iteration, and only after that commit are their messages sent and their
        events acted on. Without a running event loop the write happens at once (and raises).

        A commitment_signed that would only remove HTLCs the peer settled is batched (see
        :data:`COMMIT_DELAY`) unless ``batch`` is false."""
        ch = e.channel
        settled = self._settle_now(e, out)
        if (auto_commit or settled) and e.reestablished and ch.needs_commitment():
            if not (batch and self.commit_delay > 0 and (ch.only_settlements_pending() or ch.peer_owes_commitment())
                    and self._defer_commitment(e)):
                out.extend(ch.send_commitment())
                if e.commit_timer is not None:  # what it waited for is signed now
                    e.commit_timer.cancel()
                    e.commit_timer = None
        for event in out.events:
            if isinstance(event, ev.BroadcastCommitment):
                e.closing_tx = event.tx
                e.closing_txid = event.tx.txid()
            elif isinstance(event, ev.BroadcastClosing):
                e.closing_tx = event.tx
                e.closing_txid = event.tx.txid()
        record = ch.record_json()
        e.saved = record  # a later handler that fails rolls memory back to here
        self._pending.append(_Pending(e, out, extra, record, int(time.time()), quiet))
        if self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._flush(raise_errors=True)
                return
            self._flush_handle = loop.call_soon(self._flush, False, True)

    def send_ahead(self, e: Entry, out: Outcome) -> None:
        """Send ``out``'s update_add_htlc now, ahead of the write that commits it, so the peer
        checks it and peels its onion while we sign and write. An update alone commits nothing:
        until a commitment_signed covers it the peer forgets it when the connection drops (BOLT
        2), as we do at a crash (it was never written); if the write fails, the connection is
        dropped for that reason. Only when nothing unsent waits for this peer (messages keep
        their order)."""
        if not out.messages or any(m.name != "update_add_htlc" for m in out.messages):
            return
        if not e.reestablished or any(p.entry.peer == e.peer and p.out.messages for p in self._pending):
            return
        peer = self.peer(e.peer)
        if peer is None or peer.close_reason is not None:
            return
        self.send_to(e.peer, out.messages)
        out.messages = []
        e.sent_ahead = True

    def _defer_commitment(self, e: Entry) -> bool:
        """Arm ``e``'s batching timer (True), or False without a running event loop."""
        if e.commit_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return False
            e.commit_timer = loop.call_later(self.commit_delay, self._batched_commitment, e)
        return True

    def _batched_commitment(self, e: Entry) -> None:
        """The batching timer: sign what is still pending (not if the channel closed, the peer
        is away (channel_reestablish settles it) or a later update took it along), and write
        what waited for it."""
        e.commit_timer = None
        if self.is_current(e) and e.reestablished and e.channel.needs_commitment():
            try:
                self.commit(e, Outcome(), batch=False)
            except ChannelError as exc:
                rollback(e)
                log.warning("channel %s: batched commitment_signed not sent: %s", e.channel_id.hex(), exc)
        if self._pending and self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush, False, True)

    def _settle_now(self, e: Entry, out: Outcome) -> bool:
        """Fulfill or fail the incoming HTLCs ``out`` reports irrevocably committed (extends
        ``out``); True if that changed anything."""
        if self.payments is None:
            return False
        follow = Outcome()
        for event in out.events:
            if isinstance(event, ev.HtlcReceived):
                try:
                    follow.extend(self.payments.settle_incoming(e, event))
                except ChannelError as exc:  # settled again at the next start
                    log.warning("channel %s: settling HTLC %d: %s", e.channel_id.hex(), event.htlc_id, exc)
                except Exception:  # noqa: BLE001 - a bug here must not lose the state being committed
                    log.exception("channel %s: settling HTLC %d failed (retried at the next start)",
                                  e.channel_id.hex(), event.htlc_id)
        if follow.messages or follow.monitor_updates or follow.events:
            out.extend(follow)
            return True
        return False

    def flush(self) -> None:
        """Write what :meth:`commit` has pending now (and send it), instead of at the next loop
        iteration."""
        self._flush(raise_errors=True)

    def _holdable(self, p: _Pending) -> bool:
        """Whether ``p`` may wait, unwritten and unsent, for its channel's batched
        commitment_signed (COMMIT_DELAY; the hold timer bounds the wait): its messages are only
        updates that commitment will cover and the revoke_and_ack before it (when the peer waits
        for nothing it brings: Channel.revocation_can_wait), its events only
        fulfills of our own payments already reported to their waiters. An outcome with no
        message (e.g. such a fulfill) may wait without a batched commitment, and so may a quiet
        one (an update received, :data:`_QUIET_UPDATES`) that changed nothing else."""
        e = p.entry
        out = p.out
        if not (out.messages or out.events):
            return p.quiet and not out.monitor_updates and p.extra is None
        if (out.messages or p.extra is not None) and e.commit_timer is None:
            return False
        for m in out.messages:
            if m.name not in _HOLDABLE_MESSAGES:
                return False
            if m.name == "revoke_and_ack" and not e.channel.revocation_can_wait:
                return False
        reported = self.payments.reported if self.payments is not None else ()
        for event in out.events:
            if not isinstance(event, ev.HtlcFulfilled) or (e.channel_id, event.htlc_id) not in reported:
                return False
        return True

    def _flush(self, raise_errors: bool = False, hold: bool = False) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if hold and self._pending and all(self._holdable(p) for p in self._pending):
            # written with the batched commitment_signed, or with whatever comes first: one disk
            # sync and one message write for both; at the latest when the hold timer fires
            loop = asyncio.get_running_loop()
            if self._hold_timer is None:
                self._hold_timer = loop.call_later(max(self.commit_delay, 0.001), self._flush)
            # e.g. an update_add_htlc sent ahead of its commitment_signed: peel its onion and
            # derive the next keys while the peer signs and writes
            quiet = {id(p.entry): p.entry for p in self._pending if p.quiet}
            if quiet:
                loop.call_soon(self._precompute, quiet)
            return
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._write(batch)
        except BaseException:
            # nothing was sent: memory goes back to what the disk says (and a peer that got an
            # update ahead of this write forgets it with the connection)
            for e in {id(p.entry): p.entry for p in batch}.values():
                rollback(e, durable=True)
                if e.sent_ahead:
                    e.sent_ahead = False
                    peer = self.peer(e.peer)
                    if peer is not None:
                        peer.close("our state write failed after an update went ahead of it", abort=True)
            if self.watcher is not None:
                for cid in {p.entry.channel_id for p in batch if p.out.monitor_updates}:
                    try:
                        self.watcher.reload(cid)
                    except Exception:  # noqa: BLE001 - loaded again at the next start
                        log.exception("channel %s: reloading the monitor failed", cid.hex())
            if raise_errors:
                raise
            log.exception("writing the state of %d channel outcome(s) failed; nothing was sent", len(batch))
            return
        for p in batch:
            p.entry.durable = p.record
            p.entry.sent_ahead = False
        # every message of the batch, in order, one write per peer
        by_peer: dict[bytes, list] = {}
        for p in batch:
            if p.out.messages:
                by_peer.setdefault(p.entry.peer, []).extend(p.out.messages)
        for peer_id, messages in by_peer.items():
            self.send_to(peer_id, messages)
        for p in batch:
            self.act(p.entry, p.out.events)
        # while the peer answers: the keys of the next commitments (off the critical path)
        try:
            asyncio.get_running_loop().call_soon(self._precompute, {id(p.entry): p.entry for p in batch})
        except RuntimeError:
            pass

    def _precompute(self, entries: dict) -> None:
        if self.payments is not None:
            try:
                self.payments.prepare_sessions()
            except Exception:  # noqa: BLE001 - only a cache: pay makes its own session
                log.debug("preparing onion sessions failed", exc_info=True)
        for e in entries.values():
            try:
                e.channel.precompute()
                if self.payments is not None and e.channel.received:
                    self.payments.prepare(e)
            except Exception:  # noqa: BLE001 - only a cache; the real work reports errors
                log.debug("channel %s: precomputing failed", e.channel_id.hex(), exc_info=True)

    def _write(self, batch: list) -> None:
        """One transaction for ``batch``: each channel's latest record, every monitor update (into
        the watcher's store on this connection), every payment effect, every ``extra``."""
        latest: dict[int, _Pending] = {}
        for p in batch:
            latest[id(p.entry)] = p
        paid = self.payments.take_paid() if self.payments is not None else []
        written = []
        store = self.store
        with store.transaction() as conn:
            for p in latest.values():
                e, ch = p.entry, p.entry.channel
                meta = (ch.channel_id, _tx_hex(e, "funding_tx"), e.funding_height, e.funding_txindex, e.watch_from,
                        _tx_hex(e, "closing_tx"), e.closing_txid, e.closing_height, e.close_reason)
                if meta == e.written_meta:
                    # the usual write: only the record moved (no index entry, no tx hex rewritten)
                    store.write_record(conn, e.row_id, ch.state.value, p.record, p.now)
                else:
                    store.write_row(conn, e.row_id, ch.state.value, p.record, meta, p.now)
                    written.append((e, meta))
                handed = self._handed.pop(ch.channel_id, None)
                if handed is not None:
                    store.drop_queued(conn, ch.channel_id, handed)
            for p in batch:
                if p.out.monitor_updates:
                    self._stage_monitor(conn, p.entry.channel_id, p.out.monitor_updates)
                if self.payments is not None and p.out.events:
                    self.payments.in_transaction(conn, p.entry, p.out.events)
                if p.extra is not None:
                    p.extra(conn)
            if paid:
                self.payments.write_paid(conn, paid)
        for e, meta in written:  # on disk now
            e.written_meta = meta

    def _stage_monitor(self, conn, channel_id: bytes, updates: list) -> None:
        """Monitor updates in the channel's transaction: applied and written by the chain
        watcher's store (same connection), or kept in ``channel_monitor_queue`` without a watcher
        or when the watcher refuses them (handed over again at the next start)."""
        w = self.watcher
        queue = updates
        if w is not None:
            if channel_id not in w.monitors and channel_id in w.store.channel_ids(include_resolved=True):
                return  # resolved: nothing more to watch
            from lncli.monitor.monitor import MonitorUpdateError

            try:
                w.stage_updates(conn, channel_id, updates)
                return
            except (MonitorUpdateError, RefusedError) as exc:
                log.error("channel %s: the chain watcher refused a monitor update (kept in the queue): %s",
                          channel_id.hex(), exc)
                m = w.monitors.get(channel_id)
                last = m.latest_update_id if m is not None else 0
                queue = [u for u in updates if u.update_id > last]
        self.store.queue_monitor_updates(conn, channel_id, queue)

    def _hand_over(self, channel_id: bytes, updates: list) -> None:
        """Give queued monitor updates to the chain watcher, then drop them from the queue."""
        w = self.watcher
        if w is None:
            return
        m = w.monitors.get(channel_id)
        if m is None and channel_id in w.store.channel_ids(include_resolved=True):
            return  # resolved: nothing more to watch
        last = m.latest_update_id if m is not None else 0
        fresh = [u for u in updates if u.update_id > last]
        try:
            if fresh:
                w.persist_updates(channel_id, fresh)
        except Exception:  # noqa: BLE001 - kept in the queue; retried at the next start
            log.exception("channel %s: handing monitor updates to the watcher failed", channel_id.hex())
            return
        # dropped from the queue by the channel's next transaction (no extra disk sync here)
        self._handed[channel_id] = max(self._handed.get(channel_id, 0), max(u.update_id for u in updates))

    def drain_queue(self) -> None:
        """At start: hand the queued monitor updates over to the watcher."""
        from lncli.monitor.record import update_from_json

        rows = self.store.queued_monitor_updates()
        by_channel: dict[bytes, list] = {}
        for cid, body in rows:
            by_channel.setdefault(bytes(cid), []).append(update_from_json(json.loads(body)))
        for cid, updates in by_channel.items():
            self._hand_over(cid, updates)
        with self.store.transaction() as conn:
            for cid, top in self._handed.items():
                self.store.drop_queued(conn, cid, top)
        self._handed.clear()

    def write_pending(self) -> None:
        """Write (and send) what is pending now, errors logged (at close, after a block)."""
        self._flush()


__all__ = ["CommitGroup", "ChannelStore", "Store", "Settlement", "rollback", "COMMIT_DELAY"]
