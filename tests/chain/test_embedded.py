"""The embedded regtest chain: consensus/policy rules in bitcoind's words, sharing one chain
directory between objects and processes, auto-mining."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lncli.bitcoin.script import op_return_script
from lncli.bitcoin.tx import OutPoint, TxOut
from lncli.chain.embedded import EmbeddedChain, default_chaindir
from lncli.chain.interface import TxRejected
from tests.chain.test_contract import DEST, KEY, Key, coinbase_outpoints, p2wpkh_spend


class Clock:
    def __init__(self, t: int = 1_700_000_000):
        self.t = t

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def chain(tmp_path, clock):
    c = EmbeddedChain(tmp_path / "chain", clock=clock)
    yield c
    c.close()


@pytest.fixture
def coins(chain):
    chain.mine(110, KEY.spk)
    return coinbase_outpoints(chain, KEY, 1, 110)


def test_default_chaindir(monkeypatch, tmp_path):
    monkeypatch.setenv("LNCLI_CHAINDIR", str(tmp_path))
    assert default_chaindir() == tmp_path / "regtest"
    monkeypatch.delenv("LNCLI_CHAINDIR")
    assert default_chaindir() == Path("~/.lncli/chain/regtest").expanduser()


def test_only_regtest(tmp_path):
    from lncli.chain.interface import ChainError

    with pytest.raises(ChainError):
        EmbeddedChain(tmp_path, network="mainnet")


def test_premature_coinbase_spend(chain):
    chain.mine(100, KEY.spk)  # block 1's coinbase matures in block 101
    [(op, value)] = [(e.outpoint, e.value_sat) for e in __import__("lncli.chain.scan", fromlist=["x"]).scan_blocks(chain, 2, 2, {KEY.spk})]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        chain.broadcast(tx)
    assert e.value.reason == "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 99"
    chain.mine(1)
    chain.broadcast(tx)  # block 2's coinbase goes into block 102


def test_non_final_then_accepted(chain, coins):
    op, value = coins[0]
    height = chain.tip()[0]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)], locktime=height + 2)
    with pytest.raises(TxRejected) as e:
        chain.broadcast(tx)
    assert e.value.reason == "non-final"
    chain.mine(1)
    with pytest.raises(TxRejected, match="non-final"):
        chain.broadcast(tx)  # a locktime L tx goes into block L + 1 at the earliest
    chain.mine(1)
    chain.broadcast(tx)
    chain.mine(1)
    assert chain.get_transaction(tx.txid()).confirmations == 1


def test_non_final_time_lock(chain, coins, clock):
    op, value = coins[0]
    mtp = chain.info().extra["mediantime"]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)], locktime=mtp + 1000)
    with pytest.raises(TxRejected, match="non-final"):
        chain.broadcast(tx)
    clock.t += 5000
    chain.mine(11)
    chain.broadcast(tx)


def test_bip68_height_lock(chain, coins):
    op, value = coins[0]
    parent = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, KEY.spk)])
    chain.broadcast(parent)
    chain.mine(1)
    child = p2wpkh_spend(KEY, [(parent.outpoint(0), value - 1000)], [TxOut(value - 2000, DEST.spk)], sequence=5)
    with pytest.raises(TxRejected) as e:
        chain.broadcast(child)
    assert e.value.reason == "non-BIP68-final"
    chain.mine(3)
    with pytest.raises(TxRejected, match="non-BIP68-final"):
        chain.broadcast(child)
    chain.mine(1)  # parent has 5 confirmations once the child is mined in the next block
    chain.broadcast(child)
    # version 1 ignores BIP 68
    op2, value2 = coins[1]
    p2 = p2wpkh_spend(KEY, [(op2, value2)], [TxOut(value2 - 1000, KEY.spk)])
    chain.broadcast(p2)
    c2 = p2wpkh_spend(KEY, [(p2.outpoint(0), value2 - 1000)], [TxOut(value2 - 2000, DEST.spk)], sequence=5, version=1)
    chain.broadcast(c2)  # even spending an unconfirmed parent
    chain.mine(1)
    assert chain.get_transaction(c2.txid()).confirmations == 1


def test_bip68_time_lock(chain, coins, clock):
    op, value = coins[0]
    parent = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, KEY.spk)])
    chain.broadcast(parent)
    chain.mine(1)
    op, value = parent.outpoint(0), value - 1000
    seq = (1 << 22) | 2  # 2 * 512 seconds
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)], sequence=seq)
    with pytest.raises(TxRejected, match="non-BIP68-final"):
        chain.broadcast(tx)
    clock.t += 600
    chain.mine(11)
    with pytest.raises(TxRejected, match="non-BIP68-final"):
        chain.broadcast(tx)
    clock.t += 600
    chain.mine(11)
    chain.broadcast(tx)


def test_mempool_chain_mined_in_order(chain, coins):
    op, value = coins[0]
    a = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, KEY.spk)])
    b = p2wpkh_spend(KEY, [(a.outpoint(0), value - 1000)], [TxOut(value - 2000, KEY.spk)])
    c = p2wpkh_spend(KEY, [(b.outpoint(0), value - 2000)], [TxOut(value - 3000, DEST.spk)])
    for tx in (a, b, c):
        chain.broadcast(tx)
    assert chain.broadcast(a) == a.txid()  # already in the mempool: accepted again
    [h] = chain.mine(1)
    txids = [t.txid() for t in chain.block(h).txs]
    assert txids[1:] == [a.txid(), b.txid(), c.txid()]
    with pytest.raises(TxRejected) as e:  # b spent a's only output
        chain.broadcast(a)
    assert e.value.reason == "bad-txns-inputs-missingorspent"
    with pytest.raises(TxRejected) as e:  # c's output is unspent
        chain.broadcast(c)
    assert e.value.reason == "Transaction outputs already in utxo set"
    assert chain.verify_integrity() == chain.tip()[0]


def test_policy_rejections(chain, coins):
    op, value = coins[0]
    with pytest.raises(TxRejected, match="min relay fee not met"):
        chain.broadcast(p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10, DEST.spk)]))  # 0.1 sat/vB minimum
    with pytest.raises(TxRejected) as e:
        chain.broadcast(p2wpkh_spend(KEY, [(op, value), (op, value)], [TxOut(1000, DEST.spk)]))
    assert e.value.reason == "bad-txns-inputs-duplicate"
    with pytest.raises(TxRejected) as e:
        chain.broadcast(p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk), TxOut(100, DEST.spk)]))
    assert e.value.reason == "dust, tx with dust output must be 0-fee"  # one dust output: only at 0 fee
    with pytest.raises(TxRejected) as e:
        chain.broadcast(p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk)] + [TxOut(100, DEST.spk)] * 2))
    assert e.value.reason == "dust"
    with pytest.raises(TxRejected) as e:
        chain.broadcast(p2wpkh_spend(KEY, [(op, value)], [TxOut(21_000_001 * 10**8, DEST.spk)]))
    assert e.value.reason == "bad-txns-vout-toolarge"
    # OP_RETURN outputs are fine, and not added to the UTXO set
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk), TxOut(0, op_return_script(b"hi"))])
    chain.broadcast(tx)
    chain.mine(1)
    assert chain.get_utxo(tx.outpoint(1)) is None and chain.get_utxo(tx.outpoint(0)) is not None
    assert chain.verify_integrity()


def test_halving_and_time(tmp_path):
    clock = Clock(1_000)
    c = EmbeddedChain(tmp_path, clock=clock)
    c.mine(151)
    assert c.block_at(149).txs[0].outputs[0].value_sat == 50 * 10**8
    assert c.block_at(150).txs[0].outputs[0].value_sat == 25 * 10**8
    # the clock is behind genesis: times still strictly increase
    times = [c.block_at(h).time for h in range(0, 152)]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert c.verify_integrity() == 151
    c.close()


def test_two_objects_same_dir(tmp_path):
    a = EmbeddedChain(tmp_path)
    b = EmbeddedChain(tmp_path)
    a.mine(101, KEY.spk)
    assert b.tip() == a.tip()
    [(op, value)] = coinbase_outpoints(b, KEY, 1, 1)
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)])
    b.broadcast(tx)
    assert a.mempool_txids() == [tx.txid()]
    with pytest.raises(TxRejected, match="insufficient fee, rejecting replacement"):  # pays less than tx
        a.broadcast(p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 500, DEST.spk)]))
    a.mine(1)
    assert b.get_transaction(tx.txid()).confirmations == 1
    assert b.verify_integrity() == 102
    a.close()
    b.close()


def _worker(path: str, key_n: int, coins: list, rounds: int, q) -> None:
    try:
        chain = EmbeddedChain(Path(path))
        key = Key(key_n)
        accepted = 0
        for i, (txid, vout, value) in enumerate(coins[:rounds]):
            tx = p2wpkh_spend(key, [(OutPoint(txid, vout), value)], [TxOut(value - 1000 - i, DEST.spk)])
            chain.broadcast(tx)
            accepted += 1
            if i % 3 == 0:
                chain.mine(1)
        chain.close()
        q.put(("ok", accepted))
    except BaseException as err:  # report to the parent
        q.put(("error", repr(err)))


def test_two_processes_concurrently(tmp_path):
    chain = EmbeddedChain(tmp_path)
    k1, k2 = Key(101), Key(102)
    chain.mine(10, k1.spk)
    chain.mine(10, k2.spk)
    chain.mine(100)
    c1 = [(op.txid, op.vout, v) for op, v in coinbase_outpoints(chain, k1, 1, 10)]
    c2 = [(op.txid, op.vout, v) for op, v in coinbase_outpoints(chain, k2, 11, 20)]
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 101, c1, 10, q)),
             ctx.Process(target=_worker, args=(str(tmp_path), 102, c2, 10, q))]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert results == [("ok", 10), ("ok", 10)], results
    chain.mine(1)
    assert chain.mempool_txids() == []
    assert chain.verify_integrity() == chain.tip()[0]
    spent = [e for e in __import__("lncli.chain.scan", fromlist=["x"]).scan_blocks(chain, 0, chain.tip()[0], {DEST.spk})]
    assert len(spent) == 20
    chain.close()


def test_auto_mine(chain):
    start = chain.tip()[0]
    miner = chain.auto_mine(0.05)
    time.sleep(0.4)
    miner.stop()
    assert not miner.errors
    assert chain.tip()[0] >= start + 2
    assert chain.verify_integrity()


def test_mine_evicts_invalid(chain, coins):
    # a tx made invalid behind the chain's back (its input removed) is dropped at mining
    op, value = coins[0]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, KEY.spk)])
    child = p2wpkh_spend(KEY, [(tx.outpoint(0), value - 1000)], [TxOut(value - 2000, KEY.spk)])
    chain.broadcast(tx)
    chain.broadcast(child)
    chain.conn.execute("DELETE FROM chain_utxos WHERE txid=? AND vout=?", (op.txid, op.vout))
    chain.mine(1)
    assert chain.mempool_txids() == []
    assert chain.get_transaction(tx.txid()) is None


def test_replace_locktime_breaks_signature(chain, coins):
    op, value = coins[0]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 1000, DEST.spk)])
    with pytest.raises(TxRejected, match="mempool-script-verify-flag-failed"):
        chain.broadcast(replace(tx, locktime=1))
