"""Benchmark of the node: handshakes per second accepted, ping/pong round trips per second over one
connection, and resident memory idle and with 1000 idle peers.

    /work/venv/bin/python tests/bench/bench_node.py [--quick]

The node runs as a real daemon (``lncli node start --daemon``). Clients run in other processes:
lncli's sans-IO Initiator/Transport over blocking sockets, and pyln-proto's LightningConnection as
the baseline client against the same node, measured in the same run. Figures are medians.
Targets: >= 1000 handshakes/s, >= 10000 round trips/s, RSS < 200 MB with 1000 peers.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PING = struct.pack(">HHH", 18, 0, 0)
INIT = bytes.fromhex("001000000002220001200622" "6e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f")


def lncli(datadir, *args):
    p = subprocess.run([sys.executable, "-m", "lncli", "--datadir", str(datadir), *args], capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"lncli {' '.join(args)} failed: {p.stderr}")
    return json.loads(p.stdout) if p.stdout.strip() else None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- clients -------------------------------------------------------------------------------------


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def lncli_connect(node_id: bytes, host: str, port: int, key: bytes):
    from lncli.proto.transport import Initiator

    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ini = Initiator(key, node_id, os.urandom(32))
    s.sendall(ini.act_one())
    act3, t = ini.read_act_two(_recv_exact(s, 50))
    s.sendall(act3)
    return s, t


def lncli_read(s, t) -> bytes:
    n = t.decrypt_length(_recv_exact(s, 18))
    return t.decrypt_body(_recv_exact(s, n + 16))


def pyln_connect(node_id: bytes, host: str, port: int, key: bytes):
    from pyln.proto.primitives import PrivateKey
    from pyln.proto.wire import connect

    lc = connect(PrivateKey(key), node_id, host, port)
    lc.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return lc


def handshake_worker(args) -> int:
    impl, node_id, host, port, count, seed = args
    key = bytes([seed + 1]) * 32
    for _ in range(count):
        if impl == "lncli":
            s, t = lncli_connect(node_id, host, port, key)
            lncli_read(s, t)  # the node's init: the handshake was accepted
            s.close()
        else:
            lc = pyln_connect(node_id, host, port, key)
            lc.read_message()
            lc.connection.close()
    return count


def ping_worker(args) -> float:
    impl, node_id, host, port, count = args
    key = b"\x33" * 32
    if impl == "lncli":
        s, t = lncli_connect(node_id, host, port, key)
        lncli_read(s, t)
        s.sendall(t.encrypt_message(INIT))
        start = time.perf_counter()
        for _ in range(count):
            s.sendall(t.encrypt_message(PING))
            lncli_read(s, t)
        elapsed = time.perf_counter() - start
        s.close()
    else:
        lc = pyln_connect(node_id, host, port, key)
        lc.read_message()
        lc.send_message(INIT)
        start = time.perf_counter()
        for _ in range(count):
            lc.send_message(PING)
            lc.read_message()
        elapsed = time.perf_counter() - start
        lc.connection.close()
    return count / elapsed


def idle_peers_worker(args) -> None:
    """Open ``count`` connections (handshake + init), report, hold them until told to stop."""
    node_id, host, port, count, ready_path, stop_path = args
    import asyncio

    from lncli.proto.transport import Initiator

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def one(i):
        r, w = await asyncio.open_connection(host, port)
        ini = Initiator(i.to_bytes(32, "big"), node_id, os.urandom(32))
        w.write(ini.act_one())
        act3, t = ini.read_act_two(await r.readexactly(50))
        w.write(act3)
        n = t.decrypt_length(await r.readexactly(18))
        t.decrypt_body(await r.readexactly(n + 16))
        w.write(t.encrypt_message(INIT))
        await w.drain()
        return r, w

    async def main():
        conns = []
        for start in range(0, count, 100):
            conns += await asyncio.gather(*(one(i + 1) for i in range(start, min(start + 100, count))))
        Path(ready_path).write_text("ok")
        while not Path(stop_path).exists():
            await asyncio.sleep(0.05)
        for _, w in conns:
            w.close()

    asyncio.run(main())


# --- driver ----------------------------------------------------------------------------------------


def main() -> None:
    quick = "--quick" in sys.argv
    hs_per_worker = 100 if quick else 300
    workers = min(8, os.cpu_count() or 2)
    pings = 2000 if quick else 10000
    rounds = 3 if quick else 5
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory() as tmp:
        datadir = Path(tmp) / "node"
        info = lncli(datadir, "node", "start", "--daemon", "--listen", "127.0.0.1:0", "--log-level", "warning")
        try:
            node_id = bytes.fromhex(info["node_id"])
            host, port = info["uris"][0].split("@")[1].rsplit(":", 1)
            port = int(port)
            pid = info["pid"]
            print(f"node pid {pid}, {workers} client processes, CPUs {os.cpu_count()}")
            idle_rss = rss_mb(pid)

            with ProcessPoolExecutor(workers) as ex:
                results: dict[str, list[float]] = {"lncli": [], "pyln": []}
                node_cpu: list[float] = []
                for _ in range(rounds):
                    for impl in ("lncli", "pyln"):
                        start, cpu0 = time.perf_counter(), cpu_seconds(pid)
                        n = sum(ex.map(handshake_worker, [(impl, node_id, host, port, hs_per_worker, i) for i in range(workers)]))
                        results[impl].append(n / (time.perf_counter() - start))
                        node_cpu.append((cpu_seconds(pid) - cpu0) / n)
                a, b = statistics.median(results["lncli"]), statistics.median(results["pyln"])
                print(f"handshakes/s accepted (handshake + init), lncli client: {a:9.0f}   pyln client: {b:9.0f}   ratio {a / b:.2f}   (target >= 1000)")
                c = statistics.median(node_cpu)
                print(f"  node CPU per accepted handshake: {c * 1e6:.0f} us -> capacity of one node core: {1 / c:.0f}/s (clients share the machine's CPUs)")

                results = {"lncli": [], "pyln": []}
                node_cpu = []
                for _ in range(rounds):
                    for impl in ("lncli", "pyln"):
                        cpu0 = cpu_seconds(pid)
                        results[impl].append(ex.submit(ping_worker, (impl, node_id, host, port, pings)).result())
                        node_cpu.append((cpu_seconds(pid) - cpu0) / pings)
                a, b = statistics.median(results["lncli"]), statistics.median(results["pyln"])
                print(f"ping/pong round trips/s, one connection, lncli client: {a:9.0f}   pyln client: {b:9.0f}   ratio {a / b:.2f}   (target >= 10000)")
                c = statistics.median(node_cpu)
                print(f"  node CPU per ping/pong (incl. connection setup): {c * 1e6:.1f} us -> capacity of one node core: {1 / c:.0f}/s")

            ready, stop = Path(tmp) / "ready", Path(tmp) / "stop"
            count = 1000
            proc = subprocess.Popen(
                [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.bench.bench_node import idle_peers_worker as w; "
                 f"w(({node_id!r}, {host!r}, {port}, {count}, {str(ready)!r}, {str(stop)!r}))"],
                cwd=ROOT,
            )
            deadline = time.monotonic() + 120
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the idle-peers client failed")
                time.sleep(0.05)
            time.sleep(0.5)
            peers = lncli(datadir, "node", "info")["num_peers"]
            busy_rss = rss_mb(pid)
            stop.write_text("stop")
            proc.wait(30)
            print(f"node RSS idle: {idle_rss:.1f} MB; with {peers} connected idle peers: {busy_rss:.1f} MB   (target < 200 MB)")
        finally:
            lncli(datadir, "node", "stop")


if __name__ == "__main__":
    main()
