"""Forwarding HTLCs (BOLT 4 / BOLT 2 / BOLT 7), and paying through one route-hint hop.

At an intermediate node (:meth:`Forwarding.forward`, called for an irrevocably committed incoming
HTLC whose onion is not final):

1. the onion payload has ``short_channel_id``, ``amt_to_forward`` and ``outgoing_cltv_value``,
   else ``invalid_onion_payload``; the outgoing channel is ours with that ``short_channel_id``,
   else ``unknown_next_peer`` (PERM|10); shutting down or closed: ``permanent_channel_failure``;
   its peer not connected (or the channel not reestablished yet): ``channel_disabled``;
2. the checks of :func:`lncli.proto.forwarding.check_forward` with that channel's policy
   (:mod:`lncli.node.channel_policy`: lncli.conf's ``fee-base``, ``fee-ppm``, ``cltv-delta``,
   ``htlc-minimum``, ``htlc-maximum``, or what ``lncli setchannel`` set, within the channel's
   limits; the policy a setchannel replaced is still accepted for its ``enforce_delay``):
   ``amount_below_minimum``, ``temporary_channel_failure`` (above the maximum),
   ``fee_insufficient``, ``incorrect_cltv_expiry``, ``expiry_too_soon``, ``expiry_too_far``;
3. the outgoing HTLC (same payment_hash, the peeled ``next_packet``) is added: the channel's own
   checks (balance above the reserve, the peer's ``max_accepted_htlcs`` and
   ``max_htlc_value_in_flight_msat``) refuse it with ``temporary_channel_failure``; else it is
   committed, and the ``forwards`` row linking (incoming channel_id, htlc_id) to (outgoing
   channel_id, htlc_id) is written in the same transaction as the channel state that offers it
   (group commit: durable before the update_add_htlc is sent).

The outgoing HTLC's result is written into its ``forwards`` row in the transaction of the channel
state that learns it (preimage: at update_fulfill_htlc; failure: once irrevocable), then acted on
at once: the incoming HTLC is fulfilled with the preimage, or failed with the downstream failure
wrapped with the incoming shared secret (``wrap_failure``); a downstream
``update_fail_malformed_htlc`` becomes an ``update_fail_htlc`` we originate with its
``failure_code`` and ``sha256_of_onion`` (BOLT 4). After a restart, the incoming HTLC still
committed comes back through :meth:`forward`, which sees the row and settles with the recorded
result (or keeps waiting), so nothing is forwarded twice.

Failures originated here use ``create_failure(incoming shared_secret, failuremsg)``. Those with a
``channel_update`` field (every UPDATE code) carry the outgoing channel's current
channel_update, with its type 0x0102 (:meth:`lncli.node.gossip.Gossip.failure_update`; for
``channel_disabled`` one with the disable bit). BOLT 4 made the field optional in 2024 (a
zero ``len``) and expects nodes to move away from it, because a payer that applied it to its
graph could be fingerprinted; it still asks the erring node to "report the current channel
setting for the outgoing channel", and payers may use it for retries of the same payment.

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
from lncli.node.channel_policy import ChannelPolicies
from lncli.proto.forwarding import ForwardFailure, check_forward, update_field
from lncli.proto.onion_failure import code_for, create_failure, encode_failure_message, wrap_failure
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
    "ALTER TABLE forwards ADD COLUMN failure_code INTEGER;\n"
    "ALTER TABLE payment_routes ADD COLUMN failure_update BLOB",
]

#: forwards.status: outgoing HTLC offered; incoming fulfilled / failed (after an outgoing
#: result); refused here (no outgoing HTLC).
OFFERED, SETTLED, FAILED, LOCAL_FAILED = "offered", "settled", "failed", "local_failed"


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


def offer_outgoing(channel, amount_msat: int, payment_hash: bytes, cltv_expiry: int, onion: bytes) -> Outcome | ForwardFailure:
    """Offer the outgoing HTLC of a forward on ``channel``: its Outcome, or
    ``temporary_channel_failure`` when the channel's own checks refuse it (balance above the
    reserve, the peer's max_accepted_htlcs and max_htlc_value_in_flight_msat; BOLT 4: "channel
    capacity reached, too many in-flight HTLCs, etc.")."""
    try:
        return channel.add_htlc(amount_msat, payment_hash, cltv_expiry, onion)
    except ChannelError as exc:
        log.info("forward over %s refused by the channel: %s", _scid(channel.short_channel_id), exc)
        return ForwardFailure("temporary_channel_failure")


class Forwarding:
    """Forwarding HTLCs over the node's channels (``channels``), with the policy of lncli.conf
    (``config``, or None: the defaults); ``height()`` is the best block's height (or None)."""

    def __init__(self, db, channels, *, height: Callable[[], int | None], config=None):
        self.manager = channels
        self.block_height = height
        self.db = db
        migrate(self.db, COMPONENT, MIGRATIONS)
        self.policies = ChannelPolicies(db, config)
        #: (outgoing entry, disabled) -> our current channel_update for it, with its type
        #: (set by the node to lncli.node.gossip.Gossip.failure_update); None: failures carry none
        self.channel_update: Callable[..., bytes | None] | None = None

    # ------------------------------------------------------------------ incoming

    def _local_fail(self, e, event, ss: bytes, name: str, fields: dict | None = None, scid: int | None = None) -> Outcome:
        code = code_for(name)
        log.info("forward of HTLC %d (%s) refused: %s", event.htlc_id, event.payment_hash.hex()[:16], name)
        try:
            with transaction(self.db) as conn:  # statistics only: not tied to the channel state
                conn.execute(
                    "INSERT OR IGNORE INTO forwards(in_channel_id, in_htlc_id, in_amount_msat, in_cltv_expiry, shared_secret, "
                    "payment_hash, out_short_channel_id, status, failure, failure_code, created_at, resolved_at) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                    (e.channel_id, event.htlc_id, event.amount_msat, event.cltv_expiry, ss, event.payment_hash, scid,
                     LOCAL_FAILED, name, code, int(time.time()), int(time.time())),
                )
        except Exception:  # noqa: BLE001 - a statistics row must not stop the failure
            log.exception("recording a refused forward failed")
        return e.channel.fail_htlc(event.htlc_id, create_failure(ss, encode_failure_message(name, fields or {})))

    def _refuse(self, e, event, ss: bytes, failure: ForwardFailure, out_e, scid: int) -> Outcome:
        """Fail the incoming HTLC with ``failure``, carrying the outgoing channel's current
        channel_update when the failure has that field (and the gossip component gives one)."""
        fields = dict(failure.fields)
        if failure.wants_update:
            raw = None
            if self.channel_update is not None:
                try:
                    raw = self.channel_update(out_e, failure.name == "channel_disabled")
                except Exception:  # noqa: BLE001 - no update is allowed (BOLT 4); a failure must still go back
                    log.exception("building the channel_update of a failure")
            fields.update(update_field(raw))
        return self._local_fail(e, event, ss, failure.name, fields, scid)

    def _outgoing(self, scid: int):
        """(the entry of our channel with short_channel_id ``scid``, or None; its state for a
        forward): ``"ok"`` (NORMAL, reestablished, its peer connected), ``"closing"`` (shutdown
        or later: permanent_channel_failure, "e.g. channel recently closed") or ``"disabled"``
        (otherwise: channel_disabled)."""
        found = None
        for cand in self.manager.by_id.values():
            ch = cand.channel
            if ch.short_channel_id is None or int(ch.short_channel_id) != scid:
                continue
            found = cand
            if ch.state != ChannelState.NORMAL or ch.shutdown_sent or ch.shutdown_received:
                if ch.state in (ChannelState.NORMAL, ChannelState.SHUTDOWN, ChannelState.NEGOTIATING_CLOSING,
                                ChannelState.CLOSING, ChannelState.FORCE_CLOSING, ChannelState.CLOSED):
                    return cand, "closing"
                continue
            if cand.reestablished:
                peer = self.manager.peer(cand.peer)
                if peer is not None and peer.close_reason is None:
                    return cand, "ok"
        return found, "disabled"

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
        scid = int(hp.short_channel_id)
        out_e, usable = self._outgoing(scid)
        if out_e is None or out_e is e:
            return self._local_fail(e, event, ss, "unknown_next_peer", scid=scid)
        if usable == "closing":
            return self._local_fail(e, event, ss, "permanent_channel_failure", scid=scid)
        amt, out_cltv = hp.amt_to_forward, hp.outgoing_cltv_value
        failure = check_forward(
            self.policies.effective(out_e), amount_in_msat=event.amount_msat, cltv_expiry=event.cltv_expiry,
            amt_to_forward=amt, outgoing_cltv_value=out_cltv, height=self.block_height() or 0, enabled=usable == "ok",
            previous=self._previous(out_e),
        )
        if failure is not None:
            return self._refuse(e, event, ss, failure, out_e, scid)
        out_ch = out_e.channel
        out = offer_outgoing(out_ch, amt, event.payment_hash, out_cltv, peeled.next_packet)
        if isinstance(out, ForwardFailure):
            return self._refuse(e, event, ss, out, out_e, scid)
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

    def _previous(self, out_e):
        prev = self.policies.previous(out_e.channel_id)
        return self.policies.effective(out_e, prev) if prev is not None else None

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
                "failure_code": r["failure_code"],
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

    def record_failure_update(self, conn, channel_id: bytes, htlc_id: int, event, shared_secret: bytes) -> None:
        """Keep the channel_update a failed payment's failure carries (BOLT 4: for retries of this
        payment only; never applied to the graph). ``shared_secret``: the route's, 32 bytes a hop."""
        from lncli.proto.onion_failure import FailureDecodeError, decode_failure

        if event.reason is None:
            return
        secrets = [shared_secret[i:i + 32] for i in range(0, len(shared_secret), 32)]
        try:
            f = decode_failure(event.reason, secrets)
        except FailureDecodeError:
            return
        raw = f.fields.get("channel_update")
        if raw:
            conn.execute("UPDATE payment_routes SET failure_update=? WHERE channel_id=? AND htlc_id=?", (raw, channel_id, htlc_id))

    def failure_update_of(self, channel_id: bytes, htlc_id: int) -> bytes | None:
        row = self.db.execute("SELECT failure_update FROM payment_routes WHERE channel_id=? AND htlc_id=?",
                              (channel_id, htlc_id)).fetchone()
        return bytes(row["failure_update"]) if row is not None and row["failure_update"] is not None else None

    def annotate(self, d: dict) -> dict:
        """Add ``route`` and ``failing_node`` / ``failure_hop`` to a payment's JSON."""
        row = self.db.execute("SELECT * FROM payment_routes WHERE channel_id=? AND htlc_id=?",
                              (bytes.fromhex(d["channel_id"]), d["htlc_id"])).fetchone()
        d["route"] = row["route"].split(",") if row is not None else [d["destination"]]
        if row is not None and row["failing_node"] is not None:
            d["failing_node"], d["failure_hop"] = row["failing_node"], row["failure_hop"]
        elif d.get("status") == "failed" and d.get("failure_code") is not None:
            d["failing_node"], d["failure_hop"] = d["destination"], 0
        if row is not None and row["failure_update"] is not None:
            from lncli.proto.failure_update import parse_failure_update

            upd = parse_failure_update(bytes(row["failure_update"]))
            if upd is None:
                d["failure_channel_update"] = {"unreadable": bytes(row["failure_update"]).hex()}
            else:
                from lncli.proto.gossip import verify_channel_update

                signer = d.get("failing_node")
                d["failure_channel_update"] = {
                    **{k: v for k, v in upd.to_json().items() if k != "signature"},
                    "signature_valid": signer is not None and verify_channel_update(upd, bytes.fromhex(signer)),
                }
        return d


def register(registry, fwd: Forwarding) -> None:
    async def listforwards() -> list:
        return fwd.list()

    registry.add("listforwards", listforwards)


__all__ = ["Forwarding", "hint_route", "offer_outgoing", "register", "MIGRATIONS"]
