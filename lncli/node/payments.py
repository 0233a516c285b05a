"""Payments over the node's channels: paying a direct peer's BOLT 11 invoice, and settling the
HTLCs that pay our own invoices.

The channel code settles an incoming HTLC as soon as it is irrevocably committed, in memory, so
the fulfill (or fail) is written in the same transaction as the state that committed it, and
the invoice is marked paid in that transaction too (:meth:`Payments.write_paid`).

Sending (:meth:`Payments.pay`): decode the invoice (network, expiry, amount), pick a NORMAL
channel with the payee that can carry the amount (or, when the payee is not a peer, with the node
of one of the invoice's route hints: a two-hop onion whose first payload names the hint's
short_channel_id, the HTLC carrying amount + the hint's fee and final cltv + its
cltv_expiry_delta; ``fee_msat`` is that fee, a failure names its ``failing_node``), build a one-hop onion whose final payload
carries ``amt_to_forward``, ``outgoing_cltv_value``, ``payment_data`` (payment_secret,
total_msat) and ``payment_metadata``; offer the HTLC and sign. The payment row is written in the
same transaction as the channel state that offers the HTLC; its result (preimage, or the BOLT 4
failure decoded from the onion error) is written in the transaction of the channel state that
learns it. The session key is drawn here from ``os.urandom``. A payee that is neither a peer
nor behind a peer's route hint is paid over a route of :func:`lncli.proto.routing.find_route`
in the gossip graph (its hints as extra edges; :meth:`Payments._pay_route`): after a failure
from an intermediate hop its channel (its node, for a NODE failure) is excluded and another
route tried, up to MAX_ATTEMPTS; the result lists them in ``attempts``.

Receiving (:meth:`Payments.settle_incoming`): once an incoming HTLC is irrevocably committed,
peel its onion with the node key; a bad onion is failed with ``update_fail_malformed_htlc``
(BADONION codes) or an ``invalid_onion_payload`` error; a non-final onion is forwarded (or
refused) by :mod:`lncli.node.forwarding`; a final one goes through
:meth:`lncli.node.invoices.InvoiceStore.check_htlc` and is fulfilled (the invoice is then
marked paid) or failed with the failure it names.

On chain: when a channel with pending payments is force-closed, a preimage the peer reveals in a
witness settles them (:meth:`Payments.preimage_onchain`), and once the chain watcher reports the
channel resolved (every output claimed, deep enough), what is still pending has timed out on chain
and is failed as ``permanent_channel_failure`` (:meth:`Payments.channel_resolved`).

Testing (regtest only): ``dev-hold-htlcs=1`` in lncli.conf makes the node neither fulfill nor
fail incoming HTLCs, so payers see them time out (HTLC expiry tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from typing import TYPE_CHECKING

from lncli.channel import events as ev
from lncli.channel.channel import ChannelError
from lncli.channel.events import Outcome
from lncli.channel.state import InboundHTLCState
from lncli.errors import InputError, LncliError, RefusedError
from lncli.node.invoices import payment_hash_param
from lncli.store.db import migrate, transaction

if TYPE_CHECKING:
    from lncli.proto.onion import OnionSession

log = logging.getLogger("lncli.payments")

COMPONENT = "payments"
MIGRATIONS = [
    "CREATE TABLE payments (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  payment_hash BLOB NOT NULL,\n"
    "  bolt11 TEXT,\n"
    "  destination TEXT NOT NULL,\n"
    "  amount_msat INTEGER NOT NULL,\n"
    "  fee_msat INTEGER NOT NULL DEFAULT 0,\n"
    "  channel_id BLOB NOT NULL,\n"
    "  htlc_id INTEGER NOT NULL,\n"
    "  cltv_expiry INTEGER NOT NULL,\n"
    "  shared_secret BLOB NOT NULL,\n"
    "  status TEXT NOT NULL,\n"
    "  payment_preimage BLOB,\n"
    "  failure TEXT,\n"
    "  failure_code INTEGER,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  completed_at INTEGER,\n"
    "  UNIQUE (channel_id, htlc_id)\n"
    ");\n"
    "CREATE INDEX payments_hash ON payments(payment_hash)",
]

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
#: Blocks added to the invoice's min_final_cltv_expiry_delta (the payee may be a block behind).
CLTV_MARGIN = 3
#: routes tried over the gossip graph before giving up
MAX_ATTEMPTS = 3
_MAX_SESSIONS = 64  # onion sessions made ahead, one per recent first hop
_NETWORK_HINT = {"mainnet": "bitcoin", "bitcoin": "bitcoin", "testnet": "testnet", "signet": "signet", "regtest": "regtest"}


def _new_session(first_node: bytes):
    """An onion session with a fresh random key for onions whose first hop is ``first_node``
    (ValueError if that is not a valid node id)."""
    from lncli.proto.keys import SECP256K1_N
    from lncli.proto.onion import onion_session

    while True:
        key = os.urandom(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return onion_session(key, first_node)


class PaymentFailed(LncliError):
    """The payee (or the channel) refused the payment: the message names the BOLT 4 failure."""


def _row_json(row) -> dict:
    return {
        "payment_hash": bytes(row["payment_hash"]).hex(),
        "status": row["status"],
        "amount_msat": row["amount_msat"],
        "fee_msat": row["fee_msat"],
        "destination": row["destination"],
        "payment_preimage": bytes(row["payment_preimage"]).hex() if row["payment_preimage"] is not None else None,
        "failure": row["failure"],
        "failure_code": row["failure_code"],
        "channel_id": bytes(row["channel_id"]).hex(),
        "htlc_id": row["htlc_id"],
        "cltv_expiry": row["cltv_expiry"],
        "bolt11": row["bolt11"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
    }


class Payments:
    """Paying invoices and settling the HTLCs that pay ours. Built with what it uses: ``node``
    for the node's own identity, settings, database and best block height (``node_id``,
    ``node_key``, ``settings``, ``db``, ``block_height``: nothing of its other components), the
    channels (to offer HTLCs), forwarding (non-final onions, routes over several hops), the
    invoices and the gossip graph's owner (``gossip``, or None: routes only over the invoice's
    hints)."""

    def __init__(self, node, channels, forwarding, invoices, gossip=None):
        self.node = node
        self.manager = channels
        self.forwarding = forwarding
        self.gossip = gossip
        self.db = node.db
        self.invoices = invoices
        self.node_key = node.node_key
        self.network = node.settings.network
        migrate(self.db, COMPONENT, MIGRATIONS)
        self._waiters: dict[tuple[bytes, int], asyncio.Future] = {}
        self._paid: list[tuple[bytes, int]] = []  # (payment_hash, amount) to mark paid after commit
        # our payments whose fulfill was reported to ``pay`` before the channel wrote it
        self.reported: set[tuple[bytes, int]] = set()
        # (channel_id, htlc_id) -> (onion, PeeledOnion): incoming onions peeled ahead (prepare)
        self._peeled: dict[tuple[bytes, int], tuple] = {}
        # onion sessions made ahead (prepare_sessions), by first hop; and the first hops to make for
        self._sessions: dict[bytes, OnionSession] = {}
        self._want_sessions: set[bytes] = set()
        conf = getattr(node.settings, "config", None)
        self.hold = bool(conf.get_int("dev-hold-htlcs", 0)) if conf is not None else False
        if self.hold and self.network != "regtest":
            raise InputError(f"dev-hold-htlcs is a testing option, regtest only (this node is on {self.network})")

    # ------------------------------------------------------------------ sending

    def _height(self) -> int:
        h = self.node.block_height
        if h is None:
            raise RefusedError("the node does not know the block height yet (no chain backend?)")
        return h

    async def pay(self, bolt11: str, amount_msat: int | None = None, timeout: float = 60.0) -> dict:
        """Pay ``bolt11``. The one check of its arguments (the RPC and the CLI pass them through):
        InputError for a non-string invoice, an amount that is not a positive whole number of
        msat, or a timeout not in (0, 3600] seconds."""
        from lncli.proto import invoice as bolt11_mod
        from lncli.proto.onion import HopPayload, PaymentData

        if not isinstance(bolt11, str):
            raise InputError("bolt11 must be a string")
        if amount_msat is not None and (isinstance(amount_msat, bool) or not isinstance(amount_msat, int) or amount_msat <= 0):
            raise InputError("the amount must be a positive whole number of msat")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise InputError("the timeout must be more than 0 and at most 3600 seconds")
        timeout = float(timeout)
        text = bolt11.strip()
        if text.lower().startswith("lightning:"):
            text = text[10:]
        inv = bolt11_mod.decode(text, network_hint=_NETWORK_HINT[self.network])
        if time.time() >= inv.expires_at:
            raise RefusedError(f"the invoice expired at {inv.expires_at} ({int(time.time()) - inv.expires_at} s ago)")
        if inv.amount_msat is None:
            if amount_msat is None:
                raise InputError("the invoice has no amount: give one with --amount")
            amount = amount_msat
        else:
            if amount_msat is not None and not inv.amount_msat <= amount_msat <= 2 * inv.amount_msat:
                raise InputError(
                    f"--amount {amount_msat} msat differs from the invoice's {inv.amount_msat} msat "
                    "(paying more is allowed up to twice the amount)"
                )
            amount = inv.amount_msat if amount_msat is None else amount_msat
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InputError("the amount must be a positive number of msat")
        if inv.payee == self.node.node_id:
            raise RefusedError("this invoice is our own")
        ph = inv.payment_hash
        row = self.db.execute(
            "SELECT status FROM payments WHERE payment_hash=? AND status IN (?, ?) LIMIT 1", (ph, PENDING, SUCCEEDED)
        ).fetchone()
        if row is not None:
            if row["status"] == SUCCEEDED:
                raise RefusedError(f"payment {ph.hex()} has already succeeded: this invoice is paid")
            raise RefusedError(f"payment {ph.hex()} is already in progress: wait for it to succeed or fail")
        channels = self.manager.usable(inv.payee)
        hint = None
        if not channels:
            from lncli.node.forwarding import hint_route

            found = hint_route(self.manager, inv)
            if found is not None:
                hint, channels = found
        if not channels:
            anyc = [e for e in self.manager.by_id.values() if e.peer == inv.payee]
            if not anyc:
                return await self._pay_route(inv, text, amount, timeout)  # over the gossip graph
            states = ", ".join(sorted({e.state.value + ("" if e.reestablished else " (peer not connected)") for e in anyc}))
            raise RefusedError(f"no usable channel with the payee {inv.payee.hex()} ({states})")
        height = self._height()
        cltv = height + inv.min_final_cltv_expiry_delta + CLTV_MARGIN
        payload = HopPayload(
            amt_to_forward=amount,
            outgoing_cltv_value=cltv,
            payment_data=PaymentData(inv.payment_secret, amount),
            payment_metadata=inv.payment_metadata,
        )
        hops = [(inv.payee, payload)]
        first_amount, first_cltv, fee = amount, cltv, 0
        if hint is not None:
            from lncli.proto.gossip import fee_msat

            fee = fee_msat(amount, hint.fee_base_msat, hint.fee_proportional_millionths)
            first_amount, first_cltv = amount + fee, cltv + hint.cltv_expiry_delta
            relay = HopPayload(amt_to_forward=amount, outgoing_cltv_value=cltv, short_channel_id=hint.short_channel_id)
            hops = [(hint.pubkey, relay)] + hops
        return await self._send(inv, text, amount, fee, hops, first_amount, first_cltv, channels, timeout,
                                "payee: " if hint is None else "route hint's first hop: ")

    async def _send(self, inv, text: str, amount: int, fee: int, hops: list, first_amount: int, first_cltv: int,
                    channels: list, timeout: float, what: str) -> dict:
        """Offer the onion for ``hops`` over the first of ``channels`` that takes it; wait for the
        result. RefusedError if no channel takes the HTLC."""
        from lncli.proto.onion import build_onion

        ph = inv.payment_hash
        route = [h[0] for h in hops]
        self._want_sessions.add(route[0])
        try:
            session = self._sessions.pop(route[0], None) or _new_session(route[0])  # made ahead: used once
            onion, secrets = build_onion(session, hops, ph)
        except ValueError as exc:  # a hop that is not a valid node id, or payloads too big to fit
            raise RefusedError(f"cannot build the payment onion: {exc}") from None
        reasons = []
        for e in channels:
            ch = e.channel
            try:
                out = ch.add_htlc(first_amount, ph, first_cltv, onion)
            except ChannelError as exc:
                reasons.append(str(exc))
                continue
            htlc_id = ch.next_htlc_id - 1
            key = (ch.channel_id, htlc_id)
            fut = asyncio.get_running_loop().create_future()
            self._waiters[key] = fut
            now = int(time.time())

            def insert(conn, ch=ch, htlc_id=htlc_id, now=now):
                conn.execute(
                    "INSERT INTO payments(payment_hash, bolt11, destination, amount_msat, fee_msat, channel_id, htlc_id, cltv_expiry, "
                    "shared_secret, status, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                    (ph, text, inv.payee.hex(), amount, fee, ch.channel_id, htlc_id, first_cltv, b"".join(secrets), PENDING, now),
                )
                if len(route) > 1:
                    self.forwarding.record_route(conn, ch.channel_id, htlc_id, route)

            self.manager.send_ahead(e, out)
            self.manager.commit(e, out, insert)
            preimage = None
            try:
                async with asyncio.timeout(timeout):
                    preimage = await fut
            except TimeoutError:
                pass
            finally:
                self._waiters.pop(key, None)
            if preimage is None:
                return self.get(ch.channel_id, htlc_id)
            # the verified preimage, reported before its write (the channel writes it with its
            # next write; a crash before that gets the fulfill again at reestablish): the row as
            # listpayments will show it, from memory (nothing to read back on this path)
            destination = inv.payee.hex()
            return {
                "payment_hash": ph.hex(), "status": SUCCEEDED, "amount_msat": amount, "fee_msat": fee,
                "destination": destination, "payment_preimage": preimage.hex(), "failure": None,
                "failure_code": None, "channel_id": ch.channel_id.hex(), "htlc_id": htlc_id,
                "cltv_expiry": first_cltv, "bolt11": text, "created_at": now, "completed_at": int(time.time()),
                "route": [n.hex() for n in route] if len(route) > 1 else [destination],
            }
        raise RefusedError(f"cannot pay {first_amount} msat over any channel with the " + what + "; ".join(reasons))

    async def _pay_route(self, inv, text: str, amount: int, timeout: float) -> dict:
        """Pay over a route found in the gossip graph (plus the invoice's route hints as edges),
        excluding the failing channel (or node) and retrying after a failure from an intermediate
        hop, at most MAX_ATTEMPTS routes. The result has ``attempts``: one entry per try."""
        from lncli.channel.state import ChannelState
        from lncli.proto import routing
        from lncli.proto.onion import HopPayload, PaymentData
        from lncli.proto.scid import ShortChannelId

        gossip = self.gossip
        edges = routing.graph_edges(gossip.graph) if gossip is not None else []
        idx = routing.index_edges(edges + routing.hint_edges(inv.route_hints, inv.payee))
        height = self._height()
        cltv = height + inv.min_final_cltv_expiry_delta + CLTV_MARGIN
        final = HopPayload(amt_to_forward=amount, outgoing_cltv_value=cltv,
                           payment_data=PaymentData(inv.payment_secret, amount), payment_metadata=inv.payment_metadata)
        exclude: set = set()
        attempts: list[dict] = []
        res = None
        for _ in range(MAX_ATTEMPTS):
            ours = []
            for e in self.manager.by_id.values():
                ch = e.channel
                if e.state == ChannelState.NORMAL and e.reestablished and ch.can_add_htlcs() and ch.short_channel_id is not None:
                    outbound = ch._projected()[0] - ch.remote_config.channel_reserve_satoshis * 1000
                    ours.append(routing.LocalChannel(e.peer, int(ch.short_channel_id), max(outbound, 0),
                                                     ch.remote_config.htlc_minimum_msat))
            try:
                route = routing.find_route(idx, self.node.node_id, inv.payee, amount, cltv, exclude=exclude, our_channels=ours)
            except routing.NoRouteError as exc:
                if res is not None:
                    break
                raise RefusedError(f"no channel with the payee {inv.payee.hex()}, no route hint from a peer, and {exc}") from None
            hops = [(h.node_id, HopPayload(amt_to_forward=h.amt_to_forward, outgoing_cltv_value=h.outgoing_cltv_value,
                                           short_channel_id=h.short_channel_id)) for h in route.hops[:-1]]
            hops.append((inv.payee, final))
            tried = {"route": [n.hex() for n in route.nodes], "channels": [str(ShortChannelId.from_int(c)) for c in route.channels],
                     "amount_msat": route.amount_msat, "fee_msat": route.fee_msat}
            attempts.append(tried)
            entries = [e for e in self.manager.usable(route.hops[0].node_id) if e.channel.short_channel_id == route.first_short_channel_id]
            try:
                res = await self._send(inv, text, amount, route.fee_msat, hops, route.amount_msat, route.cltv_expiry, entries,
                                       timeout, "route's first hop: ")
            except RefusedError as exc:
                tried["failure"] = str(exc)
                exclude.add(route.first_short_channel_id)
                continue
            tried["status"], tried["failure"] = res["status"], res.get("failure")
            hop, code = res.get("failure_hop"), res.get("failure_code")
            if res["status"] != FAILED or hop is None or code is None or hop >= len(route.hops) - 1:
                break  # done, pending, or refused by the payee (or unreadable): a new route would not help
            # hop `hop` could not forward over its outgoing channel (route.channels[hop + 1])
            retry = self._failure_update_retry(idx, res, route, hop)
            if retry is not None:  # its failure's newer channel_update: retry with it (this payment only)
                idx = retry
                continue
            exclude.add(route.hops[hop].node_id if code & 0x2000 else route.channels[hop + 1])
        if res is None:
            raise RefusedError(f"no route could carry the payment: {attempts[-1].get('failure')}")
        res["attempts"] = attempts
        return res

    def _failure_update_retry(self, idx: dict, res: dict, route, hop: int) -> dict | None:
        """BOLT 4, the origin: a failure from hop ``hop`` whose channel_update (UPDATE codes) is
        valid and newer than the graph's MAY be considered for retries of this payment: the route
        index with that edge changed (:func:`lncli.proto.failure_update.retry_index`), or None.
        The gossip graph itself is not changed (BOLT 4: MUST NOT)."""
        from lncli.proto.failure_update import parse_failure_update, retry_index

        if not (res.get("failure_code") or 0) & 0x1000:
            return None
        raw = self.forwarding.failure_update_of(bytes.fromhex(res["channel_id"]), res["htlc_id"])
        graph = self.gossip.graph if self.gossip is not None else None
        return retry_index(idx, graph, parse_failure_update(raw), route.hops[hop].node_id, route.channels[hop + 1])

    def get(self, channel_id: bytes, htlc_id: int) -> dict:
        row = self.db.execute("SELECT * FROM payments WHERE channel_id=? AND htlc_id=?", (channel_id, htlc_id)).fetchone()
        return self.forwarding.annotate(_row_json(row))

    def list(self, payment_hash: bytes | None = None) -> list[dict]:
        if payment_hash is None:
            rows = self.db.execute("SELECT * FROM payments ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM payments WHERE payment_hash=? ORDER BY id", (payment_hash,)).fetchall()
        return [self.forwarding.annotate(_row_json(r)) for r in rows]

    # ------------------------------------------------------------------ results (in the channel's transaction)

    def in_transaction(self, conn, e, events: list) -> None:
        now = int(time.time())
        cid = e.channel_id
        for event in events:
            if isinstance(event, ev.HtlcFulfilled):
                conn.execute(
                    "UPDATE payments SET status=?, payment_preimage=?, completed_at=? WHERE channel_id=? AND htlc_id=? AND status=?",
                    (SUCCEEDED, event.payment_preimage, now, cid, event.htlc_id, PENDING),
                )
            elif isinstance(event, ev.HtlcFailed):
                row = conn.execute(
                    "SELECT shared_secret FROM payments WHERE channel_id=? AND htlc_id=?", (cid, event.htlc_id)
                ).fetchone()
                if row is None:
                    continue
                name, code, hop = self._failure(event, bytes(row["shared_secret"]))
                conn.execute(
                    "UPDATE payments SET status=?, failure=?, failure_code=?, completed_at=? WHERE channel_id=? AND htlc_id=? AND status=?",
                    (FAILED, name, code, now, cid, event.htlc_id, PENDING),
                )
                route = self.forwarding.route_of(conn, cid, event.htlc_id)
                if route is not None:
                    node = route[hop] if hop is not None and hop < len(route) else None
                    self.forwarding.record_failing(conn, cid, event.htlc_id, node, hop)
                    self.forwarding.record_failure_update(conn, cid, event.htlc_id, event, bytes(row["shared_secret"]))
        others = self._not_ours(cid, events)
        if others:
            self.forwarding.in_transaction(conn, e, others)

    def _not_ours(self, channel_id: bytes, events: list) -> list:
        """``events`` without the results of HTLCs of our own payments still waited for (those
        are no forwards: no need to look them up in the forwards table)."""
        waiters, reported = self._waiters, self.reported
        return [
            x for x in events
            if not (isinstance(x, (ev.HtlcFulfilled, ev.HtlcFailed))
                    and ((channel_id, x.htlc_id) in reported or (channel_id, x.htlc_id) in waiters))
        ]

    @staticmethod
    def _failure(event: ev.HtlcFailed, shared_secret: bytes) -> tuple[str, int | None, int | None]:
        """(name, code, hop index) of a failure; ``shared_secret`` is the route's secrets, 32
        bytes per hop. A malformed failure comes from the first hop (hop 0)."""
        from lncli.proto.onion_failure import FailureDecodeError, decode_failure, failure_name

        if event.failure_code is not None:
            return failure_name(event.failure_code), event.failure_code, 0
        secrets = [shared_secret[i:i + 32] for i in range(0, len(shared_secret), 32)]
        try:
            f = decode_failure(event.reason or b"", secrets)
        except FailureDecodeError as exc:
            return f"unreadable failure ({exc})", None, getattr(exc, "hop_index", None)
        return f.name, f.code, f.hop_index

    def fulfilled(self, e, event: ev.HtlcFulfilled) -> bool:
        """The peer fulfilled one of our HTLCs (the preimage is checked): wake its payment now,
        before the channel's write, so ``pay`` answers while the node signs and writes. True if
        a payment was waiting for it."""
        key = (e.channel_id, event.htlc_id)
        fut = self._waiters.get(key)
        if fut is not None and not fut.done():
            fut.set_result(event.payment_preimage)
            self.reported.add(key)
            return True
        return False

    def on_htlc_results(self, event) -> None:
        """:class:`lncli.node.events.HtlcResults`: the fulfills and fails of our HTLCs are on disk."""
        self.after_commit(event.entry, event.results)

    def after_commit(self, e, events: list) -> None:
        others = self._not_ours(e.channel_id, events)
        for event in events:
            if isinstance(event, (ev.HtlcFulfilled, ev.HtlcFailed)):
                self.reported.discard((e.channel_id, event.htlc_id))
                fut = self._waiters.get((e.channel_id, event.htlc_id))
                if fut is not None and not fut.done():
                    fut.set_result(None)
        if others:
            self.forwarding.after_commit(e, others)

    # ------------------------------------------------------------------ results on chain

    def _wake(self, rows) -> None:
        for row in rows:
            fut = self._waiters.get((bytes(row["channel_id"]), row["htlc_id"]))
            if fut is not None and not fut.done():
                fut.set_result(None)

    def preimage_onchain(self, payment_hash: bytes, payment_preimage: bytes) -> None:
        """The peer claimed an HTLC on chain with ``payment_preimage``: the payment succeeded."""
        now = int(time.time())
        with transaction(self.db) as conn:
            rows = conn.execute("SELECT channel_id, htlc_id FROM payments WHERE payment_hash=? AND status=?",
                                (bytes(payment_hash), PENDING)).fetchall()
            conn.execute("UPDATE payments SET status=?, payment_preimage=?, completed_at=? WHERE payment_hash=? AND status=?",
                         (SUCCEEDED, bytes(payment_preimage), now, bytes(payment_hash), PENDING))
        self._wake(rows)

    def channel_resolved(self, channel_id: bytes) -> None:
        """The force-closed channel is resolved on chain: its payments still pending were never
        claimed with a preimage, so their HTLCs timed out (or never made it on chain)."""
        now = int(time.time())
        with transaction(self.db) as conn:
            rows = conn.execute("SELECT channel_id, htlc_id FROM payments WHERE channel_id=? AND status=?",
                                (bytes(channel_id), PENDING)).fetchall()
            conn.execute("UPDATE payments SET status=?, failure=?, completed_at=? WHERE channel_id=? AND status=?",
                         (FAILED, "permanent_channel_failure", now, bytes(channel_id), PENDING))
        if rows:
            log.info("channel %s resolved on chain: %d pending payment(s) failed", bytes(channel_id).hex(), len(rows))
        self._wake(rows)

    # ------------------------------------------------------------------ receiving

    def settle_incoming(self, e, event: ev.HtlcReceived) -> Outcome:
        """Fulfill or fail one irrevocably committed incoming HTLC (returns the channel's Outcome)."""
        from lncli.node.invoices import OK
        from lncli.proto.onion import OnionError, peel_onion
        from lncli.proto.onion_failure import create_failure, encode_failure_message

        ch = e.channel
        hid = event.htlc_id
        if self.hold:
            log.info("HTLC %d held (dev-hold-htlcs): neither fulfilled nor failed", hid)
            return Outcome()
        try:
            got = self._peeled.pop((e.channel_id, hid), None)
            if got is not None and got[0] != event.onion_routing_packet:
                got = None  # prepared for another onion: nothing of it applies
            if got is not None:
                peeled = got[1]
            else:
                peeled = peel_onion(event.onion_routing_packet, self.node_key, event.payment_hash)
        except OnionError as err:
            log.info("HTLC %d: bad onion: %s", hid, err)
            if err.failure_code is not None and err.failure_code & 0x8000:
                return ch.fail_malformed_htlc(hid, err.sha256_of_onion, err.failure_code)
            if err.shared_secret is not None and err.failure_message is not None:
                return ch.fail_htlc(hid, create_failure(err.shared_secret, err.failure_message))
            return ch.fail_malformed_htlc(hid, hashlib.sha256(event.onion_routing_packet).digest(), 0xC005)
        ss = peeled.shared_secret
        if not peeled.is_final:
            return self.forwarding.forward(e, event, peeled)
        hp = peeled.hop_payload
        missing = 2 if hp.amt_to_forward is None else 4 if hp.outgoing_cltv_value is None else None
        if missing is not None:
            msg = encode_failure_message("invalid_onion_payload", {"type": missing, "offset": 0})
            return ch.fail_htlc(hid, create_failure(ss, msg))
        height = self.node.block_height or 0
        pd = hp.payment_data
        if got is not None and got[3] == self.invoices.version:
            inv = got[2]  # read ahead by prepare, and no invoice changed since
        else:
            inv = self.invoices.lookup(event.payment_hash)
        name = self.invoices.check_htlc(
            event.payment_hash,
            pd.payment_secret if pd is not None else None,
            event.amount_msat,
            pd.total_msat if pd is not None else None,
            event.cltv_expiry,
            height,
            amt_to_forward=hp.amt_to_forward,
            outgoing_cltv_value=hp.outgoing_cltv_value,
            invoice=inv,
        )
        if name == OK:
            out = ch.fulfill_htlc(hid, inv.preimage)
            self._paid.append((event.payment_hash, event.amount_msat))
            self.invoices.version += 1  # paid once written: what prepare read is stale
            return out
        log.info("HTLC %d (%s): %s", hid, event.payment_hash.hex()[:16], name)
        fields = {
            "incorrect_or_unknown_payment_details": {"htlc_msat": event.amount_msat, "height": height},
            "final_incorrect_cltv_expiry": {"cltv_expiry": event.cltv_expiry},
            "final_incorrect_htlc_amount": {"incoming_htlc_amt": event.amount_msat},
        }.get(name, {})
        return ch.fail_htlc(hid, create_failure(ss, encode_failure_message(name, fields)))

    def prepare_sessions(self) -> None:
        """Make the onion session (:class:`~lncli.proto.onion.OnionSession`: a fresh key, its
        first hop's ephemeral key and shared secret) of the next payment to each first hop a
        payment just used, while the node waits for a peer. Each session builds one onion."""
        while self._want_sessions:
            node = self._want_sessions.pop()
            try:
                session = _new_session(node)
            except ValueError:  # not a valid node id: pay reports it
                continue
            if len(self._sessions) >= _MAX_SESSIONS:  # bounded: forget the oldest
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[node] = session

    def prepare(self, e) -> None:
        """Peel, ahead of time, the onions of ``e``'s incoming HTLCs that are not settled yet
        (while the peer works on its side of the commitment dance), and read the invoice of each
        that ends here: settle_incoming then finds them ready (the invoice only if none changed
        since). Only a cache: a bad onion is left for settle_incoming to answer."""
        from lncli.proto.onion import OnionError, peel_onion

        if self.hold:
            return
        cid = e.channel_id
        for rec in e.channel.received.values():
            key = (cid, rec.htlc_id)
            if rec.removal is not None or key in self._peeled:
                continue
            try:
                peeled = peel_onion(rec.onion_routing_packet, self.node_key, rec.payment_hash)
            except (OnionError, ValueError):
                continue
            version = self.invoices.version
            inv = self.invoices.lookup(rec.payment_hash) if peeled.is_final else None
            if len(self._peeled) >= 4096:  # bounded: forget the oldest
                self._peeled.pop(next(iter(self._peeled)))
            self._peeled[key] = (rec.onion_routing_packet, peeled, inv, version)

    def take_paid(self) -> list[tuple[bytes, int]]:
        """The invoices of HTLCs fulfilled since the last channel write, to mark paid in the next
        one (:meth:`write_paid`); forgotten here."""
        paid, self._paid = self._paid, []
        return paid

    def write_paid(self, conn, paid: list[tuple[bytes, int]]) -> None:
        """Mark paid, in the channel's transaction, the invoices of HTLCs fulfilled in it:
        ``paid`` is a list of (payment_hash, amount_msat); paying twice keeps the first record."""
        self.invoices.mark_paid_in(conn, paid)

    def recover(self) -> None:
        """At start: settle incoming HTLCs committed before a crash, and mark paid the invoices of
        HTLCs fulfilled just before one."""
        for e in list(self.manager.by_id.values()):
            ch = e.channel
            for rec in list(ch.received.values()):
                if rec.removal is not None:
                    if rec.removal.get("kind") == "fulfill":
                        inv = self.invoices.lookup(rec.payment_hash)
                        if inv is not None and inv.paid_at is None:
                            self.invoices.mark_paid(rec.payment_hash, rec.amount_msat)
                    continue
            states = ch.htlc_states()
            follow = Outcome()
            for rec in list(ch.received.values()):
                if rec.removal is None and states.get(("in", rec.htlc_id)) == InboundHTLCState.COMMITTED:
                    try:
                        follow.extend(
                            self.settle_incoming(
                                e,
                                ev.HtlcReceived(rec.htlc_id, rec.amount_msat, rec.payment_hash, rec.cltv_expiry, rec.onion_routing_packet),
                            )
                        )
                    except ChannelError as exc:
                        log.warning("settling HTLC %d after restart: %s", rec.htlc_id, exc)
            if follow.messages or follow.monitor_updates:
                self.manager.commit(e, follow)  # the invoices are marked paid in its transaction


def register(registry, payments: Payments) -> None:
    async def pay(bolt11: str, amount_msat: int | None = None, wait: float = 60.0) -> dict:
        return await payments.pay(bolt11, amount_msat, wait)  # Payments.pay checks them

    async def listpayments(payment_hash: str | None = None) -> list:
        return payments.list(payment_hash_param(payment_hash))

    registry.add("pay", pay)
    registry.add("listpayments", listpayments)


__all__ = ["Payments", "PaymentFailed", "register", "PENDING", "SUCCEEDED", "FAILED", "CLTV_MARGIN"]
