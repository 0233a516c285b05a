"""lncli.chain.faucet: the embedded chain pays exactly the amount asked, from coins nobody's wallet holds."""

from __future__ import annotations

import pytest

from lncli.bitcoin.tx import OutPoint
from lncli.chain import faucet
from lncli.chain.embedded import EmbeddedChain
from lncli.errors import InputError

DEST = b"\x00\x14" + bytes(range(20))  # a P2WPKH script


@pytest.fixture
def chain(tmp_path):
    c = EmbeddedChain(tmp_path / "chain")
    yield c
    c.close()


def _paid(chain, txid):
    chain.mine(1)
    st = chain.get_transaction(txid)
    assert st is not None and st.confirmations == 1
    return st.tx


def test_pays_exactly_the_amount_and_keeps_the_change(chain):
    txid = faucet.send(chain, DEST, 100_000_000)
    assert chain.tip()[0] == 101  # one coinbase mined and matured
    tx = _paid(chain, txid)
    assert tx.outputs[0].value_sat == 100_000_000 and tx.outputs[0].script_pubkey == DEST
    (change,) = tx.outputs[1:]
    assert change.script_pubkey == faucet.CHANGE_SCRIPT
    fee = 50 * 10**8 - sum(o.value_sat for o in tx.outputs)
    assert 0 < fee < 10_000
    assert chain.get_utxo(OutPoint(txid, 0)).value == 100_000_000


def test_reuses_its_coins_and_change_then_mines_for_a_large_amount(chain):
    faucet.send(chain, DEST, 1000)
    chain.mine(1)
    height = chain.tip()[0]
    t2 = faucet.send(chain, DEST, 2000)  # from the change or a mature coinbase: no new blocks
    assert chain.tip()[0] == height
    assert _paid(chain, t2).outputs[0].value_sat == 2000
    t3 = faucet.send(chain, DEST, 300 * 10**8)  # more than the mature coins hold: mines more
    tx = _paid(chain, t3)
    assert tx.outputs[0].value_sat == 300 * 10**8 and len(tx.inputs) > 1


def test_refuses_a_non_positive_amount(chain):
    with pytest.raises(InputError):
        faucet.send(chain, DEST, 0)
