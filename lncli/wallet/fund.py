"""``lncli fund``: put coins into this datadir's wallet on regtest (and a deposit address elsewhere).

Embedded chain: the chain's faucet (:mod:`lncli.chain.faucet`: the coinbases ``mine`` pays to
OP_TRUE, mined and matured when there are not enough, 101 blocks the first time) sends AMOUNT to a
fresh wallet address and one block is mined, so the wallet receives exactly AMOUNT.

bitcoind: bitcoind's own wallet (``bitcoindwallet``, default ``lncli``; created or loaded, and mined
to when it cannot pay) sends AMOUNT to a fresh wallet address, then one block is mined (to
bitcoind's wallet).
"""

from __future__ import annotations

from lncli.bitcoin.address import address_to_script
from lncli.wallet.wallet import Wallet


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
        from lncli.chain import faucet

        address = wallet.new_address()
        txid = faucet.send(backend, address_to_script(address, network), amount_sat)
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
