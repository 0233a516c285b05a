"""Forwarded HTLCs whose outgoing side a force close took on chain (BOLT 5, BOLT 2 deadlines).

A forward links an incoming HTLC to the outgoing one we offered (the ``forwards`` table of
:mod:`lncli.node.forwarding`). When the outgoing channel goes on chain, the chain watcher tells
how each HTLC we offered ended (:class:`~lncli.node.events.HtlcResolvedOnChain`, from
:mod:`lncli.monitor.htlc_resolution`), and this module settles the incoming HTLC:

- claimed by the downstream peer with the preimage (its HTLC-success tx, or its preimage spend
  of our HTLC output): the incoming HTLC is fulfilled at once with ``update_fulfill_htlc``
  ("MUST fulfill the corresponding incoming HTLC"); the preimage and the incoming channel's new
  state are written in one transaction before the message leaves (write before send). If the
  incoming channel is itself force-closing, its chain watcher gets the preimage instead and
  claims the HTLC on chain;
- timed out on chain, deep enough ("once the resolving transaction has reached reasonable
  depth: MUST fail the corresponding incoming HTLC"): the incoming HTLC is failed with
  ``permanent_channel_failure`` (BOLT 4: "an otherwise unspecified, permanent error occurs
  during forwarding to its receiving peer (e.g. channel recently closed)");
- the outgoing channel resolved (every output claimed) with a forward still waiting on it (its
  HTLC never reached the chain): failed the same way.

Each report may come again (after a restart the watcher tells again what it told before): a
forward is acted on only while its row is ``offered`` with no result yet.

The deadlines that take a channel on chain in time are the channels' (BOLT 2
"cltv_expiry_delta Selection", :func:`lncli.channel.closing.Closing.expiring_htlcs` from
:mod:`lncli.node.channel_chain`): an HTLC we offered still on a commitment at its
``cltv_expiry``, and one we fulfilled (we know the preimage, e.g. from here) still on a
commitment ``FULFILL_SAFETY_DELTA`` blocks before its ``cltv_expiry``, fail the channel; its
chain watcher then times out, or claims with the preimage, on chain.
"""

from __future__ import annotations

import logging
import time

from lncli.channel.channel import ChannelError
from lncli.channel.events import Outcome
from lncli.channel.state import ChannelState
from lncli.node.forwarding import FAILED, OFFERED, SETTLED
from lncli.proto.onion_failure import create_failure, encode_failure_message
from lncli.store.db import transaction

log = logging.getLogger("lncli.forwarding")

__all__ = ["OnchainHtlcs", "ONCHAIN_FAILURE"]

#: the failure we return upstream for an outgoing HTLC that timed out on chain (BOLT 4 PERM|8)
ONCHAIN_FAILURE = "permanent_channel_failure"
_LIVE = (ChannelState.NORMAL, ChannelState.SHUTDOWN, ChannelState.NEGOTIATING_CLOSING)


class OnchainHtlcs:
    """Settles forwards from on-chain outcomes; ``db`` holds the ``forwards`` table,
    ``channels`` is the :class:`~lncli.node.channels.ChannelManager`."""

    def __init__(self, db, channels):
        self.db = db
        self.manager = channels

    def _waiting(self, where: str, args: tuple) -> list:
        return self.db.execute(
            f"SELECT * FROM forwards WHERE {where} AND status=? AND payment_preimage IS NULL AND fail_reason IS NULL",
            (*args, OFFERED),
        ).fetchall()

    def htlc_resolved(self, channel_id: bytes, htlc_id: int, payment_preimage: bytes | None) -> None:
        """The outgoing HTLC ``htlc_id`` of ``channel_id`` ended on chain (preimage, or timed out)."""
        for row in self._waiting("out_channel_id=? AND out_htlc_id=?", (bytes(channel_id), htlc_id)):
            if payment_preimage is not None:
                self._fulfill(row, bytes(payment_preimage))
            else:
                self._fail(row, "timed out on chain")

    def channel_resolved(self, channel_id: bytes) -> None:
        """The outgoing channel is resolved on chain: what still waits on it never reached the chain."""
        for row in self._waiting("out_channel_id=?", (bytes(channel_id),)):
            self._fail(row, "outgoing channel closed on chain")

    def _incoming(self, row):
        in_e = self.manager.by_id.get(bytes(row["in_channel_id"]))
        if in_e is None:
            log.warning("forward %d: the incoming channel is gone", row["id"])
        return in_e

    def _fulfill(self, row, preimage: bytes) -> None:
        in_e = self._incoming(row)
        if in_e is None:
            return
        try:
            out = in_e.channel.fulfill_htlc(row["in_htlc_id"], preimage)
        except ChannelError as exc:
            log.warning("forward %d: fulfilling the incoming HTLC with the preimage from the chain: %s", row["id"], exc)
            return
        live = in_e.state in _LIVE
        if not live:  # on chain too: its watcher claims the HTLC with the preimage
            out = Outcome(monitor_updates=out.monitor_updates)
        log.info("forward %d: outgoing HTLC claimed on chain with its preimage; fulfilling incoming HTLC %d%s",
                 row["id"], row["in_htlc_id"], "" if live else " on chain")
        now = int(time.time())

        def mark(conn, rid=row["id"]):
            conn.execute("UPDATE forwards SET payment_preimage=?, status=?, resolved_at=? WHERE id=?",
                         (preimage, SETTLED, now, rid))

        self.manager.commit(in_e, out, mark, auto_commit=live)

    def _fail(self, row, what: str) -> None:
        in_e = self._incoming(row)
        if in_e is None:
            return
        reason = create_failure(bytes(row["shared_secret"]), encode_failure_message(ONCHAIN_FAILURE, {}))
        now = int(time.time())
        if in_e.state not in _LIVE:  # the incoming HTLC times out on that chain by itself
            with transaction(self.db) as conn:
                conn.execute("UPDATE forwards SET fail_reason=?, failure=?, status=?, resolved_at=? WHERE id=?",
                                (reason, what, FAILED, now, row["id"]))
            return
        try:
            out = in_e.channel.fail_htlc(row["in_htlc_id"], reason)
        except ChannelError as exc:
            log.warning("forward %d: failing the incoming HTLC: %s", row["id"], exc)
            return
        log.info("forward %d: outgoing HTLC %s; failing incoming HTLC %d (%s)", row["id"], what, row["in_htlc_id"],
                 ONCHAIN_FAILURE)

        def mark(conn, rid=row["id"]):
            conn.execute("UPDATE forwards SET fail_reason=?, failure=?, status=?, resolved_at=? WHERE id=?",
                         (reason, what, FAILED, now, rid))

        self.manager.commit(in_e, out, mark)
