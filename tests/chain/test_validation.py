"""Pure validation rules: subsidy, merkle roots, finality, BIP 68, dust, context-free checks."""

from __future__ import annotations

import pytest

from lncli.bitcoin.script import P2A_SCRIPT, op_return_script, p2pkh_script, p2wsh_script
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut, sha256d
from lncli.chain.interface import TxRejected
from lncli.chain.validation import (
    ChainContext,
    Coin,
    block_subsidy,
    check_inputs,
    check_standard,
    check_transaction,
    coinbase_height,
    dust_threshold,
    is_final,
    merkle_root,
    parse_header,
    sequence_locks,
)
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")["funding_tx"]
OP = OutPoint(b"\x01" * 32, 0)
WPKH = b"\x00\x14" + bytes(20)


def tx(inputs=None, outputs=None, version=2, locktime=0):
    outputs = [TxOut(10_000, WPKH)] if outputs is None else outputs
    return Transaction(version, inputs or [TxIn(OP, sequence=0xFFFFFFFE)], outputs, locktime)


def test_subsidy():
    assert block_subsidy(1) == 50 * 10**8
    assert block_subsidy(149) == 50 * 10**8
    assert block_subsidy(150) == 25 * 10**8
    assert block_subsidy(300) == 1_250_000_000
    assert block_subsidy(150 * 64) == 0


def test_merkle_root_of_real_blocks():
    for key in ("block0_genesis", "block1"):
        raw = bytes.fromhex(V[key])
        header = raw[:80]
        cb = Transaction.from_bytes(raw[81:])
        assert parse_header(header)[2] == merkle_root([cb.txid()])
    a, b, c = (sha256d(bytes([i])) for i in range(3))
    assert merkle_root([a, b, c]) == sha256d(sha256d(a + b) + sha256d(c + c))


def test_bip34_height():
    cb = Transaction.from_hex(V["block1_coinbase_tx"])
    assert coinbase_height(cb) == 1


def test_is_final():
    assert is_final(tx(locktime=0), 1, 0)
    assert is_final(tx(locktime=99), 100, 0)
    assert not is_final(tx(locktime=100), 100, 0)
    assert is_final(tx(inputs=[TxIn(OP, sequence=0xFFFFFFFF)], locktime=100), 100, 0)
    assert not is_final(tx(locktime=600_000_000), 10**6, 600_000_000)
    assert is_final(tx(locktime=600_000_000), 1, 600_000_001)


def test_sequence_locks():
    ctx = ChainContext(next_height=110, tip_mtp=10_000, mtp_at=lambda h: 1000 + h)
    # height based: coin at 100 with 10 blocks: min height 109 < 110 -> ok
    assert sequence_locks(tx([TxIn(OP, sequence=10)]), [100], ctx) == (109, -1)
    # time based: coin_time = mtp(99) = 1099, + 3*512 - 1
    assert sequence_locks(tx([TxIn(OP, sequence=(1 << 22) | 3)]), [100], ctx) == (-1, 1099 + 1536 - 1)
    # disabled, or version 1
    assert sequence_locks(tx([TxIn(OP, sequence=(1 << 31) | 10)]), [100], ctx) == (-1, -1)
    assert sequence_locks(tx([TxIn(OP, sequence=10)], version=1), [100], ctx) == (-1, -1)


def test_dust_thresholds():
    assert dust_threshold(WPKH) == 294
    assert dust_threshold(p2wsh_script(b"\x51")) == 330
    assert dust_threshold(p2pkh_script(bytes(20))) == 546
    assert dust_threshold(op_return_script(b"x")) == 0
    assert dust_threshold(P2A_SCRIPT) == 240


@pytest.mark.parametrize(
    "t,reason",
    [
        (tx(inputs=[TxIn(OP), TxIn(OP)]), "bad-txns-inputs-duplicate"),
        (tx(outputs=[TxOut(21_000_000 * 10**8 + 1, WPKH)]), "bad-txns-vout-toolarge"),
        (tx(outputs=[TxOut(20_000_000 * 10**8, WPKH)] * 2), "bad-txns-txouttotal-toolarge"),
        (tx(inputs=[TxIn(OP), TxIn(OutPoint(bytes(32), 0xFFFFFFFF))]), "bad-txns-prevout-null"),
        (tx(outputs=[]), "bad-txns-vout-empty"),
    ],
)
def test_check_transaction(t, reason):
    with pytest.raises(TxRejected) as e:
        check_transaction(t)
    assert e.value.reason == reason


@pytest.mark.parametrize(
    "t,reason",
    [
        (tx(version=4), "version"),
        (tx(outputs=[TxOut(293, WPKH), TxOut(293, WPKH)]), "dust"),  # one dust output is left to the fee check
        (tx(outputs=[TxOut(1000, b"\x52" * 30)]), "scriptpubkey"),
        (tx(outputs=[TxOut(0, op_return_script(b"a")), TxOut(0, op_return_script(b"b")), TxOut(1000, WPKH)]), "multi-op-return"),
        (tx(inputs=[TxIn(OP, script_sig=b"\x76")]), "scriptsig-not-pushonly"),
    ],
)
def test_check_standard(t, reason):
    with pytest.raises(TxRejected) as e:
        check_standard(t)
    assert e.value.reason == reason


def test_check_inputs():
    t = tx(outputs=[TxOut(10_000, WPKH)])
    assert check_inputs(t, [Coin(12_000, WPKH, 5)], 10) == 2000
    with pytest.raises(TxRejected) as e:
        check_inputs(t, [Coin(9_999, WPKH, 5)], 10)
    assert e.value.reason == "bad-txns-in-belowout, value in (0.00009999) < value out (0.0001)"
    with pytest.raises(TxRejected, match="bad-txns-premature-spend-of-coinbase"):
        check_inputs(t, [Coin(12_000, WPKH, 5, coinbase=True)], 104)
    assert check_inputs(t, [Coin(12_000, WPKH, 5, coinbase=True)], 105) == 2000


def test_bitcoind_formats():
    from lncli.chain.validation import fee_for, format_feerate, format_money, reject_code

    assert [format_money(v) for v in (50 * 10**8, 5_000_000_001, 25_000, 30_000, 5, 0, -150)] == [
        "50.00", "50.00000001", "0.00025", "0.0003", "0.00000005", "0.00", "-0.0000015"]
    assert format_feerate(10_000, 110) == "0.00090909 BTC/kvB"
    assert fee_for(110, 100) == 11 and fee_for(141, 100) == 15 and fee_for(0, 100) == 0
    for reason, code in [
        ("bad-txns-in-belowout, value in (50.00) < value out (50.00000001)", "bad-txns-in-belowout"),
        ("mempool-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation), input 0 of aa (wtxid bb), spending cc:0",
         "mempool-script-verify-flag-failed"),
        ("min relay fee not met, 0 < 11", "min relay fee not met"),
        ("insufficient fee, rejecting replacement aa; new feerate 1 <= old feerate 2", "insufficient fee"),
        ("non-BIP68-final", "non-BIP68-final"),
    ]:
        assert reject_code(reason) == code
