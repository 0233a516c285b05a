"""Median find_route time on the mainnet gossip_store sample (no pyln-proto baseline: pyln-proto
has no pathfinding). Run: .venv/bin/python tests/bench/bench_routing.py"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lncli.gossip.store import load_graph  # noqa: E402
from lncli.proto.routing import NoRouteError, find_route, graph_edges, index_edges  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SAMPLE = DATA / "gossip_store-sample"


def main() -> None:
    graph = load_graph(SAMPLE.read_bytes(), verify=False)
    t0 = time.perf_counter()
    idx = index_edges(graph_edges(graph))
    print(f"graph: {len(graph.channels)} channels, {len(idx)} nodes with incoming edges; "
          f"index built in {(time.perf_counter() - t0) * 1000:.2f} ms")
    nodes = sorted(n for n, es in idx.items() if sum(not e.disabled for e in es) >= 2)
    pairs = [(nodes[i], nodes[-1 - i]) for i in range(len(nodes) // 2)][:100]
    times, found = [], 0
    for s, t in pairs:
        for _ in range(5):
            t0 = time.perf_counter()
            try:
                find_route(idx, s, t, 100_000, 40)
                ok = True
            except NoRouteError:
                ok = False
            times.append(time.perf_counter() - t0)
        found += ok
    print(f"find_route: {len(pairs)} pairs x5, {found} routed; median {statistics.median(times) * 1e3:.3f} ms, "
          f"max {max(times) * 1e3:.3f} ms (lncli only: no baseline)")


if __name__ == "__main__":
    main()
