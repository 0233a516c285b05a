"""End to end: invoices and the chain view through a node started with the CLI, on a private embedded chain."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.e2e.procs import lncli, out


@pytest.fixture
def node(env, tmp_path):
    started = []

    def start(name="a", *extra):
        d = tmp_path / name
        info = out(lncli(env, d, "node", "start", "--daemon", "--listen", "127.0.0.1:0", "--poll-interval", "0.1", *extra))
        started.append(d)
        return d, info

    yield start
    for d in started:
        lncli(env, d, "node", "stop", check=False)


def wait_height(env, d, height, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        h = out(lncli(env, d, "node", "info"))["block_height"]
        if h == height or time.monotonic() > deadline:
            return h
        time.sleep(0.1)


def test_invoices_and_block_height(env, node):
    d, info = node()
    assert info["block_height"] == 0
    a = out(lncli(env, d, "invoice", "create", "1000sat", "-d", "coffee"))
    assert set(a) == {"bolt11", "payment_hash", "payment_secret", "amount_msat", "expires_at"}
    assert a["amount_msat"] == 1_000_000 and a["bolt11"].startswith("lnbcrt10u1")
    now = time.time()
    assert now + 3500 < a["expires_at"] <= now + 3601
    b = out(lncli(env, d, "invoice", "create", "any", "--description-hash", hashlib.sha256(b"long").hexdigest(), "--expiry", "1"))
    c = out(lncli(env, d, "invoice", "create", "-d", "-", input="from stdin\n"))
    assert b["amount_msat"] is None and c["amount_msat"] is None
    # decoded offline: signed by the node, with what was asked
    da = out(lncli(env, d, "invoice", "decode", a["bolt11"]))
    assert da["payee"] == info["node_id"] and da["description"] == "coffee" and da["network"] == "regtest"
    assert da["payment_hash"] == a["payment_hash"] and da["payment_secret"] == a["payment_secret"]
    assert set(da["features"].values()) == {"var_onion_optin", "payment_secret", "basic_mpp"}
    db = out(lncli(env, d, "invoice", "decode", b["bolt11"]))
    assert db["description_hash"] == hashlib.sha256(b"long").hexdigest() and db["expiry"] == 1
    assert out(lncli(env, d, "invoice", "decode", c["bolt11"]))["description"] == "from stdin"
    # listed with statuses; b expires after one second
    time.sleep(1.1)
    listed = out(lncli(env, d, "invoice", "list"))
    assert [i["payment_hash"] for i in listed] == [a["payment_hash"], b["payment_hash"], c["payment_hash"]]
    assert [i["status"] for i in listed] == ["unpaid", "expired", "unpaid"]
    assert all(i["payment_preimage"] is None for i in listed)
    assert [i["payment_hash"] for i in out(lncli(env, d, "invoice", "list", "--status", "expired"))] == [b["payment_hash"]]
    assert out(lncli(env, d, "invoice", "list", "--status", "paid")) == []
    # the block height follows the chain
    lncli(env, d, "mine", "3")
    assert wait_height(env, d, 3) == 3
    # invoices survive a restart
    lncli(env, d, "node", "stop")
    d, info = node("a")
    assert info["block_height"] == 3
    assert len(out(lncli(env, d, "invoice", "list"))) == 3


def test_invoice_errors(env, node, tmp_path):
    d, _ = node()
    for args in (["0"], ["1.5msat"], ["lots"], ["-d", "x", "--description-hash", "00" * 32], ["--description-hash", "abcd"],
                 ["--expiry", "0"], ["-d", "x" * 700]):
        p = lncli(env, d, "invoice", "create", *args, check=False)
        assert p.returncode == 1, (args, p.stderr)
        assert p.stderr.startswith("lncli: error: ") and p.stderr.count("\n") == 1, p.stderr
    p = lncli(env, d, "invoice", "list", "--status", "nope", check=False)
    assert p.returncode == 2
    assert out(lncli(env, d, "invoice", "list")) == []
    # without a node: exit 3
    p = lncli(env, tmp_path / "none", "invoice", "create", "1000", check=False)
    assert p.returncode == 3 and "no node running" in p.stderr
    p = lncli(env, tmp_path / "none", "invoice", "list", check=False)
    assert p.returncode == 3


def test_config_poll_interval_and_off_regtest(env, tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "lncli.conf").write_text("[regtest]\npoll-interval=abc\n")
    p = lncli(env, d, "node", "start", "--daemon", "--listen", "127.0.0.1:0", check=False)
    assert p.returncode == 1 and "poll-interval" in p.stderr
    p = lncli(env, tmp_path / "m", "--network", "signet", "node", "start", "--daemon", "--listen", "127.0.0.1:0", check=False)
    assert p.returncode == 1 and "no bitcoind configured for signet" in p.stderr
