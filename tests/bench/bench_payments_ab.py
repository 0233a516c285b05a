"""Benchmark, A/B: payments/s one at a time over one channel, this checkout against another revision,
interleaved so that the host's drift (±20% within minutes here) hits both alike.

    .venv/bin/python tests/bench/bench_payments_ab.py [--base REV] [--rounds 20] [--batch 60]

``REV`` (a commit, tag or branch of this repository) is checked out with ``git worktree add
--detach`` into a temporary folder; its node processes run that tree's lncli (``PYTHONPATH`` and
the working directory point there), with this venv's packages. Each side gets two node processes
on its own embedded chain, set up exactly as in bench_payments.py (0.1 BTC channel, default
options, 20 warm-up payments). Then, for each round, a batch of one-at-a-time payments on the base
pair and a batch on the new pair, the order alternating from round to round. Printed: each round's
two rates, the median of each side, the median of the per-round ratios (new/base) and in how many
rounds the new code was faster. The baseline is the base revision, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_payments import AMOUNT_MSAT, CHANNEL_SAT, ROOT, Node, active, bench_env, run_mode, settled, wait  # noqa: E402


def pair(root: Path, label: str, code: Path) -> tuple[Node, Node]:
    env = bench_env(root / f"chain-{label}")
    env["PYTHONPATH"] = str(code)
    a = Node(root, f"payer-{label}", env, code)
    b = Node(root, f"payee-{label}", env, code)
    a.cli("fund", "0.2btc")
    a.cli("connect", f"{b.id}@127.0.0.1:{b.port}", "--persist")
    a.cli("open", b.id, str(CHANNEL_SAT), "--no-wait")
    a.cli("mine", "1")
    wait(lambda: active(a, b) and active(b, a), what=f"the {label} channel to be NORMAL")
    for _ in range(20):
        inv = b.call("invoice", amount_msat=AMOUNT_MSAT, description="warm-up")["bolt11"]
        assert a.call("pay", bolt11=inv)["status"] == "succeeded"
    return a, b


def batch(a: Node, b: Node, n: int, tag: str) -> float:
    invoices = [b.call("invoice", amount_msat=AMOUNT_MSAT, description=f"{tag} {i}")["bolt11"] for i in range(n)]
    wait(lambda: settled(a, b) and settled(b, a), what="the channel to settle")
    return run_mode(a, b, invoices, 1)["rate"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1", help="the revision to compare with (default HEAD~1; e.g. a commit or main~5)")
    ap.add_argument("--rounds", type=int, default=20, help="rounds (default 20)")
    ap.add_argument("--batch", type=int, default=60, help="payments per side and round (default 60)")
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="lncli-bench-ab-") as tmp:
        root = Path(tmp)
        base_tree = root / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), rev], cwd=ROOT, check=True)
        nodes: list[Node] = []
        try:
            sides = {}
            for label, code in (("base", base_tree), ("new", ROOT)):
                sides[label] = pair(root, label, code)
                nodes.extend(sides[label])
            rates: dict[str, list[float]] = {"base": [], "new": []}
            for r in range(args.rounds):
                order = ("base", "new") if r % 2 == 0 else ("new", "base")
                for label in order:
                    rates[label].append(batch(*sides[label], args.batch, f"ab {r}"))
                print(f"  round {r + 1:>2}/{args.rounds}: base {rates['base'][-1]:6.1f}/s  new {rates['new'][-1]:6.1f}/s",
                      file=sys.stderr, flush=True)
        finally:
            for node in nodes:
                node.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    ratios = [n / b for n, b in zip(rates["new"], rates["base"], strict=True)]
    faster = sum(r > 1 for r in ratios)
    print(f"payments/s one at a time over one channel, interleaved: {args.rounds} rounds of {args.batch} payments a side")
    print(f"  base {rev:<10} median {statistics.median(rates['base']):7.1f} payments/s")
    print(f"  new  {head:<10} median {statistics.median(rates['new']):7.1f} payments/s")
    print(f"  new/base: median of the per-round ratios {statistics.median(ratios):.3f}x; "
          f"new faster in {faster} of {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
