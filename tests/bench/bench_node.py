"""Benchmark of the node: handshakes per second accepted, ping/pong round trips per second over one
connection, and resident memory idle and with 1000 idle peers.

    .venv/bin/python tests/bench/bench_node.py [--quick] [--clients=N]

The node runs as a real daemon (``lncli node start --daemon``). Clients run in other processes:
lncli's sans-IO Initiator/Transport over blocking sockets, and pyln-proto's LightningConnection as
the baseline client against the same node, measured in the same run. Figures are medians; each
also gives the node's own CPU time per operation (from /proc/PID/stat) and the clients' CPU, because
on a small shared machine the clients and other load compete with the node for the same cores.
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
#
# The measuring clients are cheap on purpose: blocking sockets and lncli's sans-IO Initiator and
# Transport (one recv per read, fed to Transport.feed), or pyln-proto's LightningConnection as the
# baseline. Each worker process runs for a fixed window that starts at the same instant in every
# worker, and reports its count, its own CPU time, and the node's CPU time over that window.


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


def lncli_read(s, t, pending: list) -> bytes:
    """Next message: from ``pending`` (already decrypted) or from the socket via Transport.feed."""
    while not pending:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed")
        pending.extend(t.feed(data))
    return pending.pop(0)


def pyln_connect(node_id: bytes, host: str, port: int, key: bytes):
    from pyln.proto.primitives import PrivateKey
    from pyln.proto.wire import connect

    lc = connect(PrivateKey(key), node_id, host, port)
    lc.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return lc


def _wait_until(t0: float) -> None:
    delay = t0 - time.time()
    if delay > 0:
        time.sleep(delay)


def handshake_worker(args) -> tuple[int, float, float, float]:
    """Handshake + read the node's init, then hang up, for ``duration`` seconds from ``t0``.

    Returns (handshakes, seconds, own CPU seconds, node CPU seconds over the same window)."""
    impl, node_id, host, port, t0, duration, seed, node_pid = args
    key = bytes([seed + 1]) * 32
    import pyln.proto.wire  # noqa: F401 - imported before the window starts

    _wait_until(t0)
    cpu0, node0, start = time.process_time(), cpu_seconds(node_pid), time.perf_counter()
    end = start + duration
    n = 0
    while time.perf_counter() < end:
        if impl == "lncli":
            s, t = lncli_connect(node_id, host, port, key)
            lncli_read(s, t, [])  # the node's init: the handshake was accepted
            s.close()
        else:
            lc = pyln_connect(node_id, host, port, key)
            lc.read_message()
            lc.connection.close()
        n += 1
    elapsed = time.perf_counter() - start
    return n, elapsed, time.process_time() - cpu0, cpu_seconds(node_pid) - node0


def ping_worker(args) -> tuple[float, float, float]:
    """Round trips over one connection: returns (round trips/s, own CPU s/op, node CPU s/op).

    ``depth`` 1 is the real round-trip figure (one ping, wait for its pong, repeat); a larger
    depth keeps that many pings in flight (pipelined throughput, reported separately)."""
    impl, node_id, host, port, count, depth, node_pid = args
    key = b"\x33" * 32
    if impl == "lncli":
        s, t = lncli_connect(node_id, host, port, key)
        pending: list = []
        lncli_read(s, t, pending)
        s.sendall(t.encrypt_message(INIT))
        send = s.sendall
        encrypt = t.encrypt_message
        # warm up, then measure
        for _ in range(100):
            send(encrypt(PING))
            lncli_read(s, t, pending)
        cpu0, node0, start = time.process_time(), cpu_seconds(node_pid), time.perf_counter()
        if depth == 1:
            for _ in range(count):
                send(encrypt(PING))
                lncli_read(s, t, pending)
        else:
            for _ in range(count // depth):
                send(b"".join([encrypt(PING) for _ in range(depth)]))
                for _ in range(depth):
                    lncli_read(s, t, pending)
        elapsed = time.perf_counter() - start
        cpu, node = time.process_time() - cpu0, cpu_seconds(node_pid) - node0
        s.close()
    else:
        lc = pyln_connect(node_id, host, port, key)
        lc.read_message()
        lc.send_message(INIT)
        for _ in range(100):
            lc.send_message(PING)
            lc.read_message()
        cpu0, node0, start = time.process_time(), cpu_seconds(node_pid), time.perf_counter()
        if depth == 1:
            for _ in range(count):
                lc.send_message(PING)
                lc.read_message()
        else:
            for _ in range(count // depth):
                for _ in range(depth):
                    lc.send_message(PING)
                for _ in range(depth):
                    lc.read_message()
        elapsed = time.perf_counter() - start
        cpu, node = time.process_time() - cpu0, cpu_seconds(node_pid) - node0
        lc.connection.close()
    done = count if depth == 1 else (count // depth) * depth
    return done / elapsed, cpu / done, node / done


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


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def bench_handshakes(ex, workers, node_id, host, port, pid, rounds, duration) -> None:
    rates: dict[str, list[float]] = {"lncli": [], "pyln": []}
    node_cpu: dict[str, list[float]] = {"lncli": [], "pyln": []}
    client_cpu: dict[str, list[float]] = {"lncli": [], "pyln": []}
    for _ in range(rounds):
        for impl in ("lncli", "pyln"):
            t0 = time.time() + 0.3
            res = list(ex.map(handshake_worker, [(impl, node_id, host, port, t0, duration, i, pid) for i in range(workers)]))
            n = sum(r[0] for r in res)
            rates[impl].append(n / max(r[1] for r in res))
            client_cpu[impl].append(sum(r[2] for r in res) / n)
            node_cpu[impl].append(statistics.median(r[3] for r in res) / n)
            time.sleep(0.2)  # let the node reap the closed connections
    a, b = _median(rates["lncli"]), _median(rates["pyln"])
    print(f"handshakes/s accepted by one node ({workers} client processes, handshake + the node's init), median of {rounds}:")
    print(f"  lncli client: {a:7.0f}/s   pyln client: {b:7.0f}/s   ratio {a / b:.2f}   (target >= 1000)   runs: "
          + " ".join(f"{x:.0f}" for x in rates["lncli"]))
    for impl in ("lncli", "pyln"):
        c, k = _median(node_cpu[impl]), _median(client_cpu[impl])
        print(f"  with {impl} clients: node CPU {c * 1e6:4.0f} us/handshake (one node core: {1 / c:5.0f}/s), "
              f"client CPU {k * 1e6:4.0f} us/handshake")


def bench_pings(ex, node_id, host, port, pid, rounds, pings) -> None:
    for depth, title in ((1, "ping/pong round trips/s, one connection, one ping in flight"), (100, "pipelined pings/s, one connection, 100 in flight (not the round-trip figure)")):
        rates: dict[str, list[float]] = {"lncli": [], "pyln": []}
        node_cpu: dict[str, list[float]] = {"lncli": [], "pyln": []}
        client_cpu: dict[str, list[float]] = {"lncli": [], "pyln": []}
        for _ in range(rounds):
            for impl in ("lncli", "pyln"):
                rate, cpu, node = ex.submit(ping_worker, (impl, node_id, host, port, pings, depth, pid)).result()
                rates[impl].append(rate)
                client_cpu[impl].append(cpu)
                node_cpu[impl].append(node)
        a, b = _median(rates["lncli"]), _median(rates["pyln"])
        target = "   (target >= 10000)" if depth == 1 else ""
        print(f"{title}, median of {rounds}:")
        print(f"  lncli client: {a:7.0f}/s   pyln client: {b:7.0f}/s   ratio {a / b:.2f}{target}   runs: "
              + " ".join(f"{x:.0f}" for x in rates["lncli"]))
        for impl in ("lncli", "pyln"):
            c, k = _median(node_cpu[impl]), _median(client_cpu[impl])
            print(f"  with the {impl} client: node CPU {c * 1e6:5.1f} us/ping (one node core: {1 / c:6.0f}/s), client CPU {k * 1e6:5.1f} us/ping")


def main() -> None:
    quick = "--quick" in sys.argv
    cpus = os.cpu_count() or 2
    workers = 2 * cpus  # while one client waits for the node, another computes its act one
    for arg in sys.argv[1:]:
        if arg.startswith("--clients="):
            workers = int(arg.split("=", 1)[1])
    duration = 1.0 if quick else 2.0
    pings = 3000 if quick else 10000
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
            print(f"node pid {pid}, {workers} handshake client processes, {cpus} CPUs (shared by node and clients), load {os.getloadavg()[0]:.1f}")
            idle_rss = rss_mb(pid)

            with ProcessPoolExecutor(workers) as ex:
                list(ex.map(abs, range(workers)))  # start the workers before measuring
                bench_handshakes(ex, workers, node_id, host, port, pid, rounds, duration)
                bench_pings(ex, node_id, host, port, pid, rounds, pings)

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
