"""``lncli fund``: put coins into this datadir's wallet on regtest (and a deposit address elsewhere).

Embedded chain: mine coinbases to the wallet and let them mature (101 blocks the first time),
then send AMOUNT to a fresh wallet address and mine one block, so the wallet holds an output of
exactly AMOUNT. bitcoind: bitcoind's own wallet (``bitcoindwallet``, default ``lncli``; created or
loaded, and mined to when it cannot pay) sends AMOUNT to a fresh wallet address, then one block is
mined.
"""

from __future__ import annotations

from lncli.bitcoin.address import address_to_script
from lncli.bitcoin.tx import TxOut, fee_for_weight
from lncli.wallet.wallet import COINBASE_MATURITY, InsufficientFunds, Wallet, estimate_weight

REGTEST_SUBSIDY_HALVING = 150


def _subsidy(height: int) -> int:
    halvings = height // REGTEST_SUBSIDY_HALVING
    return 0 if halvings >= 64 else (50 * 100_000_000) >> halvings


def fund(wallet: Wallet, backend, amount_sat: int) -> dict:
    network = wallet.network
    if network != "regtest":
        address = wallet.new_address()
        return {"network": network, "address": address, "amount_sat": amount_sat, "funded": False,
                "note": f"send {amount_sat} sat to this address; lncli fund only moves coins on regtest"}
    wallet.sync()
    if backend.kind == "bitcoind":
        address = wallet.new_address()
        txid = backend.send_from_wallet(address, amount_sat)
        backend.mine(1)
    else:
        feerate = backend.estimate_feerate_per_kw()
        need = amount_sat + fee_for_weight(estimate_weight(4, [b"\x00" * 22] * 2), feerate)
        for _ in range(50):
            if wallet.balance().spendable_sat >= need:
                break
            tip = backend.tip()[0]
            mine_to_us = 1
            while sum(_subsidy(tip + 1 + i) for i in range(mine_to_us)) < need - wallet.balance().spendable_sat:
                mine_to_us += 1
                if mine_to_us > 1000:
                    raise InsufficientFunds(wallet.balance().spendable_sat, need)
            spk = address_to_script(wallet.new_address(), network)
            backend.mine(mine_to_us, spk)
            backend.mine(COINBASE_MATURITY)
            wallet.sync()
        address = wallet.new_address()
        tx, _change = wallet.create_funding([TxOut(amount_sat, address_to_script(address, network))], feerate)
        try:
            backend.broadcast(tx)
        except BaseException:
            wallet.release(tx.txid())
            raise
        wallet.mark_broadcast(tx)
        txid = tx.txid()
        backend.mine(1)
    wallet.sync()
    status = backend.get_transaction(txid)
    return {
        "network": network,
        "address": address,
        "txid": txid[::-1].hex(),
        "amount_sat": amount_sat,
        "confirmations": status.confirmations if status else 0,
        "balance_sat": wallet.balance().confirmed_sat,
        "funded": True,
    }
