"""Payments over the node's channels: paying BOLT 11 invoices (in parts when needed), and settling
the HTLCs that pay our own invoices.

The channel code settles an incoming HTLC as soon as it is irrevocably committed, in memory, so
the fulfill (or fail) is written in the same transaction as the state that committed it, and
the invoice is marked paid in that transaction too (:meth:`Payments.write_paid`).

Sending (:meth:`Payments.pay`): decode the invoice (network, expiry, amount), then the payment
loop (:meth:`Payments._pay_parts`): a :class:`lncli.node.pay_session.PaymentSession` finds
routes with :func:`lncli.proto.routing.find_route` over our usable channels as first hops (their
live balance), the invoice's route hints as edges and, for a payee that is not our peer, the
gossip graph. What no single route carries is split in halves, recursively (invoices with
basic_mpp only; at most MAX_PARTS parts in flight, none below MIN_PART_MSAT), every part with
the same payment_hash and a final payload of ``amt_to_forward`` (the part),
``outgoing_cltv_value``, ``payment_data`` (payment_secret, total_msat: the whole payment) and
``payment_metadata``. Each part's row is written in the same transaction as the channel state
that offers its HTLC (write before send; its update_add_htlc alone goes ahead); its result
(preimage, or the BOLT 4 failure decoded from the onion error) in the transaction of the channel
state that learns it. A failed part goes back to the session, which narrows the graph (see its
module) or ends the payment; the loop plans again what is not in flight, until the payment
succeeds, ends, finds no route or reaches its timeout. Limits: ``max_fee_msat`` over all parts
(default Core Lightning's: 0.5%, 5000 msat exempt) and ``max_cltv`` blocks for a first HTLC's
expiry. The result lists every part offered in ``attempts``. The session key is drawn here from
``os.urandom``.

Receiving (:meth:`Payments.settle_incoming`): once an incoming HTLC is irrevocably committed,
peel its onion with the node key; a bad onion is failed with ``update_fail_malformed_htlc``
(BADONION codes) or an ``invalid_onion_payload`` error; a non-final onion is forwarded (or
refused) by :mod:`lncli.node.forwarding`; a final one goes through
:meth:`lncli.node.invoices.InvoiceStore.check_htlc` and, if it passes, joins its HTLC set
(:mod:`lncli.node.htlc_sets`), which fulfills every part once total_msat is in (the invoice is
then marked paid) or fails them all (``mpp_timeout`` after 60 s); else it is failed with the
failure the check names.

On chain: when a channel with pending payments is force-closed, a preimage the peer reveals in a
witness settles them (:meth:`Payments.preimage_onchain`), and once the chain watcher reports the
channel resolved (every output claimed, deep enough), what is still pending has timed out on chain
and is failed as ``permanent_channel_failure`` (:meth:`Payments.channel_resolved`).

Testing (regtest only): ``dev-hold-htlcs=1`` in lncli.conf makes the node neither fulfill nor
fail incoming HTLCs, so payers see them time out (HTLC expiry tests); ``dev-mpp-timeout=SECONDS``
shortens the wait for the rest of an HTLC set.
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
from lncli.channel.state import ChannelState, InboundHTLCState
from lncli.errors import InputError, LncliError, RefusedError
from lncli.node.htlc_sets import MPP_TIMEOUT_SECONDS, HtlcSets
from lncli.node.invoices import payment_hash_param
from lncli.node.pay_session import (
    MAX_FEE_PERCENT,
    TEMPORARY_CHANNEL_FAILURE,
    FeeLimitExceeded,
    PaymentSession,
    attempt_json,
    default_max_fee_msat,
    failure_channel_update,
)
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
    # the parts of a multi-part payment: each row one HTLC, ``part`` its index among the payment's
    # attempts, ``total_msat`` what all of them pay together
    "ALTER TABLE payments ADD COLUMN total_msat INTEGER;\n"
    "ALTER TABLE payments ADD COLUMN part INTEGER",
]

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
#: Blocks added to the invoice's min_final_cltv_expiry_delta (the payee may be a block behind).
CLTV_MARGIN = 3
#: the latest a part's first HTLC may expire, in blocks from now (the default of max_cltv)
MAX_CLTV = 2016
#: a payment is split into at most this many parts in flight, none smaller than MIN_PART_MSAT
MAX_PARTS = 16
MIN_PART_MSAT = 10_000
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
        "total_msat": row["total_msat"] if row["total_msat"] is not None else row["amount_msat"],
        "part": row["part"] if row["part"] is not None else 0,
    }


class Payments:
    """Paying invoices and settling the HTLCs that pay ours. Built with what it uses: ``node``
    for the node's own identity, settings, database and best block height (``node_id``,
    ``node_key``, ``settings``, ``db``, ``block_height``: nothing of its other components), the
    channels (to offer HTLCs), forwarding (non-final onions, routes over several hops), the
    invoices and the gossip graph's owner (``gossip``, or None: routes only over the invoice's
    hints)."""

    def __init__(self, node, channels, forwarding, invoices, gossip=None, routes=None):
        self.node = node
        self.routes = routes  # its scorer learns from every part (None: no scorer, as in unit tests)
        self.manager = channels
        self.forwarding = forwarding
        self.gossip = gossip
        self.db = node.db
        self.invoices = invoices
        self.node_key = node.node_key
        self.network = node.settings.network
        migrate(self.db, COMPONENT, MIGRATIONS)
        self._waiters: dict[tuple[bytes, int], asyncio.Future] = {}
        # (channel_id, htlc_id) -> (failure_code, hop, ChannelUpdate or None) of a failed part waited for
        self._decoded: dict[tuple[bytes, int], tuple] = {}
        self._created: dict[tuple[bytes, int], int] = {}  # created_at of the parts being paid
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
        mpp_timeout = conf.get_int("dev-mpp-timeout", 0) if conf is not None else 0
        if mpp_timeout < 0:
            raise InputError(f"dev-mpp-timeout={mpp_timeout} must be 0 (the default, 60 s) or more seconds")
        if mpp_timeout and self.network != "regtest":
            raise InputError(f"dev-mpp-timeout is a testing option, regtest only (this node is on {self.network})")
        self.htlc_sets = HtlcSets(channels, self._set_paid, float(mpp_timeout or MPP_TIMEOUT_SECONDS),
                                  height=lambda: node.block_height)

    # ------------------------------------------------------------------ sending

    def _height(self) -> int:
        h = self.node.block_height
        if h is None:
            raise RefusedError("the node does not know the block height yet (no chain backend?)")
        return h

    async def pay(self, bolt11: str, amount_msat: int | None = None, timeout: float = 60.0, *,
                  max_fee_msat: int | None = None, max_fee_percent: float | None = None,
                  max_cltv: int | None = None) -> dict:
        """Pay ``bolt11``. The one check of its arguments (the RPC and the CLI pass them through):
        InputError for a non-string invoice, an amount that is not a positive whole number of
        msat, a timeout not in (0, 3600] seconds, a fee limit that is not a whole number of msat
        (or a percent in [0, 100]; not both), or a ``max_cltv`` not in [1, 2016] blocks.

        ``max_fee_msat``: the most all parts together may pay in fees (default
        :func:`lncli.node.pay_session.default_max_fee_msat`: Core Lightning's 0.5% with 5000 msat
        exempt). ``max_cltv``: the most blocks from now the first HTLC of a part may expire
        (default 2016). ``timeout``: how long to keep retrying and waiting."""
        from lncli.proto import invoice as bolt11_mod

        if not isinstance(bolt11, str):
            raise InputError("bolt11 must be a string")
        if amount_msat is not None and (isinstance(amount_msat, bool) or not isinstance(amount_msat, int) or amount_msat <= 0):
            raise InputError("the amount must be a positive whole number of msat")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise InputError("the timeout must be more than 0 and at most 3600 seconds")
        if max_fee_msat is not None and (isinstance(max_fee_msat, bool) or not isinstance(max_fee_msat, int) or max_fee_msat < 0):
            raise InputError("the fee limit must be a whole number of msat, 0 or more")
        if max_fee_percent is not None and (isinstance(max_fee_percent, bool) or not isinstance(max_fee_percent, (int, float))
                                            or not 0 <= max_fee_percent <= 100):
            raise InputError("the fee limit in percent must be from 0 to 100")
        if max_fee_msat is not None and max_fee_percent is not None:
            raise InputError("give a fee limit in msat or in percent, not both")
        if max_cltv is not None and (isinstance(max_cltv, bool) or not isinstance(max_cltv, int) or not 0 < max_cltv <= MAX_CLTV):
            raise InputError(f"max_cltv must be 1 to {MAX_CLTV} blocks")
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
        direct = bool(self.manager.usable(inv.payee))
        if not direct:
            from lncli.node.forwarding import hint_route

            anyc = [e for e in self.manager.by_id.values() if e.peer == inv.payee]
            if anyc and hint_route(self.manager, inv) is None:
                states = ", ".join(sorted({e.state.value + ("" if e.reestablished else " (peer not connected)") for e in anyc}))
                raise RefusedError(f"no usable channel with the payee {inv.payee.hex()} ({states})")
        if max_fee_msat is None:
            max_fee_msat = default_max_fee_msat(amount, MAX_FEE_PERCENT if max_fee_percent is None else max_fee_percent)
        final_delta = inv.min_final_cltv_expiry_delta + CLTV_MARGIN
        max_cltv = MAX_CLTV if max_cltv is None else max_cltv
        if max_cltv < final_delta:
            raise RefusedError(f"max_cltv {max_cltv} is less than the payee's final cltv delta ({final_delta} blocks with our margin)")
        return await self._pay_parts(inv, text, amount, timeout, max_fee_msat, max_cltv - final_delta, direct)

    def _local_channels(self) -> list:
        """Our channels that can offer an HTLC now, as first hops for routing (what each can send),
        most outbound first (as ChannelManager.usable: of two equal routes the fuller channel)."""
        from lncli.proto.routing import LocalChannel

        ours = []
        for e in self.manager.by_id.values():
            ch = e.channel
            if e.state == ChannelState.NORMAL and e.reestablished and ch.can_add_htlcs() and ch.short_channel_id is not None:
                outbound = ch._projected()[0] - ch.remote_config.channel_reserve_satoshis * 1000
                ours.append(LocalChannel(e.peer, int(ch.short_channel_id), max(outbound, 0), ch.remote_config.htlc_minimum_msat))
        ours.sort(key=lambda c: -c.outbound_msat)  # most outbound first: routing keeps the first of equals
        return ours

    def _plan(self, session: PaymentSession, remaining: int, mpp: bool, fee_budget: int, in_flight: int) -> list:
        """Routes that together deliver ``remaining`` msat within ``fee_budget``: one if one
        route carries it, else (``mpp``) halves, recursively, at most MAX_PARTS parts in flight
        in all. NoRouteError (nothing reserved) when the graph as narrowed cannot carry it."""
        from dataclasses import replace

        from lncli.proto.routing import NoRouteError

        ours = self._local_channels()
        planned: dict[int, int] = {}
        routes: list = []
        stack = [remaining]
        try:
            while stack:
                amt = stack.pop()
                local = [replace(c, outbound_msat=max(0, c.outbound_msat - planned.get(c.short_channel_id, 0))) for c in ours]
                try:
                    route = session.next_route(amt, local, max_fee_msat=fee_budget - sum(r.fee_msat for r in routes))
                except FeeLimitExceeded:
                    raise
                except NoRouteError:
                    if not mpp or amt < 2 * MIN_PART_MSAT or in_flight + len(routes) + len(stack) + 2 > MAX_PARTS:
                        raise
                    half = amt // 2
                    stack += [amt - half, half]
                    continue
                routes.append(route)
                planned[route.first_short_channel_id] = planned.get(route.first_short_channel_id, 0) + route.amount_msat
        except NoRouteError:
            for r in routes:
                session.release(r)
            raise
        return routes

    def _offer(self, inv, text: str, route, total: int, part: int) -> tuple[bytes, int]:
        """Offer one part over ``route``: the HTLC leaves ahead of its write, the payment row is
        written with the channel state that offers it. Returns its (channel_id, htlc_id);
        RefusedError if our channel refuses it. The row's created_at is in ``self._created``."""
        from lncli.proto.onion import HopPayload, PaymentData, build_onion

        ph = inv.payment_hash
        delivered = route.hops[-1].amt_to_forward
        hops = [(h.node_id, HopPayload(amt_to_forward=h.amt_to_forward, outgoing_cltv_value=h.outgoing_cltv_value,
                                       short_channel_id=h.short_channel_id)) for h in route.hops[:-1]]
        hops.append((inv.payee, HopPayload(amt_to_forward=delivered, outgoing_cltv_value=route.hops[-1].outgoing_cltv_value,
                                           payment_data=PaymentData(inv.payment_secret, total),
                                           payment_metadata=inv.payment_metadata)))
        nodes = route.nodes
        self._want_sessions.add(nodes[0])
        try:
            session = self._sessions.pop(nodes[0], None) or _new_session(nodes[0])  # made ahead: used once
            onion, secrets = build_onion(session, hops, ph)
        except ValueError as exc:  # a hop that is not a valid node id, or payloads too big to fit
            raise RefusedError(f"cannot build the payment onion: {exc}") from None
        entries = [e for e in self.manager.usable(nodes[0]) if e.channel.short_channel_id == route.first_short_channel_id]
        if not entries:
            raise RefusedError(f"channel {route.first_short_channel_id} is not usable now")
        e = entries[0]
        ch = e.channel
        try:
            out = ch.add_htlc(route.amount_msat, ph, route.cltv_expiry, onion)
        except ChannelError as exc:
            raise RefusedError(str(exc)) from None
        htlc_id = ch.next_htlc_id - 1
        key = (ch.channel_id, htlc_id)
        self._waiters[key] = asyncio.get_running_loop().create_future()
        now = self._created[key] = int(time.time())

        def insert(conn):
            conn.execute(
                "INSERT INTO payments(payment_hash, bolt11, destination, amount_msat, fee_msat, channel_id, htlc_id, cltv_expiry, "
                "shared_secret, status, created_at, total_msat, part) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (ph, text, inv.payee.hex(), delivered, route.fee_msat, ch.channel_id, htlc_id, route.cltv_expiry,
                 b"".join(secrets), PENDING, now, total, part),
            )
            if len(nodes) > 1:
                self.forwarding.record_route(conn, ch.channel_id, htlc_id, nodes)

        self.manager.send_ahead(e, out)
        self.manager.commit(e, out, insert)
        return key

    async def _pay_parts(self, inv, text: str, amount: int, timeout: float, max_fee: int, max_cltv_delta: int,
                         direct: bool) -> dict:
        """The payment loop: plan routes for what is not yet in flight or paid, offer them, and
        learn from each part's failure (:class:`lncli.node.pay_session.PaymentSession`) until the
        payment succeeds, a failure ends it, no route is left, or ``timeout`` passes. The result
        is the deciding part's row with the payment's totals and ``attempts`` (every part
        offered or refused, with its route and outcome)."""
        from lncli.proto import routing
        from lncli.proto.routing import NoRouteError

        edges = routing.hint_edges(inv.route_hints, inv.payee)
        if not direct and self.gossip is not None:
            edges = routing.graph_edges(self.gossip.graph) + edges
        final_cltv = self._height() + inv.min_final_cltv_expiry_delta + CLTV_MARGIN
        session = PaymentSession(routing.index_edges(edges), self.node.node_id, inv.payee, final_cltv,
                                 max_cltv_delta=max_cltv_delta, scorer=self.routes.scorer if self.routes else None)
        mpp = bool(inv.features & {16, 17})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempts: list[dict] = []
        flying: dict[tuple[bytes, int], tuple[dict, routing.Route]] = {}
        remaining, fees = amount, 0  # not yet in flight or paid; the fees of parts in flight or paid
        preimage, ended, last, won, refusals = None, None, None, [], []
        no_route = None
        while True:
            if preimage is None and ended is None and remaining > 0 and loop.time() < deadline:
                try:
                    routes, no_route = self._plan(session, remaining, mpp, max_fee - fees, len(flying)), None
                except NoRouteError as exc:
                    routes, no_route = [], exc
                for route in routes:
                    att = attempt_json(len(attempts), route, PENDING)
                    attempts.append(att)
                    try:
                        key = self._offer(inv, text, route, amount, att["part"])
                    except RefusedError as exc:
                        att.update(status=FAILED, failure=str(exc), erring_channel=att["hops"][0]["short_channel_id"])
                        att["narrowed"] = session.on_failure(route, TEMPORARY_CHANNEL_FAILURE, -1).narrowed
                        refusals.append(str(exc))
                        continue
                    flying[key] = (att, route)
                    remaining -= route.hops[-1].amt_to_forward
                    fees += route.fee_msat
            if not flying:
                if remaining > 0 and ended is None and preimage is None and no_route is None and loop.time() < deadline:
                    continue  # refused by our own channel: plan again around it
                break
            done, _ = await asyncio.wait([self._waiters[k] for k in flying], timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break  # the timeout: what is in flight stays pending
            for key in [k for k in flying if self._waiters[k].done()]:
                att, route = flying.pop(key)
                got = self._waiters.pop(key).result()
                row = self.get(*key)
                if got is not None or row["status"] == SUCCEEDED:
                    preimage = got if got is not None else bytes.fromhex(row["payment_preimage"])
                    session.on_success(route)
                    att["status"] = SUCCEEDED
                    won.append((key, route, att["part"]))
                    continue
                last = row
                self._created.pop(key, None)
                att.update(status=row["status"], failure=row["failure"], failure_code=row["failure_code"])
                if row["status"] != FAILED:
                    continue
                remaining += route.hops[-1].amt_to_forward
                fees -= route.fee_msat
                code, hop, update = self._decoded.pop(key, (row["failure_code"], row.get("failure_hop"), None))
                if hop is not None and 0 <= hop < len(route.hops):
                    att["erring_node"] = route.hops[hop].node_id.hex()
                    if hop < len(route.hops) - 1:
                        att["erring_channel"] = att["hops"][hop + 1]["short_channel_id"]
                verdict = session.on_failure(route, code, hop, update)
                att["narrowed"] = verdict.narrowed
                if not verdict.retry:
                    ended = row
                no_route = None  # something was learnt: worth planning again
            if ended is not None:
                break  # the payment is over: parts still in flight end as listpayments will show
        for key in flying:  # still pending at the timeout: listpayments shows how they end
            self._waiters.pop(key, None)
            self._decoded.pop(key, None)
            self._created.pop(key, None)
        created = {k: self._created.pop(k, None) for k, _, _ in won}
        if not attempts or (not flying and preimage is None and last is None):
            why = str(no_route)
            if mpp and no_route is not None and not isinstance(no_route, FeeLimitExceeded):
                why = f"no route, nor up to {MAX_PARTS} routes of parts, for {amount} msat (the last search: {no_route})"
            if refusals:
                why += "; refused: " + "; ".join(refusals)
            if direct:
                can = sum(c.outbound_msat for c in self._local_channels() if c.peer == inv.payee)
                raise RefusedError(f"cannot pay {amount} msat over any channel with the payee: insufficient balance "
                                   f"({can} msat can be sent): {why}")
            raise RefusedError(f"no channel with the payee {inv.payee.hex()}, no route hint from a peer, and {why}")
        if self.routes is not None:
            self.routes.learnt()
        return self._result(inv, text, amount, preimage, won, ended, last, flying, attempts, created)

    def _result(self, inv, text: str, amount: int, preimage, won: list, ended, last, flying: dict,
                attempts: list, created: dict) -> dict:
        """The payment's outcome: succeeded (a preimage), failed (a failure that ended it), pending
        (parts in flight at the timeout), or failed (the last failure, no route left)."""
        if preimage is not None:
            # the verified preimage, reported before its write (the channel writes it with its
            # next write; a crash before that gets the fulfill again at reestablish): the row as
            # listpayments will show it, from memory
            (cid, hid), route, part = won[0]
            res = {
                "payment_hash": inv.payment_hash.hex(), "status": SUCCEEDED, "amount_msat": amount,
                "fee_msat": sum(r.fee_msat for _, r, _ in won), "destination": inv.payee.hex(),
                "payment_preimage": preimage.hex(), "failure": None, "failure_code": None, "channel_id": cid.hex(),
                "htlc_id": hid, "cltv_expiry": route.cltv_expiry, "bolt11": text,
                "created_at": created.get((cid, hid)) or int(time.time()), "completed_at": int(time.time()),
                "total_msat": amount, "part": part,
                "route": [n.hex() for n in route.nodes],
            }
        elif ended is not None or not flying:
            res = ended if ended is not None else last
        else:
            res = self.get(*next(iter(flying)))
        res["parts"] = len(won) + (0 if preimage is None else len(flying))
        res["attempts"] = attempts
        return res

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
                name, code, hop, fields = self._failure(event, bytes(row["shared_secret"]))
                if (cid, event.htlc_id) in self._waiters:
                    self._decoded[(cid, event.htlc_id)] = (code, hop, failure_channel_update(fields.get("channel_update")))
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
    def _failure(event: ev.HtlcFailed, shared_secret: bytes) -> tuple[str, int | None, int | None, dict]:
        """(name, code, hop index, fields) of a failure; ``shared_secret`` is the route's secrets,
        32 bytes per hop. A malformed failure comes from the first hop (hop 0)."""
        from lncli.proto.onion_failure import FailureDecodeError, decode_failure, failure_name

        if event.failure_code is not None:
            return failure_name(event.failure_code), event.failure_code, 0, {}
        secrets = [shared_secret[i:i + 32] for i in range(0, len(shared_secret), 32)]
        try:
            f = decode_failure(event.reason or b"", secrets)
        except FailureDecodeError as exc:
            return f"unreadable failure ({exc})", None, getattr(exc, "hop_index", None), {}
        return f.name, f.code, f.hop_index, f.fields

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
        if name == OK:  # one part of its HTLC set (basic_mpp), perhaps the only one
            total = pd.total_msat if pd.total_msat is not None else hp.amt_to_forward
            return self.htlc_sets.add(e, event.payment_hash, inv.preimage, hid, event.amount_msat, hp.amt_to_forward,
                                      total, ss)
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

    def _set_paid(self, payment_hash: bytes, amount_msat: int) -> None:
        """An HTLC set was fulfilled: its invoice is marked paid in the next channel write."""
        self._paid.append((payment_hash, amount_msat))
        self.invoices.version += 1  # paid once written: what prepare read is stale

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
    async def pay(bolt11: str, amount_msat: int | None = None, wait: float = 60.0, max_fee_msat: int | None = None,
                  max_fee_percent: float | None = None, max_cltv: int | None = None) -> dict:
        return await payments.pay(bolt11, amount_msat, wait, max_fee_msat=max_fee_msat,  # Payments.pay checks them
                                  max_fee_percent=max_fee_percent, max_cltv=max_cltv)

    async def listpayments(payment_hash: str | None = None) -> list:
        return payments.list(payment_hash_param(payment_hash))

    registry.add("pay", pay)
    registry.add("listpayments", listpayments)


__all__ = ["Payments", "PaymentFailed", "register", "PENDING", "SUCCEEDED", "FAILED", "CLTV_MARGIN"]
