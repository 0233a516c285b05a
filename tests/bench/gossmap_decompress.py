"""Core Lightning's compressed gossip snapshot (``GOSSMAP_COMPRESSv1``) turned back into a
gossip_store, as CLN v26.06.6's ``devtools/gossmap-compress decompress`` writes it (the layout is
described in ../shared/data/README.md; the output's first 1,000,443 bytes are the shared
``gossip_store-sample``, byte for byte, which ``tests/bench/test_gossmap_decompress.py`` checks).

    python tests/bench/gossmap_decompress.py COMPRESSED OUT [--node-map MAP.xz]

``decompress(data, node_ids=None)`` returns the store's bytes. Node *i*'s key is the public key of
the secret ``i`` (8 bytes little-endian) followed by 24 bytes of 0x01, unless ``node_ids`` gives
its real id (the node-map file's ids, which ``read_node_map`` reads). The records:

- the version byte 16, then a ``gossip_store_uuid`` record (all-zero uuid);
- per channel: ``channel_announcement`` (signatures, chain_hash zero; no features; the node ids
  in key order; both bitcoin keys the first end's key; scid block = channel index + first end's
  index, tx = second end's index, output = channel index & 0xffff), its ``channel_amount``, and
  one ``channel_update`` per direction (timestamp 0, message_flags 1, the disabled bit);
- every header: flags COMPLETED, timestamp 0, CRC32C from 0.

The decompressor's quirk is kept: an htlc_max of 0 (= capacity) or 1 (= 99% capacity) is written
as the capacity in *satoshis* (times 0.99, truncated, for 1).
"""

from __future__ import annotations

import gzip
import lzma
import struct
import sys
from pathlib import Path

from coincurve import PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lncli.gossip.store import COMPLETED, crc32c  # noqa: E402

HEADER = b"GOSSMAP_COMPRESSv1\0"
VERSION = 16


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.off = data, 0

    def bigsize(self) -> int:
        d, o = self.data, self.off
        b = d[o]
        if b < 0xFD:
            self.off = o + 1
            return b
        n = {0xFD: 2, 0xFE: 4, 0xFF: 8}[b]
        self.off = o + 1 + n
        return int.from_bytes(d[o + 1:o + 1 + n], "big")

    def many(self, n: int) -> list[int]:
        return [self.bigsize() for _ in range(n)]

    def table(self, n: int) -> list[int]:
        template = self.many(self.bigsize())
        return [template[i] for i in self.many(n)]


def synthetic_key(i: int) -> bytes:
    return PublicKey.from_secret(i.to_bytes(8, "little") + b"\x01" * 24).format()


def read_node_map(path: Path) -> list[bytes]:
    """The real node ids of a ``--output-node-map`` file (xz or plain), by index."""
    raw = path.read_bytes()
    text = (lzma.decompress(raw) if path.suffix == ".xz" else raw).decode()
    return [bytes.fromhex(line.split(":", 2)[1]) for line in text.splitlines() if line]


def _record(msg: bytes) -> bytes:
    return struct.pack(">HHII", COMPLETED, len(msg), crc32c(msg, 0), 0) + msg


def decompress(data: bytes, node_ids: list[bytes] | None = None) -> bytes:
    """The gossip_store of a ``GOSSMAP_COMPRESSv1`` snapshot (gzip-compressed or not)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if not data.startswith(HEADER):
        raise ValueError("not a GOSSMAP_COMPRESSv1 file")
    r = _Reader(data)
    r.off = len(HEADER)
    n = r.bigsize()
    end1, end2 = r.many(n), r.many(n)
    disabled = set()
    while (x := r.bigsize()) < 2 * n:
        disabled.add(x)
    caps = r.table(n)
    hmin, hmax, base, ppm, delay = (r.table(2 * n) for _ in range(5))
    node_count = max(max(end1), max(end2)) + 1
    keys = [node_ids[i] if node_ids and i < len(node_ids) else synthetic_key(i) for i in range(node_count)]
    zero64, zero32 = bytes(64), bytes(32)
    out = [bytes([VERSION]), _record(b"\x10\x0b" + zero32)]
    for i in range(n):
        a, b = end1[i], end2[i]
        ka, kb = keys[a], keys[b]
        swap = ka > kb
        scid = struct.pack(">Q", ((i + a) << 40) | (b << 16) | (i & 0xFFFF))
        n1, n2 = (kb, ka) if swap else (ka, kb)
        out.append(_record(b"\x01\x00" + zero64 * 4 + b"\x00\x00" + zero32 + scid + n1 + n2 + ka + ka))
        out.append(_record(b"\x10\x05" + struct.pack(">Q", caps[i])))
        for d in (0, 1):
            k = 2 * i + d
            off = k in disabled
            mx = hmax[k]
            if mx == 0:
                mx = caps[i]
            elif mx == 1:
                mx = int(caps[i] * 0.99)
            flags = (d ^ swap) | (2 if off else 0)
            out.append(_record(b"\x01\x02" + zero64 + zero32 + scid + struct.pack(
                ">IBBHQIIQ", 0, 1, flags, delay[k], hmin[k], base[k], ppm[k], mx)))
    return b"".join(out)


def main(argv: list[str]) -> None:
    args = list(argv)
    node_map = None
    if "--node-map" in args:
        i = args.index("--node-map")
        node_map = read_node_map(Path(args[i + 1]))
        del args[i:i + 2]
    src, dst = args
    Path(dst).write_bytes(decompress(Path(src).read_bytes(), node_map))


if __name__ == "__main__":
    main(sys.argv[1:])
