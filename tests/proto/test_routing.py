"""lncli.proto.routing: Dijkstra over hand-built graphs, BOLT 7's routing example, limits,
a hypothesis property, and a timing on the mainnet gossip_store sample."""

from __future__ import annotations

import statistics
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import RefusedError
from lncli.proto.gossip import fee_msat
from lncli.proto.routing import Edge, LocalChannel, NoRouteError, find_route, graph_edges, index_edges
from tests.conftest import DATA, load_vector

SAMPLE = DATA / "gossip_store-sample"


def nid(c: str) -> bytes:
    return b"\x02" + c.encode().ljust(32, b"_")


def example_edges():
    ex = load_vector("bolt07_scid.json")["routing_example"]
    scids = {}
    edges = []
    for u in ex["channel_updates"]:
        pair = tuple(sorted((u["from"], u["to"])))
        scid = scids.setdefault(pair, len(scids) + 1)
        edges.append(Edge(nid(u["from"]), nid(u["to"]), scid, u["fee_base_msat"], u["fee_proportional_millionths"],
                          u["cltv_expiry_delta"]))
    return ex, edges, scids


@pytest.mark.parametrize("i", [0, 1, 2])
def test_bolt07_routing_example(i):
    ex, edges, scids = example_edges()
    pay = ex["payments"][i]
    final = ex["min_final_cltv_expiry_delta"] + ex["shadow_route_extra_cltv"]
    h = 1000  # current-block-height
    names = pay["route"]
    exclude = set()
    if names == ["A", "D", "C"]:
        exclude = {scids[("A", "B")]}  # force the costlier route through D
    r = find_route(edges, nid(names[0]), nid(names[-1]), pay["final_amt_to_forward"], h + final, exclude=exclude)
    assert r.nodes == [nid(n) for n in names[1:]]
    assert r.amount_msat == pay["first_hop_amount_msat"]
    deltas = sum(int(x) for x in pay["first_hop_cltv_expiry"].split("+")[1:])
    assert r.cltv_expiry == h + deltas
    final_hop = r.hops[-1]
    assert final_hop.short_channel_id is None
    assert final_hop.amt_to_forward == pay["final_amt_to_forward"]
    assert final_hop.outgoing_cltv_value == h + final
    if "fee_at_B_msat" in pay:
        assert r.fee_msat == pay["fee_at_B_msat"] == 10199
        assert r.hops[0].short_channel_id == scids[("B", "C")]
        assert r.hops[0].amt_to_forward == 4999999
    # A->B->C is cheaper than A->D->C, so it is the one found without exclusions
    if names[0] == "A":
        assert find_route(edges, nid("A"), nid("C"), 4999999, h + final).nodes == [nid("B"), nid("C")]


def chain(n, **kw):
    """A line of n nodes 0-1-..-(n-1), each direction with the same policy."""
    es = []
    for i in range(n - 1):
        for a, b in ((i, i + 1), (i + 1, i)):
            es.append(Edge(nid(str(a)), nid(str(b)), 100 + i, kw.get("base", 1000), kw.get("ppm", 10), 40,
                           kw.get("hmin", 0), kw.get("hmax"), kw.get("cap")))
    return es


def test_fees_add_up_hop_by_hop():
    es = chain(5, base=1000, ppm=1000)
    r = find_route(es, nid("0"), nid("4"), 1_000_000, 10)
    # hops 1, 2, 3 each charge on what they forward
    a3 = 1_000_000
    a2 = a3 + fee_msat(a3, 1000, 1000)
    a1 = a2 + fee_msat(a2, 1000, 1000)
    a0 = a1 + fee_msat(a1, 1000, 1000)
    assert [h.amt_to_forward for h in r.hops] == [a1, a2, a3, 1_000_000]
    assert [h.outgoing_cltv_value for h in r.hops] == [90, 50, 10, 10]
    assert r.amount_msat == a0 and r.fee_msat == a0 - 1_000_000 and r.cltv_expiry == 130
    assert r.channels == [100, 101, 102, 103]


def diamond(**over):
    """S-X-T (cheap) and S-Y-T (dear)."""
    pol = dict(fee_base_msat=10, fee_proportional_millionths=0, cltv_expiry_delta=10)
    x_t = dict(pol, **over)
    return [
        Edge(nid("S"), nid("X"), 1, **pol), Edge(nid("X"), nid("T"), 2, **x_t),
        Edge(nid("S"), nid("Y"), 3, **pol), Edge(nid("Y"), nid("T"), 4, **dict(pol, fee_base_msat=500)),
    ]


def test_disabled_and_limits_avoided():
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9).nodes == [nid("X"), nid("T")]
    for over in ({"disabled": True}, {"htlc_maximum_msat": 4999}, {"htlc_minimum_msat": 5001}, {"capacity_msat": 4000}):
        r = find_route(diamond(**over), nid("S"), nid("T"), 5000, 9)
        assert r.nodes == [nid("Y"), nid("T")], over
        assert r.fee_msat == 500
    assert find_route(diamond(htlc_maximum_msat=5000), nid("S"), nid("T"), 5000, 9).nodes[0] == nid("X")


def test_exclude_nodes_and_channels():
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, exclude={2}).nodes[0] == nid("Y")
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, exclude={nid("X")}).nodes[0] == nid("Y")
    with pytest.raises(NoRouteError):
        find_route(diamond(), nid("S"), nid("T"), 5000, 9, exclude={2, 4})


def test_no_route_is_refused():
    with pytest.raises(RefusedError, match="unknown node: the destination"):
        find_route(chain(3), nid("0"), nid("9"), 1000, 9)
    with pytest.raises(RefusedError, match="within 2 hops"):
        find_route(chain(5), nid("0"), nid("4"), 1000, 9, max_hops=2)
    assert len(find_route(chain(5), nid("0"), nid("4"), 1000, 9, max_hops=4).hops) == 4
    with pytest.raises(RefusedError):
        find_route(chain(3, hmax=10), nid("0"), nid("2"), 1000, 9)
    with pytest.raises(RefusedError):
        find_route(chain(3), nid("0"), nid("2"), 0, 9)


def test_our_channels_replace_gossip_for_the_first_hop():
    es = diamond()
    # our real balance towards X is too small: go through Y
    ours = [LocalChannel(nid("X"), 1, 4000), LocalChannel(nid("Y"), 3, 10**9)]
    r = find_route(es, nid("S"), nid("T"), 5000, 9, our_channels=ours)
    assert r.nodes[0] == nid("Y") and r.first_short_channel_id == 3
    # a private channel of ours (not in gossip) straight to T
    r = find_route(es, nid("S"), nid("T"), 5000, 9, our_channels=ours + [LocalChannel(nid("T"), 77, 6000)])
    assert r.nodes == [nid("T")] and r.first_short_channel_id == 77 and r.fee_msat == 0 and r.cltv_expiry == 9
    with pytest.raises(NoRouteError):
        find_route(es, nid("S"), nid("T"), 5000, 9, our_channels=[])


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 7))
    edges = []
    for k in range(draw(st.integers(1, 20))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a == b:
            continue
        hmin = draw(st.integers(0, 3000))
        edges.append(Edge(nid(str(a)), nid(str(b)), k, draw(st.integers(0, 2000)), draw(st.integers(0, 50_000)),
                          draw(st.integers(0, 200)), hmin, draw(st.none() | st.integers(hmin, 10**7)),
                          draw(st.none() | st.integers(0, 10**7)), draw(st.booleans())))
    return n, edges


@settings(max_examples=300, deadline=None)
@given(graphs(), st.integers(1, 5_000_000), st.integers(0, 100))
def test_property_route_respects_limits(g, amount, final):
    n, edges = g
    by_scid = {e.short_channel_id: e for e in edges}
    try:
        r = find_route(edges, nid("0"), nid(str(n - 1)), amount, final)
    except NoRouteError:
        return
    # walk the route: what each channel carries, and the fee each forwarding node charges
    carried = [r.amount_msat] + [h.amt_to_forward for h in r.hops[:-1]]
    cltvs = [r.cltv_expiry] + [h.outgoing_cltv_value for h in r.hops[:-1]]
    prev = nid("0")
    for i, scid in enumerate(r.channels):
        e = by_scid[scid]
        assert e.source == prev and e.destination == r.hops[i].node_id
        assert not e.disabled and e.htlc_minimum_msat <= carried[i]
        assert e.htlc_maximum_msat is None or carried[i] <= e.htlc_maximum_msat
        assert e.capacity_msat is None or carried[i] <= e.capacity_msat
        if i > 0:  # the node at prev forwards over e: it keeps exactly its fee
            assert carried[i - 1] - carried[i] == fee_msat(carried[i], e.fee_base_msat, e.fee_proportional_millionths)
            assert cltvs[i - 1] - cltvs[i] == e.cltv_expiry_delta
        prev = e.destination
    assert prev == nid(str(n - 1)) and len(set(r.nodes)) == len(r.nodes)
    assert carried[-1] == amount and r.hops[-1].amt_to_forward == amount
    assert r.fee_msat == r.amount_msat - amount >= 0


@pytest.mark.skipif(not SAMPLE.exists(), reason="no gossip_store sample")
def test_mainnet_sample_timing():
    from lncli.gossip.store import load_graph

    graph = load_graph(SAMPLE.read_bytes(), verify=False)
    idx = index_edges(graph_edges(graph))
    nodes = sorted(n for n, es in idx.items() if sum(not e.disabled for e in es) >= 2)
    assert len(nodes) > 10
    pairs = [(nodes[i], nodes[-1 - i]) for i in range(0, min(60, len(nodes) // 2), 3)]
    times, found = [], 0
    for s, t in pairs:
        t0 = time.perf_counter()
        try:
            r = find_route(idx, s, t, 100_000, 40)
            found += 1
            assert r.hops[-1].node_id == t
        except NoRouteError:
            pass
        times.append(time.perf_counter() - t0)
    print(f"\nmainnet sample: {len(graph.channels)} channels, {len(idx)} nodes; {found}/{len(pairs)} routes; "
          f"median find_route {statistics.median(times) * 1000:.2f} ms")
    assert found > 0


def test_our_channel_reaches_a_node_with_no_incoming_direction_in_the_graph():
    """The graph sets aside a direction whose source has no incoming direction (only a payer at
    that source could use it). A payer with a channel of its own to that source may use it:
    A -(ours)-> B -> C where the graph holds only B -> C (a private channel's route hint)."""
    from lncli.proto.routing import Edge, LocalChannel, find_route, index_edges

    a, b, c = (bytes([2]) + bytes([i]) * 32 for i in (1, 2, 3))
    edges = [Edge(b, c, 7 << 40, 1000, 1, 34, 1, None, None, False)]
    for graph in (edges, index_edges(edges)):
        r = find_route(graph, a, c, 20_000_000, 18, our_channels=[LocalChannel(b, 5 << 40, 10**9, 1)])
        assert [h.node_id for h in r.hops] == [b, c] and r.fee_msat == 1000 + 20
