"""End to end: node processes started through the CLI, talking over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.node.test_peers import init_message

ROOT = Path(__file__).resolve().parents[2]


def lncli(datadir, *args, check=True, timeout=30):
    p = subprocess.run(
        [sys.executable, "-m", "lncli", "--datadir", str(datadir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"lncli {' '.join(args)} -> {p.returncode}: {p.stderr}")
    return p


def out(p):
    return json.loads(p.stdout)


@pytest.fixture
def nodes(tmp_path):
    started = []

    def start(name, *extra):
        d = tmp_path / name
        info = out(lncli(d, "node", "start", "--daemon", "--listen", "127.0.0.1:0", *extra))
        started.append(d)
        return d, info

    yield start
    for d in started:
        lncli(d, "node", "stop", check=False)


def test_no_node_running(tmp_path):
    p = lncli(tmp_path / "none", "node", "info", check=False)
    assert p.returncode == 3
    none = tmp_path / "none"
    assert p.stderr == f"lncli: error: no node running for {none} (start one with: lncli --datadir {none} node start)\n"
    p = lncli(tmp_path / "none", "peers", check=False)
    assert p.returncode == 3


def test_two_nodes(nodes):
    a, ia = nodes("a", "--alias", "alice", "--rgb", "#112233")
    b, ib = nodes("b", "--listen", "[::1]:0")
    assert ia["alias"] == "alice" and ia["color"] == "#112233" and ia["network"] == "regtest"
    assert ia["block_height"] == 0 and ia["num_peers"] == 0 and ia["num_channels"] == 0
    assert len(ib["uris"]) == 2 and "@[::1]:" in ib["uris"][1]
    # the datadir is private, and so are its files
    assert os.stat(a / "regtest").st_mode & 0o077 == 0
    assert os.stat(a / "regtest" / "lncli-rpc").st_mode & 0o777 == 0o600
    # a second node on the same datadir is refused
    p = lncli(a, "node", "start", "--daemon", "--listen", "127.0.0.1:0", check=False)
    assert p.returncode == 1 and "already running" in p.stderr and p.stderr.count("\n") == 1
    # connect through IPv6, with the NODE_ID HOST PORT form
    nb, hostport = ib["uris"][1].split("@")
    host, port = hostport.rsplit(":", 1)
    c = out(lncli(a, "connect", nb, host.strip("[]"), port))
    assert c["node_id"] == nb and c["connected"]
    pa = out(lncli(a, "peers"))
    pb = out(lncli(b, "peers"))
    assert [p["node_id"] for p in pa] == [nb] and pa[0]["direction"] == "outbound"
    assert [p["node_id"] for p in pb] == [ia["node_id"]] and pb[0]["direction"] == "inbound"
    assert "var_onion_optin" in pb[0]["features"]
    assert out(lncli(b, "node", "info"))["num_peers"] == 1
    r = out(lncli(b, "ping", ia["node_id"]))
    assert r["rtt_ms"] >= 0
    out(lncli(a, "disconnect", nb))
    assert out(lncli(a, "peers")) == []
    p = lncli(a, "disconnect", nb, check=False)
    assert p.returncode == 1 and "not connected" in p.stderr
    # connect with the URI form; a wrong node id fails cleanly
    out(lncli(a, "connect", ib["uris"][0]))
    from lncli.proto.transport import public_key

    wrong = public_key(b"\x11" * 32).hex()
    p = lncli(a, "connect", wrong + "@" + ib["uris"][0].split("@")[1], check=False)
    assert p.returncode == 1 and "act two" in p.stderr and p.stderr.count("\n") == 1
    p = lncli(a, "connect", "02" + "11" * 32 + "@127.0.0.1", check=False)
    assert p.returncode == 1 and "not a valid" in p.stderr
    # stop: clean, and then the node is gone
    assert out(lncli(b, "node", "stop"))["stopped"]
    assert lncli(b, "node", "info", check=False).returncode == 3
    log = (b / "regtest" / "debug.log").read_text()
    assert "shutting down" in log and log[:4].isdigit()


def test_node_key_is_stable_and_dev_seed(nodes, tmp_path):
    d, i1 = nodes("a")
    lncli(d, "node", "stop")
    _, i2 = nodes("a")
    assert i1["node_id"] == i2["node_id"]
    lncli(d, "node", "stop")
    seed = "42" * 32
    _, i3 = nodes("s1", "--dev-seed", seed)
    _, i4 = nodes("s2", "--dev-seed", seed)
    assert i3["node_id"] == i4["node_id"] != i1["node_id"]
    p = lncli(tmp_path / "m", "--network", "mainnet", "node", "start", "--daemon", "--dev-seed", seed, check=False)
    assert p.returncode == 1 and "only allowed on regtest" in p.stderr


def test_config_file_and_pyln_client(tmp_path, nodes):
    d = tmp_path / "c"
    d.mkdir()
    (d / "lncli.conf").write_text("[regtest]\nalias=fromconf\nlisten=127.0.0.1:0\nlog-level=debug\n")
    info = out(lncli(d, "node", "start", "--daemon"))
    try:
        assert info["alias"] == "fromconf"
        from pyln.proto.primitives import PrivateKey
        from pyln.proto.wire import connect

        nid, hostport = info["uris"][0].split("@")
        host, port = hostport.rsplit(":", 1)
        lc = connect(PrivateKey(b"\x42" * 32), bytes.fromhex(nid), host, int(port))
        assert lc.read_message()[:2] == b"\x00\x10"
        lc.send_message(init_message())
        lc.send_message(bytes.fromhex("fffd00"))  # an unknown odd type: ignored, logged at debug level
        lc.send_message(bytes.fromhex("001200040000"))
        assert lc.read_message() == bytes.fromhex("0013000400000000")  # the pong: both were read
        lc.connection.close()
        assert " DEBUG   lncli.peer: " in (d / "regtest" / "debug.log").read_text()
    finally:
        lncli(d, "node", "stop", check=False)


def test_event_loop_setting(tmp_path, nodes):
    """uvloop by default (when installed); event-loop=asyncio runs the standard loop, and the two
    talk to each other; an unknown name is refused at start."""
    a, ia = nodes("a")
    assert " event loop: uvloop." in (a / "regtest" / "debug.log").read_text()
    b = tmp_path / "b"
    b.mkdir()
    (b / "lncli.conf").write_text("event-loop=asyncio\n")
    _, ib = nodes("b")
    assert " event loop: asyncio." in (b / "regtest" / "debug.log").read_text()
    out(lncli(a, "connect", ib["uris"][0]))
    assert out(lncli(b, "ping", ia["node_id"]))["rtt_ms"] >= 0
    c = tmp_path / "c"
    c.mkdir()
    (c / "lncli.conf").write_text("event-loop=tornado\n")
    p = lncli(c, "node", "start", "--daemon", "--listen", "127.0.0.1:0", check=False)
    assert p.returncode == 1 and p.stderr.startswith("lncli: error: ") and "event-loop='tornado'" in p.stderr


def test_port_in_use_fails_at_start(nodes, tmp_path):
    _, info = nodes("a")
    port = info["uris"][0].rsplit(":", 1)[1]
    p = lncli(tmp_path / "b", "node", "start", "--daemon", "--listen", f"127.0.0.1:{port}", check=False)
    assert p.returncode == 1 and "address already in use" in p.stderr.lower()
    assert lncli(tmp_path / "b", "node", "info", check=False).returncode == 3


def test_connect_to_a_connected_peer_says_so(nodes):
    """Issue 12: connect to a peer we are connected to, at a wrong address, dials nothing, stores
    nothing, makes nothing persistent, and says so."""
    a, _ = nodes("a")
    b, ib = nodes("b")
    nb, right = ib["uris"][0].split("@")
    first = out(lncli(a, "connect", ib["uris"][0]))
    assert first["already_connected"] is False and first["persistent"] is False and "note" not in first
    wrong = "127.0.0.1:1"  # nothing listens there
    again = out(lncli(a, "connect", f"{nb}@{wrong}", "--persist"))
    assert again["already_connected"] is True and again["connected"] and again["address"] == right
    assert again["requested_address"] == wrong and again["persistent"] is False
    assert again["note"] == (f"already connected (outbound, at {right}): {wrong} was not dialled and not stored "
                             f"(we dial {right}); --persist not applied; disconnect first to connect there")
    # the right address, asked again with --persist: that one is applied, nothing else to say
    same = out(lncli(a, "connect", ib["uris"][0], "--persist"))
    assert same["already_connected"] is True and same["persistent"] is True
    assert "note" not in same and "requested_address" not in same
    # the stored address is still the right one: after a disconnect the peer is redialled there
    out(lncli(a, "disconnect", nb))
    out(lncli(a, "connect", ib["uris"][0]))
    # B sees A inbound: B has no address of A to dial; asking to persist one it never tried says so
    ia = out(lncli(a, "node", "info"))
    p = out(lncli(b, "connect", f"{ia['node_id']}@127.0.0.1:2", "--persist"))
    assert p["already_connected"] is True and p["direction"] == "inbound" and p["persistent"] is False
    assert "127.0.0.1:2 was not dialled and not stored; --persist not applied" in p["note"]
