"""Benchmark: payments per second over one direct channel between two lncli nodes on loopback.

    .venv/bin/python tests/bench/bench_payments.py [--payments N] [--runs R] [--inflight K]

Setup (not timed): two real node processes (``lncli node start --daemon``, default options:
the embedded chain is polled every 0.5 s) in temporary
datadirs, on a private embedded chain (temporary ``LNCLI_CHAINDIR``); the payer is funded,
connects, opens a 0.1 BTC channel, blocks are mined until both sides are NORMAL; the payee
creates every invoice up front (RPC ``invoice``).

Timed, per run:

* one at a time: the payer pays N invoices in sequence; each payment is timed around the
  node's RPC ``pay``, which returns once the payer's node holds the payee's
  ``update_fulfill_htlc`` with a preimage that hashes to the payment_hash (the node writes it with
  its next write; a crash in between gets the fulfill again at reestablish);
* ``K`` in flight (default 16): K threads, each with its own RPC connection, share the next N
  invoices.

The benchmark process calls the nodes with ``lncli.rpc.client.RpcClient`` directly (one unix
socket per client thread, reused for every call), not the ``lncli`` CLI, so the figures do not
include a Python process start-up per payment. Payments/s, p50 and p99 latency, and each node's
CPU time per payment (utime + stime from /proc/PID/stat over the timed window) are printed for
each mode; the figures are the medians over the runs (each run uses fresh invoices on the same
channel). Every node keeps its defaults: the uvloop event loop, commitment batching (``commit-delay`` 10 ms: the
commitment_signed that removes a settled HTLC, on either side, waits for the next payment's
update_add_htlc and goes out in the same commitment_signed: one commitment_signed and one
revoke_and_ack per side per payment), and durability: SQLite ``synchronous=FULL`` in WAL mode,
channel state and monitor updates on disk before any message that commits to them is sent (an
update_add_htlc alone commits nothing and goes ahead of its write).

Baseline: no other implementation runs here, so the published figures (Bottlepay's 2021 benchmark
of one-at-a-time payments over a direct channel) are printed beside ours as the named baseline:
Eclair 89/s, Core Lightning 61/s, LND 33/s. Target: at least 100 payments/s one at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lncli.rpc.client import RpcClient  # noqa: E402

BASELINE = {"Eclair": 89.0, "Core Lightning": 61.0, "LND": 33.0}  # payments/s, Bottlepay 2021
TARGET = 100.0
AMOUNT_MSAT = 1_000_000  # 1000 sat: above the dust limit, so every HTLC gets its output and HTLC signatures
CHANNEL_SAT = 10_000_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Node:
    """One node process; ``code`` is the checkout whose lncli it runs (this one by default)."""

    def __init__(self, root: Path, name: str, env: dict, code: Path = ROOT):
        self.dir = root / name
        self.dir.mkdir()
        self.code = code
        (self.dir / "lncli.conf").write_text("min-depth=1\n")
        self.env = env
        self.name = name
        seed = hashlib.sha256(b"bench payments " + name.encode()).hexdigest()
        info = self.cli("node", "start", "--daemon", "--listen", "127.0.0.1:0",
                        "--dev-seed", seed)
        self.id = info["node_id"]
        self.port = int(info["uris"][0].rsplit(":", 1)[1])
        self.netdir = self.dir / "regtest"
        self.pid = int((self.netdir / "node.lock").read_text().split()[0])
        self.rpc = RpcClient(self.netdir, self.dir, timeout=120)

    def cli(self, *args):
        p = subprocess.run([sys.executable, "-m", "lncli", "--datadir", str(self.dir), *args],
                           capture_output=True, text=True, cwd=self.code, env=self.env, timeout=120)
        if p.returncode:
            raise SystemExit(f"lncli {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def call(self, method, **params):
        return self.rpc.call(method, **params)

    def stop(self):
        self.rpc.close()
        subprocess.run([sys.executable, "-m", "lncli", "--datadir", str(self.dir), "node", "stop"],
                       capture_output=True, cwd=self.code, env=self.env, timeout=60)


def bench_env(chaindir: Path) -> dict:
    """This process's environment for node processes on their own embedded chain at ``chaindir``
    (no LNCLI_DATADIR or LNCLI_NETWORK from the caller's shell)."""
    env = dict(os.environ)
    env["LNCLI_CHAINDIR"] = str(chaindir)
    env.pop("LNCLI_DATADIR", None)
    env.pop("LNCLI_NETWORK", None)
    return env


def wait(pred, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def active(node: Node, peer: Node) -> bool:
    rows = [c for c in node.call("listchannels", peer=peer.id) if c["state"] != "CLOSED"]
    return bool(rows) and rows[0]["active"]


def settled(node: Node, peer: Node) -> bool:
    rows = [c for c in node.call("listchannels", peer=peer.id) if c["state"] != "CLOSED"]
    return bool(rows) and rows[0]["pending_htlcs"] == 0


def pct(sorted_values, q: float) -> float:
    """The q-quantile (nearest rank) of sorted values."""
    i = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def run_mode(payer: Node, payee: Node, invoices: list[str], inflight: int) -> dict:
    """Pay ``invoices`` with ``inflight`` concurrent clients; returns rate, p50, p99, CPU/payment."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(invoices)
    clients = [RpcClient(payer.netdir, payer.dir, timeout=120) for _ in range(inflight)]

    def worker(client: RpcClient):
        while True:
            with lock:
                bolt11 = next(it, None)
            if bolt11 is None:
                return
            t = time.perf_counter()
            try:
                p = client.call("pay", bolt11=bolt11)
                ok = p["status"] == "succeeded"
            except Exception as e:  # noqa: BLE001 - counted and reported
                ok, p = False, {"failure": str(e)}
            dt = time.perf_counter() - t
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    errors.append(str(p.get("failure")))

    cpu0 = (cpu_seconds(payer.pid), cpu_seconds(payee.pid))
    t0 = time.perf_counter()
    if inflight == 1:
        worker(clients[0])
    else:
        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - t0
    cpu1 = (cpu_seconds(payer.pid), cpu_seconds(payee.pid))
    for c in clients:
        c.close()
    if errors:
        raise SystemExit(f"{len(errors)} payments failed, e.g. {errors[0]}")
    latencies.sort()
    n = len(invoices)
    return {
        "rate": n / elapsed,
        "p50": pct(latencies, 0.50) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
        "cpu_payer": (cpu1[0] - cpu0[0]) / n * 1000,
        "cpu_payee": (cpu1[1] - cpu0[1]) / n * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=500, help="payments per mode and run (default 500)")
    ap.add_argument("--runs", type=int, default=3, help="runs; medians are printed (default 3)")
    ap.add_argument("--inflight", type=int, default=16, help="concurrent payments in the second mode (default 16)")
    args = ap.parse_args()
    n = args.payments
    with tempfile.TemporaryDirectory(prefix="lncli-bench-pay-") as tmp:
        root = Path(tmp)
        env = bench_env(root / "chain")
        nodes: list[Node] = []
        try:
            a = Node(root, "payer", env)
            nodes.append(a)
            b = Node(root, "payee", env)
            nodes.append(b)
            a.cli("fund", "0.2btc")
            a.cli("connect", f"{b.id}@127.0.0.1:{b.port}", "--persist")
            a.cli("open", b.id, str(CHANNEL_SAT), "--no-wait")
            a.cli("mine", "1")
            wait(lambda: active(a, b) and active(b, a), what="the channel to be NORMAL on both sides")
            # warm up (imports, caches, first commitments)
            for inv in [b.call("invoice", amount_msat=AMOUNT_MSAT, description="warm-up")["bolt11"] for _ in range(20)]:
                assert a.call("pay", bolt11=inv)["status"] == "succeeded"
            results: dict[int, list[dict]] = {1: [], args.inflight: []}
            for r in range(args.runs):
                for k in (1, args.inflight):
                    invoices = [b.call("invoice", amount_msat=AMOUNT_MSAT, description=f"bench {r} {k} {i}")["bolt11"]
                                for i in range(n)]
                    wait(lambda: settled(a, b) and settled(b, a), what="the channel to settle")
                    res = run_mode(a, b, invoices, k)
                    results[k].append(res)
                    print(f"  run {r + 1}/{args.runs}, {k:>2} in flight: {res['rate']:7.1f} payments/s  "
                          f"p50 {res['p50']:6.2f} ms  p99 {res['p99']:6.2f} ms  CPU/payment payer "
                          f"{res['cpu_payer']:5.2f} ms, payee {res['cpu_payee']:5.2f} ms", file=sys.stderr, flush=True)
            wait(lambda: settled(a, b) and settled(b, a), what="the channel to settle")
            ca = [c for c in a.call("listchannels", peer=b.id) if c["state"] != "CLOSED"][0]
            paid = (20 + 2 * n * args.runs) * AMOUNT_MSAT
            assert ca["remote_balance_msat"] == paid, (ca["remote_balance_msat"], paid)
        finally:
            for node in nodes:
                node.stop()

    print(f"payments over one direct channel, two lncli node processes on loopback, {n} payments "
          f"per mode, median of {args.runs} runs")
    print("(timed around the payer node's RPC pay, called through lncli.rpc.client from this process: "
          "no CLI start-up)")
    for k in (1, args.inflight):
        rs = results[k]
        med = {key: statistics.median(x[key] for x in rs) for key in rs[0]}
        label = "one at a time" if k == 1 else f"{k} in flight"
        print(f"\n{label}:")
        print(f"  lncli            {med['rate']:7.1f} payments/s   p50 {med['p50']:6.2f} ms   p99 {med['p99']:6.2f} ms")
        print(f"  CPU per payment  payer {med['cpu_payer']:.2f} ms, payee {med['cpu_payee']:.2f} ms")
        for name, rate in BASELINE.items():
            print(f"  {name:<16} {rate:7.1f} payments/s   (published, Bottlepay 2021)   lncli/{name} = {med['rate'] / rate:.2f}x")
        if k == 1:
            verdict = "met" if med["rate"] >= TARGET else "NOT met"
            print(f"  target >= {TARGET:.0f} payments/s one at a time: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
