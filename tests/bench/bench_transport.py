"""Benchmark: BOLT 8 transport, lncli vs pyln-proto (pyln.proto.wire), CPU time.

Run from the repo root:  .venv/bin/python tests/bench/bench_transport.py

Cases (median over batches of time.process_time, per operation):
  * encrypt+decrypt of one 32-byte message (sender frames it, receiver decrypts it);
  * a full handshake, both sides (construct both parties, acts one to three, both sessions).

pyln's LightningConnection reads and writes a socket; here it gets an in-memory connection
(``send`` appends to a buffer, ``recv`` takes from it), so only its crypto and framing are timed.
Its handshake draws the ephemeral key with os.urandom inside the constructor; ours is given one.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyln.proto import wire  # noqa: E402

from lncli.proto import transport  # noqa: E402
from lncli.proto.transport import Initiator, Responder, public_key  # noqa: E402

TARGET_US = {"encrypt+decrypt 32 B": 8.0, "handshake (both sides)": 600.0}

S_I = b"\x11" * 32
S_R = b"\x21" * 32
E_I = b"\x12" * 32
E_R = b"\x22" * 32
PUB_R = public_key(S_R)
MSG = bytes(range(32))


def timed_batches(fns, per_batch: int, batches: int) -> list[list[float]]:
    """CPU microseconds per call for each fn, batch by batch, the fns interleaved batch by batch
    (so that a noisy neighbour slows all of them alike)."""
    for fn in fns:  # warm up
        for _ in range(per_batch):
            fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(batches):
            for fn, out in zip(fns, samples):
                t0 = time.process_time()
                for _ in range(per_batch):
                    fn()
                out.append((time.process_time() - t0) / per_batch * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


# --- lncli ---


def lncli_handshake():
    ini = Initiator(S_I, PUB_R, E_I)
    resp = Responder(S_R, E_R)
    act2 = resp.read_act_one(ini.act_one())
    act3, t_i = ini.read_act_two(act2)
    t_r = resp.read_act_three(act3)
    return t_i, t_r


def lncli_handshake_cold():
    transport._static_public_key.cache_clear()
    return lncli_handshake()


def lncli_roundtrip_factory():
    t_i, t_r = lncli_handshake()
    enc, feed = t_i.encrypt_message, t_r.feed

    def roundtrip():
        feed(enc(MSG))

    return roundtrip


def lncli_roundtrip_two_step_factory():
    t_i, t_r = lncli_handshake()
    enc, dl, db = t_i.encrypt_message, t_r.decrypt_length, t_r.decrypt_body

    def roundtrip():
        packet = enc(MSG)
        dl(packet[:18])
        db(packet[18:])

    return roundtrip


# --- pyln-proto ---


class MemoryConn:
    """Stands in for a socket: both ends of one LightningConnection's traffic."""

    def __init__(self):
        self.buf = bytearray()

    def send(self, data):
        self.buf += data
        return len(data)

    def recv(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


PYLN_S_I = wire.PrivateKey(S_I)
PYLN_S_R = wire.PrivateKey(S_R)
PYLN_PUB_R = wire.PublicKey(PUB_R)


def pyln_handshake():
    ini = wire.LightningConnection(MemoryConn(), PYLN_PUB_R, PYLN_S_I, is_initiator=True)
    resp = wire.LightningConnection(MemoryConn(), None, PYLN_S_R, is_initiator=False)
    resp.handshake_act_one_responder(ini.handshake_act_one_initiator())
    ini.handshake_act_two_initiator(resp.handshake_act_two_responder())
    resp.handshake_act_three_responder(ini.handshake_act_three_initiator())
    for lc in (ini, resp):  # what shake() does after the acts
        lc.sck = lc.rck = lc.chaining_key
    return ini, resp


def pyln_roundtrip_factory():
    ini, resp = pyln_handshake()
    conn = MemoryConn()
    ini.connection = resp.connection = conn  # ini writes, resp reads the same buffer
    send, read = ini.send_message, resp.read_message

    def roundtrip():
        send(MSG)
        read()

    return roundtrip


def check_interop() -> None:
    """Both implementations agree on the keys and can read each other (sanity, not timed)."""
    ours_i, ours_r = lncli_handshake()
    ini, resp = pyln_handshake()
    assert (ours_i.sk, ours_i.rk) == (ours_r.rk, ours_r.sk)
    assert (ini.sk, ini.rk) == (resp.rk, resp.sk)
    conn = MemoryConn()
    ini.connection = conn
    ini.send_message(MSG)
    assert conn.buf  # pyln framed it
    # Same keys on both sides -> same bytes on the wire.
    t = transport.Transport(ini.sk, ini.rk, ini.sck, PUB_R)
    assert t.encrypt_message(MSG) == bytes(conn.buf)


def main() -> None:
    check_interop()
    rows = []

    def case(name, lncli_fn, pyln_fn, per_batch, batches, target):
        ours, theirs = timed_batches([lncli_fn, pyln_fn], per_batch, batches)
        ratio = statistics.median(t / o for o, t in zip(ours, theirs))
        row = (statistics.median(ours), min(ours), statistics.median(theirs), ratio, target)
        rows.append((name, *row))

    rt, hs = TARGET_US["encrypt+decrypt 32 B"], TARGET_US["handshake (both sides)"]
    case("encrypt+decrypt 32 B", lncli_roundtrip_factory(), pyln_roundtrip_factory(), 2000, 41, rt)
    case("  (two-step reader)", lncli_roundtrip_two_step_factory(), pyln_roundtrip_factory(),
         2000, 41, rt)
    case("handshake (both sides)", lncli_handshake, pyln_handshake, 40, 31, hs)
    case("  (static pubkey not cached)", lncli_handshake_cold, pyln_handshake, 40, 31, hs)

    head = ("lncli us", "(min)", "pyln us", "pyln/lncli", "target")
    print(f"{'case':30s} {head[0]:>9s} {head[1]:>9s} {head[2]:>9s} {head[3]:>10s} {head[4]:>8s} ok")
    for name, ours, best, theirs, ratio, target in rows:
        ok = "yes" if ours <= target else "NO"
        print(f"{name:30s} {ours:9.2f} {best:9.2f} {theirs:9.2f} {ratio:9.2f}x {target:8.1f}  {ok}")
    print("median (and min) CPU time per operation: time.process_time over batches, lncli and pyln")
    print("batches interleaved, GC off while timing; pyln/lncli is the median of per-batch ratios")


if __name__ == "__main__":
    main()
