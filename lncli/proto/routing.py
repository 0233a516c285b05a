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

  With ``scorer=`` (a :meth:`lncli.proto.liquidity.Scorer.view`) each hop also costs its
  liquidity penalty (the probability that the channel can carry the amount, learnt from our
  payments and fading; see :mod:`lncli.proto.liquidity`); a direction known not to carry the
  amount is skipped. ``max_fee_msat`` and ``max_cltv_delta`` bound the route; ``exclude`` takes
  scids, ``(scid, direction)`` pairs and node ids (what
  :func:`lncli.proto.payment_failure.interpret_failure` returns); ``hints`` adds edges.
- Speed: the search runs over a :class:`~lncli.proto.route_graph.RoutingGraph` (integer nodes,
  one tuple per direction, first-hop-only directions aside); :func:`as_routing_graph` builds it
  once from any of the accepted forms, ``lncli.gossip.store.load_routing_graph`` straight from a
  gossip_store. The mainnet graph: p50 16 ms at 100k msat (tests/bench/bench_route_mainnet.py).
- :func:`parse_exclusion` reads an ``--exclude`` value; :func:`route_to_json` is what
  ``lncli route`` prints.

The payment loop's API, in short::

    g = as_routing_graph(graph)                      # once per graph change
    r = find_route(g, me, payee, amount, cltv, our_channels=ours, hints=hint_edges(...),
                   scorer=scorer.view(now), exclude=excl, max_fee_msat=..., max_cltv_delta=...)
    verdict = interpret_failure(r, me, erring_index, code, channel_update)   # on a failure
    apply_verdict(verdict, scorer, excl, now); scorer.record_success(r, now, source=me)

Failure: :class:`NoRouteError` (a :class:`~lncli.errors.RefusedError`) naming what was missing:
an unknown node, no route with enough capacity (or within the hop or cltv limit), or the cheapest
route's fee above ``max_fee_msat``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lncli.errors import RefusedError
from lncli.proto import route_graph
from lncli.proto.gossip import Graph
from lncli.proto.liquidity import MIN_PROBABILITY, ScorerView, faded_hi, success_probability
from lncli.proto.route_graph import UNLIMITED, RoutingGraph

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
    "as_routing_graph",
    "find_route",
    "parse_exclusion",
    "route_to_json",
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
    #: the channel_update's timestamp (0: unknown, as for a route hint)
    timestamp: int = 0


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
                            u.htlc_minimum_msat, u.htlc_maximum_msat, cap, u.disabled, u.timestamp))
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


def as_routing_graph(graph: RoutingGraph | Graph | Mapping[bytes, list[Edge]] | Iterable[Edge]) -> RoutingGraph:
    """A :class:`~lncli.proto.route_graph.RoutingGraph` of any graph form find_route takes
    (build it once with this to search a big graph many times)."""
    if isinstance(graph, RoutingGraph):
        return graph
    if isinstance(graph, Graph):
        return route_graph.from_graph(graph)
    if isinstance(graph, Mapping):
        return route_graph.from_edges(e for es in graph.values() for e in es)
    return route_graph.from_edges(graph)


def _edge_tuple(u: int, e: Edge) -> tuple:
    cap = e.capacity_msat or 0
    mx = UNLIMITED if e.htlc_maximum_msat is None else e.htlc_maximum_msat
    if e.capacity_msat is not None and e.capacity_msat < mx:
        mx = e.capacity_msat
    return (u, route_graph.edge_key(e.short_channel_id, route_graph.direction_of(e.source, e.destination)),
            e.fee_base_msat, e.fee_proportional_millionths, e.cltv_expiry_delta, e.htlc_minimum_msat, mx, cap)


def find_route(
    graph_edges: RoutingGraph | Graph | Mapping[bytes, list[Edge]] | Iterable[Edge],
    source: bytes,
    target: bytes,
    amount_msat: int,
    final_cltv_delta: int,
    *,
    exclude: Iterable = frozenset(),
    max_hops: int = 20,
    our_channels: Iterable[LocalChannel] | None = None,
    max_cltv_delta: int = MAX_CLTV_DELTA,
    max_fee_msat: int | None = None,
    scorer: ScorerView | None = None,
    hints: Iterable[Edge] = (),
) -> Route:
    """The cheapest route from ``source`` to ``target`` delivering ``amount_msat`` with a final
    cltv of ``final_cltv_delta``.

    ``graph_edges``: a :class:`~lncli.proto.route_graph.RoutingGraph` (fastest: build it once
    with :func:`as_routing_graph`), a Graph, edges, or :func:`index_edges` of edges.
    ``exclude``: short_channel_ids (int: both directions), ``(short_channel_id, direction)``
    pairs and node ids (bytes) not to use. ``our_channels``: when given, the only first hops
    (their ``outbound_msat`` is the limit; gossip edges out of ``source`` are then ignored); when
    None, gossip edges out of ``source`` are used, without fee. ``max_hops`` counts channels.
    ``max_cltv_delta``: the most the route may add to ``final_cltv_delta``; ``max_fee_msat``: the
    most it may pay in fees. ``scorer``: a :meth:`~lncli.proto.liquidity.Scorer.view`; with it
    the cost adds each hop's liquidity penalty (and a direction known not to carry the amount is
    not used); without it the cost is fees plus the lock-up risk only. ``hints``: more edges
    (an invoice's route hints, :func:`hint_edges`) searched with the graph's.
    Raises :class:`NoRouteError` saying what was missing.
    """
    if amount_msat <= 0:
        raise NoRouteError(f"cannot route {amount_msat} msat: the amount must be positive")
    if source == target:
        raise NoRouteError("the source is the target")
    g = as_routing_graph(graph_edges)
    hint_list = list(hints)
    local = None if our_channels is None else list(our_channels)
    args = (g, source, target, amount_msat, final_cltv_delta, exclude, max_hops, local, max_cltv_delta, scorer, hint_list)
    res = _search(*args, max_fee_msat)
    if isinstance(res, Route):
        return res
    why = res
    if why.get("fee_limited"):
        cheaper = _search(*args, None)
        if isinstance(cheaper, Route):
            raise NoRouteError(f"fee above the limit: the cheapest route to {target.hex()} for {amount_msat} msat pays "
                               f"{cheaper.fee_msat} msat in fees, more than the {max_fee_msat} msat allowed")
    if why.get("unknown"):
        raise NoRouteError(f"unknown node: {why['unknown']} has no channel in the graph")
    parts = []
    if why.get("hop_limited"):
        parts.append(f"within {max_hops} hops")
    if why.get("cltv_limited"):
        parts.append(f"within a cltv delta of {max_cltv_delta}")
    if why.get("capacity_limited"):
        parts.append("with enough capacity")
    detail = " ".join(parts) or "at all"
    raise NoRouteError(
        f"no route {detail} from {source.hex()} to {target.hex()} for {amount_msat} msat "
        f"({why['reached']} nodes reachable towards the target, over {g.edge_count} channel directions, "
        f"{why['excluded']} channels excluded)"
    )


def _search(g: RoutingGraph, source: bytes, target: bytes, amount: int, final: int, exclude: Iterable, max_hops: int,
            local: list[LocalChannel] | None, max_cltv_delta: int, sv: ScorerView | None, hint_list: list[Edge],
            max_fee: int | None) -> Route | dict:
    """Dijkstra from the target backwards over integer node numbers; a Route, or a dict saying
    why there is none."""
    index = g.index
    names = g.node_ids
    n0 = len(names)
    added: dict[bytes, int] = {}
    names_ext: list[bytes] = []

    def num(node: bytes) -> int:
        i = index.get(node)
        if i is None:
            i = added.get(node)
            if i is None:
                i = added[node] = n0 + len(names_ext)
                names_ext.append(node)
        return i

    t = num(target)
    s = num(source)
    # extra incoming edges by destination: hints, our channels, the payer's own first hops
    extra: dict[int, list[tuple]] = {}
    for e in hint_list:
        u, v = num(e.source), num(e.destination)
        if not e.disabled:
            extra.setdefault(v, []).append(_edge_tuple(u, e))
            if v < n0:  # a hint reaches v: its first-hop-only directions are usable (as below)
                for w, fe in g.first_hops.get(v, ()):
                    extra.setdefault(w, []).append(fe)
    if local is not None:
        for c in local:
            v = num(c.peer)
            key = route_graph.edge_key(c.short_channel_id, route_graph.direction_of(source, c.peer))
            extra.setdefault(v, []).append((s, key, -1, 0, 0, c.htlc_minimum_msat, c.outbound_msat, 0))
            # the peer's own directions that the graph set aside as first-hop-only (it has no
            # incoming direction in the graph): our channel reaches it, so they are usable now
            if v < n0:
                for w, e in g.first_hops.get(v, ()):
                    extra.setdefault(w, []).append(e)
    elif s < n0:
        for v, e in g.first_hops.get(s, ()):
            extra.setdefault(v, []).append(e)
    if t >= n0 and t not in extra:
        return {"unknown": f"the destination {target.hex()}", "reached": 0, "excluded": 0}
    if s >= n0 and local is None and not any(e.source == source for e in hint_list):
        return {"unknown": f"the source {source.hex()}", "reached": 0, "excluded": 0}

    excl_scids: set[int] = set()
    excl_keys: set[int] = set()
    excl_nodes: set[int] = set()
    for x in exclude:
        if isinstance(x, (bytes, bytearray)):
            i = index.get(bytes(x), added.get(bytes(x)))
            if i is not None:
                excl_nodes.add(i)
        elif isinstance(x, tuple):
            excl_keys.add(route_graph.edge_key(_int(x[0]), x[1]))
        else:
            excl_scids.add(_int(x))
    excl_nodes.discard(s)
    excl_nodes.discard(t)
    for sc in excl_scids:
        excl_keys.add(sc << 1)
        excl_keys.add(sc << 1 | 1)

    n = n0 + len(names_ext)
    incoming = g.incoming
    INF = float("inf")
    best = [INF] * n
    hops_to = [0] * n
    amt_at = [0] * n
    cltv_at = [0] * n
    nxt: list = [None] * n
    via = [0] * n
    done = bytearray(n)
    best[t] = 0
    amt_at[t] = amount
    cltv_at[t] = final
    heap: list = [(0, 0, t)]
    pop, push = heapq.heappop, heapq.heappush
    log1p, log = math.log1p, math.log
    cltv_cap = final + max_cltv_delta
    fee_cap = UNLIMITED if max_fee is None else amount + max_fee
    skip_ours = local is not None
    if sv is not None:
        known = sv.known
        node_pen = {i: p for node, p in sv.node_penalty.items() if (i := index.get(node, added.get(node))) is not None}
        base_pen, liq_m, liq_ppm = sv.base_penalty_msat, sv.liquidity_penalty_msat, sv.liquidity_penalty_ppm / 1e6
    hop_limited = cltv_limited = fee_limited = cap_limited = False
    reached = 0
    while heap:
        cost, h, v = pop(heap)
        if done[v]:
            continue
        done[v] = 1
        reached += 1
        if v == s:
            break
        if h >= max_hops:
            hop_limited = True
            continue
        a = amt_at[v]
        cl = cltv_at[v]
        h1 = h + 1
        es = incoming[v] if v < n0 else ()
        ex = extra.get(v)
        if ex is not None:
            es = list(es) + ex
        if sv is not None:
            w = liq_m + a * liq_ppm
        for e in es:
            u, key, base, ppm, delta, hmin, mx, cap = e
            if done[u]:
                continue
            if a > mx:
                cap_limited = True
                continue
            if a < hmin:
                continue
            if u == s:
                if skip_ours and base >= 0:  # ours are tagged base -1
                    continue
                u_amt, u_cltv, c = a, cl, cost
            else:
                u_amt = a + base + a * ppm // 1_000_000
                if u_amt > fee_cap:
                    fee_limited = True
                    continue
                u_cltv = cl + delta
                if u_cltv > cltv_cap:
                    cltv_limited = True
                    continue
                c = cost + (u_amt - a) + a * delta * RISK_FACTOR_PERCENT / _RISK_DIV
            if key in excl_keys or u in excl_nodes:
                continue
            if sv is not None:
                b = known.get(key) if known else None
                if b is None:
                    if cap:
                        c += base_pen + w * -log1p(-a / (cap + 1))
                    else:
                        c += base_pen
                else:
                    p = success_probability(a, cap, b[0], faded_hi(b[1], b[2], cap))
                    if p <= 0.0:
                        cap_limited = True
                        continue
                    c += base_pen + w * -log(p if p > MIN_PROBABILITY else MIN_PROBABILITY)
                if node_pen and u in node_pen:
                    c += node_pen[u]
            if c < best[u] or (c == best[u] and h1 < hops_to[u]):
                best[u] = c
                hops_to[u] = h1
                amt_at[u] = u_amt
                cltv_at[u] = u_cltv
                nxt[u] = e
                via[u] = v
                push(heap, (c, h1, u))
    if not done[s]:
        return {"hop_limited": hop_limited, "cltv_limited": cltv_limited, "fee_limited": fee_limited,
                "capacity_limited": cap_limited, "reached": reached, "excluded": len(excl_scids) + len(excl_keys) // 2}
    all_names = names if not names_ext else names + names_ext
    first = nxt[s]
    route: list[RouteHop] = []
    node = via[s]
    while node != t:
        e = nxt[node]
        nv = via[node]
        route.append(RouteHop(all_names[node], e[1] >> 1, amt_at[nv], cltv_at[nv]))
        node = nv
    route.append(RouteHop(target, None, amount, final))
    total = amt_at[s]
    return Route(tuple(route), first[1] >> 1, total, cltv_at[s], total - amount)


def parse_exclusion(text: str) -> int | tuple[int, int] | bytes:
    """One ``exclude`` entry from text: a node id (66 hex digits), a short_channel_id
    (``BLOCKxTXxOUT``, both directions) or ``BLOCKxTXxOUT/DIRECTION`` (0 or 1). Raises
    :class:`~lncli.errors.InputError`."""
    from lncli.errors import DecodeError, InputError
    from lncli.proto.scid import ShortChannelId

    t = text.strip()
    if len(t) == 66 and all(c in "0123456789abcdefABCDEF" for c in t):
        return bytes.fromhex(t)
    scid_text, _, d = t.partition("/")
    try:
        scid = int(ShortChannelId.from_str(scid_text))
    except DecodeError:
        raise InputError(f"cannot exclude {text!r}: give a node id (66 hex digits), a short_channel_id "
                         "(BLOCKxTXxOUT) or BLOCKxTXxOUT/DIRECTION") from None
    if not d:
        return scid
    if d not in ("0", "1"):
        raise InputError(f"cannot exclude {text!r}: the direction after '/' is 0 or 1")
    return (scid, int(d))


def route_to_json(route: Route, source: bytes) -> dict:
    """What ``lncli route`` prints: each hop's node, the short_channel_id into it, the amount
    and cltv of the HTLC over that channel, and the fee the node keeps for forwarding (0 at
    the destination). ``cltv`` counts from the base the search was given (0: blocks from now)."""
    from lncli.proto.scid import ShortChannelId

    amounts = [route.amount_msat] + [h.amt_to_forward for h in route.hops[:-1]]
    cltvs = [route.cltv_expiry] + [h.outgoing_cltv_value for h in route.hops[:-1]]
    hops = []
    for j, (h, scid) in enumerate(zip(route.hops, route.channels)):
        fee = amounts[j] - amounts[j + 1] if j + 1 < len(amounts) else 0
        hops.append({"node_id": h.node_id.hex(), "short_channel_id": str(ShortChannelId.from_int(scid)),
                     "direction": route_graph.direction_of(source if j == 0 else route.hops[j - 1].node_id, h.node_id),
                     "amount_msat": amounts[j], "fee_msat": fee, "cltv": cltvs[j]})
    return {"source": source.hex(), "destination": route.hops[-1].node_id.hex(),
            "amount_msat": route.hops[-1].amt_to_forward, "total_amount_msat": route.amount_msat,
            "fee_msat": route.fee_msat, "cltv": route.cltv_expiry, "hops": hops}
