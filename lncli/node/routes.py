"""``getroute`` and ``lncli route``: the route a payer would take, from the running node's graph
and channels, or offline from a gossip_store file.

- :class:`Routes` (one per node): the node's :class:`~lncli.proto.liquidity.Scorer` (what its
  payments learn; the payment loop records into ``node.routes.scorer``), our channels as
  :class:`~lncli.proto.routing.LocalChannel` s with their real outbound balance
  (:meth:`Routes.local_channels`), the gossip graph as a
  :class:`~lncli.proto.route_graph.RoutingGraph` (:meth:`Routes.graph`), and
  :meth:`Routes.get_route`, the RPC ``getroute``.
- :func:`route_from_store`: the same search over a gossip_store file, no node needed.

Both take SOURCE, DESTINATION, AMOUNT (msat) and ``exclude`` (texts for
:func:`~lncli.proto.routing.parse_exclusion`), ``max_fee_msat``, ``max_cltv`` (the most the route
may add, in blocks) and ``final_cltv`` (the payee's delta; the printed cltvs count from now), and
return :func:`~lncli.proto.routing.route_to_json`. No route: a
:class:`~lncli.proto.routing.NoRouteError` naming what was missing.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from lncli.errors import InputError
from lncli.proto import routing
from lncli.proto.liquidity import Scorer
from lncli.proto.route_graph import RoutingGraph, from_graph

__all__ = ["Routes", "route_from_store", "register", "DEFAULT_FINAL_CLTV"]

log = logging.getLogger(__name__)

SAVE_EVERY_S = 30.0

#: BOLT 11's default min_final_cltv_expiry_delta
DEFAULT_FINAL_CLTV = 18


def _node_id(text: str, what: str) -> bytes:
    t = (text or "").strip()
    if len(t) != 66 or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise InputError(f"{what} must be a node id (66 hex digits), not {text!r}")
    return bytes.fromhex(t)


def _search(g: RoutingGraph, source: str, destination: str, amount_msat: int, exclude, max_fee_msat, max_cltv,
            final_cltv: int, scorer: Scorer, now: float, our_channels=None) -> dict:
    src, dst = _node_id(source, "SOURCE"), _node_id(destination, "DESTINATION")
    if not isinstance(amount_msat, int) or amount_msat <= 0:
        raise InputError(f"the amount must be a positive number of msat, not {amount_msat!r}")
    if max_fee_msat is not None and max_fee_msat < 0:
        raise InputError("--max-fee must not be negative")
    if max_cltv is not None and max_cltv < 0:
        raise InputError("--max-cltv must not be negative")
    excl = [routing.parse_exclusion(x) for x in exclude or ()]
    r = routing.find_route(g, src, dst, amount_msat, final_cltv, exclude=excl, our_channels=our_channels,
                           max_fee_msat=max_fee_msat, scorer=scorer.view(now),
                           max_cltv_delta=routing.MAX_CLTV_DELTA if max_cltv is None else max_cltv)
    return routing.route_to_json(r, src)


def route_from_store(path: str, source: str, destination: str, amount_msat: int, *, exclude=(), max_fee_msat=None,
                     max_cltv=None, final_cltv: int = DEFAULT_FINAL_CLTV) -> dict:
    """The route over the gossip_store at ``path`` (see the module doc)."""
    from lncli.gossip.store import GossipStoreError, load_routing_graph

    try:
        with open(path, "rb", buffering=1 << 20) as f:
            g = load_routing_graph(f)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except GossipStoreError as e:
        raise InputError(f"{Path(path).name} is not a readable gossip_store: {e}") from None
    return _search(g, source, destination, amount_msat, exclude, max_fee_msat, max_cltv, final_cltv, Scorer(), 0)


def _load_scorer(path: Path | None) -> Scorer:
    """The scorer kept at ``path``; a new one if there is none or it cannot be read (what it
    knew fades within hours anyway)."""
    if path is None or not path.exists():
        return Scorer()
    try:
        return Scorer.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as e:
        log.warning("scorer: %s unreadable (%s): starting from nothing", path.name, e)
        return Scorer()


class Routes:
    """See the module doc. ``node_id``: ours; ``manager``: the ChannelManager; ``gossip``: the
    node's Gossip (or None)."""

    def __init__(self, node_id: bytes, manager, gossip, scorer_path: Path | None = None) -> None:
        self.node_id = node_id
        self.manager = manager
        self.gossip = gossip
        self.scorer_path = scorer_path
        self.scorer = _load_scorer(scorer_path)
        self._graph: tuple[tuple, RoutingGraph] | None = None
        self._saved_at = time.monotonic()

    def learnt(self) -> None:
        """A payment ended: save the scorer if the last save is 30 s old (and at shutdown)."""
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save_scorer()

    def save_scorer(self) -> None:
        """Keep what the payments learnt across restarts (``scorer.json`` beside the store)."""
        if self.scorer_path is None:
            return
        tmp = self.scorer_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.scorer.to_json()))
        tmp.replace(self.scorer_path)
        self._saved_at = time.monotonic()

    def local_channels(self) -> list[routing.LocalChannel]:
        """Our channels that can take an HTLC now, with what we can send over each."""
        from lncli.channel.state import ChannelState

        out = []
        for e in self.manager.by_id.values():
            ch = e.channel
            if e.state == ChannelState.NORMAL and e.reestablished and ch.can_add_htlcs() and ch.short_channel_id is not None:
                outbound = ch._projected()[0] - ch.remote_config.channel_reserve_satoshis * 1000
                out.append(routing.LocalChannel(e.peer, int(ch.short_channel_id), max(outbound, 0),
                                                ch.remote_config.htlc_minimum_msat))
        return out

    def graph(self) -> RoutingGraph:
        """The gossip graph as a RoutingGraph, rebuilt when a channel or policy changed."""
        graph = self.gossip.graph if self.gossip is not None else None
        if graph is None:
            return RoutingGraph([], [], {}, 0)
        stamp = (len(graph.channels), sum(u.timestamp for ch in graph.channels.values() for u in ch.updates if u is not None),
                 sum(ch.dying for ch in graph.channels.values()))
        if self._graph is None or self._graph[0] != stamp:
            self._graph = (stamp, from_graph(graph))
        return self._graph[1]

    def get_route(self, destination: str, amount_msat: int, source: str | None = None, exclude=(),
                  max_fee_msat: int | None = None, max_cltv: int | None = None,
                  final_cltv: int = DEFAULT_FINAL_CLTV) -> dict:
        src = source or self.node_id.hex()
        ours = self.local_channels() if _node_id(src, "SOURCE") == self.node_id else None
        return _search(self.graph(), src, destination, amount_msat, exclude, max_fee_msat, max_cltv, final_cltv,
                       self.scorer, time.time(), our_channels=ours)


def register(registry, routes: Routes) -> None:
    async def getroute(destination: str, amount_msat: int, source: str | None = None, exclude: list | None = None,
                       max_fee_msat: int | None = None, max_cltv: int | None = None,
                       final_cltv: int = DEFAULT_FINAL_CLTV) -> dict:
        return routes.get_route(destination, amount_msat, source, exclude or (), max_fee_msat, max_cltv, final_cltv)

    registry.add("getroute", getroute)
