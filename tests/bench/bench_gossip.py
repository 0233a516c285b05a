"""Benchmark: reading CLN gossip_store files, records per second, wall time.

Run from the repo root:  .venv/bin/python tests/bench/bench_gossip.py

Cases:
1. the mainnet-derived gossip_store-sample (1 MB, 5,225 records): every record read (CRC32C
   checked) and decoded, without signature checks (its signatures are zeroed);
2. the same with signature checks on (they all fail fast here: zero signatures);
3. the regtest store (25 records, 19 signed messages, 31 real signatures) with and without
   signature checks: the per-record cost of real verification;
4. BOLT 7 message decoding alone (the sample's 3,918 messages) against pyln-proto's schema
   decoder (``pyln.proto.message``, fed the same peer_wire.csv lines). pyln-proto has no
   gossip_store reader, so cases 1-3 have no baseline.

Each figure is the median of several runs (time.perf_counter).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyln.proto.message import Message as PylnMessage  # noqa: E402
from pyln.proto.message import MessageNamespace  # noqa: E402

from lncli.gossip import store  # noqa: E402
from lncli.proto import gossip  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SCHEMA = Path(__file__).resolve().parents[2] / "lncli" / "proto" / "schema" / "peer_wire.csv"


def median_time(fn, runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def read_all(data: bytes, verify: bool) -> int:
    n = 0
    for _ in store.dump_records(data, include_deleted=True, verify=verify):
        n += 1
    return n


def main() -> int:
    sample = (DATA / "gossip_store-sample").read_bytes()
    regtest = (DATA / "cln-regtest-gossip_store").read_bytes()
    n_sample = read_all(sample, False)
    n_regtest = read_all(regtest, True)

    print("gossip_store reading (records decoded to JSON-ready dicts, CRC32C checked), median wall time")
    for label, data, n, verify, runs in (
        ("sample, --no-verify", sample, n_sample, False, 7),
        ("sample, verify (zeroed sigs)", sample, n_sample, True, 7),
        ("regtest, --no-verify", regtest, n_regtest, False, 201),
        ("regtest, verify (31 real sigs)", regtest, n_regtest, True, 51),
    ):
        t = median_time(lambda: read_all(data, verify), runs)
        print(f"  {label:32s} {n / t:10,.0f} records/s   ({t * 1e3:8.2f} ms for {n} records)")

    t = median_time(lambda: store.load_graph(sample, verify=False), 7)
    print(f"  {'sample graph, --no-verify':32s} {n_sample / t:10,.0f} records/s   ({t * 1e3:8.2f} ms)")
    t = median_time(lambda: store.crc32c(sample), 7)
    print(f"  {'CRC32C alone':32s} {len(sample) / t / 1e6:10,.2f} MB/s")

    # message decoding alone, against pyln-proto
    msgs = [r.message for r in store.iter_records(sample) if r.type in (256, 257, 258)]
    decoders = {256: gossip.ChannelAnnouncement.from_bytes, 257: gossip.NodeAnnouncement.from_bytes, 258: gossip.ChannelUpdate.from_bytes}
    names = (",channel_announcement,", ",node_announcement,", ",channel_update,")
    lines = [ln for ln in SCHEMA.read_text().splitlines() if ln.startswith("msg") and any(n in ln + "," for n in names)]
    ns = MessageNamespace(csv_lines=lines)

    def ours():
        for m in msgs:
            decoders[m[0] << 8 | m[1]](m)

    def theirs():
        for m in msgs:
            PylnMessage.read(ns, io.BytesIO(m))

    a = median_time(ours, 7)
    b = median_time(theirs, 3)
    print(f"BOLT 7 message decoding, {len(msgs)} messages of the sample, median wall time")
    print(f"  lncli        {len(msgs) / a:10,.0f} msgs/s   ({a * 1e3:8.2f} ms)")
    print(f"  pyln-proto   {len(msgs) / b:10,.0f} msgs/s   ({b * 1e3:8.2f} ms)")
    print(f"  ratio        {b / a:10.1f} x faster than pyln-proto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
