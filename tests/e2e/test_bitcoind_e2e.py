"""End to end against a real ``bitcoind -regtest`` (skipped with a reason when none is on PATH).

The CLI's chain commands (chain-status, fund, mine, wallet) with a datadir whose lncli.conf points
at bitcoind (user/password and cookie authentication, and an unreachable port), then two lncli
node processes sharing that bitcoind: fund, connect, open, channel_ready, payments both ways,
cooperative close, and a force close swept by the watcher after to_self_delay. The helpers are
test_channels.py's (the same flow on the embedded chain).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bitcoind import RegtestBitcoind, bitcoind_module, free_port, start_or_skip  # noqa: F401  (fixture)
from tests.e2e.test_channels import (
    ROOT,
    SEEDS,
    TO_SELF_DELAY,
    Nodes,
    balances,
    channel,
    closed,
    lncli,
    out,
    pay,
    settled,
    wait,
)

POLL = "0.2"  # seconds between the nodes' chain polls (bitcoind's default is 2 s)


@pytest.fixture
def env(tmp_path):
    import os

    e = dict(os.environ)
    e["LNCLI_CHAINDIR"] = str(tmp_path / "no-embedded-chain")  # must stay unused
    e.pop("LNCLI_DATADIR", None)
    e.pop("LNCLI_NETWORK", None)
    return e


def datadir(tmp_path, name, node: RegtestBitcoind, extra: str = ""):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "lncli.conf").write_text(node.conf_lines() + extra)
    return d


def ok(env, d, *args):
    return out(lncli(env, d, *args))


def one_line_error(p, code):
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("lncli: error: ") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr.strip()


# ---------------------------------------------------------------------------------------------
# chain commands


def test_chain_commands(env, tmp_path, bitcoind_module):
    btc = bitcoind_module
    a = datadir(tmp_path, "a", btc)
    st = ok(env, a, "chain-status")
    assert st["backend"] == "bitcoind" and st["chain"] == "regtest"
    assert st["location"] == f"127.0.0.1:{btc.rpcport}" and st["version"].startswith("/Satoshi:")
    assert st["blocks"] == int(btc.cli("getblockcount").stdout)
    assert not (a / "regtest" / "wallet.sqlite3").exists()  # chain-status never creates a wallet
    assert "verification" in lncli(env, a, "-H", "chain-status").stdout

    f = ok(env, a, "fund", "0.25btc")  # bitcoind's wallet is created, mined to, and pays
    assert f["amount_sat"] == 25_000_000 and f["confirmations"] == 1 and f["address"].startswith("bcrt1q")
    assert f["balance_sat"] == 25_000_000
    raw = json.loads(btc.cli("getrawtransaction", f["txid"], "1").stdout)
    assert any(o["scriptPubKey"].get("address") == f["address"] and o["value"] == 0.25 for o in raw["vout"])
    assert ok(env, a, "chain-status")["wallet_balance"]["confirmed_sat"] == 25_000_000

    height = int(btc.cli("getblockcount").stdout)
    m = ok(env, a, "mine", "2")
    assert m["mined"] == 2 and m["height"] == height + 2 and len(m["block_hashes"]) == 2
    assert m["block_hashes"][-1] == btc.cli("getbestblockhash").stdout.strip()

    [u] = ok(env, a, "wallet", "utxos")
    assert (u["value_sat"], u["address"]) == (25_000_000, f["address"])
    # pay another datadir on the same bitcoind; bitcoind sees the transaction
    b = datadir(tmp_path, "b", btc)
    addr_b = ok(env, b, "wallet", "address")["address"]
    s = ok(env, a, "wallet", "send", addr_b, "10000sat")
    assert s["fee_sat"] > 0 and s["txid"] in json.loads(btc.cli("getrawmempool").stdout)
    ok(env, a, "mine", "1")
    assert ok(env, b, "wallet", "balance")["confirmed_sat"] == 10_000
    bal = ok(env, a, "wallet", "balance")
    assert bal["confirmed_sat"] == 25_000_000 - 10_000 - s["fee_sat"]

    # bitcoind's words reach the user: a transaction spending a coin twice
    p = lncli(env, a, "wallet", "send", addr_b, "1btc", check=False)
    assert "insufficient funds" in one_line_error(p, 1)


def test_cookie_auth(env, tmp_path, request):
    node = start_or_skip(request, tmp_path / "btc-cookie", cookie=True)  # no rpcuser/rpcpassword
    assert node.cookiefile.exists()
    by_datadir = datadir(tmp_path, "a", node)  # bitcoindatadir=...
    assert ok(env, by_datadir, "chain-status")["backend"] == "bitcoind"
    assert ok(env, by_datadir, "mine", "3")["height"] == 3
    by_file = tmp_path / "b"
    by_file.mkdir()
    (by_file / "lncli.conf").write_text(f"rpcport={node.rpcport}\nrpccookiefile={node.cookiefile}\n")
    assert ok(env, by_file, "chain-status")["blocks"] == 3
    # a wrong password is refused by bitcoind: exit 3
    bad = tmp_path / "c"
    bad.mkdir()
    (bad / "lncli.conf").write_text(f"rpcport={node.rpcport}\nrpcuser=x\nrpcpassword=y\n")
    err = one_line_error(lncli(env, bad, "chain-status", check=False), 3)
    assert err == f"lncli: error: cannot reach bitcoind at 127.0.0.1:{node.rpcport} (authentication failed: check rpcuser/rpcpassword or rpccookiefile)"
    node.stop()
    err = one_line_error(lncli(env, by_file, "chain-status", check=False), 3)
    assert err.startswith(f"lncli: error: cannot reach bitcoind at 127.0.0.1:{node.rpcport} (")


def test_unreachable_exit_3(env, tmp_path):
    port = free_port()
    d = tmp_path / "a"
    d.mkdir()
    (d / "lncli.conf").write_text(f"rpcport={port}\nrpcuser=regtest\nrpcpassword=regtest\n")
    for cmd in (["chain-status"], ["mine", "1"], ["fund"], ["wallet", "balance"]):
        err = one_line_error(lncli(env, d, *cmd, check=False), 3)
        assert err == f"lncli: error: cannot reach bitcoind at 127.0.0.1:{port} (connection refused)", cmd


# ---------------------------------------------------------------------------------------------
# channels


class BitcoindNodes(Nodes):
    """test_channels.Nodes whose datadirs use ``btc`` and poll it every POLL seconds."""

    def __init__(self, env, tmp_path, btc: RegtestBitcoind):
        super().__init__(env, tmp_path)
        self.btc = btc

    def start(self, name):
        d = datadir(self.tmp, name, self.btc, f"to-self-delay={TO_SELF_DELAY}\nmin-depth=2\n")
        port = self.port.get(name, 0)
        info = out(lncli(self.env, d, "node", "start", "--daemon", "--listen", f"127.0.0.1:{port}",
                         "--poll-interval", POLL, "--dev-seed", SEEDS[name]))
        self.port[name] = int(info["uris"][0].rsplit(":", 1)[1])
        self.id[name] = info["node_id"]
        self.running.add(name)
        return info


@pytest.fixture
def nodes(env, tmp_path, bitcoind_module):
    n = BitcoindNodes(env, tmp_path, bitcoind_module)
    yield n
    for name in list(n.running):
        n(name, "node", "stop", check=False)


def test_channel_open_pay_close(nodes):
    btc = nodes.btc
    for name in "ab":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    ch = nodes.json("a", "open", nodes.id["b"], "400000", "--push", "20000sat", "--no-wait")
    assert ch["state"] == "AWAITING_LOCKIN"
    cid = ch["channel_id"]
    funding_txid = ch["funding_txid"]
    wait(lambda: funding_txid in json.loads(btc.cli("getrawmempool").stdout), what="funding tx in bitcoind's mempool")
    nodes("a", "mine", "2")
    a_ch = wait(lambda: (c := channel(nodes, "a", "b")) and c["active"] and c, timeout=20, what="a NORMAL")
    b_ch = wait(lambda: (c := channel(nodes, "b", "a")) and c["active"] and c, timeout=20, what="b NORMAL")
    assert a_ch["short_channel_id"] == b_ch["short_channel_id"]
    block, txindex, vout = (int(x) for x in a_ch["short_channel_id"].split("x"))
    blockhash = btc.cli("getblockhash", str(block)).stdout.strip()
    assert json.loads(btc.cli("getblock", blockhash).stdout)["tx"][txindex] == funding_txid
    assert a_ch["funding_outpoint"] == f"{funding_txid}:{vout}"
    assert (a_ch["local_balance_msat"], a_ch["remote_balance_msat"]) == (380_000_000, 20_000_000)

    pay(nodes, "a", "b", "1000sat")
    pay(nodes, "b", "a", "2500sat")
    settled(nodes, "a", "b"), settled(nodes, "b", "a")
    expect_a = 380_000_000 - 1_000_000 + 2_500_000
    assert balances(nodes, "a", "b") == (expect_a, 400_000_000 - expect_a)
    assert balances(nodes, "b", "a") == (400_000_000 - expect_a, expect_a)

    before_b = nodes.json("b", "wallet", "balance")["total_sat"]
    c = nodes.json("a", "close", cid)
    assert c["state"] == "CLOSING" and c["closing_txid"]
    wait(lambda: c["closing_txid"] in json.loads(btc.cli("getrawmempool").stdout), what="closing tx in the mempool")
    nodes("a", "mine", "1")
    wait(lambda: closed(nodes, "a", cid)["state"] == "CLOSED" and closed(nodes, "b", cid)["state"] == "CLOSED",
         timeout=20, what="CLOSED")
    after_b = wait(lambda: (v := nodes.json("b", "wallet", "balance")["total_sat"]) != before_b and v, what="b's wallet")
    assert after_b - before_b == (400_000_000 - expect_a) // 1000
    assert json.loads(btc.cli("getrawtransaction", c["closing_txid"], "1").stdout)["confirmations"] >= 1


def test_force_close_swept_after_to_self_delay(nodes):
    btc = nodes.btc
    for name in "ac":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("c"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lncli", "--datadir", str(nodes.dir("a")), "open", nodes.id["c"], "300000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=nodes.env,
    )
    wait(lambda: (c := channel(nodes, "a", "c")) and c.get("funding_txid")
         and c["funding_txid"] in json.loads(btc.cli("getrawmempool").stdout), what="funding broadcast")
    nodes("a", "mine", "2")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["state"] == "NORMAL"
    pay(nodes, "a", "c", "50000sat")
    settled(nodes, "a", "c")
    # c is stopped first: on the error a force close sends, c would fail the channel and broadcast
    # its own commitment, which pays the same fee, so bitcoind keeps whichever came first (a's
    # would be refused: "insufficient fee, rejecting replacement ..."). Without c, a's is the one.
    nodes.stop("c")
    before = nodes.json("a", "wallet", "balance")
    c = nodes.json("a", "close", nodes.id["c"], "--force")
    assert c["state"] == "FORCE_CLOSING" and c["closing_txid"]
    wait(lambda: c["closing_txid"] in json.loads(btc.cli("getrawmempool").stdout), what="commitment in the mempool")
    nodes("a", "mine", "1")
    # to_local is locked for to_self_delay blocks: bitcoind refuses an early sweep, nothing moves
    nodes("a", "mine", str(TO_SELF_DELAY - 2))
    assert nodes.json("a", "wallet", "balance")["total_sat"] == before["total_sat"]
    nodes("a", "mine", "3")
    after = wait(lambda: (b := nodes.json("a", "wallet", "balance"))["total_sat"] > before["total_sat"] and b,
                 timeout=30, what="sweep")
    swept = after["total_sat"] - before["total_sat"]
    assert 240_000 < swept < 250_000  # 250000 sat minus the commitment and sweep fees
    sweep = json.loads(btc.cli("getrawtransaction", c["closing_txid"], "1").stdout)
    assert sweep["confirmations"] >= TO_SELF_DELAY + 1
    # c comes back, sees a's commitment on chain and sweeps its 50000 sat (to_remote) to its wallet
    mempool = set(json.loads(btc.cli("getrawmempool").stdout))
    nodes.start("c")
    wait(lambda: set(json.loads(btc.cli("getrawmempool").stdout)) - mempool, what="c's sweep")
    nodes("a", "mine", "1")
    wait(lambda: 49_000 < nodes.json("c", "wallet", "balance")["confirmed_sat"] < 50_000, what="c's to_remote")
