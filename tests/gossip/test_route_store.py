"""lncli.gossip.store.load_routing_graph: the same graph as load_graph then from_graph, on CLN's
regtest store and the mainnet sample; and the bench's decompressor against the sample, byte for
byte."""

from __future__ import annotations

import sys

import pytest

from lncli.gossip.store import load_graph, load_routing_graph
from lncli.proto.route_graph import from_graph
from tests.conftest import DATA, ROOT

SNAPSHOT = DATA / "mainnet-2026-02-03" / "gossip-store-2026-02-03.compressed"


def _edges(g):
    return sorted((g.node_ids[e[0]], g.node_ids[v], *e[1:]) for v in range(len(g)) for e in g.edges_into(v))


@pytest.mark.parametrize("name", ["cln-regtest-gossip_store", "gossip_store-sample"])
def test_same_graph_as_the_full_reader(name):
    data = (DATA / name).read_bytes()
    fast = load_routing_graph(data)
    full = from_graph(load_graph(data, verify=name.startswith("cln")))
    assert _edges(fast) == _edges(full) and fast.channel_count == full.channel_count
    assert fast.edge_count == full.edge_count > 0


def test_regtest_store_leaves_out_the_dying_channel():
    g = load_routing_graph((DATA / "cln-regtest-gossip_store").read_bytes())
    # 103x1x0 is dying: 3 live channels, both directions of each enabled
    assert g.channel_count == 3 and g.edge_count == 6
    assert all(k >> 1 != (103 << 40 | 1 << 16) for v in range(len(g)) for k in (e[1] for e in g.edges_into(v)))


@pytest.mark.skipif(not SNAPSHOT.exists(), reason="no mainnet snapshot")
def test_decompressed_snapshot_starts_with_the_sample():
    sys.path.insert(0, str(ROOT))
    from tests.bench.gossmap_decompress import decompress

    out = decompress(SNAPSHOT.read_bytes())
    sample = (DATA / "gossip_store-sample").read_bytes()
    assert len(out) == 38_918_975 and out[: len(sample)] == sample
