"""The ChainBackend contract: what every backend (embedded and bitcoind) must do.

tests/chain/test_bitcoind.py runs these same tests against a real ``bitcoind -regtest`` (skipped
with a reason when none is installed), by importing them and overriding the ``backend`` fixture.
Rejections are compared by their code (:func:`lncli.chain.validation.reject_code`: bitcoind's
reason without the details after ", " or " ("); the embedded chain also reproduces bitcoind v29's
full strings, which test_bitcoind.py checks side by side.
The helpers (``Key``, ``p2wpkh_spend``, ``funded``) are shared with test_embedded.py.
"""

from __future__ import annotations

import pytest

from lncli.bitcoin.ecdsa import pubkey_from_privkey, sign, witness_signature
from lncli.bitcoin.script import hash160, p2wpkh_script_for_pubkey
from lncli.bitcoin.sighash import SighashCache, p2wpkh_script_code
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.chain.interface import Block, ChainBackend, ChainError, ChainInfo, TxRejected
from lncli.chain.scan import OutputEvent, SpendEvent, scan_blocks
from lncli.chain.validation import reject_code

BACKENDS = ["embedded"]


class Key:
    def __init__(self, n: int):
        self.priv = n.to_bytes(32, "big")
        self.pub = pubkey_from_privkey(self.priv)
        self.spk = p2wpkh_script_for_pubkey(self.pub)
        self.code = p2wpkh_script_code(hash160(self.pub))


def p2wpkh_spend(
    key: Key,
    prevouts: list[tuple[OutPoint, int]],
    outputs: list[TxOut],
    *,
    version: int = 2,
    locktime: int = 0,
    sequence: int = 0xFFFFFFFD,
) -> Transaction:
    """A signed tx spending P2WPKH outputs of ``key`` (outpoint, value) to ``outputs``."""
    tx = Transaction(version, [TxIn(op, sequence=sequence) for op, _ in prevouts], outputs, locktime)
    cache = SighashCache(tx)
    witnesses = [
        [witness_signature(sign(key.priv, cache.segwit_v0(i, key.code, value))), key.pub]
        for i, (_op, value) in enumerate(prevouts)
    ]
    return tx.with_witnesses(witnesses)


def coinbase_outpoints(backend, key: Key, from_height: int, to_height: int) -> list[tuple[OutPoint, int]]:
    out = []
    for ev in scan_blocks(backend, from_height, to_height, {key.spk}):
        if ev.height + 100 <= backend.tip()[0] + 1:
            out.append((ev.outpoint, ev.value_sat))
    return out


def make_backend(kind: str, tmp_path):
    if kind == "embedded":
        from lncli.chain.embedded import EmbeddedChain

        return EmbeddedChain(tmp_path / "chain")
    pytest.skip(f"no {kind} backend available")


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    b = make_backend(request.param, tmp_path)
    yield b
    b.close()


KEY = Key(7)
DEST = Key(8)


@pytest.fixture
def funded(backend):
    """A backend with 101 blocks mined to KEY after the current tip: one mature coinbase."""
    start = backend.tip()[0] + 1
    backend.mine(101, KEY.spk)
    coins = coinbase_outpoints(backend, KEY, start, start + 100)
    assert coins
    return backend, coins


def test_is_a_chain_backend(backend):
    assert isinstance(backend, ChainBackend)
    assert backend.network == "regtest"
    assert backend.kind in ("embedded", "bitcoind")


def test_info(backend):
    info = backend.info()
    assert isinstance(info, ChainInfo)
    assert info.chain == "regtest"
    height, tip_hash = backend.tip()
    assert info.blocks == height and info.best_block_hash == tip_hash[::-1].hex()
    assert info.difficulty == pytest.approx(4.656542373906925e-10)
    assert info.verification_progress == pytest.approx(1.0)


def test_genesis_and_links(backend):
    assert backend.block_hash(0)[::-1].hex() == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    start = backend.tip()[0]
    hashes = backend.mine(3, KEY.spk)
    assert len(hashes) == 3
    height, tip = backend.tip()
    assert height == start + 3 and tip == hashes[-1]
    prev = backend.block_at(start)
    # consensus: a block's time is above the median time past of the 11 blocks before it (bitcoind
    # mines several blocks in one second with equal times, the embedded chain adds a second each)
    times = [backend.block_at(h).time for h in range(max(0, start - 10), start + 1)]
    for h in range(start + 1, height + 1):
        b = backend.block_at(h)
        assert isinstance(b, Block) and b.height == h
        assert b.prev_hash == prev.hash and b.time > sorted(times[-11:])[len(times[-11:]) // 2]
        times.append(b.time)
        assert backend.block(b.hash) == b and backend.block_hash(h) == b.hash
        assert b.txs[0].is_coinbase()
        prev = b
    with pytest.raises(ChainError):
        backend.block_hash(height + 1)
    with pytest.raises(ChainError):
        backend.block_at(height + 1)


def test_fee_estimate_floor(backend):
    assert backend.estimate_feerate_per_kw() >= 253
    assert backend.estimate_feerate_per_kw(1) >= 253


def test_broadcast_confirm_and_scan(funded):
    backend, coins = funded
    (op, value) = coins[0]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk)])
    txid = backend.broadcast(tx)
    assert txid == tx.txid()
    assert txid in backend.mempool_txids()
    st = backend.get_transaction(txid)
    assert st is not None and st.confirmations == 0 and st.tx.txid() == txid
    [block_hash] = backend.mine(1, KEY.spk)
    st = backend.get_transaction(txid)
    height = backend.tip()[0]
    assert st.confirmations == 1 and st.block_height == height and st.block_hash == block_hash
    assert txid not in backend.mempool_txids()
    block = backend.block(block_hash)
    assert txid in [t.txid() for t in block.txs]
    # the coinbase pays the subsidy plus the fee
    assert block.txs[0].outputs[0].value_sat == 50 * 10**8 // (2 ** (height // 150)) + 10_000
    events = scan_blocks(backend, height, height, {DEST.spk}, {op})
    kinds = {type(e) for e in events}
    assert kinds == {OutputEvent, SpendEvent}
    spend = next(e for e in events if isinstance(e, SpendEvent))
    assert spend.spending_txid == txid and spend.input_index == 0 and spend.height == height
    out = next(e for e in events if isinstance(e, OutputEvent))
    assert (out.txid, out.vout, out.value_sat) == (txid, 0, value - 10_000)
    backend.mine(1)
    assert backend.get_transaction(txid).confirmations == 2
    with pytest.raises(TxRejected) as e:  # sent again once confirmed
        backend.broadcast(tx)
    assert e.value.reason == "Transaction outputs already in utxo set"


def test_unknown_tx(backend):
    assert backend.get_transaction(b"\x13" * 32) is None


def test_double_spend_rejected(funded):
    """A conflicting spend that does not pay enough to replace the first is refused (bitcoind
    v28+ replaces by fee whatever the sequence numbers: full RBF); once one is mined, any other
    spend of that coin is refused."""
    backend, coins = funded
    op, value = coins[0]
    a = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk)])
    b = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 5_000, DEST.spk)], sequence=0xFFFFFFFF)
    backend.broadcast(a)
    with pytest.raises(TxRejected) as e:
        backend.broadcast(b)
    assert reject_code(e.value.reason) == "insufficient fee"
    assert backend.mempool_txids() == [a.txid()]
    backend.mine(1)
    with pytest.raises(TxRejected) as e:
        backend.broadcast(b)
    assert reject_code(e.value.reason) == "bad-txns-inputs-missingorspent"


def test_replacement_by_fee(funded):
    backend, coins = funded
    op, value = coins[0]
    a = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk)], sequence=0xFFFFFFFF)
    child = p2wpkh_spend(DEST, [(OutPoint(a.txid(), 0), value - 10_000)], [TxOut(value - 20_000, DEST.spk)])
    backend.broadcast(a)
    backend.broadcast(child)
    # a higher feerate than a, but less than a + child pay together
    low = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 15_000, KEY.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(low)
    assert e.value.reason.startswith(f"insufficient fee, rejecting replacement {low.txid_hex()}, less fees")
    b = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 30_000, KEY.spk)])
    assert backend.broadcast(b) == b.txid()
    assert backend.mempool_txids() == [b.txid()]  # a and its child are gone
    [block_hash] = backend.mine(1)
    assert b.txid() in [t.txid() for t in backend.block(block_hash).txs]
    assert backend.get_transaction(a.txid()) is None


def test_overspend_rejected(funded):
    backend, coins = funded
    op, value = coins[0]
    tx = p2wpkh_spend(KEY, [(op, value)], [TxOut(value + 1, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(tx)
    assert reject_code(e.value.reason) == "bad-txns-in-belowout"
    assert e.value.reason == "bad-txns-in-belowout, value in (50.00) < value out (50.00000001)"


def test_bad_signature_rejected(funded):
    backend, coins = funded
    op, value = coins[0]
    tx = p2wpkh_spend(DEST, [(op, value)], [TxOut(value - 1000, DEST.spk)])  # wrong key
    with pytest.raises(TxRejected) as e:
        backend.broadcast(tx)
    assert reject_code(e.value.reason) == "mempool-script-verify-flag-failed"
    assert e.value.reason == (
        f"mempool-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation), input 0 of "
        f"{tx.txid_hex()} (wtxid {tx.wtxid()[::-1].hex()}), spending {op.txid[::-1].hex()}:{op.vout}"
    )


def test_missing_input(backend):
    tx = p2wpkh_spend(KEY, [(OutPoint(b"\x99" * 32, 0), 10_000)], [TxOut(5000, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(tx)
    assert e.value.reason == "bad-txns-inputs-missingorspent"


def test_fee_and_dust_rejections(funded):
    backend, coins = funded
    op, value = coins[0]
    free = p2wpkh_spend(KEY, [(op, value)], [TxOut(value, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(free)
    assert e.value.reason == f"min relay fee not met, 0 < {-(-free.vsize() // 10)}"  # 0.1 sat/vB, rounded up
    dusty = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk), TxOut(100, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(dusty)
    assert e.value.reason == "dust, tx with dust output must be 0-fee"
    young = p2wpkh_spend(KEY, [(op, value)], [TxOut(value - 10_000, DEST.spk)], locktime=backend.tip()[0] + 2)
    with pytest.raises(TxRejected) as e:
        backend.broadcast(young)
    assert e.value.reason == "non-final"


def test_premature_coinbase_spend(backend):
    height = backend.tip()[0]
    backend.mine(1, KEY.spk)
    [ev] = scan_blocks(backend, height + 1, height + 1, {KEY.spk})
    backend.mine(1)
    tx = p2wpkh_spend(KEY, [(ev.outpoint, ev.value_sat)], [TxOut(ev.value_sat - 10_000, DEST.spk)])
    with pytest.raises(TxRejected) as e:
        backend.broadcast(tx)
    assert e.value.reason == "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 2"
