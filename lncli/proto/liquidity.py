"""What we have learnt about channels' liquidity from our own payments, and what it costs to try
a channel: the probability that it can carry an amount, turned into a penalty in msat.

Pure: every method that learns or reads takes ``now`` (seconds, any epoch the caller keeps to);
there is no clock here.

The model (the approach of LDK's ``ProbabilisticScorer``, Core Lightning's askrene and LND's
estimators, in our own few lines):

- Each channel direction ``u -> v`` has an unknown liquidity ``L`` (what ``u`` can send to
  ``v`` now), somewhere in ``[0, capacity]``. We keep bounds ``lo <= L <= hi`` per direction,
  keyed by :func:`~lncli.proto.route_graph.edge_key`.
- A priori (nothing learnt) ``L`` is uniform on ``[0, capacity]``: ``P(L >= a) = (capacity - a) /
  capacity`` (LDK's linear model). With bounds: 1 below ``lo``, 0 above ``hi``, linear between.
- Learning: a hop that *failed* to forward ``a`` over a direction (BOLT 4 ``temporary_channel_failure``
  and friends at that hop) gives ``hi = a - 1`` (:meth:`Scorer.record_failure`); every hop
  *before* the failing one carried ``a``: ``lo = a`` (:meth:`Scorer.record_pass`); a settled
  payment moved ``a`` out of each direction: ``hi -= a`` (:meth:`Scorer.record_success`, as LDK
  does; ``lo`` drops by ``a`` too).
- Forgetting: what we learnt fades with a half-life (:data:`HALF_LIFE_S`, 6 hours as LDK's
  default): ``lo`` halves, and the distance of ``hi`` below the capacity halves, every half-life
  since it was learnt (LDK's offset decay; where the capacity is unknown ``hi`` doubles), so an
  old failure stops excluding a channel and an old success stops vouching. Merging a new
  observation into an old one uses the old bounds faded without the capacity (``hi`` doubled),
  which forgets a little faster than the search does.
- Nodes: :meth:`Scorer.record_node_failure` distrusts a node (BOLT 4 failures with the NODE bit):
  :data:`NODE_PENALTY_MSAT` on every hop out of it, fading with the same half-life.
- The penalty (:meth:`ScorerView.penalty`) the search adds to a hop's fee: ``BASE_PENALTY_MSAT``
  per hop (fewer hops when fees tie) plus ``(LIQUIDITY_PENALTY_MSAT + a *
  LIQUIDITY_PENALTY_PPM / 1e6) * -ln P(L >= a)``; a hop with ``P = 0`` (known not to carry ``a``)
  is not used.

API (what the payment loop calls)::

    scorer = Scorer()
    view = scorer.view(now)                      # frozen at `now`, pass to find_route(scorer=...)
    scorer.record_failure(scid, direction, amount_msat, now)
    scorer.record_pass(scid, direction, amount_msat, now)
    scorer.record_success(route, now)            # a settled lncli.proto.routing.Route
    scorer.record_route_failure(route, erring_index, now)   # passes before, failure at the hop
    scorer.record_node_failure(node_id, now)
    scorer.to_json() / Scorer.from_json(d)       # to keep it across restarts
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lncli.proto.route_graph import direction_of, edge_key

if TYPE_CHECKING:
    from lncli.proto.routing import Route

__all__ = [
    "HALF_LIFE_S",
    "BASE_PENALTY_MSAT",
    "LIQUIDITY_PENALTY_MSAT",
    "LIQUIDITY_PENALTY_PPM",
    "NODE_PENALTY_MSAT",
    "MIN_PROBABILITY",
    "Bounds",
    "Scorer",
    "ScorerView",
    "success_probability",
    "faded_hi",
]

HALF_LIFE_S = 6 * 3600
BASE_PENALTY_MSAT = 500
LIQUIDITY_PENALTY_MSAT = 20_000
LIQUIDITY_PENALTY_PPM = 5_000
NODE_PENALTY_MSAT = 100_000
#: probabilities below this count as this (the penalty stays finite); 0 itself means "cannot"
MIN_PROBABILITY = 1e-4


@dataclass(slots=True)
class Bounds:
    """Liquidity bounds of one direction as learnt at ``learnt_at`` (``hi`` None: no upper
    bound learnt)."""

    lo: int
    hi: int | None
    learnt_at: float

    def at(self, now: float, half_life: float) -> tuple[float, int | None, float]:
        """``(lo, hi, f)`` at ``now``: ``f`` is the fading factor (1 when just learnt, halving
        every half-life), ``lo`` already faded, ``hi`` as learnt (:func:`faded_hi` fades it
        given the capacity)."""
        f = 0.5 ** (max(now - self.learnt_at, 0.0) / half_life)
        return self.lo * f, self.hi, f


def faded_hi(hi: float | None, f: float, capacity_msat: int) -> float | None:
    """An upper bound learnt ``f`` ago (see :meth:`Bounds.at`): its distance below the capacity
    fades (LDK's offset decay); with the capacity unknown it doubles per half-life."""
    if hi is None:
        return None
    if capacity_msat:
        return capacity_msat - (capacity_msat - hi) * f if hi < capacity_msat else capacity_msat
    return hi / f if f > 0 else None


def success_probability(amount_msat: int, capacity_msat: int, lo: float = 0.0, hi: float | None = None) -> float:
    """``P(L >= amount)`` for ``L`` uniform on ``[lo, min(hi, capacity)]`` (capacity 0:
    unknown, treated as able to carry it)."""
    top = capacity_msat if capacity_msat else None
    if hi is not None and (top is None or hi < top):
        top = hi
    if amount_msat <= lo:
        return 1.0
    if top is None:
        return 1.0
    if amount_msat > top:
        return 0.0
    return (top - amount_msat + 1) / (top - lo + 1)


class ScorerView:
    """The scorer frozen at one instant, in the form the search reads fast: ``known`` maps
    edge keys to :meth:`Bounds.at` triples ``(lo, hi, f)``, ``node_penalty`` node ids to msat."""

    __slots__ = ("known", "node_penalty", "base_penalty_msat", "liquidity_penalty_msat", "liquidity_penalty_ppm")

    def __init__(self, known: dict[int, tuple[float, int | None, float]], node_penalty: dict[bytes, float],
                 base_penalty_msat: float = BASE_PENALTY_MSAT, liquidity_penalty_msat: float = LIQUIDITY_PENALTY_MSAT,
                 liquidity_penalty_ppm: float = LIQUIDITY_PENALTY_PPM):
        self.known = known
        self.node_penalty = node_penalty
        self.base_penalty_msat = base_penalty_msat
        self.liquidity_penalty_msat = liquidity_penalty_msat
        self.liquidity_penalty_ppm = liquidity_penalty_ppm

    def probability(self, key: int, amount_msat: int, capacity_msat: int) -> float:
        b = self.known.get(key)
        if b is None:
            return success_probability(amount_msat, capacity_msat)
        return success_probability(amount_msat, capacity_msat, b[0], faded_hi(b[1], b[2], capacity_msat))

    def penalty(self, key: int, amount_msat: int, capacity_msat: int) -> float | None:
        """The msat a hop carrying ``amount_msat`` costs beyond its fee; None: it cannot."""
        p = self.probability(key, amount_msat, capacity_msat)
        if p <= 0.0:
            return None
        if p < MIN_PROBABILITY:
            p = MIN_PROBABILITY
        return self.base_penalty_msat + (self.liquidity_penalty_msat + amount_msat * self.liquidity_penalty_ppm / 1e6) * -math.log(p)


@dataclass
class Scorer:
    """See the module doc. ``bounds`` by edge key, ``nodes``: node id -> (penalty msat, when)."""

    half_life_s: float = HALF_LIFE_S
    bounds: dict[int, Bounds] = field(default_factory=dict)
    nodes: dict[bytes, tuple[float, float]] = field(default_factory=dict)

    def _current(self, key: int, now: float) -> tuple[float, float | None]:
        b = self.bounds.get(key)
        if b is None:
            return 0.0, None
        lo, hi, f = b.at(now, self.half_life_s)
        return lo, faded_hi(hi, f, 0)

    def _set(self, key: int, lo: float, hi: float | None, now: float) -> None:
        lo_i = max(int(lo), 0)
        hi_i = None if hi is None else max(int(hi), 0)
        if hi_i is not None and lo_i > hi_i:
            # a newer observation contradicts an older one: the newer one wins
            lo_i = min(lo_i, hi_i)
        self.bounds[key] = Bounds(lo_i, hi_i, now)

    def record_failure(self, short_channel_id: int, direction: int, amount_msat: int, now: float) -> None:
        """The direction could not carry ``amount_msat``: its liquidity is below it."""
        key = edge_key(short_channel_id, direction)
        lo, hi = self._current(key, now)
        new_hi = amount_msat - 1 if hi is None else min(hi, amount_msat - 1)
        self._set(key, min(lo, new_hi), new_hi, now)

    def record_pass(self, short_channel_id: int, direction: int, amount_msat: int, now: float) -> None:
        """The direction carried ``amount_msat`` (a hop before the one that failed)."""
        key = edge_key(short_channel_id, direction)
        lo, hi = self._current(key, now)
        new_lo = max(lo, amount_msat)
        if hi is not None and hi < new_lo:
            hi = new_lo
        self._set(key, new_lo, hi, now)

    def _spent(self, short_channel_id: int, direction: int, amount_msat: int, now: float) -> None:
        key = edge_key(short_channel_id, direction)
        lo, hi = self._current(key, now)
        if hi is None and lo == 0:
            return  # nothing known: still nothing known (the prior is over the capacity)
        self._set(key, max(lo - amount_msat, 0), None if hi is None else max(hi - amount_msat, 0), now)

    def _hops(self, route: Route, source: bytes):
        """``(scid, direction, amount)`` of each channel of ``route`` (ours first)."""
        nodes = [source] + [h.node_id for h in route.hops]
        amounts = [route.amount_msat] + [h.amt_to_forward for h in route.hops[:-1]]
        for i, scid in enumerate(route.channels):
            yield scid, direction_of(nodes[i], nodes[i + 1]), amounts[i]

    def record_success(self, route: Route, now: float, source: bytes | None = None) -> None:
        """A payment over ``route`` settled: each direction now has its amount less. ``source``
        (the payer) gives the first channel's direction; without it the first channel (ours,
        whose balance we know) is skipped."""
        for i, (scid, d, amt) in enumerate(self._hops(route, source or b"")):
            if i == 0 and source is None:
                continue
            self._spent(scid, d, amt, now)

    def record_route_failure(self, route: Route, erring_index: int, now: float, source: bytes | None = None) -> None:
        """Node ``route.hops[erring_index]`` could not forward over its outgoing channel: the
        channels up to it passed the amount, its outgoing one failed it."""
        for i, (scid, d, amt) in enumerate(self._hops(route, source or b"")):
            if i == 0 and source is None:
                continue
            if i <= erring_index:
                self.record_pass(scid, d, amt, now)
            elif i == erring_index + 1:
                self.record_failure(scid, d, amt, now)
                break

    def record_node_failure(self, node_id: bytes, now: float, penalty_msat: float = NODE_PENALTY_MSAT) -> None:
        old = self.nodes.get(node_id)
        faded = 0.0 if old is None else old[0] * 0.5 ** (max(now - old[1], 0.0) / self.half_life_s)
        self.nodes[node_id] = (faded + penalty_msat, now)

    def view(self, now: float, **penalties: float) -> ScorerView:
        """The scorer at ``now`` for :func:`~lncli.proto.routing.find_route`; ``penalties``
        override :class:`ScorerView`'s constants (``base_penalty_msat=...``)."""
        hl = self.half_life_s
        known = {k: b.at(now, hl) for k, b in self.bounds.items()}
        nodes = {n: p * 0.5 ** (max(now - t, 0.0) / hl) for n, (p, t) in self.nodes.items()}
        return ScorerView(known, {n: p for n, p in nodes.items() if p >= 1.0}, **penalties)

    def to_json(self) -> dict[str, Any]:
        return {
            "half_life_s": self.half_life_s,
            "channels": [[k >> 1, k & 1, b.lo, b.hi, b.learnt_at] for k, b in sorted(self.bounds.items())],
            "nodes": [[n.hex(), p, t] for n, (p, t) in sorted(self.nodes.items())],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scorer:
        s = cls(half_life_s=d.get("half_life_s", HALF_LIFE_S))
        for scid, direction, lo, hi, t in d.get("channels", ()):
            s.bounds[edge_key(scid, direction)] = Bounds(lo, hi, t)
        for n, p, t in d.get("nodes", ()):
            s.nodes[bytes.fromhex(n)] = (p, t)
        return s
