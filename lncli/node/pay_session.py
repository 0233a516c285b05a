"""One payment's view of the graph while it is being paid: what its failures taught it.

A :class:`PaymentSession` answers :meth:`~PaymentSession.next_route` with a route from
:func:`lncli.proto.routing.find_route` over the graph as the payment's failures have narrowed it,
and learns from each part's outcome (:meth:`~PaymentSession.on_failure`,
:meth:`~PaymentSession.on_success`). It keeps, for this payment only (BOLT 4: a channel_update
from a failure MUST NOT reach the node's graph):

- ``excluded``: short_channel_ids and node ids no route may use;
- ``bounds``: per channel direction ``(short_channel_id, source node)``, the most it is believed
  to carry (a ``temporary_channel_failure`` for an HTLC of X msat: it carries less than X);
- ``in_flight``: per channel direction, what the payment's pending parts already use (a second
  part over the same direction must fit beside them; our own channels are not counted here, their
  live balance already is);
- ``policies``: a channel_update carried by a failure (valid, newer, signed by the erring node),
  used instead of the gossip policy for the rest of the payment.

How a BOLT 4 failure narrows (:meth:`~PaymentSession.on_failure`; ``erring_index`` is the hop of
``route.hops`` that returned it, -1 for our own channel refusing the HTLC, None when unreadable):
what the failure means is :func:`lncli.proto.payment_failure.interpret_failure`'s verdict (the
one reading of BOLT 4's origin-node rules); the session applies it:

- the verdict's exclusions (a channel direction, a node) for the rest of the payment;
- ``temporary_channel_failure``: the erring node's outgoing direction carries less than it was
  asked to forward (a bound here, and in the scorer);
- a policy failure (``amount_below_minimum``, ``fee_insufficient``, ``incorrect_cltv_expiry``,
  ``expiry_too_soon``) with a channel_update of that channel signed by the erring node: that policy
  is used and the channel tried once more, else the channel is left out;
- a final failure from the payee ends the payment; ``mpp_timeout`` sends the part again;
- our own channel refusing the HTLC (``erring_index`` -1): that channel carries less than the
  part's amount;
- an unreadable failure: every channel of the route after our own is left out (any of them may
  have garbled it); with none, the payment ends.

With a :class:`~lncli.proto.liquidity.Scorer` (the node's, shared by all its payments), routes
are searched with its liquidity penalties, and every outcome teaches it: the channels before a
failure carried their amounts, the failing direction could not, a settled route moved its amount,
a node failure distrusts the node. What a failure teaches one payment (exclusions, bounds) is
firm for that payment; what the scorer learns fades over hours.

Every failure narrows something, or ends the payment, so retrying until the payment's timeout
terminates.

Also here: :func:`attempt_json` (one part as ``lncli pay`` lists it) and
:func:`failure_channel_update` (the channel_update a failure message carries).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lncli.proto import routing
from lncli.proto.liquidity import Scorer
from lncli.proto.onion_failure import failure_name
from lncli.proto.payment_failure import interpret_failure
from lncli.proto.scid import ShortChannelId

__all__ = ["PaymentSession", "Verdict", "FeeLimitExceeded", "attempt_json", "failure_channel_update",
           "default_max_fee_msat", "MAX_FEE_PERCENT", "MAX_FEE_EXEMPT_MSAT", "TEMPORARY_CHANNEL_FAILURE", "MPP_TIMEOUT"]

#: The default fee limit, Core Lightning's (``maxfeepercent`` 0.5, ``exemptfee`` 5000 msat): a
#: route may cost max(0.5% of the amount, 5000 msat) in fees.
MAX_FEE_PERCENT = 0.5
MAX_FEE_EXEMPT_MSAT = 5000

TEMPORARY_CHANNEL_FAILURE = 0x1007
MPP_TIMEOUT = 23
_POLICY_FAILURES = {0x100B, 0x100C, 0x100D, 0x100E}  # amount_below_minimum .. expiry_too_soon


class FeeLimitExceeded(routing.NoRouteError):
    """The cheapest route costs more in fees than the limit (splitting would only add fees)."""


def default_max_fee_msat(amount_msat: int, percent: float = MAX_FEE_PERCENT) -> int:
    return max(MAX_FEE_EXEMPT_MSAT, int(amount_msat * percent / 100))


@dataclass(frozen=True)
class Verdict:
    """What a failure did: ``retry`` False ends the payment; ``narrowed`` says what changed."""

    retry: bool
    narrowed: str


def _scid_text(scid: int) -> str:
    return str(ShortChannelId.from_int(scid))


class PaymentSession:
    """Routes for one payment from ``source`` to ``target`` over ``edges`` (an
    :func:`~lncli.proto.routing.index_edges` index, or edges), each delivering what is asked with
    the final cltv ``final_cltv`` and adding at most ``max_cltv_delta`` blocks."""

    def __init__(self, edges: Mapping[bytes, list[routing.Edge]] | Iterable[routing.Edge], source: bytes, target: bytes,
                 final_cltv: int, *, max_cltv_delta: int = routing.MAX_CLTV_DELTA, scorer: Scorer | None = None,
                 now: Callable[[], float] = time.time):
        self.index = edges if isinstance(edges, Mapping) else routing.index_edges(edges)
        self.source, self.target = source, target
        self.final_cltv = final_cltv
        self.max_cltv_delta = max_cltv_delta
        self.excluded: set = set()
        self.bounds: dict[tuple[int, bytes], int] = {}
        self.in_flight: dict[tuple[int, bytes], int] = {}
        self.policies: dict[tuple[int, bytes], routing.Edge] = {}
        self._retried: set[tuple] = set()  # (kind, scid) tried once more already
        self.scorer = scorer
        self.now = now
        self._edges: dict[tuple[int, bytes], routing.Edge] | None = None

    # -- routes ------------------------------------------------------------------------------------

    def _edge(self, key: tuple[int, bytes]) -> routing.Edge | None:
        if self._edges is None:
            self._edges = {(e.short_channel_id, e.source): e for es in self.index.values() for e in es}
        return self._edges.get(key)

    def _narrowed_index(self) -> Mapping[bytes, list[routing.Edge]]:
        keys = {k for k in (*self.bounds, *self.in_flight, *self.policies) if k[1] != self.source}
        if not keys:
            return self.index
        idx = dict(self.index)
        for key in keys:
            e = self._edge(key)
            if e is None:
                continue
            new = self.policies.get(key, e)
            cap = new.capacity_msat
            if key in self.bounds:
                cap = self.bounds[key] if cap is None else min(cap, self.bounds[key])
            if key in self.in_flight and cap is not None:
                cap -= self.in_flight[key]
            # an edge whose direction is known to carry nothing more is dropped
            lst = [x for x in idx[e.destination] if x is not e]
            if cap is None or cap > 0:
                lst.append(dataclasses.replace(new, capacity_msat=cap))
            idx[e.destination] = lst
        return idx

    def _our(self, channels: Iterable[routing.LocalChannel] | None):
        if channels is None:
            return None
        out = []
        for c in channels:
            bound = self.bounds.get((c.short_channel_id, self.source))
            out.append(c if bound is None else dataclasses.replace(c, outbound_msat=min(c.outbound_msat, bound)))
        return out

    def next_route(self, amount_msat: int, our_channels: Iterable[routing.LocalChannel] | None = None, *,
                   max_fee_msat: int | None = None) -> routing.Route:
        """The cheapest route for ``amount_msat`` that the narrowed graph allows; counted in
        flight until :meth:`on_failure`, :meth:`on_success` or :meth:`release`. NoRouteError
        when there is none, or when the cheapest costs more than ``max_fee_msat``."""
        route = routing.find_route(self._narrowed_index(), self.source, self.target, amount_msat, self.final_cltv,
                                   exclude=self.excluded, our_channels=self._our(our_channels),
                                   max_cltv_delta=self.max_cltv_delta,
                                   scorer=None if self.scorer is None else self.scorer.view(self.now()))
        if max_fee_msat is not None and route.fee_msat > max_fee_msat:
            raise FeeLimitExceeded(f"the cheapest route for {amount_msat} msat costs {route.fee_msat} msat in fees, "
                                       f"more than the limit of {max_fee_msat} msat")
        for key, amt in self._directions(route):
            self.in_flight[key] = self.in_flight.get(key, 0) + amt
        return route

    @staticmethod
    def _directions(route: routing.Route):
        """((short_channel_id, source node), amount it carries) of each channel after ours."""
        for i in range(len(route.hops) - 1):
            yield (route.hops[i].short_channel_id, route.hops[i].node_id), route.hops[i].amt_to_forward

    def release(self, route: routing.Route) -> None:
        """``route`` no longer uses its channels (it ended, or was never sent)."""
        for key, amt in self._directions(route):
            left = self.in_flight.get(key, 0) - amt
            if left > 0:
                self.in_flight[key] = left
            else:
                self.in_flight.pop(key, None)

    # -- outcomes ----------------------------------------------------------------------------------

    def on_success(self, route: routing.Route) -> None:
        self.release(route)
        if self.scorer is not None:
            self.scorer.record_success(route, self.now(), source=self.source)

    def on_failure(self, route: routing.Route, code: int | None, erring_index: int | None,
                   channel_update=None) -> Verdict:
        """Learn from a part that failed with BOLT 4 failure ``code`` returned by hop
        ``erring_index`` (see the module doc); ``channel_update`` is the failure's
        :class:`~lncli.proto.gossip.ChannelUpdate`, if it carried one that parses. What BOLT 4
        says of the failure comes from :func:`lncli.proto.payment_failure.interpret_failure`;
        this applies it to the payment (exclusions, bounds, a policy) and to the node's scorer."""
        self.release(route)
        hops = route.hops
        if erring_index == -1:  # our own channel refused it
            key = (route.first_short_channel_id, self.source)
            self.bounds[key] = min(self.bounds.get(key, route.amount_msat), route.amount_msat - 1)
            return Verdict(True, f"our channel {_scid_text(key[0])} carries less than {route.amount_msat} msat")
        if erring_index is not None and not 0 <= erring_index < len(hops):
            erring_index = None
        v = interpret_failure(route, self.source, erring_index, code, channel_update)
        now = self.now()
        if self.scorer is not None:
            for scid, d, amt in v.passed[1:]:  # our own channel's balance is known, not learnt
                self.scorer.record_pass(scid, d, amt, now)
            if v.liquidity_failure is not None:
                self.scorer.record_failure(*v.liquidity_failure, now)
            for n in v.distrust:
                self.scorer.record_node_failure(n, now)
        if erring_index is None:
            # unreadable: any channel after ours may have garbled it; leave them all out
            later = route.channels[1:]
            if not later:
                return Verdict(False, "an unreadable failure from the payee")
            self.excluded.update(later)
            return Verdict(True, "an unreadable failure: excluded " + ", ".join(_scid_text(c) for c in later))
        if not v.retry:
            return Verdict(False, f"the payee refused it ({failure_name(code)})")
        name = failure_name(code)
        if erring_index < len(hops) - 1:
            out_scid = route.channels[erring_index + 1]
            key = (out_scid, hops[erring_index].node_id)
            if v.liquidity_failure is not None:
                amt = v.liquidity_failure[2]
                self.bounds[key] = min(self.bounds.get(key, amt), amt - 1)
                return Verdict(True, f"channel {_scid_text(out_scid)} from {key[1].hex()[:16]} carries less than "
                                     f"{amt} msat ({name})")
            if code in _POLICY_FAILURES and not v.exclude:
                if ("policy", out_scid) not in self._retried and self._take_update(key, channel_update):
                    self._retried.add(("policy", out_scid))
                    return Verdict(True, f"channel {_scid_text(out_scid)}: the policy of the failure's channel_update ({name})")
                self.excluded.add(out_scid)
                return Verdict(True, f"excluded channel {_scid_text(out_scid)} ({name}, no usable channel_update)")
        elif code == MPP_TIMEOUT:
            return Verdict(True, "the payee timed the parts out (mpp_timeout): sent again")
        self.excluded.update(v.exclude)
        if not v.exclude:
            # nothing to leave out (a final node's temporary failure): the channel into the payee, once
            last = route.channels[-1]
            if ("final", last) in self._retried or len(hops) == 1:
                return Verdict(False, f"the payee refused it ({name})")
            self._retried.add(("final", last))
            self.excluded.add(last)
            return Verdict(True, f"the payee said {name}: excluded the channel into it, {_scid_text(last)}")
        return Verdict(True, f"{v.reason} ({name})")

    def _take_update(self, key: tuple[int, bytes], update) -> bool:
        """Use ``update`` (a ChannelUpdate) for direction ``key`` if BOLT 4 lets us: it is that
        channel's, signed by the erring node, more recent than the update the route used (when
        that one's timestamp is known), and it changes the policy the route was built with (an
        update that should not have caused the failure is treated as invalid)."""
        from lncli.proto.gossip import verify_channel_update

        e = self.policies.get(key) or self._edge(key)
        if update is None or e is None or int(update.short_channel_id) != key[0]:
            return False
        if e.timestamp and update.timestamp <= e.timestamp:
            return False
        new = dataclasses.replace(
            e, fee_base_msat=update.fee_base_msat, fee_proportional_millionths=update.fee_proportional_millionths,
            cltv_expiry_delta=update.cltv_expiry_delta, htlc_minimum_msat=update.htlc_minimum_msat,
            htlc_maximum_msat=update.htlc_maximum_msat, disabled=bool(update.channel_flags & 2),
            timestamp=update.timestamp)
        def policy(x: routing.Edge) -> tuple:
            return (x.fee_base_msat, x.fee_proportional_millionths, x.cltv_expiry_delta, x.htlc_minimum_msat,
                    x.disabled, x.htlc_maximum_msat if e.htlc_maximum_msat is not None else None)

        if policy(new) == policy(e):
            return False
        try:
            if not verify_channel_update(update, key[1]):
                return False
        except ValueError:
            return False
        self.policies[key] = new
        return True


def attempt_json(index: int, route: routing.Route, status: str) -> dict:
    """One part as ``pay`` lists it: its route hop by hop (each node, the channel into it, the
    amount and cltv_expiry of the HTLC it receives, what it keeps as fee) before its outcome is known."""
    chans = [str(ShortChannelId.from_int(c)) for c in route.channels]
    hops, received, expiry = [], route.amount_msat, route.cltv_expiry
    for i, h in enumerate(route.hops):
        # what the HTLC into the node carries (amount and expiry), and the fee it keeps
        hops.append({"node_id": h.node_id.hex(), "short_channel_id": chans[i], "amount_msat": received,
                     "fee_msat": received - h.amt_to_forward, "cltv_expiry": expiry})
        received, expiry = h.amt_to_forward, h.outgoing_cltv_value
    return {"part": index, "amount_msat": route.hops[-1].amt_to_forward, "fee_msat": route.fee_msat,
            "route": [n.hex() for n in route.nodes], "channels": chans, "hops": hops, "status": status,
            "failure": None, "failure_code": None, "erring_node": None, "erring_channel": None, "narrowed": None}


def failure_channel_update(raw):
    """The ChannelUpdate a failure carries (with or without its 2-byte type), or None."""
    from lncli.errors import DecodeError
    from lncli.proto.gossip import ChannelUpdate

    if not raw:
        return None
    raw = bytes(raw)
    try:
        return ChannelUpdate.from_bytes(raw if raw[:2] == b"\x01\x02" else b"\x01\x02" + raw)
    except (DecodeError, ValueError):
        return None
