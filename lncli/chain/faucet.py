"""The embedded regtest chain's faucet: coins for ``lncli fund`` that come from nobody's wallet.

``EmbeddedChain.mine(n)`` pays its coinbases to OP_TRUE, which anyone may spend. :func:`send`
spends such coins (and the faucet's own change, kept at the P2WSH of OP_TRUE, since a bare OP_TRUE
output is not standard) to pay exactly ``amount_sat`` to a script, mining and maturing more
coinbases first when there are not enough. So a wallet funded this way receives exactly what was
asked, as from bitcoind's ``sendtoaddress``, and no coinbase of 50 BTC lands in it.
"""

from __future__ import annotations

import hashlib

from lncli.bitcoin.tx import Transaction, TxIn, TxOut, fee_for_weight
from lncli.chain.embedded import ANYONE_CAN_SPEND, EmbeddedChain
from lncli.chain.validation import COINBASE_MATURITY, block_subsidy
from lncli.errors import InputError, RefusedError

#: the faucet's change: P2WSH of OP_TRUE, spent with the witness [OP_TRUE]
CHANGE_SCRIPT = b"\x00\x20" + hashlib.sha256(ANYONE_CAN_SPEND).digest()
#: inputs per transaction at most (a standard transaction stays under 400,000 weight units)
MAX_INPUTS = 400
_INPUT_WEIGHT = 41 * 4 + 3  # outpoint, empty script_sig, sequence; and a witness of 0 or 1 item
_OVERHEAD_WEIGHT = 11 * 4 + 2 + 2 * 43 * 4  # version, counts, locktime, marker/flag, two P2WSH-sized outputs


def send(chain: EmbeddedChain, script_pubkey: bytes, amount_sat: int) -> bytes:
    """Pay ``amount_sat`` to ``script_pubkey`` from the faucet (a transaction in the mempool, not
    yet mined); returns its txid."""
    if amount_sat <= 0:
        raise InputError("the amount must be positive")
    feerate = chain.estimate_feerate_per_kw()
    scripts = [ANYONE_CAN_SPEND, CHANGE_SCRIPT]
    for _ in range(64):
        coins = chain.coins_paying(scripts, limit=MAX_INPUTS)
        have = sum(c.value for _, c in coins)
        fee = fee_for_weight(_OVERHEAD_WEIGHT + _INPUT_WEIGHT * len(coins), feerate)
        if have >= amount_sat + fee:
            break
        if len(coins) >= MAX_INPUTS:
            raise RefusedError(f"the faucet cannot pay {amount_sat} sat in one transaction: ask for less")
        tip = chain.tip()[0]
        need, n = amount_sat + fee + fee_for_weight(_INPUT_WEIGHT * 64, feerate) - have, 0
        while sum(block_subsidy(tip + 1 + i) for i in range(n)) < need:
            n += 1
            if n > MAX_INPUTS or block_subsidy(tip + n) == 0:
                raise RefusedError(f"the embedded chain's block subsidy can no longer pay {amount_sat} sat")
        chain.mine(n)
        chain.mine(COINBASE_MATURITY)
    else:
        raise RefusedError(f"the faucet cannot pay {amount_sat} sat")
    # only the coins needed, oldest first
    picked, total = [], 0
    for op, c in coins:
        picked.append((op, c))
        total += c.value
        if total >= amount_sat + fee_for_weight(_OVERHEAD_WEIGHT + _INPUT_WEIGHT * len(picked), feerate):
            break
    fee = fee_for_weight(_OVERHEAD_WEIGHT + _INPUT_WEIGHT * len(picked), feerate)
    inputs = [TxIn(op, witness=(ANYONE_CAN_SPEND,) if c.script_pubkey == CHANGE_SCRIPT else ()) for op, c in picked]
    outputs = [TxOut(amount_sat, bytes(script_pubkey))]
    change = total - amount_sat - fee
    if change >= 330:
        outputs.append(TxOut(change, CHANGE_SCRIPT))
    return chain.broadcast(Transaction(2, inputs, outputs))


__all__ = ["send", "CHANGE_SCRIPT"]
