"""Benchmark: broadcast 1,000 P2WPKH spends into the embedded chain's mempool and mine them.

Run: .venv/bin/python tests/bench/bench_chain.py [runs]

Setup (not timed): a fresh chain, 101 blocks, one fan-out tx splitting a mature coinbase into
1,000 P2WPKH outputs, mined; then 1,000 signed one-input spends. Timed: broadcasting all of
them (full validation: inputs, locks, fees, scripts with ECDSA) and mining the block. There is
no pyln equivalent, so no baseline; target <= 2 s in total.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lncli.bitcoin.tx import TxOut  # noqa: E402
from lncli.chain.embedded import EmbeddedChain  # noqa: E402
from tests.chain.test_contract import Key, coinbase_outpoints, p2wpkh_spend  # noqa: E402

N = 1000


def setup(path: Path):
    chain = EmbeddedChain(path)
    key, dest = Key(3), Key(4)
    chain.mine(101, key.spk)
    [(op, value)] = coinbase_outpoints(chain, key, 1, 1)
    each = (value - 100_000) // N
    fan = p2wpkh_spend(key, [(op, value)], [TxOut(each, key.spk) for _ in range(N)])
    chain.broadcast(fan)
    chain.mine(1)
    spends = [p2wpkh_spend(key, [(fan.outpoint(i), each)], [TxOut(each - 200, dest.spk)]) for i in range(N)]
    return chain, spends


def run_once() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        chain, spends = setup(Path(d))
        t0 = time.perf_counter()
        for tx in spends:
            chain.broadcast(tx)
        t1 = time.perf_counter()
        [h] = chain.mine(1)
        t2 = time.perf_counter()
        assert len(chain.block(h).txs) == N + 1
        chain.close()
        return t1 - t0, t2 - t1


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = [run_once() for _ in range(runs)]
    bcast = statistics.median(r[0] for r in results)
    mine = statistics.median(r[1] for r in results)
    total = statistics.median(r[0] + r[1] for r in results)
    print(f"embedded chain, {N} P2WPKH spends, median of {runs} runs:")
    print(f"  broadcast all      {bcast * 1000:8.1f} ms  ({bcast / N * 1e6:6.1f} us per input)")
    print(f"  mine the block     {mine * 1000:8.1f} ms  ({mine / N * 1e6:6.1f} us per input)")
    print(f"  total              {total * 1000:8.1f} ms  (target <= 2000 ms: {'ok' if total <= 2.0 else 'MISSED'})")
    print("  baseline: none (pyln-proto has no chain); ratio n/a")


if __name__ == "__main__":
    main()
