"""The node's channels: one :class:`~lncli.channel.channel.Channel` per channel, wired to the
peers, the chain, the wallet and the database.

:class:`ChannelManager` keeps the channels keyed by ``channel_id`` (the
``temporary_channel_id`` until the funding outpoint is known), opens, closes and describes
them; its other jobs live in modules of their own:

- :mod:`lncli.node.dispatch`: routing a peer's BOLT 2 messages to its channels (and the peer's
  comings and goings);
- :mod:`lncli.node.commits`: write before send, i.e. each handler's outcome (the channel record,
  its monitor updates, and every database effect of its events) is written in ONE SQLite
  transaction, only then are its messages sent to the peer, then its events are acted on (build
  the funding tx with the wallet, broadcast, settle incoming HTLCs with ``lncli.node.payments``);
  and the hand-over of monitor updates to the chain watcher;
- :mod:`lncli.node.channel_chain`: blocks (funding depth, spends, HTLC expiry), funding and
  closing broadcasts, commitment fee updates;
- :mod:`lncli.node.channel_rpc`: the RPC methods.

So a crash at any point leaves a database whose channel state covers every message the peer
may have seen: on restart each channel is loaded, and ``channel_reestablish`` resumes it.

After a write, the fulfills and fails of HTLCs we offered go out as a
:class:`lncli.node.events.HtlcResults` event (payments, then forwarding); what the chain watcher
learns (a preimage on chain, a channel resolved) as :class:`~lncli.node.events.PreimageOnChain`
and :class:`~lncli.node.events.ChannelResolved`.
"""


from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from lncli.bitcoin.tx import Transaction
from lncli.channel import events as ev
from lncli.channel.channel import Channel, ChannelError, ProtocolError
from lncli.channel.events import Outcome
from lncli.channel.params import LocalPolicy
from lncli.channel.state import ChannelState
from lncli.errors import InputError, RefusedError
from lncli.node import events as nev
from lncli.node.channel_chain import FEE_UPDATE_DOWN, FEE_UPDATE_UP, FEERATE_FLOOR, ChainEvents
from lncli.node.commits import COMMIT_DELAY, ChannelStore, CommitGroup, Store, rollback
from lncli.node.dispatch import MessageDispatch
from lncli.node.entry import LIVE, PRE_FUNDING, Entry
from lncli.proto.wire import encode_message
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

#: Route hint fees and delta for a private channel: the peer's channel_update for it is not
#: received yet, so Core Lightning's mainnet defaults stand in (fee-base 1000 msat, fee-per-satoshi
#: 10 ppm, cltv-delta 34, which is also BOLT 2's "at least 34 is reasonable"): a payer that
#: offers a bit more than the peer asks is still routed (a direct peer charges nothing anyway).
HINT_FEE_BASE_MSAT = 1000
HINT_FEE_PROPORTIONAL_MILLIONTHS = 10
HINT_CLTV_EXPIRY_DELTA = 34


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


class ChannelManager(MessageDispatch, ChainEvents):
    """The node's channels. Built with what it uses: the database, the node's settings (network,
    lncli.conf), the chain view (None without a backend), the peer manager (to send) and the
    event bus (what it tells the payments). ``store`` replaces the database for the channel
    writes (tests pass one whose writes fail)."""

    def __init__(self, db, settings, *, chain, peers, events: nev.EventBus, policy: LocalPolicy | None = None,
                 store: Store | None = None):
        self.db = db
        self.chain = chain  # ChainSync or None
        self.peers = peers
        self.events = events
        self.network = settings.network
        from lncli.node.features import chain_hash

        self.chain_hash = chain_hash(self.network)
        self.policy = policy if policy is not None else channel_policy(settings)
        from lncli.store.db import migrate

        migrate(self.db, COMPONENT, MIGRATIONS)
        self.entries: list[Entry] = []
        self.by_id: dict[bytes, Entry] = {}
        self.feerate_per_kw = 253
        self.dev_feerate: int | None = None  # regtest only: replaces the backend's estimate
        conf = getattr(settings, "config", None)
        if conf is not None and conf.get("dev-feerate") is not None:
            if self.network != "regtest":
                raise InputError(f"dev-feerate is a testing option, regtest only (this node is on {self.network})")
            self.dev_feerate = max(FEERATE_FLOOR, conf.get_int("dev-feerate", FEERATE_FLOOR))
            self.feerate_per_kw = self.dev_feerate
        commit_delay = COMMIT_DELAY
        if conf is not None and conf.get("commit-delay") is not None:
            ms = conf.get_int("commit-delay", 10)
            if not 0 <= ms <= 1000:
                raise InputError(f"commit-delay={ms} must be between 0 and 1000 ms")
            commit_delay = ms / 1000
        self.payments = None  # lncli.node.payments.Payments (use_payments)
        self.peer_update = None  # entry -> the peer's channel_update for it, or None (route hints)
        self.commits = CommitGroup(
            store if store is not None else ChannelStore(db),
            send_to=self._send_to,
            peer=self.peer,
            act=self._act,
            is_current=lambda e: self.by_id.get(e.channel_id) is e,
            commit_delay=commit_delay,
            watcher=self._make_watcher(),
        )
        self._tasks: set[asyncio.Task] = set()
        self._unsubscribe = None
        self._load()

    def _make_watcher(self):
        """The chain watcher of our channels' outputs (None without a chain)."""
        if self.chain is None:
            return None
        from lncli.monitor.store import MonitorStore
        from lncli.monitor.watcher import ChainWatcher

        chain = self.chain
        return ChainWatcher(
            chain,
            MonitorStore(self.db),
            chain.backend.broadcast,
            self.secrets_for_channel,
            lambda: chain.wallet.new_address(False),
            feerate_fn=chain.backend.estimate_feerate_per_kw,
            on_action=self.on_monitor_action,
        )

    def use_payments(self, payments) -> None:
        """The payments component (built after the manager, which it uses to offer HTLCs): the
        commit group settles incoming HTLCs and writes payment results through it (direct calls,
        see :class:`lncli.node.commits.Settlement`), the manager wakes a payer with a fulfill
        and recovers at start."""
        self.payments = payments
        self.commits.payments = payments

    @property
    def watcher(self):
        """The chain watcher (lncli.monitor.watcher.ChainWatcher; None without a chain)."""
        return self.commits.watcher

    @property
    def commit_delay(self) -> float:
        return self.commits.commit_delay

    @commit_delay.setter
    def commit_delay(self, value: float) -> None:
        self.commits.commit_delay = value

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
            self.commits.drain_queue()
        if self.chain is not None:
            await self._refresh_feerate()
            start = self._scan_from()
            self._unsubscribe = self.chain.subscribe(self.on_block, from_height=start)
            for e in self.entries:
                await self._rebroadcast(e)
        if self.payments is not None:
            self.payments.recover()

    async def close(self) -> None:
        if self.payments is not None:
            self.payments.htlc_sets.close()  # held parts stay committed; settled again at the next start
        try:
            self.commits.write_pending()
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

    # ------------------------------------------------------------------ persistence (lncli.node.commits)

    def commit(self, e: Entry, out: Outcome, extra=None, *, auto_commit: bool = True, batch: bool = True,
               quiet: bool = False) -> None:
        """Persist ``e``'s outcome, then send its messages, then act on its events
        (:meth:`lncli.node.commits.CommitGroup.commit`)."""
        self.commits.commit(e, out, extra, auto_commit=auto_commit, batch=batch, quiet=quiet)

    def send_ahead(self, e: Entry, out: Outcome) -> None:
        """Send ``out``'s update_add_htlc ahead of its write (:meth:`lncli.node.commits.CommitGroup.send_ahead`)."""
        self.commits.send_ahead(e, out)

    def flush(self) -> None:
        """Write what :meth:`commit` has pending now (and send it), instead of at the next loop
        iteration."""
        self.commits.flush()

    def secrets_for_channel(self, channel_id: bytes):
        for e in self.entries:
            if e.channel_id == channel_id:
                return e.channel.secrets
        raise RefusedError(f"no channel {channel_id.hex()}")

    async def on_monitor_action(self, channel_id: bytes, action) -> None:
        from lncli.monitor import monitor as mon

        if isinstance(action, mon.PreimageLearned):
            self.events.emit(nev.PreimageOnChain(action.payment_hash, action.payment_preimage))
        if isinstance(action, mon.OfferedHtlcResolved):
            self.events.emit(nev.HtlcResolvedOnChain(channel_id, action.htlc_id, action.payment_hash, action.payment_preimage))
        if isinstance(action, mon.Resolved):
            self.events.emit(nev.ChannelResolved(channel_id))
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

    # ------------------------------------------------------------------ sending

    def peer(self, node_id: bytes):
        """The current connection to ``node_id`` (or None)."""
        return self.peers.get(node_id)

    def _send(self, e: Entry, messages: list) -> None:
        self._send_to(e.peer, messages)

    def _send_to(self, peer_id: bytes, messages: list) -> None:
        if not messages:
            return
        peer = self.peer(peer_id)
        if peer is None or peer.close_reason is not None:
            return  # channel_reestablish retransmits what matters
        from lncli.node.peer import PeerError

        try:
            peer.send_many([m.encode() for m in messages])
        except PeerError:
            pass

    def _send_error(self, peer_id: bytes, channel_id: bytes, text: str) -> None:
        peer = self.peer(peer_id)
        if peer is None:
            return
        from lncli.node.peer import PeerError

        try:
            peer.send(encode_message("error", channel_id=channel_id, data=text.encode()[:60000]))
        except PeerError:
            pass

    # ------------------------------------------------------------------ events

    def _act(self, e: Entry, events: list) -> None:
        """After the write of an outcome: act on its events."""
        results = None  # the fulfills and fails of HTLCs we offered, told in one HtlcResults
        for event in events:
            if isinstance(event, (ev.HtlcFulfilled, ev.HtlcFailed)):
                if results is None:
                    results = [event]
                else:
                    results.append(event)
            elif isinstance(event, ev.FundingRequired):
                self._spawn(self._build_funding(e, event))
            elif isinstance(event, ev.BroadcastFunding):
                self._spawn(self._broadcast_funding(e))
            elif isinstance(event, ev.WatchFunding):
                pass  # every block is scanned for the funding txid of every channel
            elif isinstance(event, ev.ChannelReady):
                log.info("channel %s ready (%s)", e.channel_id.hex(), event.short_channel_id)
                self.events.emit(nev.ChannelReady(e, event.short_channel_id))
            elif isinstance(event, (ev.BroadcastClosing, ev.BroadcastCommitment)):
                self._spawn(self._broadcast(e.closing_tx, "closing" if isinstance(event, ev.BroadcastClosing) else "commitment"))
                if e.closed is not None and not e.closed.done():
                    e.closed.set_result(e.closing_txid)
        if results is not None:
            self.events.emit(nev.HtlcResults(e, results))

    # ------------------------------------------------------------------ opening

    async def open(self, peer_id: bytes, funding_satoshis: int, push_msat: int = 0, private: bool = False,
                   timeout: float = 60.0) -> Entry:
        """Open a channel (we fund it); returns once the funding tx is broadcast."""
        peer = self.peer(peer_id)
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
            announce=not private,  # announce_channel: public channels get announcement_signatures at depth 6 (node/gossip.py)
        )
        ch.local_shutdown_script = script
        e = Entry(row_id=0, channel=ch, peer=peer_id, private=private, reestablished=True)
        e.watch_from = self.chain.height
        e.opened = asyncio.get_running_loop().create_future()
        self._insert(e)
        if self.peers.store is not None and self.peers.store.get(peer_id) is not None:
            self.peers.store.set_persistent(peer_id, True)
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
        peer = self.peer(e.peer)
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
                rollback(e)
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
        peer = self.peer(e.peer)
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
        the reserve we require), best inbound first; with the peer's fees and delta from its
        channel_update (``peer_update``, set by the node to the gossip component's), else the
        HINT_ defaults."""
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
            upd = self.peer_update(e) if self.peer_update is not None else None
            if upd is not None:  # the peer's policy, from its channel_update
                hop = RouteHintHop(e.peer, int(ch.short_channel_id), upd.fee_base_msat, upd.fee_proportional_millionths,
                                   upd.cltv_expiry_delta)
            else:
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


__all__ = ["ChannelManager", "Entry", "channel_policy", "stored_channels", "MIGRATIONS", "CHANNEL_MESSAGES", "LIVE",
           "PRE_FUNDING", "FEE_UPDATE_UP", "FEE_UPDATE_DOWN", "FEERATE_FLOOR", "COMMIT_DELAY"]
