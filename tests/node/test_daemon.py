"""lncli.node.daemon: starting a node (settings, the event loop) without the CLI."""

from __future__ import annotations

import asyncio

import pytest

from lncli.config import Config, node_options
from lncli.errors import InputError, RefusedError
from lncli.node.daemon import event_loop_runner, node_settings
from tests.node.env import FakeEnv


def test_event_loop_runner():
    assert event_loop_runner("asyncio") is asyncio.run
    assert event_loop_runner(" AsyncIO ") is asyncio.run
    try:
        import uvloop

        default = uvloop.run
    except ImportError:  # the standard loop stands in
        default = asyncio.run
    assert event_loop_runner(None) is default and event_loop_runner("uvloop") is default
    with pytest.raises(InputError, match="event-loop='tokio' in the configuration: use uvloop or asyncio"):
        event_loop_runner("tokio")


def test_node_settings(tmp_path):
    env = FakeEnv(tmp_path / "dd", Config({"listen": ["127.0.0.1:0", "[::1]:9736"]}, None))
    s = node_settings(env, node_options(env.config, alias="a"), "11" * 32)
    assert s.listen == [("127.0.0.1", 0), ("::1", 9736)] and s.alias == "a" and s.dev_seed == bytes.fromhex("11" * 32)
    assert (s.datadir, s.network, s.config) == (env.datadir, "regtest", env.config)
    off = FakeEnv(tmp_path / "t", Config({}, None), network="testnet")
    with pytest.raises(RefusedError, match="only allowed on regtest"):
        node_settings(off, node_options(off.config), "11" * 32)
    with pytest.raises(InputError, match="no bitcoind configured for testnet"):
        node_settings(off, node_options(off.config))
