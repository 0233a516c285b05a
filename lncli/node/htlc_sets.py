"""The payee's HTLC sets (BOLT 4 "Basic Multi-Part Payments").

An incoming HTLC that passed the final node's checks (:meth:`lncli.node.invoices.InvoiceStore.check_htlc`)
joins the set of its payment_hash. Once the set's ``amt_to_forward`` sum reaches its
``total_msat``, every HTLC of the set is fulfilled (over whichever channels carry them: the
current channel's in the Outcome returned, the others' committed through the channel manager,
each written before its fulfill is sent). A part whose ``total_msat`` differs from the set's
fails the whole set (``incorrect_or_unknown_payment_details``). A set still short of its total
``timeout`` seconds (BOLT 4: at least 60) after its first HTLC is failed whole with
``mpp_timeout`` (23).

Nothing here is stored: a held HTLC is an irrevocably committed incoming HTLC without a
removal, which the channel record already holds. After a restart
:meth:`lncli.node.payments.Payments.recover` settles those again, so each rejoins its set and the
timeout starts anew.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from lncli.channel.channel import ChannelError
from lncli.channel.events import Outcome

log = logging.getLogger("lncli.payments")

__all__ = ["HtlcSets", "MPP_TIMEOUT_SECONDS"]

#: BOLT 4: SHOULD wait for at least 60 seconds after the initial HTLC
MPP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class _Part:
    channel_id: bytes
    htlc_id: int
    amount_msat: int  # the HTLC's amount (what the invoice is marked paid with)
    amt_to_forward: int  # what the onion says this part pays
    shared_secret: bytes


@dataclass
class _Set:
    total_msat: int
    preimage: bytes
    parts: list[_Part] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None

    @property
    def received_msat(self) -> int:
        return sum(p.amt_to_forward for p in self.parts)


class HtlcSets:
    """The sets being received. ``manager``: the channel manager (``by_id``, ``commit``);
    ``on_paid(payment_hash, amount_msat)``: called when a set is fulfilled (the invoice is marked
    paid in the next channel write); ``height()``: the block height (for the failure's field)."""

    def __init__(self, manager, on_paid, timeout: float = MPP_TIMEOUT_SECONDS, height=lambda: 0):
        self.manager = manager
        self.height = height
        self.on_paid = on_paid
        self.timeout = timeout
        self.sets: dict[bytes, _Set] = {}

    def add(self, e, payment_hash: bytes, preimage: bytes, htlc_id: int, amount_msat: int, amt_to_forward: int,
            total_msat: int, shared_secret: bytes) -> Outcome:
        """Add one checked HTLC of channel ``e``; returns ``e``'s Outcome (the fulfills or fails
        on ``e``; those on other channels are committed here)."""
        part = _Part(e.channel_id, htlc_id, amount_msat, amt_to_forward, shared_secret)
        s = self.sets.get(payment_hash)
        if s is None:
            s = _Set(total_msat, preimage)
            if amt_to_forward < total_msat:
                self.sets[payment_hash] = s
                s.timer = asyncio.get_running_loop().call_later(self.timeout, self.expire, payment_hash)
                log.info("HTLC set %s: part of %d msat held, %d of %d msat", payment_hash.hex()[:16], amt_to_forward,
                         amt_to_forward, total_msat)
        elif s.total_msat != total_msat:
            log.info("HTLC set %s: total_msat %d differs from the set's %d: failing the set", payment_hash.hex()[:16],
                     total_msat, s.total_msat)
            s.parts.append(part)
            return self._fail(payment_hash, e, "incorrect_or_unknown_payment_details", amount=True)
        s.parts.append(part)
        if s.received_msat < s.total_msat:
            return Outcome()
        return self._fulfill(payment_hash, s, e)

    def _pop(self, payment_hash: bytes) -> _Set | None:
        s = self.sets.pop(payment_hash, None)
        if s is not None and s.timer is not None:
            s.timer.cancel()
        return s

    def _settle(self, parts: list[_Part], e, settle) -> Outcome:
        """Apply ``settle(channel, part) -> Outcome`` to each part: ``e``'s returned, the others
        committed on their channels."""
        mine, others = Outcome(), {}
        for p in parts:
            entry = self.manager.by_id.get(p.channel_id)
            if entry is None:
                continue
            try:
                out = settle(entry.channel, p)
            except ChannelError as exc:  # the HTLC went away meanwhile (the channel closed)
                log.warning("HTLC %d of channel %s: %s", p.htlc_id, p.channel_id.hex(), exc)
                continue
            if e is not None and p.channel_id == e.channel_id:
                mine.extend(out)
            else:
                others.setdefault(p.channel_id, (entry, Outcome()))[1].extend(out)
        for entry, out in others.values():
            self.manager.commit(entry, out)
        return mine

    def _fulfill(self, payment_hash: bytes, s: _Set, e) -> Outcome:
        self._pop(payment_hash)
        if len(s.parts) > 1:
            log.info("HTLC set %s complete: %d parts, %d msat: fulfilling", payment_hash.hex()[:16], len(s.parts),
                     s.received_msat)
        out = self._settle(s.parts, e, lambda ch, p: ch.fulfill_htlc(p.htlc_id, s.preimage))
        self.on_paid(payment_hash, sum(p.amount_msat for p in s.parts))
        return out

    def _fail(self, payment_hash: bytes, e, name: str, amount: bool = False) -> Outcome:
        from lncli.proto.onion_failure import create_failure, encode_failure_message

        s = self._pop(payment_hash)
        if s is None:
            return Outcome()

        def fail(ch, p):
            fields = {"htlc_msat": p.amount_msat, "height": self.height() or 0} if amount else {}
            return ch.fail_htlc(p.htlc_id, create_failure(p.shared_secret, encode_failure_message(name, fields)))

        return self._settle(s.parts, e, fail)

    def expire(self, payment_hash: bytes) -> None:
        """The timeout of a set short of its total: fail all its HTLCs with mpp_timeout."""
        s = self.sets.get(payment_hash)
        if s is None:
            return
        log.info("HTLC set %s: %d of %d msat after %g s: mpp_timeout", payment_hash.hex()[:16], s.received_msat,
                 s.total_msat, self.timeout)
        self._fail(payment_hash, None, "mpp_timeout")

    def close(self) -> None:
        for s in self.sets.values():
            if s.timer is not None:
                s.timer.cancel()
        self.sets.clear()
