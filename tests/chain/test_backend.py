"""open_backend: bitcoind when configured, the embedded chain on regtest otherwise."""

from pathlib import Path

import pytest

from lncli.chain.backend import backend_kind, open_backend
from lncli.chain.bitcoind import BitcoindBackend
from lncli.cli.context import Env


def make_env(tmp_path, conf="", network="regtest"):
    (tmp_path / "lncli.conf").write_text(conf)
    return Env(datadir=tmp_path, network=network)


def test_embedded_default_uses_lncli_chaindir(tmp_path, monkeypatch):
    monkeypatch.setenv("LNCLI_CHAINDIR", str(tmp_path / "shared"))
    b = open_backend(make_env(tmp_path))
    try:
        assert b.kind == "embedded" and Path(b.info().location).is_relative_to(tmp_path / "shared")
    finally:
        b.close()


def test_chaindir_from_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LNCLI_CHAINDIR", str(tmp_path / "ignored"))
    b = open_backend(make_env(tmp_path, f"chaindir={tmp_path / 'mine'}\n"))
    try:
        assert b.info().location == str(tmp_path / "mine")
    finally:
        b.close()


@pytest.mark.parametrize("conf", ["bitcoind=1", "rpcport=1234", "rpcuser=u\nrpcpassword=p", "rpccookiefile=/x", "rpcconnect=host"])
def test_bitcoind_when_configured(tmp_path, conf):
    b = open_backend(make_env(tmp_path, conf + "\n"))
    assert isinstance(b, BitcoindBackend)


def test_bitcoind_zero_forces_embedded(tmp_path):
    assert backend_kind(make_env(tmp_path, "rpcport=1\nbitcoind=0\n")) == "embedded"


def test_network_sections(tmp_path):
    env = make_env(tmp_path, "[signet]\nrpcport=38332\n", network="signet")
    b = open_backend(env)
    assert isinstance(b, BitcoindBackend) and b.port == 38332 and b.network == "signet"


def test_off_regtest_without_bitcoind(tmp_path):
    from lncli.errors import InputError

    with pytest.raises(InputError, match="no bitcoind configured for testnet") as e:
        open_backend(make_env(tmp_path, network="testnet"))
    assert e.value.exit_code == 1
