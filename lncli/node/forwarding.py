"""Forwarding HTLCs (BOLT 4 / BOLT 2 / BOLT 7), and paying through one route-hint hop.

At an intermediate node (:meth:`Forwarding.forward`, called for an irrevocably committed incoming
HTLC whose onion is not final):

1. the outgoing channel is ours whose ``short_channel_id`` is the payload's, in state NORMAL with
   its peer connected and reestablished; otherwise ``unknown_next_peer`` (PERM|10);
2. our forwarding policy (lncli.conf): ``fee-base-msat`` (default 1000 msat),
   ``fee-per-millionth`` (default 1 ppm: Core Lightning's and LND's defaults are 1000 msat + 10 /
   1 ppm; 1 keeps test arithmetic easy and is what a route hint of ours under-states at worst),
   ``cltv-expiry-delta`` (default 34, BOLT 2's "at least 34 is reasonable").
   The incoming amount must cover ``amt_to_forward + fee_msat(amt_to_forward)`` (BOLT 7) else
   ``fee_insufficient``; the incoming ``cltv_expiry`` must be at least
   ``outgoing_cltv_value + cltv-expiry-delta`` else ``incorrect_cltv_expiry``;
   ``outgoing_cltv_value`` must be more than :data:`EXPIRY_TOO_SOON` blocks above the current
   height else ``expiry_too_soon``, and at most :data:`EXPIRY_TOO_FAR` blocks above it else
   ``expiry_too_far``;
3. the outgoing HTLC (same payment_hash, the peeled ``next_packet``) is added and committed; the
   ``forwards`` row linking (incoming channel_id, htlc_id) to (outgoing channel_id, htlc_id) is
   written in the same transaction as the channel state that offers it (group commit: durable
   before the update_add_htlc is sent).

The outgoing HTLC's result is written into its ``forwards`` row in the transaction of the channel
state that learns it (preimage: at update_fulfill_htlc; failure: once irrevocable), then acted on
at once: the incoming HTLC is fulfilled with the preimage, or failed with the downstream failure
wrapped with the incoming shared secret (``wrap_failure``); a downstream
``update_fail_malformed_htlc`` becomes an ``update_fail_htlc`` we originate with its
``failure_code`` and ``sha256_of_onion`` (BOLT 4). After a restart, the incoming HTLC still
committed comes back through :meth:`forward`, which sees the row and settles with the recorded
result (or keeps waiting), so nothing is forwarded twice.

Failures originated here use ``create_failure(incoming shared_secret, failuremsg)``. This node
does not sign channel_updates for its (unannounced) channels yet, so failures whose data carries a
``channel_update`` (fee_insufficient, incorrect_cltv_expiry, expiry_too_soon,
temporary_channel_failure) are sent with an empty one (``len`` 0): the payer still reads the code
and the other fields; it just gets no new policy to retry with.

Paying over a hint (:func:`hint_route`): when the payee of an invoice is not a direct peer but the
first hop of one of its ``r`` hints is, the payment goes over our channel to that peer with a
two-hop onion (:meth:`lncli.node.payments.Payments.pay`).

An outgoing HTLC resolved on chain (a force close of the outgoing channel) is settled upstream
by :mod:`lncli.node.onchain_htlcs`: fulfilled with the preimage read off the chain, or failed once
its timeout is deep enough.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from lncli.channel import events as ev
from lncli.channel.channel import ChannelError
from lncli.channel.events import Outcome
from lncli.channel.state import ChannelState
from lncli.errors import InputError
from lncli.proto.gossip import fee_msat
from lncli.proto.onion_failure import create_failure, encode_failure_message, wrap_failure
from lncli.proto.scid import ShortChannelId
from lncli.store.db import migrate, transaction

log = logging.getLogger("lncli.forwarding")

COMPONENT = "forwarding"
MIGRATIONS = [
    "CREATE TABLE forwards (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  in_channel_id BLOB NOT NULL,\n"
    "  in_htlc_id INTEGER NOT NULL,\n"
    "  in_amount_msat INTEGER NOT NULL,\n"
    "  in_cltv_expiry INTEGER NOT NULL,\n"
    "  shared_secret BLOB NOT NULL,\n"
    "  payment_hash BLOB NOT NULL,\n"
    "  out_short_channel_id INTEGER,\n"
    "  out_channel_id BLOB,\n"
    "  out_htlc_id INTEGER,\n"
    "  out_amount_msat INTEGER,\n"
    "  out_cltv_expiry INTEGER,\n"
    "  status TEXT NOT NULL,\n"
    "  payment_preimage BLOB,\n"
    "  fail_reason BLOB,\n"
    "  failure TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  resolved_at INTEGER,\n"
    "  UNIQUE (in_channel_id, in_htlc_id)\n"
    ");\n"
    "CREATE INDEX forwards_out ON forwards(out_channel_id, out_htlc_id);\n"
    "CREATE TABLE payment_routes (\n"
    "  channel_id BLOB NOT NULL,\n"
    "  htlc_id INTEGER NOT NULL,\n"
    "  route TEXT NOT NULL,\n"
    "  failing_node TEXT,\n"
    "  failure_hop INTEGER,\n"
    "  PRIMARY KEY (channel_id, htlc_id)\n"
    ")",
]

#: forwards.status: outgoing HTLC offered; incoming fulfilled / failed (after an outgoing
#: result); refused here (no outgoing HTLC).
OFFERED, SETTLED, FAILED, LOCAL_FAILED = "offered", "settled", "failed", "local_failed"
FEE_BASE_MSAT = 1000
FEE_PER_MILLIONTH = 1
CLTV_EXPIRY_DELTA = 34
#: expiry_too_soon when outgoing_cltv_value <= height + this (the next hop needs time to act).
EXPIRY_TOO_SOON = 3
#: expiry_too_far when outgoing_cltv_value > height + this (BOLT 2's two-week bound).
EXPIRY_TOO_FAR = 2016


def _scid(v: int | None) -> str | None:
    return str(ShortChannelId(v)) if v is not None else None


def hint_route(manager, inv):
    """The first usable single-hop route hint of ``inv``: ``(hop, entries)`` where ``hop`` is a
    :class:`~lncli.proto.invoice.RouteHintHop` whose ``pubkey`` is a direct peer with usable
    channels ``entries`` (most outbound first); None if no hint fits. Longer hints are used only
    by their last hop when that hop's node is our peer."""
    for route in inv.route_hints:
        if not route:
            continue
        hop = route[-1]  # the channel into the payee
        entries = manager.usable(hop.pubkey)
        if entries:
            return hop, entries
    return None


class Forwarding:
    """Forwarding HTLCs over the node's channels (``channels``), with the policy of lncli.conf
    (``config``, or None: the defaults); ``height()`` is the best block's height (or None)."""

    def __init__(self, db, channels, *, height: Callable[[], int | None], config=None):
        self.manager = channels
        self.block_height = height
        self.db = db
        migrate(self.db, COMPONENT, MIGRATIONS)
        conf = config
        get = (lambda k, d: conf.get_int(k, d)) if conf is not None else (lambda k, d: d)
        self.fee_base_msat = get("fee-base-msat", FEE_BASE_MSAT)
        self.fee_per_millionth = get("fee-per-millionth", FEE_PER_MILLIONTH)
        self.cltv_expiry_delta = get("cltv-expiry-delta", CLTV_EXPIRY_DELTA)
        if self.fee_base_msat < 0 or self.fee_per_millionth < 0:
            raise InputError("fee-base-msat and fee-per-millionth must not be negative")
        if not 1 <= self.cltv_expiry_delta <= 2016:
            raise InputError(f"cltv-expiry-delta={self.cltv_expiry_delta} must be between 1 and 2016 blocks")

    # ------------------------------------------------------------------ incoming

    def _local_fail(self, e, event, ss: bytes, name: str, fields: dict | None = None, scid: int | None = None) -> Outcome:
        log.info("forward of HTLC %d (%s) refused: %s", event.htlc_id, event.payment_hash.hex()[:16], name)
        try:
            with transaction(self.db) as conn:  # statistics only: not tied to the channel state
                conn.execute(
                    "INSERT OR IGNORE INTO forwards(in_channel_id, in_htlc_id, in_amount_msat, in_cltv_expiry, shared_secret, "
                    "payment_hash, out_short_channel_id, status, failure, created_at, resolved_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                    (e.channel_id, event.htlc_id, event.amount_msat, event.cltv_expiry, ss, event.payment_hash, scid,
                     LOCAL_FAILED, name, int(time.time()), int(time.time())),
                )
        except Exception:  # noqa: BLE001 - a statistics row must not stop the failure
            log.exception("recording a refused forward failed")
        return e.channel.fail_htlc(event.htlc_id, create_failure(ss, encode_failure_message(name, fields or {})))

    def forward(self, e, event: ev.HtlcReceived, peeled) -> Outcome:
        """Forward (or refuse) one irrevocably committed incoming HTLC with a non-final onion."""
        ss = peeled.shared_secret
        row = self.db.execute(
            "SELECT * FROM forwards WHERE in_channel_id=? AND in_htlc_id=?", (e.channel_id, event.htlc_id)
        ).fetchone()
        if row is not None:  # after a restart: forwarded already
            if row["status"] == LOCAL_FAILED:
                return e.channel.fail_htlc(event.htlc_id, create_failure(ss, "temporary_node_failure"))
            got = self._settle_from_row(e, row)
            if got is None:
                return Outcome()
            out, rid, status = got
            self._mark(rid, status)
            return out
        hp = peeled.hop_payload
        missing = (6 if hp.short_channel_id is None else 2 if hp.amt_to_forward is None
                   else 4 if hp.outgoing_cltv_value is None else None)
        if missing is not None:
            return self._local_fail(e, event, ss, "invalid_onion_payload", {"type": missing, "offset": 0})
        scid = hp.short_channel_id
        out_e = None
        for cand in self.manager.by_id.values():
            if cand.channel.short_channel_id == scid and cand.state == ChannelState.NORMAL and cand.reestablished:
                peer = self.manager.peer(cand.peer)
                if peer is not None and peer.close_reason is None:
                    out_e = cand
                    break
        if out_e is None or out_e is e:
            return self._local_fail(e, event, ss, "unknown_next_peer", scid=scid)
        amt, out_cltv = hp.amt_to_forward, hp.outgoing_cltv_value
        fee = fee_msat(amt, self.fee_base_msat, self.fee_per_millionth)
        if event.amount_msat < amt + fee:
            return self._local_fail(e, event, ss, "fee_insufficient", {"htlc_msat": event.amount_msat}, scid)
        if event.cltv_expiry < out_cltv + self.cltv_expiry_delta:
            return self._local_fail(e, event, ss, "incorrect_cltv_expiry", {"cltv_expiry": event.cltv_expiry}, scid)
        height = self.block_height() or 0
        if out_cltv <= height + EXPIRY_TOO_SOON:
            return self._local_fail(e, event, ss, "expiry_too_soon", {}, scid)
        if out_cltv > height + EXPIRY_TOO_FAR:
            return self._local_fail(e, event, ss, "expiry_too_far", {}, scid)
        out_ch = out_e.channel
        try:
            out = out_ch.add_htlc(amt, event.payment_hash, out_cltv, peeled.next_packet)
        except ChannelError as exc:
            log.info("forward of HTLC %d over %s: %s", event.htlc_id, _scid(scid), exc)
            below = amt < out_ch.remote_config.htlc_minimum_msat
            if below:
                return self._local_fail(e, event, ss, "amount_below_minimum", {"htlc_msat": amt}, scid)
            return self._local_fail(e, event, ss, "temporary_channel_failure", {}, scid)
        out_hid = out_ch.next_htlc_id - 1
        now = int(time.time())
        in_cid = e.channel_id

        def insert(conn):
            conn.execute(
                "INSERT INTO forwards(in_channel_id, in_htlc_id, in_amount_msat, in_cltv_expiry, shared_secret, payment_hash, "
                "out_short_channel_id, out_channel_id, out_htlc_id, out_amount_msat, out_cltv_expiry, status, created_at) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (in_cid, event.htlc_id, event.amount_msat, event.cltv_expiry, ss, event.payment_hash, scid,
                 out_ch.channel_id, out_hid, amt, out_cltv, OFFERED, now),
            )

        log.info("forwarding HTLC %d (%d msat) -> %s HTLC %d (%d msat, fee %d)", event.htlc_id, event.amount_msat,
                 _scid(scid), out_hid, amt, event.amount_msat - amt)
        self.manager.commit(out_e, out, insert)
        return Outcome()

    def _settle_from_row(self, in_e, row) -> tuple[Outcome, int, str] | None:
        """Fulfill or fail the incoming HTLC of ``row`` if its outgoing result is known:
        ``(outcome, row id, new status)``; None while the outgoing HTLC is pending."""
        ch = in_e.channel
        hid = row["in_htlc_id"]
        if row["payment_preimage"] is not None:
            return ch.fulfill_htlc(hid, bytes(row["payment_preimage"])), row["id"], SETTLED
        if row["fail_reason"] is not None:
            return ch.fail_htlc(hid, bytes(row["fail_reason"])), row["id"], FAILED
        return None

    # ------------------------------------------------------------------ outgoing results

    def in_transaction(self, conn, e, events: list) -> None:
        """In the outgoing channel's transaction: record the result of forwarded HTLCs."""
        for event in events:
            if isinstance(event, ev.HtlcFulfilled):
                conn.execute(
                    "UPDATE forwards SET payment_preimage=? WHERE out_channel_id=? AND out_htlc_id=? AND status=?",
                    (event.payment_preimage, e.channel_id, event.htlc_id, OFFERED),
                )
            elif isinstance(event, ev.HtlcFailed):
                row = conn.execute(
                    "SELECT id, shared_secret FROM forwards WHERE out_channel_id=? AND out_htlc_id=? AND status=?",
                    (e.channel_id, event.htlc_id, OFFERED),
                ).fetchone()
                if row is None:
                    continue
                ss = bytes(row["shared_secret"])
                if event.reason is not None:
                    reason, what = wrap_failure(ss, event.reason), "failed downstream"
                else:
                    code = event.failure_code or 0
                    reason = create_failure(ss, code, bytes(event.sha256_of_onion or bytes(32)))
                    what = f"malformed downstream ({code:#06x})"
                conn.execute("UPDATE forwards SET fail_reason=?, failure=? WHERE id=?", (reason, what, row["id"]))

    def after_commit(self, e, events: list) -> None:
        """After the outgoing channel's write: settle the incoming HTLCs at once."""
        for event in events:
            if not isinstance(event, (ev.HtlcFulfilled, ev.HtlcFailed)):
                continue
            row = self.db.execute(
                "SELECT * FROM forwards WHERE out_channel_id=? AND out_htlc_id=? AND status=?",
                (e.channel_id, event.htlc_id, OFFERED),
            ).fetchone()
            if row is None:
                continue
            in_e = self.manager.by_id.get(bytes(row["in_channel_id"]))
            if in_e is None:
                log.warning("forward %d: the incoming channel is gone", row["id"])
                continue
            try:
                got = self._settle_from_row(in_e, row)
            except ChannelError as exc:
                log.warning("forward %d: settling the incoming HTLC: %s", row["id"], exc)
                continue
            if got is not None:
                out, rid, status = got
                now = int(time.time())

                def mark(conn, rid=rid, status=status, now=now):
                    conn.execute("UPDATE forwards SET status=?, resolved_at=? WHERE id=?", (status, now, rid))

                self.manager.commit(in_e, out, mark)

    def _mark(self, rid: int, status: str) -> None:
        """The status of a forward settled after a restart (informational: the incoming HTLC's
        removal itself is in its channel's record, and a settle repeats from the row's result)."""
        with transaction(self.db) as conn:
            conn.execute("UPDATE forwards SET status=?, resolved_at=? WHERE id=?", (status, int(time.time()), rid))

    # ------------------------------------------------------------------ queries

    def list(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM forwards ORDER BY id").fetchall()
        res = []
        for r in rows:
            out_amt = r["out_amount_msat"]
            in_e = self.manager.by_id.get(bytes(r["in_channel_id"]))
            res.append({
                "in_channel_id": bytes(r["in_channel_id"]).hex(),
                "in_short_channel_id": _scid(in_e.channel.short_channel_id) if in_e is not None else None,
                "in_htlc_id": r["in_htlc_id"],
                "in_msat": r["in_amount_msat"],
                "out_channel_id": bytes(r["out_channel_id"]).hex() if r["out_channel_id"] is not None else None,
                "out_short_channel_id": _scid(r["out_short_channel_id"]),
                "out_htlc_id": r["out_htlc_id"],
                "out_msat": out_amt,
                "fee_msat": r["in_amount_msat"] - out_amt if (out_amt is not None and r["status"] == SETTLED) else 0,
                "payment_hash": bytes(r["payment_hash"]).hex(),
                "status": r["status"],
                "failure": r["failure"],
                "created_at": r["created_at"],
                "resolved_at": r["resolved_at"],
            })
        return res

    # ------------------------------------------------------------------ payments over a hint

    def record_route(self, conn, channel_id: bytes, htlc_id: int, route: list[bytes]) -> None:
        conn.execute("INSERT OR REPLACE INTO payment_routes(channel_id, htlc_id, route) VALUES(?,?,?)",
                     (channel_id, htlc_id, ",".join(n.hex() for n in route)))

    def route_of(self, conn, channel_id: bytes, htlc_id: int) -> list[str] | None:
        row = conn.execute("SELECT route FROM payment_routes WHERE channel_id=? AND htlc_id=?", (channel_id, htlc_id)).fetchone()
        return row["route"].split(",") if row is not None else None

    def record_failing(self, conn, channel_id: bytes, htlc_id: int, node: str | None, hop: int | None) -> None:
        conn.execute("UPDATE payment_routes SET failing_node=?, failure_hop=? WHERE channel_id=? AND htlc_id=?",
                     (node, hop, channel_id, htlc_id))

    def annotate(self, d: dict) -> dict:
        """Add ``route`` and ``failing_node`` / ``failure_hop`` to a payment's JSON."""
        row = self.db.execute("SELECT * FROM payment_routes WHERE channel_id=? AND htlc_id=?",
                              (bytes.fromhex(d["channel_id"]), d["htlc_id"])).fetchone()
        d["route"] = row["route"].split(",") if row is not None else [d["destination"]]
        if row is not None and row["failing_node"] is not None:
            d["failing_node"], d["failure_hop"] = row["failing_node"], row["failure_hop"]
        elif d.get("status") == "failed" and d.get("failure_code") is not None:
            d["failing_node"], d["failure_hop"] = d["destination"], 0
        return d


def register(registry, fwd: Forwarding) -> None:
    async def listforwards() -> list:
        return fwd.list()

    registry.add("listforwards", listforwards)


__all__ = ["Forwarding", "hint_route", "register", "MIGRATIONS", "FEE_BASE_MSAT", "FEE_PER_MILLIONTH",
           "CLTV_EXPIRY_DELTA", "EXPIRY_TOO_SOON", "EXPIRY_TOO_FAR"]
