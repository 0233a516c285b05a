"""Pathfinding over the public graph (BOLT 7 "Recommendations for Routing" and "HTLC Fees").

Pure: edges in, a :class:`Route` out. No clock (cltv values are whatever base the caller gives:
pass ``block height + final delta`` as ``final_cltv_delta`` to get absolute expiries).

- :class:`Edge`: one direction of a channel, with the policy its *source* published
  (``fee_base_msat``, ``fee_proportional_millionths``, ``cltv_expiry_delta``,
  ``htlc_minimum_msat``, ``htlc_maximum_msat``, ``disabled``) and the capacity if known.
  :func:`graph_edges` turns a :class:`~lncli.proto.gossip.Graph` into edges,
  :func:`hint_edges` a BOLT 11 invoice's route hints; :func:`index_edges` indexes them by
  destination once (pass the index to :func:`find_route` to search a big graph many times).
- :class:`LocalChannel`: one of our own channels. The first hop uses these, with their real
  outbound capacity, instead of gossip (a channel of ours may be unannounced, and gossip does not
  know our balance); we charge ourselves no fee and add no cltv delta.
- :func:`find_route`: Dijkstra from the target backwards. Walking from the payee towards us, the
  amount and the cltv a node must receive are known exactly when it is reached: over an edge
  ``u -> v`` the HTLC carries what ``v`` must receive, ``u`` (unless it is us) must receive that
  plus ``fee_msat(that)`` (``u``'s fee on what it forwards), and an expiry ``cltv_expiry_delta``
  later. An edge is usable only if it is enabled, the HTLC it would carry lies within
  ``[htlc_minimum_msat, htlc_maximum_msat]`` and within the capacity.

  Cost of a path (what Dijkstra minimises): the fees paid plus a risk term for the time funds
  may be locked, ``amount * cltv_delta * RISK_FACTOR_PERCENT / 100 / BLOCKS_PER_YEAR`` msat per
  hop (the interest of ``amount`` at RISK_FACTOR_PERCENT a year over ``cltv_delta`` blocks,
  10% a year as CLN's default riskfactor does). Ties prefer fewer hops. Because fees depend on
  the amount this is the usual approximation (exact for the path it returns, a path with a
  lower cost could in rare cases exist through a node reached earlier with a larger amount).

Failure: :class:`NoRouteError` (a :class:`~lncli.errors.RefusedError`) with a message saying why.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lncli.errors import RefusedError
from lncli.proto.gossip import Graph, fee_msat

__all__ = [
    "Edge",
    "LocalChannel",
    "RouteHop",
    "Route",
    "NoRouteError",
    "RISK_FACTOR_PERCENT",
    "BLOCKS_PER_YEAR",
    "MAX_CLTV_DELTA",
    "graph_edges",
    "hint_edges",
    "index_edges",
    "find_route",
]

RISK_FACTOR_PERCENT = 10
BLOCKS_PER_YEAR = 52_596
#: the largest total cltv delta added by a route (BOLT 2's two-week bound for an expiry)
MAX_CLTV_DELTA = 2016
_RISK_DIV = 100 * BLOCKS_PER_YEAR


class NoRouteError(RefusedError):
    """No route satisfies the amount, the limits and the exclusions."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One direction of a channel: ``source`` forwards to ``destination`` under its policy."""

    source: bytes
    destination: bytes
    short_channel_id: int
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int
    htlc_minimum_msat: int = 0
    htlc_maximum_msat: int | None = None
    capacity_msat: int | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class LocalChannel:
    """One of our channels: ``peer`` at the other end, what we can send over it now."""

    peer: bytes
    short_channel_id: int
    outbound_msat: int
    htlc_minimum_msat: int = 0


@dataclass(frozen=True, slots=True)
class RouteHop:
    """One node of the route and the onion payload it gets: forward ``amt_to_forward`` with
    ``outgoing_cltv_value`` over ``short_channel_id`` (None at the final node, where the two
    values are what it receives)."""

    node_id: bytes
    short_channel_id: int | None
    amt_to_forward: int
    outgoing_cltv_value: int


@dataclass(frozen=True, slots=True)
class Route:
    """``hops[0]`` is our peer; we offer it ``amount_msat`` with ``cltv_expiry`` over
    ``first_short_channel_id``. ``fee_msat = amount_msat - the amount the payee receives``."""

    hops: tuple[RouteHop, ...]
    first_short_channel_id: int
    amount_msat: int
    cltv_expiry: int
    fee_msat: int

    @property
    def channels(self) -> list[int]:
        """The short_channel_ids in route order (ours first)."""
        return [self.first_short_channel_id] + [h.short_channel_id for h in self.hops[:-1]]  # type: ignore[misc]

    @property
    def nodes(self) -> list[bytes]:
        return [h.node_id for h in self.hops]


def graph_edges(graph: Graph) -> list[Edge]:
    """Every direction of ``graph`` that has a channel_update (dying channels skipped)."""
    out = []
    for ch in graph.channels.values():
        if ch.dying:
            continue
        cap = None if ch.amount_sat is None else ch.amount_sat * 1000
        ann = ch.announcement
        scid = ann.short_channel_id.to_int()
        for d, u in enumerate(ch.updates):
            if u is None:
                continue
            src, dst = (ann.node_id_2, ann.node_id_1) if d else (ann.node_id_1, ann.node_id_2)
            out.append(Edge(src, dst, scid, u.fee_base_msat, u.fee_proportional_millionths, u.cltv_expiry_delta,
                            u.htlc_minimum_msat, u.htlc_maximum_msat, cap, u.disabled))
    return out


def hint_edges(route_hints: Iterable[Iterable], target: bytes) -> list[Edge]:
    """Edges from BOLT 11 route hints (each a list of hops with ``pubkey``,
    ``short_channel_id``, fees and ``cltv_expiry_delta``; each hop's channel leads to the next
    hop's pubkey, the last one's to ``target``)."""
    out = []
    for hint in route_hints:
        hops = list(hint)
        for i, h in enumerate(hops):
            dst = hops[i + 1].pubkey if i + 1 < len(hops) else target
            out.append(Edge(h.pubkey, dst, _int(h.short_channel_id), h.fee_base_msat, h.fee_proportional_millionths,
                            h.cltv_expiry_delta))
    return out


def _int(scid) -> int:
    return scid if isinstance(scid, int) else scid.to_int()


def index_edges(edges: Iterable[Edge]) -> dict[bytes, list[Edge]]:
    """Edges grouped by destination (what the backward search walks)."""
    idx: dict[bytes, list[Edge]] = {}
    for e in edges:
        idx.setdefault(e.destination, []).append(e)
    return idx


def _as_index(graph_edges_: Graph | Mapping[bytes, list[Edge]] | Iterable[Edge]) -> Mapping[bytes, list[Edge]]:
    if isinstance(graph_edges_, Graph):
        return index_edges(graph_edges(graph_edges_))
    if isinstance(graph_edges_, Mapping):
        return graph_edges_
    return index_edges(graph_edges_)


def find_route(
    graph_edges: Graph | Mapping[bytes, list[Edge]] | Iterable[Edge],
    source: bytes,
    target: bytes,
    amount_msat: int,
    final_cltv_delta: int,
    *,
    exclude: Iterable = frozenset(),
    max_hops: int = 20,
    our_channels: Iterable[LocalChannel] | None = None,
    max_cltv_delta: int = MAX_CLTV_DELTA,
) -> Route:
    """The cheapest route from ``source`` to ``target`` delivering ``amount_msat`` with a final
    cltv of ``final_cltv_delta``.

    ``graph_edges``: a Graph, edges, or :func:`index_edges` of edges. ``exclude``: short_channel_ids
    (int) and node ids (bytes) not to use. ``our_channels``: when given, the only first hops
    (their ``outbound_msat`` is the limit; gossip edges out of ``source`` are then ignored); when
    None, gossip edges out of ``source`` are used, without fee. ``max_hops`` counts channels.
    Raises :class:`NoRouteError`.
    """
    if amount_msat <= 0:
        raise NoRouteError(f"cannot route {amount_msat} msat: the amount must be positive")
    if source == target:
        raise NoRouteError("the source is the target")
    idx = _as_index(graph_edges)
    excluded = set(exclude)
    excl_scids = {_int(x) for x in excluded if not isinstance(x, (bytes, bytearray))}
    excl_nodes = {bytes(x) for x in excluded if isinstance(x, (bytes, bytearray))}
    local: dict[bytes, list[Edge]] | None = None
    if our_channels is not None:
        local = {}
        for c in our_channels:
            local.setdefault(c.peer, []).append(
                Edge(source, c.peer, _int(c.short_channel_id), 0, 0, 0, c.htlc_minimum_msat, None, c.outbound_msat))

    # label per node: (cost, hops, amount it must receive, cltv it must receive, next edge)
    best: dict[bytes, tuple[int, int, int, int]] = {target: (0, 0, amount_msat, final_cltv_delta)}
    nxt: dict[bytes, Edge] = {}
    heap: list[tuple[int, int, bytes]] = [(0, 0, target)]
    done: set[bytes] = set()
    seen_limit = False
    while heap:
        cost, hops, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        if v == source:
            break
        if hops >= max_hops:
            seen_limit = True
            continue
        _, _, amt, cltv = best[v]
        incoming = list(idx.get(v, ()))
        if local is not None:
            incoming = [e for e in incoming if e.source != source] + local.get(v, [])
        for e in incoming:
            u = e.source
            if u in done or e.disabled or e.short_channel_id in excl_scids or u in excl_nodes:
                continue
            if amt < e.htlc_minimum_msat:
                continue
            if e.htlc_maximum_msat is not None and amt > e.htlc_maximum_msat:
                continue
            if e.capacity_msat is not None and amt > e.capacity_msat:
                continue
            if u == source:
                u_amt, u_cltv, fee, delta = amt, cltv, 0, 0
            else:
                fee = fee_msat(amt, e.fee_base_msat, e.fee_proportional_millionths)
                delta = e.cltv_expiry_delta
                u_amt, u_cltv = amt + fee, cltv + delta
                if u_cltv - final_cltv_delta > max_cltv_delta:
                    continue
            u_cost = cost + fee + amt * delta * RISK_FACTOR_PERCENT // _RISK_DIV
            old = best.get(u)
            if old is None or (u_cost, hops + 1) < (old[0], old[1]):
                best[u] = (u_cost, hops + 1, u_amt, u_cltv)
                nxt[u] = e
                heapq.heappush(heap, (u_cost, hops + 1, u))
    if source not in done:
        why = f" within {max_hops} hops" if seen_limit else ""
        raise NoRouteError(
            f"no route{why} from {source.hex()[:16]}… to {target.hex()} for {amount_msat} msat "
            f"(over {sum(len(v) for v in idx.values())} channel directions, {len(excl_scids)} channels excluded)"
        )
    first = nxt[source]
    _, _, total, first_cltv = best[source]
    route: list[RouteHop] = []
    node = first.destination
    while node != target:
        e = nxt[node]
        _, _, amt_next, cltv_next = best[e.destination]
        route.append(RouteHop(node, e.short_channel_id, amt_next, cltv_next))
        node = e.destination
    route.append(RouteHop(target, None, amount_msat, final_cltv_delta))
    return Route(tuple(route), first.short_channel_id, total, first_cltv, total - amount_msat)
