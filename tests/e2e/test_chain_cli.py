"""chain-status, fund, mine and wallet through the console script, on a private embedded chain."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time

from tests.e2e.procs import lncli, one_line_error, out

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "lncli")
LNCLI = [_SCRIPT] if os.path.exists(_SCRIPT) else [sys.executable, "-m", "lncli"]  # the console script


def test_chain_status_fund_mine_wallet(env, tmp_path):
    d = tmp_path / "a"
    st = out(lncli(env, d, "chain-status"))
    assert set(st) == {"chain", "blocks", "headers", "verification_progress", "difficulty", "best_block_hash",
                       "mempool_size", "backend", "version", "location"}
    assert st["chain"] == "regtest" and st["backend"] == "embedded" and st["blocks"] == 0
    assert not (d / "regtest" / "wallet.sqlite3").exists()  # chain-status never creates a wallet

    f = out(lncli(env, d, "fund", "0.25btc"))
    assert f["amount_sat"] == 25_000_000 and f["confirmations"] == 1 and f["address"].startswith("bcrt1q")
    assert f["balance_sat"] == 25_000_000  # exactly what was asked: no 50 BTC coinbase lands in the wallet (issue 12)

    st = out(lncli(env, d, "chain-status"))
    assert st["wallet_balance"]["confirmed_sat"] == f["balance_sat"] and st["blocks"] == 102
    assert "verification" in lncli(env, d, "-H", "chain-status").stdout

    m = out(lncli(env, d, "mine", "2"))
    assert m["mined"] == 2 and m["height"] == 104 and len(m["block_hashes"]) == 2

    utxos = out(lncli(env, d, "wallet", "utxos"))
    assert any(u["value_sat"] == 25_000_000 and u["address"] == f["address"] for u in utxos)
    bal = out(lncli(env, d, "wallet", "balance"))
    assert bal["confirmed_sat"] == sum(u["value_sat"] for u in utxos) == f["balance_sat"]

    # a second node on the same chain (shared LNCLI_CHAINDIR) gets paid
    other = out(lncli(env, tmp_path / "b", "wallet", "address"))["address"]
    s = out(lncli(env, d, "wallet", "send", other, "10000sat"))
    assert s["fee_sat"] > 0
    lncli(env, d, "mine", "1")
    assert out(lncli(env, tmp_path / "b", "wallet", "balance"))["confirmed_sat"] == 10_000

    # fund again reuses the faucet's mature coins: no new 101 blocks; the wallet grows by exactly that
    before = out(lncli(env, d, "wallet", "balance"))["confirmed_sat"]
    f2 = out(lncli(env, d, "fund", "1000sat"))
    assert f2["confirmations"] == 1 and out(lncli(env, d, "chain-status"))["blocks"] == 106
    assert f2["balance_sat"] == out(lncli(env, d, "wallet", "balance"))["confirmed_sat"] == before + 1000
    # the case: 1btc prints 100000000 sat and the wallet receives 100000000 sat
    f3 = out(lncli(env, d, "fund", "1btc"))
    assert f3["amount_sat"] == 100_000_000 and f3["balance_sat"] == before + 1000 + 100_000_000
    # more than one coinbase's worth: the faucet mines what it needs
    f4 = out(lncli(env, d, "fund", "120btc"))
    assert f4["balance_sat"] == before + 1000 + 100_000_000 + 12_000_000_000


def test_errors(env, tmp_path):
    d = tmp_path / "a"
    assert "regtest only" in one_line_error(lncli(env, d, "--network", "testnet", "mine", "1", check=False), 1)
    err = one_line_error(lncli(env, d, "--network", "signet", "chain-status", check=False), 1)
    assert "no bitcoind configured for signet" in err
    one_line_error(lncli(env, d, "mine", "1", "--address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", check=False), 1)
    one_line_error(lncli(env, d, "fund", "12abc", check=False), 1)
    addr = out(lncli(env, tmp_path / "b", "wallet", "address"))["address"]
    err = one_line_error(lncli(env, d, "wallet", "send", addr, "1btc", check=False), 1)
    assert "insufficient funds: have 0 sat, need" in err and "(fund this wallet with: lncli fund)" in err
    one_line_error(lncli(env, d, "wallet", "send", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "1000", check=False), 1)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d).mkdir(exist_ok=True)
    (d / "lncli.conf").write_text(f"rpcport={port}\n")
    for cmd in (["chain-status"], ["mine", "1"], ["fund"], ["wallet", "balance"]):
        err = one_line_error(lncli(env, d, *cmd, check=False), 3)
        assert f"cannot reach bitcoind at 127.0.0.1:{port}" in err


def test_offline_fund_prints_deposit_address(env, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lncli.conf").write_text("[signet]\nrpcport=1\n")
    r = out(lncli(env, tmp_path / "a", "--network", "signet", "fund"))
    assert r["funded"] is False and r["address"].startswith("tb1q")


def _totals(datadir, chaindir):
    """(balance of the reopened wallet, balance of a fresh scan with the same seed); re-validates the chain."""
    from lncli.chain.embedded import EmbeddedChain
    from lncli.wallet.wallet import Wallet

    chain = EmbeddedChain(chaindir / "regtest")
    chain.verify_integrity(scripts=False)
    seed = (datadir / "regtest" / "seed").read_bytes()
    w = Wallet(datadir / "regtest" / "wallet.sqlite3", "regtest", seed, chain)
    w.sync()
    fresh = Wallet(datadir / "fresh.sqlite3", "regtest", seed, chain)
    fresh.sync()
    a, b = w.balance(), fresh.balance()
    utxo_sum = sum(u.value_sat for u in w.utxos())
    w.close()
    fresh.close()
    (datadir / "fresh.sqlite3").unlink()
    for ext in ("-wal", "-shm"):
        p = datadir / f"fresh.sqlite3{ext}"
        if p.exists():
            p.unlink()
    chain.close()
    return a, b, utxo_sum


def test_kill_9_during_fund_and_mine(env, tmp_path):
    rng = random.Random(1234)
    d = tmp_path / "a"
    chaindir = tmp_path / "chain"
    lncli(env, d, "wallet", "address")  # create the seed and wallet
    for i in range(6):
        args = ["fund", "0.1btc"] if i % 2 == 0 else ["mine", "30", "--address", out(lncli(env, d, "wallet", "address"))["address"]]
        p = subprocess.Popen([*LNCLI, "--datadir", str(d), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.15, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        a, b, utxo_sum = _totals(d, chaindir)
        assert a.total_sat == b.total_sat == utxo_sum, (i, a, b)
        assert a.confirmed_sat == b.confirmed_sat
    # and the wallet still works afterwards
    r = out(lncli(env, d, "fund", "0.1btc"))
    assert r["confirmations"] == 1
