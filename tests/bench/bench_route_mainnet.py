"""Route queries on the full mainnet graph (17,324 nodes, 50,808 channels: Core Lightning's
snapshot in ../shared/data/mainnet-2026-02-03), against a baseline in the same run.

Run: .venv/bin/python tests/bench/bench_route_mainnet.py [--pairs 200] [--seed 1] [--json]

1. ``tests/bench/gossmap_decompress.py`` (in a child process) turns the snapshot into a
   gossip_store in a temp file; its first 1,000,443 bytes are checked against the shared
   ``gossip_store-sample``;
2. graph load: ``lncli.gossip.store.load_routing_graph`` reads that file through the normal
   ``StoreReader`` (CRCs checked); the time, and the process's resident memory after it
   (ru_maxrss before the baseline loads its own graph);
3. ``--pairs`` random (seeded) reachable pairs (a pair counts when our search finds a route at
   that amount; unreachable draws are skipped and counted), at 100,000 and 10,000,000 msat:
   ``lncli.proto.routing.find_route`` with a fresh ``Scorer`` view (the cost ``lncli route``
   uses), p50/p99;
4. baseline: the plain Dijkstra from main before this change (``find_route`` over
   ``index_edges(graph_edges(load_graph(...)))``, a frozen ``Edge`` per direction, fees and
   risk only), kept verbatim below as ``baseline_find_route``, on the same pairs; ratios.

Targets (issue 12): p50 <= 40 ms, p99 <= 120 ms, load <= 2 s, RSS <= 150 MB. CLN askrene's
getroutes on the same graph: p50 47-58 ms (100k msat), 64-79 ms (10M msat), p99 65-150 ms.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lncli.gossip.store import load_graph, load_routing_graph  # noqa: E402
from lncli.proto.gossip import fee_msat  # noqa: E402
from lncli.proto.liquidity import Scorer  # noqa: E402
from lncli.proto.routing import NoRouteError, find_route, graph_edges, index_edges  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SNAPSHOT = DATA / "mainnet-2026-02-03" / "gossip-store-2026-02-03.compressed"
SAMPLE = DATA / "gossip_store-sample"
AMOUNTS = (100_000, 10_000_000)
FINAL_CLTV = 18


def baseline_find_route(idx, source, target, amount_msat, final_cltv_delta, max_hops=20, max_cltv_delta=2016):
    """main's find_route before the RoutingGraph (its search loop, no exclusions or our channels):
    the cost is fees plus 10%/year lock-up risk; returns the route's fee or None."""
    best = {target: (0, 0, amount_msat, final_cltv_delta)}
    heap = [(0, 0, target)]
    done = set()
    while heap:
        cost, hops, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        if v == source:
            break
        if hops >= max_hops:
            continue
        _, _, amt, cltv = best[v]
        for e in idx.get(v, ()):
            u = e.source
            if u in done or e.disabled or amt < e.htlc_minimum_msat:
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
            u_cost = cost + fee + amt * delta * 10 // (100 * 52_596)
            old = best.get(u)
            if old is None or (u_cost, hops + 1) < (old[0], old[1]):
                best[u] = (u_cost, hops + 1, u_amt, u_cltv)
                heapq.heappush(heap, (u_cost, hops + 1, u))
    return None if source not in done else best[source][2] - amount_msat


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.NamedTemporaryFile(prefix="mainnet-", suffix=".gossip_store", delete=False)
    tmp.close()
    t0 = time.perf_counter()
    # in a child process, so that this one's peak RSS is the graph's alone
    subprocess.run([sys.executable, str(Path(__file__).with_name("gossmap_decompress.py")), str(SNAPSHOT), tmp.name],
                   check=True)
    convert_s = time.perf_counter() - t0
    sample = SAMPLE.read_bytes()
    with open(tmp.name, "rb") as f:
        assert f.read(len(sample)) == sample, "the decompressed store does not start with gossip_store-sample"
    del sample
    out: dict = {"store_bytes": Path(tmp.name).stat().st_size, "convert_s": round(convert_s, 2)}

    rss0 = rss_mb()
    t0 = time.perf_counter()
    with open(tmp.name, "rb", buffering=1 << 20) as f:
        g = load_routing_graph(f)
    out["load_s"] = round(time.perf_counter() - t0, 3)
    out["rss_mb"] = round(rss_mb(), 1)
    out["rss_before_load_mb"] = round(rss0, 1)
    out["nodes_with_channels"], out["channels"], out["directions"] = len(g), g.channel_count, g.edge_count

    rng = random.Random(args.seed)
    ids = g.node_ids
    view = Scorer().view(0)
    pairs: dict[int, list] = {}
    times: dict[int, list[float]] = {}
    for amt in AMOUNTS:
        pairs[amt], times[amt] = [], []
        drawn = 0
        while len(pairs[amt]) < args.pairs:
            s, t = rng.sample(ids, 2)
            drawn += 1
            t0 = time.perf_counter()
            try:
                r = find_route(g, s, t, amt, FINAL_CLTV, scorer=view)
            except NoRouteError:
                continue
            times[amt].append(time.perf_counter() - t0)
            pairs[amt].append((s, t, r))
        out[f"drawn_{amt}"] = drawn

    plain: dict[int, list[float]] = {}
    for amt in AMOUNTS:
        plain[amt] = []
        for s, t, _ in pairs[amt]:
            t0 = time.perf_counter()
            try:
                find_route(g, s, t, amt, FINAL_CLTV)
            except NoRouteError:  # the label-setting approximation (see routing's doc) can miss
                pass
            plain[amt].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    idx = index_edges(graph_edges(load_graph(Path(tmp.name).read_bytes(), verify=False)))
    out["baseline_load_s"] = round(time.perf_counter() - t0, 3)
    out["baseline_rss_mb"] = round(rss_mb(), 1)
    for amt in AMOUNTS:
        base_t, fee_ratio = [], []
        for s, t, r in pairs[amt]:
            t0 = time.perf_counter()
            fee = baseline_find_route(idx, s, t, amt, FINAL_CLTV)
            base_t.append(time.perf_counter() - t0)
            if fee is not None and fee > 0:
                fee_ratio.append(r.fee_msat / fee)
        ours = times[amt]
        p50, p99, b50, b99 = (percentile(ours, 0.5), percentile(ours, 0.99), percentile(base_t, 0.5),
                              percentile(base_t, 0.99))
        out[str(amt)] = {
            "pairs": len(ours), "p50_ms": round(p50 * 1e3, 2), "p99_ms": round(p99 * 1e3, 2),
            "max_ms": round(max(ours) * 1e3, 2), "baseline_p50_ms": round(b50 * 1e3, 2),
            "baseline_p99_ms": round(b99 * 1e3, 2), "p50_speedup": round(b50 / p50, 2),
            "p99_speedup": round(b99 / p99, 2),
            "no_scorer_p50_ms": round(percentile(plain[amt], 0.5) * 1e3, 2),
            "no_scorer_p99_ms": round(percentile(plain[amt], 0.99) * 1e3, 2),
            "hops_median": statistics.median(len(r.hops) for _, _, r in pairs[amt]),
            "fee_vs_baseline_median": round(statistics.median(fee_ratio), 3) if fee_ratio else None,
        }
    Path(tmp.name).unlink()
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"store: {out['store_bytes']:,} bytes (converted in {out['convert_s']} s); graph: {out['nodes_with_channels']} "
          f"nodes with usable channels, {out['channels']} channels, {out['directions']} usable directions")
    print(f"load_routing_graph: {out['load_s']} s, RSS {out['rss_mb']} MB (baseline load_graph+index: "
          f"{out['baseline_load_s']} s, RSS then {out['baseline_rss_mb']} MB)")
    for amt in AMOUNTS:
        o = out[str(amt)]
        print(f"{amt:>10} msat: {o['pairs']} reachable pairs ({out[f'drawn_{amt}']} drawn): p50 {o['p50_ms']} ms, "
              f"p99 {o['p99_ms']} ms, max {o['max_ms']} ms | baseline (main's Dijkstra) p50 {o['baseline_p50_ms']} ms, "
              f"p99 {o['baseline_p99_ms']} ms | x{o['p50_speedup']} p50, x{o['p99_speedup']} p99 | ours without the "
              f"scorer p50 {o['no_scorer_p50_ms']} ms, p99 {o['no_scorer_p99_ms']} ms; "
              f"median hops {o['hops_median']}, fee/baseline fee median {o['fee_vs_baseline_median']}")


if __name__ == "__main__":
    main()
