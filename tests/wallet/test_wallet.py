"""The node wallet on the embedded regtest chain: fund, balance, spend, change, coin locks, rescan."""

import pytest

from lncli.bitcoin.address import address_to_script
from lncli.bitcoin.script import p2wsh_script
from lncli.bitcoin.tx import TxOut
from lncli.chain.embedded import EmbeddedChain
from lncli.errors import DecodeError
from lncli.wallet.wallet import COINBASE_MATURITY, InsufficientFunds, Wallet

SEED = bytes(range(32))
COIN = 100_000_000


@pytest.fixture
def chain(tmp_path):
    c = EmbeddedChain(tmp_path / "chain")
    yield c
    c.close()


@pytest.fixture
def wallet(tmp_path, chain):
    w = Wallet(tmp_path / "wallet.sqlite3", "regtest", SEED, chain)
    yield w
    w.close()


def fund(wallet, chain, blocks=1):
    spk = address_to_script(wallet.new_address(), "regtest")
    chain.mine(blocks, spk)
    chain.mine(COINBASE_MATURITY)
    wallet.sync()


def test_addresses_are_fresh_p2wpkh(wallet):
    a, b = wallet.new_address(), wallet.new_address()
    c = wallet.new_address(change=True)
    assert a != b != c and all(x.startswith("bcrt1q") and len(x) == 44 for x in (a, b, c))
    paths = [r["path"] for r in wallet.addresses()]
    assert paths == ["m/84'/1'/0'/0/0", "m/84'/1'/0'/0/1", "m/84'/1'/0'/1/0"]


def test_mined_coinbase_matures(wallet, chain):
    spk = address_to_script(wallet.new_address(), "regtest")
    chain.mine(1, spk)
    wallet.sync()
    bal = wallet.balance()
    assert (bal.confirmed_sat, bal.immature_sat) == (0, 50 * COIN)
    chain.mine(COINBASE_MATURITY - 1)
    wallet.sync()
    assert wallet.balance().confirmed_sat == 0
    chain.mine(1)
    wallet.sync()
    assert wallet.balance().confirmed_sat == 50 * COIN


def test_spend_change_and_locks(wallet, chain):
    fund(wallet, chain, blocks=2)
    assert wallet.balance().confirmed_sat == 100 * COIN
    dest = p2wsh_script(b"\x51")
    tx1, change1 = wallet.create_funding([TxOut(COIN, dest)], 1000)
    assert change1 is not None and tx1.outputs[change1.vout].value_sat == change1.value_sat
    assert wallet.balance().reserved_sat == 50 * COIN
    # a second spend picks the other coin, never the reserved one
    tx2, _ = wallet.create_funding([TxOut(COIN, dest)], 1000)
    assert {i.prevout for i in tx1.inputs}.isdisjoint({i.prevout for i in tx2.inputs})
    with pytest.raises(InsufficientFunds, match="insufficient funds: have 0 sat, need .* sat \\(fund this wallet with: lncli fund\\)"):
        wallet.create_funding([TxOut(COIN, dest)], 1000)
    # release one; broadcast the other
    assert wallet.release(tx2.txid()) == 1
    chain.broadcast(tx1)
    wallet.sync()
    bal = wallet.balance()
    assert bal.unconfirmed_sat == change1.value_sat and bal.confirmed_sat == 50 * COIN
    fee = 50 * COIN - COIN - change1.value_sat
    assert fee >= tx1.weight() * 1000 // 1000 - 1 and fee < 2000
    chain.mine(1)
    wallet.sync()
    bal = wallet.balance()
    assert bal.confirmed_sat == 100 * COIN - COIN - fee and bal.unconfirmed_sat == 0 and bal.reserved_sat == 0


def test_send_and_rescan_gives_same_balance(tmp_path, wallet, chain):
    fund(wallet, chain)
    other = Wallet(tmp_path / "other.sqlite3", "regtest", bytes(32), chain)
    res = wallet.send(other.new_address(), 12_345_678)
    chain.mine(1)
    wallet.sync()
    other.sync()
    assert other.balance().confirmed_sat == 12_345_678
    assert wallet.balance().confirmed_sat == 50 * COIN - 12_345_678 - res.fee_sat
    before = wallet.balance()
    wallet.rescan()
    assert wallet.balance() == before
    fresh = Wallet(tmp_path / "fresh.sqlite3", "regtest", SEED, chain)
    fresh.sync()
    assert fresh.balance() == before
    other.close()
    fresh.close()


def test_gap_limit_discovery(tmp_path, wallet, chain):
    # pay the 30th receive address of the same seed: found because lookahead grows as it scans
    addrs = [wallet.new_address() for _ in range(30)]
    chain.mine(1, address_to_script(addrs[15], "regtest"))
    chain.mine(1, address_to_script(addrs[29], "regtest"))
    fresh = Wallet(tmp_path / "fresh.sqlite3", "regtest", SEED, chain)
    fresh.sync()
    assert fresh.balance().immature_sat == 100 * COIN
    fresh.close()


def test_wrong_network_address(wallet, chain):
    fund(wallet, chain)
    with pytest.raises(DecodeError, match="not regtest"):
        wallet.send("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 10_000)


def test_other_seed_refused(tmp_path, chain):
    Wallet(tmp_path / "w.sqlite3", "regtest", SEED, chain).close()
    with pytest.raises(Exception, match="another seed"):
        Wallet(tmp_path / "w.sqlite3", "regtest", bytes(32), chain)
