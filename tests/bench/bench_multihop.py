"""Benchmark: multi-hop payments per second, A -> B -> C, three lncli nodes on loopback.

    .venv/bin/python tests/bench/bench_multihop.py [--payments N] [--runs R] [--inflight K]

Setup (not timed): three real node processes (``lncli node start --daemon``, default options) on
a private embedded chain. A and B are funded; A opens a 0.1 BTC channel to B and B one to C; six
blocks are mined so that both channels are announced; A waits until its gossip graph holds B's
policy for B -> C. C creates every invoice up front with no route hints, so A finds the route in
its gossip graph and pays B's fee. B forwards each HTLC (BOLT 4 peel, update_add_htlc on B -> C,
the fulfill passed back upstream).

Timed, per run, as in bench_payments.py: one at a time, then ``K`` in flight (default 16),
around A's RPC ``pay`` (returns when A holds the preimage).

Baseline, measured in the same run: the same A paying B directly over the A -> B channel (one hop,
B's own invoices), in the same modes; the ratio multi-hop / direct is printed. Each node's CPU
time per payment is printed too (B's is the cost of forwarding).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_payments import Node, active, bench_env, cpu_seconds, run_mode, settled, wait  # noqa: E402

AMOUNT_MSAT = 1_000_000
CHANNEL_SAT = 10_000_000


def _has_policy(node: Node, scid: str, source: str) -> bool:
    return any(c["short_channel_id"] == scid and c["source"] == source for c in node.call("graph")["channels"])


def _scid(node: Node, peer: Node) -> str | None:
    rows = [c for c in node.call("listchannels", peer=peer.id) if c["state"] != "CLOSED"]
    return rows[0]["short_channel_id"] if rows else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=300, help="payments per mode and run (default 300)")
    ap.add_argument("--runs", type=int, default=3, help="runs; medians are printed (default 3)")
    ap.add_argument("--inflight", type=int, default=16, help="concurrent payments in the second mode (default 16)")
    args = ap.parse_args()
    n, modes = args.payments, (1, args.inflight)
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="lncli-bench-multihop-") as tmp:
        root = Path(tmp)
        env = bench_env(root / "chain")
        nodes: list[Node] = []
        try:
            a, b, c = (Node(root, name, env) for name in ("alice", "bob", "carol"))
            nodes += [a, b, c]
            a.cli("fund", "0.2btc")
            b.cli("fund", "0.2btc")
            a.cli("connect", f"{b.id}@127.0.0.1:{b.port}", "--persist")
            b.cli("connect", f"{c.id}@127.0.0.1:{c.port}", "--persist")
            a.cli("open", b.id, str(CHANNEL_SAT), "--no-wait")
            a.cli("mine", "1")
            wait(lambda: active(a, b) and active(b, a), what="A-B NORMAL")
            b.cli("open", c.id, str(CHANNEL_SAT), "--no-wait")
            a.cli("mine", "6")
            wait(lambda: active(b, c) and active(c, b), what="B-C NORMAL")
            bc = _scid(b, c)
            wait(lambda: _has_policy(a, bc, b.id), timeout=120, what="A's graph to hold B's policy for B -> C")
            for inv in [c.call("invoice", amount_msat=AMOUNT_MSAT, description="warm-up", route_hints=False)["bolt11"]
                        for _ in range(20)]:
                assert a.call("pay", bolt11=inv)["status"] == "succeeded"
            for r in range(args.runs):
                for label, payee in (("direct A->B", b), ("A->B->C", c)):
                    for k in modes:
                        invoices = [payee.call("invoice", amount_msat=AMOUNT_MSAT, description=f"bench {label} {r} {k} {i}",
                                               route_hints=False)["bolt11"] for i in range(n)]
                        wait(lambda: settled(a, b) and settled(b, a) and settled(b, c), what="the channels to settle")
                        cpu_b = cpu_seconds(b.pid)
                        res = run_mode(a, payee, invoices, k)
                        res["cpu_forwarder"] = (cpu_seconds(b.pid) - cpu_b) / n * 1000
                        results.setdefault((label, k), []).append(res)
                        print(f"  run {r + 1}/{args.runs} {label:<12} {k:>2} in flight: {res['rate']:7.1f} payments/s  "
                              f"p50 {res['p50']:6.2f} ms  p99 {res['p99']:6.2f} ms", file=sys.stderr, flush=True)
        finally:
            for node in nodes:
                node.stop()

    print(f"multi-hop payments A->B->C against direct A->B, three lncli node processes on loopback, {n} payments "
          f"per mode, median of {args.runs} runs (timed around A's RPC pay)")
    for k in modes:
        print(f"\n{'one at a time' if k == 1 else f'{k} in flight'}:")
        med = {}
        for label in ("direct A->B", "A->B->C"):
            rs = results[(label, k)]
            med[label] = {key: statistics.median(x[key] for x in rs) for key in rs[0]}
            m = med[label]
            print(f"  {label:<12} {m['rate']:7.1f} payments/s   p50 {m['p50']:6.2f} ms   p99 {m['p99']:6.2f} ms   "
                  f"CPU/payment A {m['cpu_payer']:.2f} ms, B {m['cpu_forwarder']:.2f} ms")
        print(f"  ratio A->B->C / direct: {med['A->B->C']['rate'] / med['direct A->B']['rate']:.2f}x payments/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
