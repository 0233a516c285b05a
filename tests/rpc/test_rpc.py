"""The control API: JSON-RPC 2.0 server over a unix socket and the synchronous client."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lncli import errors
from lncli.rpc.client import RemoteError, RpcClient, call, socket_path
from lncli.rpc.server import Registry, RpcServer


class ServerThread:
    def __init__(self, netdir):
        self.netdir = netdir
        self.registry = Registry()
        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(socket_path(netdir), self.registry)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server(tmp_path):
    netdir = tmp_path / "regtest"
    netdir.mkdir()
    st = ServerThread(netdir)
    reg = st.registry

    @reg.method("echo")
    async def echo(value=None, delay: float = 0.0):
        if delay:
            await asyncio.sleep(delay)
        return {"value": value}

    @reg.method("refuse")
    async def refuse():
        raise errors.RefusedError("not enough funds")

    @reg.method("unreachable")
    async def unreachable():
        raise errors.UnreachableError("cannot reach bitcoind")

    class Custom(errors.LncliError):
        exit_code = 4

    @reg.method("custom")
    async def custom():
        raise Custom("custom failure")

    @reg.method("bug")
    async def bug():
        raise ZeroDivisionError("oops")

    st.start()
    yield st
    st.stop()


def test_call_and_reuse(server):
    with RpcClient(server.netdir) as c:
        assert c.call("echo", value=1) == {"value": 1}
        assert c.call("echo", value="x") == {"value": "x"}


def test_socket_mode_0600(server):
    mode = stat.S_IMODE(os.stat(socket_path(server.netdir)).st_mode)
    assert mode == 0o600


def test_errors_keep_class_and_exit_code(server):
    with pytest.raises(errors.RefusedError, match="not enough funds") as e:
        call(server.netdir, "refuse")
    assert e.value.exit_code == 1
    with pytest.raises(errors.UnreachableError) as e:
        call(server.netdir, "unreachable")
    assert e.value.exit_code == 3
    with pytest.raises(RemoteError) as e:
        call(server.netdir, "custom")
    assert e.value.exit_code == 4 and str(e.value) == "custom failure"
    with pytest.raises(errors.LncliError, match="internal error in bug: ZeroDivisionError"):
        call(server.netdir, "bug")
    with pytest.raises(errors.UsageError, match="unknown method"):
        call(server.netdir, "nope")
    with pytest.raises(errors.UsageError, match="echo"):
        call(server.netdir, "echo", bogus=1)
    # the server survives all of that
    assert call(server.netdir, "echo", value=2) == {"value": 2}


def test_raw_protocol_errors(server):
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(socket_path(server.netdir)))
    f = s.makefile("rwb")
    for line, code in ((b"not json\n", -32700), (b"[1,2]\n", -32600), (b'{"jsonrpc":"2.0","id":7,"method":"echo","params":5}\n', -32602)):
        f.write(line)
        f.flush()
        resp = json.loads(f.readline())
        assert resp["error"]["code"] == code
    f.write(b'{"jsonrpc":"2.0","id":8,"method":"echo","params":[3]}\n')
    f.flush()
    assert json.loads(f.readline()) == {"jsonrpc": "2.0", "id": 8, "result": {"value": 3}}
    s.close()


def test_many_concurrent_clients(server):
    def one(i):
        return call(server.netdir, "echo", value=i, delay=0.05)["value"]

    with ThreadPoolExecutor(64) as ex:
        results = list(ex.map(one, range(200)))
    assert results == list(range(200))


def test_no_node_running(tmp_path):
    netdir = tmp_path / "regtest"
    with pytest.raises(errors.UnreachableError) as e:
        call(netdir, "getinfo", datadir=tmp_path)
    assert str(e.value) == f"no node running for {tmp_path} (start one with: lncli --datadir {tmp_path} node start)"
    assert e.value.exit_code == 3
    # a stale socket file nobody listens on
    netdir.mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(socket_path(netdir)))
    s.close()
    with pytest.raises(errors.UnreachableError, match="no node running"):
        call(netdir, "getinfo", datadir=tmp_path)


def test_no_node_running_hint_names_the_datadir(tmp_path, monkeypatch):
    from lncli.rpc.client import not_running

    monkeypatch.setenv("HOME", str(tmp_path))
    # the default datadir: the bare command starts the right node
    assert str(not_running(tmp_path / ".lncli")).endswith("(start one with: lncli node start)")
    assert str(not_running("~/.lncli")).endswith("(start one with: lncli node start)")
    # any other: --datadir, quoted for the shell
    odd = tmp_path / "my node's dir"
    msg = str(not_running(odd))
    assert msg == f"no node running for {odd} (start one with: lncli --datadir {shlex.quote(str(odd))} node start)"
    assert shlex.split(msg.split("start one with: ", 1)[1].rstrip(")"))[1:3] == ["--datadir", str(odd)]


def test_long_socket_path(tmp_path):
    netdir = tmp_path / ("x" * 60) / ("y" * 60) / "regtest"
    netdir.mkdir(parents=True)
    st = ServerThread(netdir)

    @st.registry.method("ping")
    async def ping():
        return "pong"

    st.start()
    try:
        assert call(netdir, "ping") == "pong"
    finally:
        st.stop()
    assert not socket_path(netdir).exists()


def test_registry_rejects_duplicates():
    reg = Registry()

    async def f():
        return 1

    reg.add("f", f)
    with pytest.raises(ValueError):
        reg.add("f", f)
    assert reg.names() == ["f"]
