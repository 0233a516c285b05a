"""Benchmark: BOLT 11 invoice decoding, lncli vs pyln-proto (pyln.proto.invoice), wall time.

Run from the repo root:  .venv/bin/python tests/bench/bench_invoice.py

Case: decode of the spec's "$3 coffee" example (lnbc2500u..., no n field), including the bech32
checksum, every field and public-key recovery from the signature. pyln's decoder cannot read
invoices with an ``n`` field in this version, so the comparison uses this example.
Each figure is the median of many batches (time.perf_counter per batch / calls per batch); the two
decoders alternate batch by batch so that a noisy neighbour slows both alike.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyln.proto.invoice import Invoice as PylnInvoice  # noqa: E402

from lncli.proto import invoice as bolt11  # noqa: E402
from tests.conftest import load_vector  # noqa: E402

TARGET_MS = 0.3


def coffee_invoice() -> str:
    vec = load_vector("bolt11_invoices.json")
    return next(v["invoice"] for v in vec["valid"] if v["title"].startswith("Please send $3 for a cup of coffee"))


def timed_batches(fns, per_batch: list[int], batches: int) -> list[list[float]]:
    """Milliseconds per call for each fn, one sample per batch, the fns interleaved."""
    for fn, n in zip(fns, per_batch):  # warm up
        for _ in range(n):
            fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(batches):
            for fn, n, out in zip(fns, per_batch, samples):
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                out.append((time.perf_counter() - t0) / n * 1e3)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def main() -> int:
    text = coffee_invoice()
    ours = bolt11.decode(text)
    theirs = PylnInvoice.decode(text)
    assert theirs.pubkey.format() == ours.payee and theirs.paymenthash == ours.payment_hash

    lncli_ms, pyln_ms = timed_batches(
        [lambda: bolt11.decode(text), lambda: PylnInvoice.decode(text)], per_batch=[100, 10], batches=41
    )
    ours_med, theirs_med = statistics.median(lncli_ms), statistics.median(pyln_ms)
    print(f"BOLT 11 decode of the '$3 coffee' example ({len(text)} chars), median of {len(lncli_ms)} batches")
    print(f"  lncli        {ours_med:8.4f} ms   (target <= {TARGET_MS} ms: {'ok' if ours_med <= TARGET_MS else 'MISSED'})")
    print(f"  pyln-proto   {theirs_med:8.4f} ms")
    print(f"  ratio        {theirs_med / ours_med:8.1f} x faster than pyln-proto")
    return 0 if ours_med <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
