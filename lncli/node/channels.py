"""The node's channels: one :class:`~lncli.channel.channel.Channel` per channel, wired to the
peers, the chain, the wallet and the database.

:class:`ChannelManager` keeps the channels keyed by ``channel_id`` (the
``temporary_channel_id`` until the funding outpoint is known), routes the BOLT 2 messages of a
peer to them, and acts on what each handler returns (an ``Outcome``):

1. the channel record, its monitor updates, and every database effect of its events (payment
   results) are written in ONE SQLite transaction (:meth:`ChannelManager.commit`);
2. only then are its messages sent to the peer;
3. then its events are acted on: build the funding tx with the wallet, broadcast (funding,
   mutual close, our latest commitment), settle incoming HTLCs (``lncli.node.payments``).

So a crash at any point leaves a database whose channel state covers every message the peer
may have seen: on restart each channel is loaded, and ``channel_reestablish`` resumes it.

The chain: every block from :class:`~lncli.node.chainsync.ChainSync` is scanned for funding
transactions (depth and the real short_channel_id go to ``funding_confirmed``), spends of the
funding outputs (mutual close settled; the peer's commitment), and HTLC expiry
(``expiring_htlcs``: an offered HTLC past its ``cltv_expiry`` fails the channel, BOLT 2).

Monitor updates are applied and written by the chain watcher
(:class:`lncli.monitor.watcher.ChainWatcher`, whose store shares the node's connection) inside
the channel's transaction; without a watcher, or if it refuses one, they wait in the
``channel_monitor_queue`` table and are handed over at the next start. Outcomes committed during
one event-loop callback share one transaction (group commit, :meth:`ChannelManager.commit`). The watcher sweeps our outputs after a force close
(ours or the peer's) and answers a revoked commitment with justice.

Commitment feerate (update_fee, BOLT 2): as the opener, the node keeps each NORMAL channel's
commitment feerate near the backend's estimate (``estimate_feerate_per_kw``, read on every block).
On each block and after each ``channel_reestablish``, a channel we opened, with no fee update
still in flight, gets ``update_fee`` + ``commitment_signed`` when the estimate is more than
:data:`FEE_UPDATE_UP` times the current feerate (over 20% higher) or below :data:`FEE_UPDATE_DOWN`
times it (under half): small moves are not worth a round trip, and a falling estimate is
followed lazily (a higher feerate only costs the opener). The new feerate is capped at what the
opener can pay on either commitment while keeping the reserve the peer requires
(:meth:`Channel.max_affordable_feerate`) and never goes below 253 sat/kw. The non-opener never
sends update_fee. For tests on regtest only, ``dev-feerate=N`` in lncli.conf, or the RPC
``dev-setfeerate``, replaces the backend's estimate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from lncli.bitcoin.tx import Transaction, TxOut
from lncli.channel import events as ev
from lncli.channel.channel import Channel, ChannelError, ProtocolError, WeAreBehind
from lncli.channel.events import Outcome
from lncli.channel.params import LocalPolicy
from lncli.channel.state import ChannelState
from lncli.errors import InputError, LncliError, RefusedError
from lncli.proto.wire import Message, ShortChannelId, encode_message
from lncli.store.db import transaction

log = logging.getLogger("lncli.channels")

S = ChannelState
COMPONENT = "channels"
MIGRATIONS = [
    "CREATE TABLE channels (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  channel_id BLOB NOT NULL UNIQUE,\n"
    "  temporary_channel_id BLOB NOT NULL,\n"
    "  peer TEXT NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  private INTEGER NOT NULL DEFAULT 0,\n"
    "  record TEXT NOT NULL,\n"
    "  funding_tx TEXT,\n"
    "  funding_height INTEGER,\n"
    "  funding_txindex INTEGER,\n"
    "  watch_from INTEGER,\n"
    "  closing_tx TEXT,\n"
    "  closing_txid BLOB,\n"
    "  closing_height INTEGER,\n"
    "  close_reason TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE channel_monitor_queue (\n"
    "  channel_id BLOB NOT NULL,\n"
    "  update_id INTEGER NOT NULL,\n"
    "  body TEXT NOT NULL,\n"
    "  PRIMARY KEY (channel_id, update_id)\n"
    ");\n"
    "CREATE TABLE channel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

CHANNEL_MESSAGES = (
    "open_channel",
    "accept_channel",
    "funding_created",
    "funding_signed",
    "channel_ready",
    "update_add_htlc",
    "update_fulfill_htlc",
    "update_fail_htlc",
    "update_fail_malformed_htlc",
    "update_fee",
    "commitment_signed",
    "revoke_and_ack",
    "channel_reestablish",
    "shutdown",
    "closing_signed",
)

# Before funding_signed nothing is on chain: a failure or a restart just forgets the channel.
PRE_FUNDING = (S.AWAITING_ACCEPT, S.AWAITING_FUNDING_TX, S.AWAITING_FUNDING_CREATED, S.AWAITING_FUNDING_SIGNED)
# Channels that talk to their peer (channel_reestablish on every connection).
LIVE = (S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING)
_ZERO32 = bytes(32)
#: update_fee when the estimate exceeds the current commitment feerate by more than 20% ...
FEE_UPDATE_UP = 1.2
#: ... or falls below half of it.
FEE_UPDATE_DOWN = 0.5
FEERATE_FLOOR = 253
#: Route hint fees and delta for a private channel: the peer's channel_update for it is not
#: received yet, so Core Lightning's mainnet defaults stand in (fee-base 1000 msat, fee-per-satoshi
#: 10 ppm, cltv-delta 34, which is also BOLT 2's "at least 34 is reasonable"): a payer that
#: offers a bit more than the peer asks is still routed (a direct peer charges nothing anyway).
HINT_FEE_BASE_MSAT = 1000
HINT_FEE_PROPORTIONAL_MILLIONTHS = 10
HINT_CLTV_EXPIRY_DELTA = 34
#: Commitment batching: a commitment_signed that would only remove HTLCs (ones the peer fulfilled
#: or failed, ones we fulfilled) waits this long (seconds; ``commit-delay=MS`` in lncli.conf, 0 to
#: sign at once), so whatever comes next (the next payment's update_add_htlc) rides in the same
#: commitment: one round trip, one signature and one disk sync fewer. The update_fulfill_htlc
#: itself goes at once (the preimage is what the payer waits for); adds, fee updates and our
#: fails are signed at once.
COMMIT_DELAY = 0.010


def channel_policy(settings) -> LocalPolicy:
    """Our channel policy. Regtest uses a short to_self_delay (10 blocks) so force closes settle
    quickly in tests; the config keys ``to-self-delay`` and ``min-depth`` override."""
    conf = getattr(settings, "config", None)
    regtest = settings.network == "regtest"
    delay = 10 if regtest else 144
    depth = 3
    if conf is not None:
        delay = conf.get_int("to-self-delay", delay)
        depth = conf.get_int("min-depth", depth)
    if not 1 <= delay <= 2016:
        raise InputError(f"to-self-delay={delay} must be between 1 and 2016 blocks")
    if not 1 <= depth <= 144:
        raise InputError(f"min-depth={depth} must be between 1 and 144 blocks")
    return LocalPolicy(to_self_delay=delay, minimum_depth=depth, anchors=False)


@dataclass
class Entry:
    """One channel and what the node knows around it."""

    row_id: int
    channel: Channel
    peer: bytes
    private: bool = False
    funding_tx: Transaction | None = None
    funding_height: int | None = None
    funding_txindex: int | None = None
    watch_from: int | None = None
    closing_tx: Transaction | None = None
    closing_txid: bytes | None = None
    closing_height: int | None = None
    close_reason: str | None = None
    created_at: int = 0
    reestablished: bool = False
    saved: str = ""  # the record of the last commit (JSON), to roll back a failed handler
    durable: str = ""  # the last record known to be on disk, to roll back a failed write
    opened: asyncio.Future | None = None  # opener: resolves at funding broadcast (or fails)
    closed: asyncio.Future | None = None  # resolves when a closing tx is handed out
    commit_timer: asyncio.TimerHandle | None = None  # a batched commitment_signed (COMMIT_DELAY)
    sent_ahead: bool = False  # an update went out before the write now pending (send_ahead)
    hex_cache: dict = field(default_factory=dict)  # attribute -> (tx, its hex), for every write
    written_meta: tuple | None = None  # the columns besides the record as last written (_write)

    @property
    def channel_id(self) -> bytes:
        return self.channel.channel_id

    @property
    def state(self) -> ChannelState:
        return self.channel.state


# Updates whose receipt needs no write of its own: until a commitment_signed covers them they
# commit nothing, and a crash forgets them as BOLT 2 asks of a disconnection. Their outcome waits
# for the next write (the commitment_signed that usually follows in a moment).
_QUIET_UPDATES = frozenset(("update_add_htlc", "update_fee", "update_fail_htlc", "update_fail_malformed_htlc"))

# Messages that may wait, with the rest of their write, for the channel's batched
# commitment_signed: the updates it will cover (not a fulfill: its preimage is news), and the
# revoke_and_ack it follows when that lets the peer make no progress (revocation_can_wait).
_HOLDABLE_MESSAGES = frozenset(("revoke_and_ack", "update_add_htlc", "update_fail_htlc", "update_fail_malformed_htlc"))


def _next_iteration() -> asyncio.Future:
    """A done future: returned by a message handler, it makes the peer handle the rest of the
    read in a task of its own (Peer._process), i.e. after what the event loop has ready."""
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


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


@dataclass
class _Pending:
    """An outcome committed in memory, waiting for its group write (:meth:`ChannelManager._flush`)."""

    entry: Entry
    out: Outcome
    extra: Any
    record: str
    now: int
    quiet: bool = False  # an update received: nothing to answer, nothing lost at a crash


def _msg(name: str, **fields) -> Message:
    from lncli.proto.wire import default_schema

    return Message(default_schema().messages[name], fields)


class ChannelManager:
    def __init__(self, node, policy: LocalPolicy | None = None):
        self.node = node
        self.db = node.db
        self.chain = node.chain  # ChainSync or None
        self.network = node.settings.network
        from lncli.node.features import chain_hash

        self.chain_hash = chain_hash(self.network)
        self.policy = policy if policy is not None else channel_policy(node.settings)
        from lncli.store.db import migrate

        migrate(self.db, COMPONENT, MIGRATIONS)
        self.entries: list[Entry] = []
        self.by_id: dict[bytes, Entry] = {}
        self.feerate_per_kw = 253
        self.dev_feerate: int | None = None  # regtest only: replaces the backend's estimate
        conf = getattr(node.settings, "config", None)
        if conf is not None and conf.get("dev-feerate") is not None:
            if self.network != "regtest":
                raise InputError(f"dev-feerate is a testing option, regtest only (this node is on {self.network})")
            self.dev_feerate = max(FEERATE_FLOOR, conf.get_int("dev-feerate", FEERATE_FLOOR))
            self.feerate_per_kw = self.dev_feerate
        self.commit_delay = COMMIT_DELAY
        if conf is not None and conf.get("commit-delay") is not None:
            ms = conf.get_int("commit-delay", 10)
            if not 0 <= ms <= 1000:
                raise InputError(f"commit-delay={ms} must be between 0 and 1000 ms")
            self.commit_delay = ms / 1000
        self.payments = None  # lncli.node.payments.Payments, set by attach
        self.watcher = None  # lncli.monitor.watcher.ChainWatcher (None without a chain)
        self._handed: dict[bytes, int] = {}  # channel_id -> last update handed to the watcher
        self._pending: list[_Pending] = []  # committed outcomes waiting for the next group write
        self._flush_handle: asyncio.Handle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None  # bounds how long _holdable outcomes wait
        self._tasks: set[asyncio.Task] = set()
        self._unsubscribe = None
        self._load()

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        rows = self.db.execute("SELECT * FROM channels ORDER BY id").fetchall()
        for row in rows:
            ch = Channel.from_record(json.loads(row["record"]))
            e = Entry(
                row_id=row["id"],
                channel=ch,
                peer=bytes.fromhex(row["peer"]),
                private=bool(row["private"]),
                funding_tx=Transaction.from_hex(row["funding_tx"]) if row["funding_tx"] else None,
                funding_height=row["funding_height"],
                funding_txindex=row["funding_txindex"],
                watch_from=row["watch_from"],
                closing_tx=Transaction.from_hex(row["closing_tx"]) if row["closing_tx"] else None,
                closing_txid=row["closing_txid"],
                closing_height=row["closing_height"],
                close_reason=row["close_reason"],
                created_at=row["created_at"],
                saved=row["record"],
                durable=row["record"],
            )
            self.entries.append(e)
            if ch.state in PRE_FUNDING:
                # an open that did not reach funding_signed: nothing is on chain, forget it
                self._abandon(e, "the node restarted before the channel was funded", at_load=True)
            if ch.state != S.CLOSED:
                self.by_id[ch.channel_id] = e

    def _abandon(self, e: Entry, reason: str, at_load: bool = False) -> None:
        """End a channel whose funding tx never went out (releases the coins it reserved)."""
        e.channel.set_state(S.CLOSED)
        e.close_reason = reason
        self.commit(e, Outcome(), auto_commit=False)
        self.by_id.pop(e.channel_id, None)
        if e.funding_tx is not None and self.chain is not None and self.chain.wallet is not None:
            if at_load:  # the chain worker is not running yet
                self.chain.wallet.release(e.funding_tx.txid())
            else:
                self._spawn(self.chain.call(self.chain.wallet.release, e.funding_tx.txid()))
        if e.opened is not None and not e.opened.done():
            e.opened.set_exception(RefusedError(f"channel open failed: {reason}"))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()
            self._drain_queue()
        if self.chain is not None:
            await self._refresh_feerate()
            start = self._scan_from()
            self._unsubscribe = self.chain.subscribe(self.on_block, from_height=start)
            for e in self.entries:
                await self._rebroadcast(e)
        if self.payments is not None:
            self.payments.recover()

    async def close(self) -> None:
        try:
            self._flush()
        except Exception:  # noqa: BLE001 - logged by _flush; nothing unwritten was sent
            pass
        if self.watcher is not None:
            self.watcher.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("channel task failed: %s", task.exception())

    def _scan_from(self) -> int | None:
        row = self.db.execute("SELECT value FROM channel_meta WHERE key='scanned_height'").fetchone()
        watching = [e for e in self.entries if e.state not in (S.CLOSED,) + PRE_FUNDING]
        if not watching:
            return None
        heights = [int(row[0]) + 1] if row else []
        heights += [e.watch_from for e in watching if e.funding_height is None and e.watch_from is not None]
        return min(heights) if heights else None

    async def _refresh_feerate(self) -> None:
        if self.dev_feerate is not None:
            self.feerate_per_kw = self.dev_feerate
            return
        try:
            self.feerate_per_kw = max(FEERATE_FLOOR, int(await self.chain.call(self.chain.backend.estimate_feerate_per_kw)))
        except LncliError as e:
            log.warning("fee estimate failed: %s", e)

    def fee_target(self, e: Entry) -> int | None:
        """The feerate to send in an update_fee for ``e`` now, or None (see the module doc)."""
        ch = e.channel
        if not ch.is_opener or e.state != S.NORMAL or not e.reestablished:
            return None
        if ch.shutdown_sent or ch.shutdown_received or ch.fee_update_pending():
            return None
        current = ch.current_feerate()
        estimate = max(FEERATE_FLOOR, int(self.feerate_per_kw))
        if current * FEE_UPDATE_DOWN <= estimate <= current * FEE_UPDATE_UP:
            return None
        target = ch.max_affordable_feerate(estimate)
        if target == current or (estimate > current and target < current):
            return None  # rising, but we cannot even afford what we have: leave it
        return target

    def maybe_update_fee(self, e: Entry) -> bool:
        """Send update_fee + commitment_signed on ``e`` if its feerate is off (True if sent).
        The fee update is written before it is sent, like every other update."""
        target = self.fee_target(e)
        if target is None:
            return False
        before = e.channel.current_feerate()
        try:
            out = e.channel.update_fee(target)  # checks everything before changing anything
        except ChannelError as exc:
            log.info("channel %s: no update_fee to %d: %s", e.channel_id.hex(), target, exc)
            return False
        log.info("channel %s: update_fee %d -> %d sat/kw", e.channel_id.hex(), before, target)
        self.commit(e, out)  # auto-commit adds commitment_signed when the peer can take one
        return True

    def update_fees(self) -> list[str]:
        """:meth:`maybe_update_fee` on every channel; the channel_ids that got one."""
        return [e.channel_id.hex() for e in list(self.by_id.values()) if self.maybe_update_fee(e)]

    # ------------------------------------------------------------------ persistence

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
        peer = self._peer(e.peer)
        if peer is None or peer.close_reason is not None:
            return
        self._send_to(e.peer, out.messages)
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
        if self.by_id.get(e.channel_id) is e and e.reestablished and e.channel.needs_commitment():
            try:
                self.commit(e, Outcome(), batch=False)
            except ChannelError as exc:
                self._rollback(e)
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
                self._rollback(e, durable=True)
                if e.sent_ahead:
                    e.sent_ahead = False
                    peer = self._peer(e.peer)
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
            self._send_to(peer_id, messages)
        for p in batch:
            self._act(p.entry, p.out.events)
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
        paid = []
        if self.payments is not None:
            paid, self.payments._paid = self.payments._paid, []
        written = []
        with transaction(self.db) as conn:
            for p in latest.values():
                e, ch = p.entry, p.entry.channel
                meta = (ch.channel_id, _tx_hex(e, "funding_tx"), e.funding_height, e.funding_txindex, e.watch_from,
                        _tx_hex(e, "closing_tx"), e.closing_txid, e.closing_height, e.close_reason)
                if meta == e.written_meta:
                    # the usual write: only the record moved (no index entry, no tx hex rewritten)
                    conn.execute("UPDATE channels SET state=?, record=?, updated_at=? WHERE id=?",
                                 (ch.state.value, p.record, p.now, e.row_id))
                else:
                    conn.execute(
                        "UPDATE channels SET channel_id=?, state=?, record=?, funding_tx=?, funding_height=?, funding_txindex=?, "
                        "watch_from=?, closing_tx=?, closing_txid=?, closing_height=?, close_reason=?, updated_at=? WHERE id=?",
                        (ch.channel_id, ch.state.value, p.record, *meta[1:], p.now, e.row_id),
                    )
                    written.append((e, meta))
                handed = self._handed.pop(ch.channel_id, None)
                if handed is not None:
                    conn.execute("DELETE FROM channel_monitor_queue WHERE channel_id=? AND update_id<=?", (ch.channel_id, handed))
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
        for u in queue:
            conn.execute(
                "INSERT OR REPLACE INTO channel_monitor_queue(channel_id, update_id, body) VALUES(?,?,?)",
                (channel_id, u.update_id, json.dumps(u.to_json(), separators=(",", ":"))),
            )

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

    def _drain_queue(self) -> None:
        from lncli.monitor.record import update_from_json

        rows = self.db.execute("SELECT channel_id, body FROM channel_monitor_queue ORDER BY channel_id, update_id").fetchall()
        by_channel: dict[bytes, list] = {}
        for cid, body in rows:
            by_channel.setdefault(bytes(cid), []).append(update_from_json(json.loads(body)))
        for cid, updates in by_channel.items():
            self._hand_over(cid, updates)
        with transaction(self.db) as conn:
            for cid, top in self._handed.items():
                conn.execute("DELETE FROM channel_monitor_queue WHERE channel_id=? AND update_id<=?", (cid, top))
        self._handed.clear()

    def secrets_for_channel(self, channel_id: bytes):
        for e in self.entries:
            if e.channel_id == channel_id:
                return e.channel.secrets
        raise RefusedError(f"no channel {channel_id.hex()}")

    async def on_monitor_action(self, channel_id: bytes, action) -> None:
        from lncli.monitor import monitor as mon

        if isinstance(action, mon.PreimageLearned) and self.payments is not None:
            self.payments.preimage_onchain(action.payment_hash, action.payment_preimage)
        if isinstance(action, mon.Resolved):
            if self.payments is not None:
                self.payments.channel_resolved(channel_id)
            e = next((x for x in self.entries if x.channel_id == channel_id), None)
            if e is not None and e.state == S.FORCE_CLOSING:
                e.channel.mark_closed()
                self.commit(e, Outcome(), auto_commit=False)
                self.by_id.pop(channel_id, None)

    def _insert(self, e: Entry) -> None:
        record = e.channel.record_json()
        now = int(time.time())
        with transaction(self.db) as conn:
            cur = conn.execute(
                "INSERT INTO channels(channel_id, temporary_channel_id, peer, state, private, record, created_at, updated_at) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (e.channel.channel_id, e.channel.temporary_channel_id, e.peer.hex(), e.state.value, int(e.private), record, now, now),
            )
        e.row_id = cur.lastrowid
        e.created_at = now
        e.saved = e.durable = record
        self.entries.append(e)
        self.by_id[e.channel_id] = e

    def _rekey(self, e: Entry, old: bytes) -> None:
        if e.channel_id != old:
            if self.by_id.get(old) is e:
                del self.by_id[old]
            if e.channel_id in self.by_id and self.by_id[e.channel_id] is not e:
                raise ProtocolError("a channel with this channel_id already exists")
            self.by_id[e.channel_id] = e

    def _rollback(self, e: Entry, durable: bool = False) -> None:
        """Forget in-memory changes of a handler that raised (back to the last committed record),
        or with ``durable`` of a write that failed (back to the last record on disk)."""
        record = e.durable if durable else e.saved
        if record:
            e.channel = Channel.from_record(json.loads(record))
            e.saved = record

    # ------------------------------------------------------------------ sending

    def _peer(self, node_id: bytes):
        return self.node.peers.get(node_id)

    def _send(self, e: Entry, messages: list) -> None:
        self._send_to(e.peer, messages)

    def _send_to(self, peer_id: bytes, messages: list) -> None:
        if not messages:
            return
        peer = self._peer(peer_id)
        if peer is None or peer.close_reason is not None:
            return  # channel_reestablish retransmits what matters
        from lncli.node.peer import PeerError

        try:
            peer.send_many([m.encode() for m in messages])
        except PeerError:
            pass

    def _send_error(self, peer_id: bytes, channel_id: bytes, text: str) -> None:
        peer = self._peer(peer_id)
        if peer is None:
            return
        from lncli.node.peer import PeerError

        try:
            peer.send(encode_message("error", channel_id=channel_id, data=text.encode()[:60000]))
        except PeerError:
            pass

    # ------------------------------------------------------------------ events

    def _act(self, e: Entry, events: list) -> None:
        for event in events:
            if isinstance(event, ev.FundingRequired):
                self._spawn(self._build_funding(e, event))
            elif isinstance(event, ev.BroadcastFunding):
                self._spawn(self._broadcast_funding(e))
            elif isinstance(event, ev.WatchFunding):
                pass  # every block is scanned for the funding txid of every channel
            elif isinstance(event, ev.ChannelReady):
                log.info("channel %s ready (%s)", e.channel_id.hex(), event.short_channel_id)
            elif isinstance(event, (ev.BroadcastClosing, ev.BroadcastCommitment)):
                self._spawn(self._broadcast(e.closing_tx, "closing" if isinstance(event, ev.BroadcastClosing) else "commitment"))
                if e.closed is not None and not e.closed.done():
                    e.closed.set_result(e.closing_txid)
        if self.payments is not None:
            self.payments.after_commit(e, events)

    async def _build_funding(self, e: Entry, req: ev.FundingRequired) -> None:
        ch = e.channel
        try:
            if self.chain is None or self.chain.wallet is None:
                raise RefusedError("this node has no wallet to fund the channel")
            tx, _change = await self.chain.call(
                self.chain.wallet.create_funding, [TxOut(req.amount_sat, req.script_pubkey)], self.feerate_per_kw
            )
        except LncliError as exc:
            self._send_error(e.peer, ch.temporary_channel_id, "funding failed")
            self._abandon(e, f"cannot build the funding transaction: {exc}")
            return
        if e.state != S.AWAITING_FUNDING_TX:
            await self.chain.call(self.chain.wallet.release, tx.txid())
            return
        vout = next(i for i, o in enumerate(tx.outputs) if o.script_pubkey == req.script_pubkey and o.value_sat == req.amount_sat)
        e.funding_tx = tx
        old = ch.channel_id
        out = ch.funding_tx_built(tx.txid(), vout)
        self._rekey(e, old)
        self.commit(e, out)

    async def _broadcast_funding(self, e: Entry) -> None:
        tx = e.funding_tx
        if tx is None:
            return
        from lncli.chain.interface import TxRejected

        try:
            await self.chain.call(self.chain.backend.broadcast, tx)
        except TxRejected as exc:
            if "already" not in exc.reason and "known" not in exc.reason and "missingorspent" not in exc.reason:
                log.error("funding tx %s rejected: %s", tx.txid_hex(), exc.reason)
        except LncliError as exc:
            log.warning("broadcasting the funding tx failed (will retry): %s", exc)
        try:
            await self.chain.call(self.chain.wallet.mark_broadcast, tx)
        except LncliError:
            pass
        if e.opened is not None and not e.opened.done():
            e.opened.set_result(e)

    async def _broadcast(self, tx: Transaction | None, what: str) -> None:
        if tx is None or self.chain is None:
            return
        from lncli.chain.interface import TxRejected

        try:
            await self.chain.call(self.chain.backend.broadcast, tx)
            log.info("broadcast %s tx %s", what, tx.txid_hex())
        except TxRejected as exc:
            log.info("%s tx %s not accepted: %s", what, tx.txid_hex(), exc.reason)
        except LncliError as exc:
            log.warning("broadcasting the %s tx failed: %s", what, exc)

    async def _rebroadcast(self, e: Entry) -> None:
        """After a restart: send out again what may not have reached the chain."""
        if e.state == S.AWAITING_LOCKIN and e.channel.is_opener and e.funding_height is None and e.funding_tx is not None:
            await self._broadcast_funding(e)
        if e.state in (S.CLOSING, S.FORCE_CLOSING) and e.closing_height is None and e.closing_tx is not None:
            await self._broadcast(e.closing_tx, "closing")

    # ------------------------------------------------------------------ opening

    async def open(self, peer_id: bytes, funding_satoshis: int, push_msat: int = 0, private: bool = False,
                   timeout: float = 60.0) -> Entry:
        """Open a channel (we fund it); returns once the funding tx is broadcast."""
        peer = self._peer(peer_id)
        if peer is None or peer.close_reason is not None:
            raise RefusedError(f"not connected to {peer_id.hex()}: connect first (lncli connect)")
        if self.chain is None or self.chain.wallet is None:
            raise RefusedError("this node has no wallet to fund a channel")
        balance = await self.chain.call(self.chain.wallet.balance)
        if balance.spendable_sat < funding_satoshis:
            raise RefusedError(
                f"insufficient funds: the wallet can spend {balance.spendable_sat} sat, the channel needs "
                f"{funding_satoshis} sat plus fees (lncli fund)"
            )
        script = await self._shutdown_script()
        ch, open_msg = Channel.new_outbound(
            channel_seed=os.urandom(32),
            temporary_channel_id=os.urandom(32),
            chain_hash=self.chain_hash,
            funding_satoshis=funding_satoshis,
            push_msat=push_msat,
            feerate_per_kw=self.feerate_per_kw,
            policy=self.policy,
            anchors=False,
            announce=not private,  # the bit only: announcement_signatures/gossip are not implemented yet
        )
        ch.local_shutdown_script = script
        e = Entry(row_id=0, channel=ch, peer=peer_id, private=private, reestablished=True)
        e.watch_from = self.chain.height
        e.opened = asyncio.get_running_loop().create_future()
        self._insert(e)
        if self.node.peers.store is not None and self.node.peers.store.get(peer_id) is not None:
            self.node.peers.store.set_persistent(peer_id, True)
        self._send(e, [open_msg])
        try:
            return await asyncio.wait_for(asyncio.shield(e.opened), timeout)
        except TimeoutError:
            if e.state in PRE_FUNDING:
                self._send_error(peer_id, ch.temporary_channel_id, "open timed out")
                self._abandon(e, f"the peer did not complete the open within {timeout:g} s")
            raise RefusedError(f"channel open did not complete within {timeout:g} s") from None

    async def _shutdown_script(self) -> bytes | None:
        if self.chain is None or self.chain.wallet is None:
            return None
        from lncli.bitcoin.address import address_to_script

        address = await self.chain.new_address()
        return address_to_script(address, self.network)

    async def _on_open_channel(self, peer, msg: Message) -> None:
        tmp = bytes(msg.temporary_channel_id)
        if tmp in self.by_id:
            self._send_error(peer.node_id, tmp, "temporary_channel_id already in use")
            return
        script = await self._shutdown_script()
        try:
            ch, accept = Channel.from_open_channel(
                msg,
                channel_seed=os.urandom(32),
                chain_hash=self.chain_hash,
                feerate_estimate_per_kw=self.feerate_per_kw,
                policy=self.policy,
            )
        except ChannelError as exc:
            log.info("refused open_channel from %s: %s", peer.short_id, exc)
            self._send_error(peer.node_id, tmp, str(exc))
            return
        ch.local_shutdown_script = script
        e = Entry(row_id=0, channel=ch, peer=peer.node_id, private=not (ch.channel_flags & 1), reestablished=True)
        e.watch_from = self.chain.height if self.chain is not None else None
        self._insert(e)
        self.commit(e, Outcome(messages=[accept]))

    # ------------------------------------------------------------------ message routing

    def handle_message(self, peer, msg: Message):
        name = msg.name
        if name == "open_channel":
            if bytes(msg.chain_hash) != self.chain_hash:
                self._send_error(peer.node_id, bytes(msg.temporary_channel_id), "open_channel for another chain")
                return None
            return self._on_open_channel(peer, msg)
        cid = msg.get("channel_id")
        if cid is None:
            cid = msg.get("temporary_channel_id")
        cid = bytes(cid)
        e = self.by_id.get(cid)
        if e is None or e.peer != peer.node_id:
            if name == "channel_reestablish":
                closed = next((x for x in self.entries if x.channel_id == cid and x.peer == peer.node_id), None)
                if closed is not None:
                    self._send_error(peer.node_id, cid, "this channel is closed")
                    return None
            self._send_error(peer.node_id, cid, f"unknown channel for {name}")
            return None
        if e.state in (S.FORCE_CLOSING, S.CLOSED):
            self._send_error(peer.node_id, cid, "this channel is closed")
            return None
        old = e.channel_id
        try:
            out = e.channel.handle(msg)
        except WeAreBehind as exc:
            log.error("channel %s: %s", cid.hex(), exc)
            # keep data_loss (set by the channel) and tell the peer to close; never broadcast ours
            saved_flag = e.channel.data_loss
            self._rollback(e)
            e.channel.data_loss = saved_flag or True
            e.close_reason = str(exc)
            self.commit(e, Outcome(), auto_commit=False)
            self._send_error(peer.node_id, cid, str(exc))
            return None
        except ChannelError as exc:
            self._rollback(e)
            self.fail_channel(e, f"{name}: {exc}", send_error=True)
            return None
        except Exception:
            self._rollback(e)  # a bug or a malformed field: drop the connection, keep the state
            raise
        self._rekey(e, old)
        if name == "channel_reestablish":
            e.reestablished = True
        if name == "funding_signed" or name == "funding_created":
            e.watch_from = self.chain.height if self.chain is not None else None
        if name == "update_fulfill_htlc" and self._wake_payer(e, out):
            # pay answers first (its task runs next); this outcome is committed right after it,
            # before the rest of the read
            asyncio.get_running_loop().call_soon(self._commit_after_reply, e, out)
            return _next_iteration()
        self.commit(e, out, quiet=name in _QUIET_UPDATES)
        if name == "channel_reestablish":
            self.maybe_update_fee(e)  # after what the peer missed, in the same group write
        return None

    def _wake_payer(self, e: Entry, out: Outcome) -> bool:
        """Hand the verified preimages in ``out`` to the payments waiting for them; True if one was."""
        woke = False
        if self.payments is not None:
            for event in out.events:
                if isinstance(event, ev.HtlcFulfilled) and self.payments.fulfilled(e, event):
                    woke = True
        return woke

    def _commit_after_reply(self, e: Entry, out: Outcome) -> None:
        try:
            self.commit(e, out)
        except Exception:  # noqa: BLE001 - as a handler's failure: state back, connection dropped
            log.exception("channel %s: committing a fulfill failed", e.channel_id.hex())
            self._rollback(e)
            peer = self._peer(e.peer)
            if peer is not None:
                peer.close("internal error committing a fulfill", abort=True)

    def on_error(self, peer, msg: Message):
        cid = bytes(msg.channel_id)
        text = bytes(msg.data).decode("utf-8", "replace")[:200]
        targets = (
            [e for e in self.by_id.values() if e.peer == peer.node_id]
            if cid == _ZERO32
            else [e for e in [self.by_id.get(cid)] if e is not None and e.peer == peer.node_id]
        )
        for e in targets:
            self.fail_channel(e, f"the peer sent an error: {text}", send_error=False)
        return None

    def fail_channel(self, e: Entry, reason: str, send_error: bool = True) -> None:
        """Fail a channel (BOLT 2): forget it before funding, else broadcast our latest commitment."""
        log.warning("failing channel %s: %s", e.channel_id.hex(), reason)
        if send_error:
            self._send_error(e.peer, e.channel_id, reason)
        if e.state in PRE_FUNDING:
            self._abandon(e, reason)
            return
        if e.state in (S.CLOSING, S.FORCE_CLOSING, S.CLOSED):
            return  # a mutual close is signed (or we already closed): nothing better to do
        e.close_reason = reason
        try:
            out = e.channel.force_close()
        except WeAreBehind as exc:
            e.close_reason = f"{reason} (not broadcasting: {exc})"
            self.commit(e, Outcome(), auto_commit=False)
            return
        self.commit(e, out, auto_commit=False)

    # ------------------------------------------------------------------ peers

    def peer_ready(self, peer) -> None:
        for e in list(self.by_id.values()):
            if e.peer != peer.node_id:
                continue
            e.reestablished = False
            if e.state in LIVE:
                msg = e.channel.reestablish_message()
                self.commit(e, Outcome(messages=[msg]), auto_commit=False)

    def peer_closed(self, peer) -> None:
        for e in list(self.by_id.values()):
            if e.peer != peer.node_id:
                continue
            e.reestablished = False
            if e.state in PRE_FUNDING:
                self._abandon(e, "the peer disconnected during the open")

    # ------------------------------------------------------------------ chain

    async def on_block(self, block) -> None:
        height = block.height
        await self._refresh_feerate()
        active = [e for e in self.by_id.values() if e.state not in PRE_FUNDING and e.channel.funding_txid is not None]
        if active:
            txids = {tx.txid(): (i, tx) for i, tx in enumerate(block.txs)}
            spends = {}
            for tx in block.txs:
                for txin in tx.inputs:
                    spends[(txin.prevout.txid, txin.prevout.vout)] = tx
            for e in active:
                self._block_for(e, height, txids, spends)
            self.update_fees()
        self._flush()  # the channels' state of this block is on disk before its height is
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO channel_meta(key, value) VALUES('scanned_height', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(height),),
            )

    def _block_for(self, e: Entry, height: int, txids: dict, spends: dict) -> None:
        ch = e.channel
        if e.funding_height is None:
            hit = txids.get(ch.funding_txid)
            if hit is not None:
                e.funding_height, e.funding_txindex = height, hit[0]
        elif e.funding_height > height:  # a reorg took it out
            e.funding_height = e.funding_txindex = None
        if e.funding_height is not None and (e.state == S.AWAITING_LOCKIN or ch.short_channel_id is None) and e.state in LIVE:
            scid = ShortChannelId.from_parts(e.funding_height, e.funding_txindex, ch.funding_output_index)
            out = ch.funding_confirmed(height - e.funding_height + 1, scid)
            self.commit(e, out)
        spender = spends.get((ch.funding_txid, ch.funding_output_index))
        if spender is not None and e.closing_height is None:
            self._funding_spent(e, spender, height)
        if e.state in (S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING):
            expiring = ch.expiring_htlcs(height)
            if expiring:
                kind, hid = expiring[0]
                self.fail_channel(e, f"HTLC {hid} ({'offered' if kind == 'out' else 'fulfilled'}) reaches its cltv_expiry at block {height}")

    def _funding_spent(self, e: Entry, tx: Transaction, height: int) -> None:
        ch = e.channel
        e.closing_height = height
        txid = tx.txid()
        if e.closing_txid is not None and e.closing_txid != txid and e.state == S.FORCE_CLOSING:
            e.close_reason = (e.close_reason or "") + "; the peer's commitment confirmed instead of ours"
        if e.closing_txid is None or e.closing_txid != txid:
            e.closing_txid = txid
            e.closing_tx = tx
            if e.state in (S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING):
                e.close_reason = e.close_reason or "the funding output was spent by the peer's transaction"
                ch.set_state(S.FORCE_CLOSING)
        if e.state == S.CLOSING:
            ch.mark_closed()
        self.commit(e, Outcome(), auto_commit=False)
        if e.state == S.CLOSED:
            self.by_id.pop(e.channel_id, None)

    # ------------------------------------------------------------------ closing

    async def close_channel(self, e: Entry, force: bool = False, timeout: float = 30.0) -> dict:
        if e.state == S.CLOSED or e.state == S.FORCE_CLOSING:
            raise RefusedError(f"channel {e.channel_id.hex()} is already {e.state.value}")
        loop = asyncio.get_running_loop()
        if e.state in PRE_FUNDING:
            self._send_error(e.peer, e.channel_id, "open cancelled")
            self._abandon(e, "cancelled by the user")
            return self.describe(e)
        if force:
            self.fail_channel(e, "force close requested by the user", send_error=True)
            return self.describe(e)
        if e.state == S.CLOSING:
            return self.describe(e)
        peer = self._peer(e.peer)
        if peer is None or not e.reestablished:
            raise RefusedError(
                f"the peer {e.peer.hex()} is not connected: a cooperative close needs it (or use --force)"
            )
        e.closed = loop.create_future()
        if not e.channel.shutdown_sent:
            if e.channel.local_shutdown_script is None:
                e.channel.local_shutdown_script = await self._shutdown_script()
            try:
                out = e.channel.shutdown(feerate_per_kw=self.feerate_per_kw)
            except ChannelError as exc:
                self._rollback(e)
                raise RefusedError(f"cannot close cooperatively: {exc}") from None
            self.commit(e, out)
        try:
            await asyncio.wait_for(asyncio.shield(e.closed), timeout)
        except TimeoutError:
            pass
        return self.describe(e)

    # ------------------------------------------------------------------ queries

    def find(self, text: str) -> Entry:
        """A channel by channel_id, short_channel_id, funding outpoint, or peer node id."""
        from lncli.channel.reference import match_channel, parse_channel_ref
        from lncli.errors import DecodeError

        try:
            ref = parse_channel_ref(text)
        except DecodeError as e:
            raise InputError(str(e)) from None
        if ref.kind == "node_id":
            found = [e for e in self.by_id.values() if e.peer == ref.value]
            if not found:
                raise InputError(f"no open channel with peer {ref.text}")
            if len(found) > 1:
                raise InputError(f"{len(found)} channels with peer {ref.text}: give a channel_id or short_channel_id")
            return found[0]
        candidates = list(self.by_id.values()) + [e for e in self.entries if e.state == S.CLOSED]
        e = match_channel(ref, candidates, key=lambda e: e.channel)
        if e is not None:
            return e
        what = {"channel_id": "channel_id", "outpoint": "funding outpoint"}.get(ref.kind)
        raise InputError(f"no channel with {what} {ref.text}" if what else f"no channel with short_channel_id {ref.value}")

    def describe(self, e: Entry) -> dict:
        ch = e.channel
        s = ch.summary()
        peer = self._peer(e.peer)
        local = s.get("to_us_msat")
        remote = s.get("to_them_msat")
        if local is None:
            local = ch.funding_satoshis * 1000 - ch.push_msat if ch.is_opener else ch.push_msat
            remote = ch.funding_satoshis * 1000 - local
        height = self.chain.height if self.chain is not None else None
        d = {
            "channel_id": ch.channel_id.hex(),
            "short_channel_id": s["short_channel_id"],
            "peer": e.peer.hex(),
            "peer_connected": peer is not None and peer.close_reason is None,
            "active": e.reestablished and ch.state == S.NORMAL and peer is not None and peer.close_reason is None,
            "state": ch.state.value,
            "private": e.private,
            "opener": "local" if ch.is_opener else "remote",
            "capacity_sat": ch.funding_satoshis,
            "local_balance_msat": local,
            "remote_balance_msat": remote,
            "pending_htlcs": s.get("htlcs", 0),
            "feerate_per_kw": s.get("feerate_per_kw", ch.initial_feerate_per_kw),
            "funding_outpoint": s.get("funding_outpoint"),
            "funding_txid": ch.funding_txid[::-1].hex() if ch.funding_txid else None,
            "confirmations": (height - e.funding_height + 1) if (height is not None and e.funding_height is not None) else 0,
            "minimum_depth": ch.minimum_depth,
            "local_reserve_sat": ch.remote_config.channel_reserve_satoshis if ch.remote_config else None,
            "to_self_delay": ch.remote_config.to_self_delay if ch.remote_config else None,
            "closing_txid": e.closing_txid[::-1].hex() if e.closing_txid else None,
            "close_reason": e.close_reason,
        }
        return d

    def list(self, peer: bytes | None = None) -> list[dict]:
        return [self.describe(e) for e in self.entries if peer is None or e.peer == peer]

    def count(self) -> int:
        return sum(1 for e in self.entries if e.state != S.CLOSED)

    def route_hints(self) -> list[tuple]:
        """BOLT 11 ``r`` hints for an invoice: one single-hop hint per private (unannounced)
        NORMAL channel with a short_channel_id whose peer can still send to us (its balance above
        the reserve we require), best inbound first."""
        from lncli.proto.invoice import RouteHintHop

        found = []
        for e in self.by_id.values():
            ch = e.channel
            if not e.private or e.state != S.NORMAL or ch.short_channel_id is None:
                continue
            _, theirs, _, _ = ch._projected()
            inbound = theirs - ch.local_config.channel_reserve_satoshis * 1000
            if inbound <= 0:
                continue
            hop = RouteHintHop(e.peer, int(ch.short_channel_id), HINT_FEE_BASE_MSAT,
                               HINT_FEE_PROPORTIONAL_MILLIONTHS, HINT_CLTV_EXPIRY_DELTA)
            found.append((inbound, hop))
        found.sort(key=lambda x: -x[0])
        return [(hop,) for _, hop in found]

    def usable(self, peer: bytes) -> list[Entry]:
        """Channels with ``peer`` that can offer an HTLC now (most outbound first)."""
        out = []
        for e in self.by_id.values():
            if e.peer == peer and e.state == S.NORMAL and e.reestablished and e.channel.can_add_htlcs():
                out.append(e)
        out.sort(key=lambda x: -x.channel._projected()[0])
        return out


# ---------------------------------------------------------------------- offline access


def stored_channels(db) -> list[Channel]:
    """Every channel in the node database (closed ones too), each rebuilt from its record exactly
    as the node loads it, so ``channel.secrets`` is what :meth:`ChannelManager.secrets_for_channel`
    gives the chain watcher. For offline tools (``lncli penalty``); reading while a node runs is
    fine (WAL)."""
    rows = db.execute("SELECT record FROM channels ORDER BY id").fetchall()
    return [Channel.from_record(json.loads(row[0])) for row in rows]


# ---------------------------------------------------------------------- wiring


def attach(node) -> ChannelManager:
    from lncli.node import payments

    mgr = ChannelManager(node)
    handlers = node.peers.handlers
    for name in CHANNEL_MESSAGES:
        handlers[name] = mgr.handle_message
    handlers["error"] = mgr.on_error
    # follow the peer manager's connection hooks (looked up per connection)
    pm = node.peers
    ready, closed = pm._on_ready, pm._on_closed

    def on_ready(peer) -> None:
        ready(peer)
        if pm.peers.get(peer.node_id) is peer:
            mgr.peer_ready(peer)

    def on_closed(peer) -> None:
        current = pm.peers.get(peer.node_id) is peer
        closed(peer)
        if current and peer.node_id not in pm.peers:
            mgr.peer_closed(peer)

    pm._on_ready = on_ready
    pm._on_closed = on_closed
    node.channel_count_source = mgr.count
    if node.chain is not None:
        from lncli.monitor.store import MonitorStore
        from lncli.monitor.watcher import ChainWatcher

        chain = node.chain
        mgr.watcher = ChainWatcher(
            chain,
            MonitorStore(node.db),
            chain.backend.broadcast,
            mgr.secrets_for_channel,
            lambda: chain.wallet.new_address(False),
            feerate_fn=chain.backend.estimate_feerate_per_kw,
            on_action=mgr.on_monitor_action,
        )
    mgr.payments = payments.Payments(node, mgr)
    register(node.registry, node, mgr)
    return mgr


def register(registry, node, mgr: ChannelManager) -> None:
    from lncli.node.api import parse_node_id

    def _int(value, what: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{what} must be a whole number of at least {minimum}")
        return value

    async def open(node_id: str, amount_sat: int, push_msat: int = 0, private: bool = False, wait: float = 60.0) -> dict:
        nid = parse_node_id(node_id)
        amount_sat = _int(amount_sat, "amount_sat", 1)
        push_msat = _int(push_msat, "push_msat")
        if push_msat > amount_sat * 1000:
            raise InputError("the push amount cannot exceed the channel amount")
        e = await mgr.open(nid, amount_sat, push_msat, bool(private), float(wait))
        return mgr.describe(e)

    async def listchannels(peer: str | None = None, channel: str | None = None) -> list:
        if channel is not None:
            return [mgr.describe(mgr.find(channel))]
        return mgr.list(parse_node_id(peer) if peer is not None else None)

    async def close(channel: str, force: bool = False, wait: float = 30.0) -> dict:
        if not isinstance(channel, str):
            raise InputError("channel must be a channel_id, short_channel_id or peer id")
        return await mgr.close_channel(mgr.find(channel), bool(force), float(wait))

    async def dev_commitment(channel: str) -> dict:
        """DEV/TESTING ONLY (regtest): our latest holder commitment, fully signed, without
        broadcasting it or changing any state. Lets tests keep a commitment that later gets
        revoked and publish it as a cheater would (breach tests); refused off regtest."""
        if mgr.network != "regtest":
            raise RefusedError(f"dev-commitment is a testing RPC, regtest only (this node is on {mgr.network})")
        if not isinstance(channel, str):
            raise InputError("channel must be a channel_id, short_channel_id or peer id")
        e = mgr.find(channel)
        tx, _htlc_txs = e.channel.latest_holder_commitment()
        return {
            "channel_id": e.channel_id.hex(),
            "commitment_number": e.channel.local_ctn,
            "txid": tx.txid_hex(),
            "hex": tx.to_hex(),
        }

    registry.add("open", open)
    registry.add("listchannels", listchannels)
    registry.add("close", close)
    async def dev_setfeerate(feerate_per_kw: int | None = None) -> dict:
        """DEV/TESTING ONLY (regtest): use ``feerate_per_kw`` instead of the backend's estimate
        (None: back to the estimate) and update the fee of our channels at once."""
        if mgr.network != "regtest":
            raise RefusedError(f"dev-setfeerate is a testing RPC, regtest only (this node is on {mgr.network})")
        if feerate_per_kw is not None:
            feerate_per_kw = _int(feerate_per_kw, "feerate_per_kw", FEERATE_FLOOR)
        mgr.dev_feerate = feerate_per_kw
        if mgr.chain is not None or feerate_per_kw is not None:
            if feerate_per_kw is None:
                await mgr._refresh_feerate()
            else:
                mgr.feerate_per_kw = feerate_per_kw
        return {"feerate_per_kw": mgr.feerate_per_kw, "updated": mgr.update_fees()}

    registry.add("dev-commitment", dev_commitment)
    registry.add("dev-setfeerate", dev_setfeerate)


__all__ = ["ChannelManager", "Entry", "attach", "register", "channel_policy", "stored_channels", "MIGRATIONS", "CHANNEL_MESSAGES"]
