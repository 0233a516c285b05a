"""The graph pathfinding searches: compact adjacency arrays built once, searched many times.

Pure (no I/O): edges or channel records in, a :class:`RoutingGraph` out.

- :class:`RoutingGraph`: nodes numbered ``0..n-1`` (``node_ids[i]``, ``index[node_id]``), and
  for each node ``v`` the list ``incoming[v]`` of the usable directions *into* it, each one plain
  tuple ``(u, key, fee_base_msat, fee_proportional_millionths, cltv_expiry_delta,
  htlc_minimum_msat, max_msat, capacity_msat)``: ``u`` the source's number, ``key`` is
  :func:`edge_key` (``short_channel_id * 2 + direction``), ``max_msat`` the least of
  ``htlc_maximum_msat`` and the capacity (:data:`UNLIMITED` when neither is known),
  ``capacity_msat`` 0 when unknown. The search (:func:`lncli.proto.routing.find_route`) walks
  these tuples without building an object per edge.
- Disabled directions are left out. So is a direction ``u -> v`` that can only be the *first*
  hop of a route: when every direction into ``u`` comes from ``v`` itself (or none does), no route
  passes through ``u`` to ``v``; those are kept aside in ``first_hops[u]`` and used only when
  ``u`` is the payer. On mainnet this takes about a third of the directions out of the search.
- :class:`GraphBuilder`: what a gossip reader feeds (``add_channel``, ``update``,
  ``remove``) before :meth:`GraphBuilder.build`; :func:`from_edges` and :func:`from_graph`
  build from :class:`~lncli.proto.routing.Edge` s or a :class:`~lncli.proto.gossip.Graph`.

BOLT 7: ``direction`` is bit 0 of ``channel_flags``; 0 means the update comes from
``node_id_1``, the numerically lesser key, so a direction ``u -> v`` is ``int(u > v)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lncli.proto.gossip import Graph
    from lncli.proto.routing import Edge

__all__ = ["UNLIMITED", "edge_key", "direction_of", "RoutingGraph", "GraphBuilder", "from_edges", "from_graph"]

#: ``max_msat`` of a direction with neither htlc_maximum_msat nor capacity
UNLIMITED = 1 << 62


def edge_key(short_channel_id: int, direction: int) -> int:
    """One int per channel direction (what the scorer and exclusions key on)."""
    return int(short_channel_id) << 1 | direction


def direction_of(source: bytes, destination: bytes) -> int:
    """The BOLT 7 direction of ``source -> destination``: 0 when the source is node_id_1."""
    return int(source > destination)


class RoutingGraph:
    """See the module doc. ``edge_count`` counts the usable directions (in ``incoming`` and
    ``first_hops``)."""

    __slots__ = ("node_ids", "index", "incoming", "first_hops", "edge_count", "channel_count")

    def __init__(self, node_ids: list[bytes], incoming: list[list[tuple]], first_hops: dict[int, list[tuple[int, tuple]]],
                 channel_count: int):
        self.node_ids = node_ids
        self.index = {n: i for i, n in enumerate(node_ids)}
        self.incoming = incoming
        self.first_hops = first_hops
        self.edge_count = sum(map(len, incoming)) + sum(map(len, first_hops.values()))
        self.channel_count = channel_count

    def __len__(self) -> int:
        return len(self.node_ids)

    def edges_into(self, v: int) -> list[tuple]:
        """Every usable direction into ``v`` (those kept aside as first hops included)."""
        out = list(self.incoming[v])
        for u_edges in self.first_hops.values():
            out.extend(e for w, e in u_edges if w == v)
        return out


class GraphBuilder:
    """Channels and their directions' latest policies, then :meth:`build`.

    ``update`` keeps the newest policy of each direction (by ``timestamp``; equal timestamps: the
    later call wins); a channel with no ``add_channel`` is ignored."""

    __slots__ = ("_channels", "_policies")

    def __init__(self) -> None:
        # scid -> (node_id_1, node_id_2, capacity_msat or 0)
        self._channels: dict[int, tuple[bytes, bytes, int]] = {}
        # scid*2+direction -> (timestamp, disabled, fee_base, fee_ppm, cltv, htlc_min, htlc_max or None)
        self._policies: dict[int, tuple] = {}

    def add_channel(self, short_channel_id: int, node_id_1: bytes, node_id_2: bytes, capacity_msat: int | None) -> None:
        self._channels[int(short_channel_id)] = (node_id_1, node_id_2, capacity_msat or 0)

    def set_capacity(self, short_channel_id: int, capacity_msat: int) -> None:
        ch = self._channels.get(int(short_channel_id))
        if ch is not None:
            self._channels[int(short_channel_id)] = (ch[0], ch[1], capacity_msat)

    def update(self, short_channel_id: int, direction: int, timestamp: int, disabled: bool, fee_base_msat: int,
               fee_proportional_millionths: int, cltv_expiry_delta: int, htlc_minimum_msat: int,
               htlc_maximum_msat: int | None) -> None:
        key = int(short_channel_id) << 1 | direction
        old = self._policies.get(key)
        if old is not None and old[0] > timestamp:
            return
        self._policies[key] = (timestamp, disabled, fee_base_msat, fee_proportional_millionths, cltv_expiry_delta,
                               htlc_minimum_msat, htlc_maximum_msat)

    def remove(self, short_channel_id: int) -> None:
        scid = int(short_channel_id)
        self._channels.pop(scid, None)
        self._policies.pop(scid << 1, None)
        self._policies.pop(scid << 1 | 1, None)

    def build(self) -> RoutingGraph:
        index: dict[bytes, int] = {}
        node_ids: list[bytes] = []
        raw: list[tuple[int, int, tuple]] = []  # (u, v, edge tuple)
        channels = self._channels
        for key, pol in self._policies.items():
            ch = channels.get(key >> 1)
            if ch is None or pol[1]:
                continue
            d = key & 1
            src, dst = (ch[1], ch[0]) if d else (ch[0], ch[1])
            u = index.get(src)
            if u is None:
                u = index[src] = len(node_ids)
                node_ids.append(src)
            v = index.get(dst)
            if v is None:
                v = index[dst] = len(node_ids)
                node_ids.append(dst)
            cap = ch[2]
            hmax = pol[6]
            mx = UNLIMITED if hmax is None else hmax
            if cap and cap < mx:
                mx = cap
            raw.append((u, v, (u, key, pol[2], pol[3], pol[4], pol[5], mx, cap)))
        return _assemble(node_ids, raw, len(channels))


def _assemble(node_ids: list[bytes], raw: list[tuple[int, int, tuple]], channel_count: int) -> RoutingGraph:
    n = len(node_ids)
    # the in-neighbours of each node, up to two distinct ones (enough to decide "only from v")
    first_in: list[int] = [-1] * n
    second_in: list[bool] = [False] * n
    for u, v, _ in raw:
        f = first_in[v]
        if f == -1:
            first_in[v] = u
        elif f != u:
            second_in[v] = True
    incoming: list[list[tuple]] = [[] for _ in range(n)]
    first_hops: dict[int, list[tuple[int, tuple]]] = {}
    for u, v, e in raw:
        # u can relay towards v only if something other than v leads into u
        if second_in[u] or (first_in[u] != -1 and first_in[u] != v):
            incoming[v].append(e)
        else:
            first_hops.setdefault(u, []).append((v, e))
    return RoutingGraph(node_ids, incoming, first_hops, channel_count)


def from_edges(edges: Iterable[Edge]) -> RoutingGraph:
    """A :class:`RoutingGraph` of :class:`~lncli.proto.routing.Edge` s (their ``source`` and
    ``destination`` give the direction; disabled ones are left out)."""
    index: dict[bytes, int] = {}
    node_ids: list[bytes] = []
    raw = []
    scids = set()
    for e in edges:
        scids.add(e.short_channel_id)
        for n in (e.source, e.destination):
            if n not in index:
                index[n] = len(node_ids)
                node_ids.append(n)
        if e.disabled:
            continue
        u, v = index[e.source], index[e.destination]
        cap = e.capacity_msat or 0
        mx = UNLIMITED if e.htlc_maximum_msat is None else e.htlc_maximum_msat
        if e.capacity_msat is not None and e.capacity_msat < mx:
            mx = e.capacity_msat
        key = edge_key(e.short_channel_id, direction_of(e.source, e.destination))
        raw.append((u, v, (u, key, e.fee_base_msat, e.fee_proportional_millionths, e.cltv_expiry_delta,
                           e.htlc_minimum_msat, mx, cap)))
    return _assemble(node_ids, raw, len(scids))


def from_graph(graph: Graph) -> RoutingGraph:
    """The live (not dying) channels of a gossip :class:`~lncli.proto.gossip.Graph`."""
    b = GraphBuilder()
    for ch in graph.channels.values():
        if ch.dying:
            continue
        ann = ch.announcement
        scid = ann.short_channel_id.to_int()
        b.add_channel(scid, ann.node_id_1, ann.node_id_2, None if ch.amount_sat is None else ch.amount_sat * 1000)
        for d, u in enumerate(ch.updates):
            if u is not None:
                b.update(scid, d, u.timestamp, u.disabled, u.fee_base_msat, u.fee_proportional_millionths,
                         u.cltv_expiry_delta, u.htlc_minimum_msat, u.htlc_maximum_msat)
    return b.build()
