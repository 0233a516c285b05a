"""BOLT 7 gossip in the running node: our announcements, the peers' gossip, the graph.

What :class:`Gossip` does:

- **our public channels** (announce bit set): once a channel is NORMAL, reestablished and its
  funding is :data:`ANNOUNCE_DEPTH` blocks deep, ``announcement_signatures`` goes to the peer
  (once per connection until the announcement is complete; after that, in answer to the peer's
  first one on each connection). With both halves the full ``channel_announcement`` is built,
  with our ``channel_update`` and ``node_announcement``, stored in the graph and sent to every
  peer.
- **our private channels**: our ``channel_update`` goes to that peer only (once per connection);
  the peer's update for it is kept (``private_updates``) for route hints.
- **peers' gossip**: ``channel_announcement`` (four signatures, and the funding output on our
  chain backend: the block at the short_channel_id's height, its transaction, the output's script
  is the P2WSH of the 2-of-2 of the bitcoin keys; its amount is the capacity; unspent when the
  backend can tell), ``channel_update`` (signed by the right end, newer than what we hold),
  ``node_announcement`` (signed, only for nodes with a channel). Valid, new messages are stored
  (``graph_messages`` in node.sqlite3) and flooded to the other peers; a known message is
  dropped, which ends the flood. A newly connected peer gets everything we hold.
- **gossip we cannot check yet** (:mod:`lncli.proto.gossip_pending`): a ``channel_announcement``
  whose block we have not seen (a peer saw it first) waits, and so do the ``channel_update`` and
  ``node_announcement`` messages for it that follow (checked against its node ids first); at each new
  block the waiting ones at or below it are checked, and what waited with an accepted one is
  handled and flooded as if it had just arrived. What is dropped instead (the set is full, the
  chain lookup keeps failing, an update for a channel nobody announced) is logged and counted:
  ``lncli graph`` shows ``pending`` and ``dropped``.
- ``gossip_timestamp_filter`` and the query messages: we do not advertise ``gossip_queries``;
  they are ignored.

The pure message types and the graph are :mod:`lncli.proto.gossip`; this module only wires them
to the peers, the chain and the database.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any

from lncli.bitcoin.ecdsa import sign_compact, verify_compact
from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.errors import LncliError
from lncli.node.channel_policy import CLTV_EXPIRY_DELTA, FEE_BASE_MSAT, FEE_PROPORTIONAL_MILLIONTHS
from lncli.proto import gossip as g
from lncli.proto.gossip_pending import PendingGossip, Waiting
from lncli.proto.scid import ShortChannelId
from lncli.proto.wire import encode_message
from lncli.store.db import migrate, transaction

log = logging.getLogger("lncli.gossip")

COMPONENT = "gossip"
MIGRATIONS = [
    "CREATE TABLE graph_messages (\n"
    "  key BLOB PRIMARY KEY,\n"  # type (2 bytes) || scid (8) [|| direction] or || node_id
    "  type INTEGER NOT NULL,\n"
    "  raw BLOB NOT NULL,\n"
    "  amount_sat INTEGER,\n"
    "  updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE graph_private_updates (\n"
    "  scid INTEGER NOT NULL,\n"
    "  direction INTEGER NOT NULL,\n"
    "  raw BLOB NOT NULL,\n"
    "  PRIMARY KEY (scid, direction)\n"
    ");\n"
    "CREATE TABLE graph_announcement_signatures (\n"
    "  channel_id BLOB PRIMARY KEY,\n"
    "  short_channel_id INTEGER NOT NULL,\n"
    "  node_signature BLOB NOT NULL,\n"
    "  bitcoin_signature BLOB NOT NULL\n"
    ")",
]

#: BOLT 7: announcement_signatures once the funding transaction has 6 confirmations.
ANNOUNCE_DEPTH = 6
# Our forwarding policy's defaults, as announced in our channel_update unless lncli.node.forwarding
# (the component that charges it, lncli.node.channel_policy's per channel) is attached: then its own.
TICK_SECONDS = 0.5


# --------------------------------------------------------------------------- pure helpers


def unsigned_channel_announcement(
    chain_hash: bytes, scid: ShortChannelId, our_node_id: bytes, their_node_id: bytes,
    our_bitcoin_key: bytes, their_bitcoin_key: bytes, features: bytes = b"",
) -> tuple[g.ChannelAnnouncement, bool]:
    """The channel_announcement with zero signatures, node ids in BOLT 7 order (node_id_1 the
    lesser), each bitcoin key with its node; and whether we are node_id_1."""
    z = bytes(64)
    first = our_node_id < their_node_id
    n1, n2 = (our_node_id, their_node_id) if first else (their_node_id, our_node_id)
    b1, b2 = (our_bitcoin_key, their_bitcoin_key) if first else (their_bitcoin_key, our_bitcoin_key)
    return g.ChannelAnnouncement(z, z, z, z, features, chain_hash, scid, n1, n2, b1, b2), first


def announcement_signatures(ann: g.ChannelAnnouncement, node_key: bytes, funding_privkey: bytes) -> tuple[bytes, bytes]:
    """Our (node_signature, bitcoin_signature) over ``ann``'s signed hash."""
    h = ann.signed_hash()
    return sign_compact(node_key, h), sign_compact(funding_privkey, h)


def check_announcement_signatures(ann: g.ChannelAnnouncement, node_id: bytes, bitcoin_key: bytes,
                                  node_signature: bytes, bitcoin_signature: bytes) -> bool:
    h = ann.signed_hash()
    return verify_compact(node_id, h, node_signature) and verify_compact(bitcoin_key, h, bitcoin_signature)


def complete_announcement(ann: g.ChannelAnnouncement, we_are_1: bool, ours: tuple[bytes, bytes],
                          theirs: tuple[bytes, bytes]) -> g.ChannelAnnouncement:
    """``ann`` with the four signatures in place."""
    s1, s2 = (ours, theirs) if we_are_1 else (theirs, ours)
    return g.ChannelAnnouncement(
        s1[0], s2[0], s1[1], s2[1], ann.features, ann.chain_hash, ann.short_channel_id,
        ann.node_id_1, ann.node_id_2, ann.bitcoin_key_1, ann.bitcoin_key_2, ann.extension,
    )


def signed_channel_update(node_key: bytes, chain_hash: bytes, scid: ShortChannelId, timestamp: int, direction: int,
                          disabled: bool, htlc_minimum_msat: int, htlc_maximum_msat: int,
                          fee_base_msat: int = FEE_BASE_MSAT,
                          fee_proportional_millionths: int = FEE_PROPORTIONAL_MILLIONTHS,
                          cltv_expiry_delta: int = CLTV_EXPIRY_DELTA) -> g.ChannelUpdate:
    u = g.ChannelUpdate(
        bytes(64), chain_hash, scid, timestamp, g.MUST_BE_ONE, direction | (g.DISABLE if disabled else 0),
        cltv_expiry_delta, htlc_minimum_msat, fee_base_msat, fee_proportional_millionths, htlc_maximum_msat,
    )
    return g.ChannelUpdate(sign_compact(node_key, u.signed_hash()), *_fields(u)[1:])


def _fields(u: g.ChannelUpdate) -> tuple:
    return (u.signature, u.chain_hash, u.short_channel_id, u.timestamp, u.message_flags, u.channel_flags,
            u.cltv_expiry_delta, u.htlc_minimum_msat, u.fee_base_msat, u.fee_proportional_millionths,
            u.htlc_maximum_msat, u.extension)


def encode_addresses(listen: list[tuple[str, int]]) -> bytes:
    """Address descriptors for our listen addresses (ascending type; wildcards skipped)."""
    found: list[tuple[int, bytes]] = []
    for host, port in listen:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            continue
        if ip.is_unspecified or not 0 < port < 65536:
            continue
        typ = 1 if ip.version == 4 else 2
        d = bytes([typ]) + ip.packed + port.to_bytes(2, "big")
        if (typ, d) not in found:
            found.append((typ, d))
    found.sort(key=lambda x: x[0])
    return b"".join(d for _, d in found)


def signed_node_announcement(node_key: bytes, node_id: bytes, timestamp: int, alias: str, color: str,
                             addresses: bytes, features: bytes) -> g.NodeAnnouncement:
    raw_alias = alias.encode("utf-8")[:32].ljust(32, b"\x00")
    rgb = bytes.fromhex(color.lstrip("#")[:6].ljust(6, "0"))
    a = g.NodeAnnouncement(bytes(64), features, timestamp, node_id, rgb, raw_alias, addresses)
    signed = g.NodeAnnouncement(sign_compact(node_key, a.signed_hash()), features, timestamp, node_id, rgb, raw_alias, addresses)
    return g.NodeAnnouncement.from_bytes(signed.to_bytes())  # with address_list filled in


def _key(msg) -> bytes:
    if isinstance(msg, g.ChannelAnnouncement):
        return b"\x01\x00" + msg.short_channel_id.to_bytes()
    if isinstance(msg, g.ChannelUpdate):
        return b"\x01\x02" + msg.short_channel_id.to_bytes() + bytes([msg.direction])
    return b"\x01\x01" + msg.node_id


# --------------------------------------------------------------------------- the node component


class Gossip:
    """The gossip graph and our channels' announcements. ``node`` gives the identity (key, alias,
    color), the peers, the chain and the database; ``channels`` (a ChannelManager, or None) the
    channels to announce; ``forwarding`` (or None) the fee policy our channel_updates publish."""

    def __init__(self, node, channels=None, forwarding=None):
        self.node = node
        self.channels = channels
        self.forwarding = forwarding
        self.db = node.db
        migrate(self.db, COMPONENT, MIGRATIONS)
        from lncli.node.features import INIT_FEATURES, chain_hash

        self.chain_hash = chain_hash(node.settings.network)
        self.node_features = INIT_FEATURES.to_bytes()
        self.graph = g.Graph()
        self.private_updates: dict[tuple[int, int], g.ChannelUpdate] = {}
        self.remote_sigs: dict[bytes, tuple[int, bytes, bytes]] = {}  # channel_id -> (scid, node sig, bitcoin sig)
        self._sent_sigs: dict[bytes, int] = {}  # channel_id -> id(peer) it was sent on
        self._answered: dict[bytes, int] = {}  # channel_id -> id(peer) whose sigs we answered
        self._sent_private: dict[bytes, int] = {}  # channel_id -> id(peer) our private update went to
        self._ours: dict[bytes, g.ChannelUpdate] = {}  # channel_id -> the latest channel_update we signed
        self.pending = PendingGossip()  # gossip waiting for its block (or for its channel_announcement)
        self._task: asyncio.Task | None = None
        self._unsubscribe = None
        self._load()

    # ------------------------------------------------------------------ storage

    def _load(self) -> None:
        rows = self.db.execute("SELECT type, raw, amount_sat FROM graph_messages ORDER BY type, updated_at").fetchall()
        for typ, raw, amount in rows:
            try:
                if typ == g.CHANNEL_ANNOUNCEMENT:
                    self.graph.add_channel(g.ChannelAnnouncement.from_bytes(raw), amount)
            except LncliError:
                log.warning("dropping a bad stored gossip message")
        for typ, raw, _ in rows:
            try:
                if typ == g.CHANNEL_UPDATE:
                    self.graph.apply_update(g.ChannelUpdate.from_bytes(raw))
                elif typ == g.NODE_ANNOUNCEMENT:
                    self.graph.apply_node_announcement(g.NodeAnnouncement.from_bytes(raw))
            except LncliError:
                log.warning("dropping a bad stored gossip message")
        for scid, direction, raw in self.db.execute("SELECT scid, direction, raw FROM graph_private_updates"):
            self.private_updates[(scid, direction)] = g.ChannelUpdate.from_bytes(raw)
        for cid, scid, ns, bs in self.db.execute(
            "SELECT channel_id, short_channel_id, node_signature, bitcoin_signature FROM graph_announcement_signatures"
        ):
            self.remote_sigs[bytes(cid)] = (scid, bytes(ns), bytes(bs))

    def _store(self, msg, amount_sat: int | None = None) -> None:
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO graph_messages(key, type, raw, amount_sat, updated_at) VALUES(?,?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET raw=excluded.raw, updated_at=excluded.updated_at",
                (_key(msg), int.from_bytes(msg.to_bytes()[:2], "big"), msg.to_bytes(), amount_sat, time.time_ns()),
            )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        chain = self.node.chain
        if chain is not None:
            self._unsubscribe = chain.subscribe(self._on_block)
        self._refresh_node_announcement()
        self._task = asyncio.ensure_future(self._loop())

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a bug here must not stop the node
                log.exception("gossip tick failed")

    async def _on_block(self, block) -> None:
        self.tick()
        # the chain view's height moves to this block only after its subscribers ran: check the
        # waiting announcements against the block itself
        for w in self.pending.due(block.height):
            await self._check_waiting(w, block.height)

    async def _check_waiting(self, w: Waiting, height: int) -> None:
        ann = g.ChannelAnnouncement.from_bytes(w.raw)  # it parsed when it arrived
        if ann.short_channel_id not in self.graph.channels:
            amount = await self._funding_amount(ann, height)
            if amount is None:
                if not self.pending.retry(w):
                    log.info("channel_announcement %s: chain lookup failed %d times: dropped", ann.short_channel_id, w.tries)
                return
            if amount is False:
                log.info("channel_announcement %s: no such unspent funding output: ignored", ann.short_channel_id)
                self.pending.refuse(w)
                return
            if ann.short_channel_id not in self.graph.channels:
                self._accept(ann, amount, w.origin)
        for name, raw, origin in self.pending.released(w):
            if name == "channel_update":
                self._on_update(origin, g.ChannelUpdate.from_bytes(raw))
            else:
                self._on_node_ann(origin, g.NodeAnnouncement.from_bytes(raw))

    def _dropped(self, what: str, reason: str | None) -> None:
        if reason is not None:
            log.info("%s dropped: %s (dropped so far: %s)", what, reason, dict(self.pending.dropped))

    # ------------------------------------------------------------------ peers

    def _ready_peers(self):
        return [p for p in self.node.peers.peers.values() if p.close_reason is None and p.features is not None]

    def _send(self, peer, raws: list[bytes]) -> None:
        if not raws or peer is None or peer.close_reason is not None:
            return
        try:
            peer.send_many(raws)
        except LncliError:
            pass

    def _flood(self, raw: bytes, origin=None) -> None:
        for p in self._ready_peers():
            if p is not origin:
                self._send(p, [raw])

    def peer_ready(self, peer) -> None:
        """A new connection gets everything we hold (we do not do gossip_queries)."""
        raws = []
        for ch in self.graph.channels.values():
            raws.append(ch.announcement.to_bytes())
            raws.extend(u.to_bytes() for u in ch.updates if u is not None)
        for n in self.graph.nodes.values():
            if n.announcement is not None:
                raws.append(n.announcement.to_bytes())
        self._send(peer, raws)

    # ------------------------------------------------------------------ our channels

    def _depth(self, e) -> int:
        h = self.node.block_height
        if h is None or e.funding_height is None:
            return 0
        return h - e.funding_height + 1

    def _our_announcement(self, e) -> tuple[g.ChannelAnnouncement, bool]:
        ch = e.channel
        return unsigned_channel_announcement(
            self.chain_hash, ShortChannelId(ch.short_channel_id), self.node.node_id, e.peer,
            ch.secrets.funding_pubkey, ch.remote_basepoints.funding_pubkey,
        )

    def tick(self) -> None:
        """Idempotent: send what each of our channels owes its peer now."""
        mgr = self.channels
        if mgr is None:
            return
        from lncli.channel.state import ChannelState

        for e in list(mgr.by_id.values()):
            ch = e.channel
            if e.state != ChannelState.NORMAL or ch.short_channel_id is None or not e.reestablished:
                continue
            peer = self.node.peers.get(e.peer)
            if peer is None or peer.close_reason is not None:
                continue
            if e.private:
                if self._sent_private.get(e.channel_id) != id(peer):
                    self._sent_private[e.channel_id] = id(peer)
                    self._send(peer, [self._our_update(e, store=False).to_bytes()])
                continue
            if self._depth(e) < ANNOUNCE_DEPTH:
                continue
            scid = ShortChannelId(ch.short_channel_id)
            complete = scid in self.graph.channels
            if not complete and self._sent_sigs.get(e.channel_id) != id(peer):
                self._sent_sigs[e.channel_id] = id(peer)
                self._send_sigs(e, peer)
            if not complete and e.channel_id in self.remote_sigs:
                self._complete(e)
            elif complete and self.graph.channels[scid].updates[0 if self.node.node_id < e.peer else 1] is None:
                # the announcement came from the peer before we completed ours: publish our side
                self._publish_ours(e)
            elif complete and self._current(e) is None:
                # our policy changed while we were down (lncli.conf): announce the new one
                self._flood(self._our_update(e, store=True).to_bytes())

    def _send_sigs(self, e, peer) -> None:
        ann, _ = self._our_announcement(e)
        ns, bs = announcement_signatures(ann, self.node.node_key, e.channel.secrets.funding_privkey)
        log.info("channel %s: announcement_signatures sent", ann.short_channel_id)
        self._send(peer, [encode_message("announcement_signatures", channel_id=e.channel_id,
                                         short_channel_id=ShortChannelId(e.channel.short_channel_id),
                                         node_signature=ns, bitcoin_signature=bs)])

    def _complete(self, e) -> None:
        ch = e.channel
        scid_int, ns, bs = self.remote_sigs[e.channel_id]
        if scid_int != int(ch.short_channel_id):
            return
        ann, first = self._our_announcement(e)
        ours = announcement_signatures(ann, self.node.node_key, ch.secrets.funding_privkey)
        full = complete_announcement(ann, first, ours, (ns, bs))
        if not g.verify_channel_announcement(full):
            log.warning("channel %s: the completed announcement does not verify", ann.short_channel_id)
            self.remote_sigs.pop(e.channel_id, None)  # wait for the peer's next announcement_signatures
            return
        if not self.graph.add_channel(full, ch.funding_satoshis):
            return
        self._store(full, ch.funding_satoshis)
        log.info("channel %s announced", ann.short_channel_id)
        self._flood(full.to_bytes())
        self._publish_ours(e)

    def _publish_ours(self, e) -> None:
        """Our channel_update for ``e`` and a fresh node_announcement, to the graph and every peer."""
        upd = self._our_update(e, store=True)
        self._flood(upd.to_bytes())
        na = self._refresh_node_announcement()
        if na is not None:
            self._flood(na.to_bytes())

    def _timestamp(self, old: int | None) -> int:
        now = int(time.time())
        return max(now, (old or 0) + 1)

    def _our_update(self, e, store: bool, disabled: bool = False) -> g.ChannelUpdate:
        """A new signed channel_update of ours for ``e`` with its current policy (``store``: into
        the graph and the database, for an announced channel). Its timestamp is above every
        update of ours for the channel (BOLT 7), the ones sent in failures included."""
        ch = e.channel
        scid = ShortChannelId(ch.short_channel_id)
        direction = 0 if self.node.node_id < e.peer else 1
        gc = self.graph.channels.get(scid)
        old = gc.updates[direction] if gc is not None else None
        last = max(old.timestamp if old else 0, self._ours[e.channel_id].timestamp if e.channel_id in self._ours else 0)
        pol = self._policy(e)
        upd = signed_channel_update(
            self.node.node_key, self.chain_hash, scid, self._timestamp(last or None), direction, disabled,
            pol.htlc_minimum_msat, pol.htlc_maximum_msat, pol.fee_base_msat, pol.fee_proportional_millionths,
            pol.cltv_expiry_delta,
        )
        self._ours[e.channel_id] = upd
        if store and not disabled and self.graph.apply_update(upd):
            self._store(upd)
        return upd

    def _policy(self, e):
        """The policy ``e``'s channel_update announces: the forwarding component's
        (lncli.node.channel_policy, lncli.conf and setchannel) when it is there, else ours."""
        from lncli.proto.forwarding import Policy

        fwd = self.forwarding
        if fwd is not None:
            return fwd.policies.effective(e)
        ch = e.channel
        return Policy(FEE_BASE_MSAT, FEE_PROPORTIONAL_MILLIONTHS, CLTV_EXPIRY_DELTA).bounded(
            max(1, ch.remote_config.htlc_minimum_msat), ch.funding_satoshis * 1000)

    def _current(self, e, disabled: bool = False) -> g.ChannelUpdate | None:
        """Our latest channel_update for ``e`` if it still says what ``e``'s policy is now."""
        upd = self._ours.get(e.channel_id)
        if upd is None and e.channel.short_channel_id is not None:
            gc = self.graph.channels.get(ShortChannelId(e.channel.short_channel_id))
            upd = gc.updates[0 if self.node.node_id < e.peer else 1] if gc is not None else None
        if upd is None or upd.disabled != disabled:
            return None
        pol = self._policy(e)
        said = (upd.fee_base_msat, upd.fee_proportional_millionths, upd.cltv_expiry_delta, upd.htlc_minimum_msat,
                upd.htlc_maximum_msat)
        now = (pol.fee_base_msat, pol.fee_proportional_millionths, pol.cltv_expiry_delta, pol.htlc_minimum_msat,
               pol.htlc_maximum_msat)
        return upd if said == now else None

    def failure_update(self, e, disabled: bool = False) -> bytes | None:
        """The outgoing channel's current channel_update for a BOLT 4 failure, with its type
        0x0102: the one we last signed if it still holds, else a new one (``disabled``: with the
        disable bit). None for a channel without a short_channel_id."""
        if e.channel.short_channel_id is None:
            return None
        upd = self._current(e, disabled)
        if upd is None:
            upd = self._our_update(e, store=False, disabled=disabled)
        return upd.to_bytes()

    def peer_update(self, e) -> g.ChannelUpdate | None:
        """The peer's channel_update for its side of ``e``'s channel (kept from the peer for a
        private channel, from the graph for an announced one), or None."""
        scid = e.channel.short_channel_id
        if scid is None:
            return None
        direction = 0 if e.peer < self.node.node_id else 1
        gc = self.graph.channels.get(ShortChannelId(scid))
        if gc is not None and gc.updates[direction] is not None:
            return gc.updates[direction]
        return self.private_updates.get((int(scid), direction))

    def policy_changed(self, e) -> g.ChannelUpdate | None:
        """After ``setchannel``: sign ``e``'s new channel_update; an announced channel's goes into
        the graph (stored) and to every peer, an unannounced one's to its peer. None when the
        channel has no short_channel_id yet (its first update will carry the new policy)."""
        ch = e.channel
        if ch.short_channel_id is None:
            return None
        announced = ShortChannelId(ch.short_channel_id) in self.graph.channels
        upd = self._our_update(e, store=announced)
        if announced:
            self._flood(upd.to_bytes())
        else:
            peer = self.node.peers.get(e.peer)
            if peer is not None and e.reestablished:
                self._sent_private[e.channel_id] = id(peer)
                self._send(peer, [upd.to_bytes()])
        log.info("channel %s: new policy announced (%d msat + %d ppm, delta %d)", ShortChannelId(ch.short_channel_id),
                 upd.fee_base_msat, upd.fee_proportional_millionths, upd.cltv_expiry_delta)
        return upd

    def _refresh_node_announcement(self) -> g.NodeAnnouncement | None:
        """A fresh node_announcement of ours, if we have an announced channel (else none: BOLT 7)."""
        me = self.graph.node(self.node.node_id)
        if me is None:
            return None
        old = me.announcement
        na = signed_node_announcement(
            self.node.node_key, self.node.node_id, self._timestamp(old.timestamp if old else None),
            self.node.alias, self.node.color, encode_addresses(self.node.peers.listen_addresses), self.node_features,
        )
        if self.graph.apply_node_announcement(na):
            self._store(na)
            return na
        return None

    # ------------------------------------------------------------------ handlers

    def on_announcement_signatures(self, peer, msg) -> None:
        mgr = self.channels
        e = mgr.by_id.get(msg.channel_id)
        if e is None or e.peer != peer.node_id or e.private or e.channel.short_channel_id is None:
            log.info("peer %s: announcement_signatures for an unknown or private channel: ignored", peer.short_id)
            return
        if int(msg.short_channel_id) != int(e.channel.short_channel_id):
            peer.send_warning("announcement_signatures: wrong short_channel_id", msg.channel_id)
            return
        ann, _ = self._our_announcement(e)
        if not check_announcement_signatures(ann, e.peer, e.channel.remote_basepoints.funding_pubkey,
                                             msg.node_signature, msg.bitcoin_signature):
            peer.send_warning("announcement_signatures: bad signature", msg.channel_id)
            return
        self.remote_sigs[e.channel_id] = (int(e.channel.short_channel_id), bytes(msg.node_signature), bytes(msg.bitcoin_signature))
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO graph_announcement_signatures VALUES(?,?,?,?)",
                (e.channel_id, int(e.channel.short_channel_id), bytes(msg.node_signature), bytes(msg.bitcoin_signature)),
            )
        # BOLT 7: after a reconnection, answer the peer's first announcement_signatures with ours
        if self._depth(e) >= ANNOUNCE_DEPTH and self._answered.get(e.channel_id) != id(peer):
            self._answered[e.channel_id] = id(peer)
            if self._sent_sigs.get(e.channel_id) != id(peer):
                self._sent_sigs[e.channel_id] = id(peer)
                self._send_sigs(e, peer)
        self.tick()

    async def on_channel_announcement(self, peer, msg) -> None:
        await self._on_channel_announcement(peer, msg.encode())

    async def _on_channel_announcement(self, peer, raw: bytes) -> None:
        try:
            ann = g.ChannelAnnouncement.from_bytes(raw)
        except LncliError as e:
            log.info("peer %s: bad channel_announcement: %s", getattr(peer, "short_id", "?"), e)
            return
        if ann.chain_hash != self.chain_hash or ann.short_channel_id in self.graph.channels:
            return
        if ann.problems() or not g.verify_channel_announcement(ann):
            log.info("channel_announcement %s: bad signatures or fields: ignored", ann.short_channel_id)
            return
        s = ann.short_channel_id
        chain = self.node.chain
        amount = await self._funding_amount(ann, chain.height if chain is not None else None)
        if amount is None:
            if s.to_int() not in self.pending:
                log.info("channel_announcement %s from %s: block %d not seen yet (tip %s): kept until it is",
                         s, getattr(peer, "short_id", "?"), s.block, chain.height if chain is not None else None)
            why = self.pending.add_announcement(s.to_int(), s.block, raw, peer, (ann.node_id_1, ann.node_id_2))
            self._dropped(f"channel_announcement {s}", why)
            return
        if amount is False or s in self.graph.channels:
            return
        self._accept(ann, amount, peer)

    def _accept(self, ann: g.ChannelAnnouncement, amount: int, origin) -> None:
        if self.graph.add_channel(ann, amount):
            self._store(ann, amount)
            self._flood(ann.to_bytes(), origin)

    async def _funding_amount(self, ann: g.ChannelAnnouncement, height: int | None):
        """The capacity if the funding output checks out; False if it does not; None if the
        block is above ``height`` (not seen yet), the lookup failed, or there is no chain backend."""
        chain = self.node.chain
        if chain is None:
            return None
        s = ann.short_channel_id
        if height is None or s.block > height:
            return None

        def lookup():
            block = chain.backend.block_at(s.block)
            if s.txindex >= len(block.txs):
                return False
            tx = block.txs[s.txindex]
            if s.output >= len(tx.outputs):
                return False
            out = tx.outputs[s.output]
            if out.script_pubkey != p2wsh_script(funding_script(ann.bitcoin_key_1, ann.bitcoin_key_2)):
                return False
            get_utxo = getattr(chain.backend, "get_utxo", None)
            if get_utxo is not None:
                from lncli.bitcoin.tx import OutPoint

                if get_utxo(OutPoint(tx.txid(), s.output)) is None:
                    return False
            return out.value_sat

        try:
            return await chain.call(lookup)
        except LncliError as e:
            log.info("channel_announcement %s: chain lookup failed: %s", s, e)
            return None

    def on_channel_update(self, peer, msg) -> None:
        try:
            upd = g.ChannelUpdate.from_bytes(msg.encode())
        except LncliError:
            return
        self._on_update(peer, upd)

    def _on_update(self, peer, upd: g.ChannelUpdate) -> None:
        if upd.chain_hash != self.chain_hash:
            return
        ch = self.graph.channels.get(upd.short_channel_id)
        if ch is None:
            scid = upd.short_channel_id.to_int()
            w = self.pending.waiting.get(scid)
            if w is not None:  # its announcement waits for its block: so does the update, if signed by its end
                if g.verify_channel_update(upd, w.node_ids[upd.direction]):
                    self.pending.add_update(scid, upd.direction, upd.timestamp, upd.to_bytes(), peer)
                return
            if not self._private_update(peer, upd):
                self.pending.add_update(scid, upd.direction, upd.timestamp, upd.to_bytes(), peer)  # counts it
                self._dropped(f"channel_update {upd.short_channel_id}", "update_for_unknown_channel")
            return
        old = ch.updates[upd.direction]
        if old is not None and upd.timestamp <= old.timestamp:
            return
        if not g.verify_channel_update(upd, g.update_signer(ch.announcement, upd)):
            log.info("channel_update %s: bad signature: ignored", upd.short_channel_id)
            return
        if self.graph.apply_update(upd):
            self._store(upd)
            if not upd.dont_forward:
                self._flood(upd.to_bytes(), peer)

    def _private_update(self, peer, upd: g.ChannelUpdate) -> bool:
        """The peer's update for a channel with us that is not in the graph; False if there is no such channel."""
        mgr = self.channels
        scid = upd.short_channel_id.to_int()
        for e in (mgr.by_id.values() if mgr is not None else ()):
            if e.peer == peer.node_id and e.channel.short_channel_id is not None and int(e.channel.short_channel_id) == scid:
                break
        else:
            return False
        direction = 0 if peer.node_id < self.node.node_id else 1
        if upd.direction != direction or not g.verify_channel_update(upd, peer.node_id):
            return True
        old = self.private_updates.get((scid, direction))
        if old is not None and upd.timestamp <= old.timestamp:
            return True
        self.private_updates[(scid, direction)] = upd
        with transaction(self.db) as conn:
            conn.execute("INSERT OR REPLACE INTO graph_private_updates VALUES(?,?,?)", (scid, direction, upd.to_bytes()))
        return True

    def on_node_announcement(self, peer, msg) -> None:
        try:
            na = g.NodeAnnouncement.from_bytes(msg.encode())
        except LncliError:
            return
        self._on_node_ann(peer, na)

    def _on_node_ann(self, peer, na: g.NodeAnnouncement) -> None:
        node = self.graph.node(na.node_id)
        if node is None:
            # its node's channel_announcement may be waiting for its block: so does it (if self-signed)
            if g.verify_node_announcement(na):
                if not self.pending.add_node_announcement(na.node_id, na.timestamp, na.to_bytes(), peer):
                    self._dropped(f"node_announcement {na.node_id.hex()}", "node_announcement_for_unknown_node")
            return
        if node.announcement is not None and na.timestamp <= node.announcement.timestamp:
            return
        if not g.verify_node_announcement(na):
            log.info("node_announcement %s: bad signature: ignored", na.node_id.hex())
            return
        if self.graph.apply_node_announcement(na):
            self._store(na)
            self._flood(na.to_bytes(), peer)

    # ------------------------------------------------------------------ views

    def view(self) -> dict[str, Any]:
        return {
            "channels": self.graph.listchannels(),
            "nodes": self.graph.listnodes(),
            "private_updates": [
                {"short_channel_id": str(u.short_channel_id), **{k: v for k, v in u.to_json().items() if k != "signature"}}
                for u in self.private_updates.values()
            ],
            # gossip waiting for its block, and what was dropped (by reason) since the node started
            "pending": self.pending.counts(),
            "dropped": dict(sorted(self.pending.dropped.items())),
        }


def register(registry, gs: Gossip) -> None:
    async def graph() -> dict:
        return gs.view()

    registry.add("graph", graph)


def handlers(gs: Gossip) -> dict:
    """The peer message handlers of gossip."""
    return {
        "announcement_signatures": gs.on_announcement_signatures,
        "channel_announcement": gs.on_channel_announcement,
        "channel_update": gs.on_channel_update,
        "node_announcement": gs.on_node_announcement,
    }


__all__ = [
    "Gossip", "register", "handlers", "ANNOUNCE_DEPTH", "FEE_BASE_MSAT", "FEE_PROPORTIONAL_MILLIONTHS", "CLTV_EXPIRY_DELTA",
    "unsigned_channel_announcement", "announcement_signatures", "check_announcement_signatures",
    "complete_announcement", "signed_channel_update", "signed_node_announcement", "encode_addresses",
]
