"""Crash safety: a process mining and broadcasting in a loop is SIGKILLed at random moments;
the store must reopen and re-validate from genesis every time."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from lncli.chain.embedded import EmbeddedChain

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import sys
from pathlib import Path
from lncli.bitcoin.tx import OutPoint, TxOut
from lncli.chain.embedded import EmbeddedChain
from lncli.chain.interface import TxRejected
from tests.chain.test_contract import Key, p2wpkh_spend

chain = EmbeddedChain(Path(sys.argv[1]))
key = Key(5)
if chain.tip()[0] < 101:
    chain.mine(101, key.spk)
print("ready", flush=True)
while True:
    h = chain.tip()[0]
    rows = chain.conn.execute(
        "SELECT txid, vout, value FROM chain_utxos WHERE script=? AND (coinbase=0 OR height<=?) "
        "ORDER BY height DESC LIMIT 8", (key.spk, h - 99)).fetchall()
    for txid, vout, value in rows:
        if value < 5000:
            continue
        half = (value - 500) // 2
        tx = p2wpkh_spend(key, [(OutPoint(txid, vout), value)], [TxOut(half, key.spk), TxOut(value - 500 - half, key.spk)])
        try:
            chain.broadcast(tx)
            # and a child spending it from the mempool
            chain.broadcast(p2wpkh_spend(key, [(tx.outpoint(0), half)], [TxOut(half - 300, key.spk)]))
        except TxRejected:
            pass
    chain.mine(1, key.spk)
"""


def test_sigkill_rounds(tmp_path):
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    deadline = time.monotonic() + 15
    rounds = 0
    last_height = 0
    while rounds < 6 and time.monotonic() < deadline:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rounds += 1
        chain = EmbeddedChain(tmp_path)
        height = chain.verify_integrity()
        assert height >= last_height
        last_height = height
        chain.close()
    assert rounds >= 3
    assert last_height > 101
    chain = EmbeddedChain(tmp_path)
    n_spends = chain.conn.execute("SELECT COUNT(*) FROM chain_txs WHERE idx > 0").fetchone()[0]
    chain.close()
    assert n_spends > 0  # the worker did broadcast and mine transactions
