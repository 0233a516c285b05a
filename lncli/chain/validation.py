"""Transaction and block validation rules, in bitcoind's words.

Pure functions over a view of the coins: ``get_coin(outpoint) -> Coin | None`` (the chain's UTXO
set plus the mempool's outputs) and ``mempool_spender(outpoint) -> txid | None``. Rejections
raise ``TxRejected(reason)`` with the reject reason bitcoind's ``sendrawtransaction`` gives
(``bad-txns-inputs-missingorspent``, ``non-final``, ``non-BIP68-final``, ``bad-txns-premature-spend-of-coinbase,
tried to spend coinbase at depth 1``, ``bad-txns-in-belowout, value in (50.00) < value out (50.00000001)``,
``min relay fee not met, 0 < 11``, ``insufficient fee, rejecting replacement ...``,
``mempool-script-verify-flag-failed (...), input 0 of ... (wtxid ...), spending ...:0`` ...): the full
strings of Bitcoin Core v29 (checked against a running ``bitcoind -regtest``), so a user reads the
same text on both backends. :func:`reject_code` cuts such a string down to its code.

:func:`accept_to_mempool` follows the order of bitcoind's ``AcceptToMemoryPool``: context-free
checks, standardness, finality, missing inputs, BIP 68, input values, witness standardness, the
dust and fee checks, replacement of conflicting mempool transactions (full RBF, as bitcoind v28+:
BIP 125 rules 2 to 6 without the signalling rule), then scripts.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lncli.bitcoin.script import classify
from lncli.bitcoin.sighash import SighashCache
from lncli.bitcoin.tx import OutPoint, Transaction, sha256d
from lncli.chain.interface import TxRejected
from lncli.chain.interpreter import MANDATORY_FLAGS, ScriptError, verify_input, verify_input_policy

__all__ = [
    "Coin",
    "ChainContext",
    "COIN",
    "MAX_MONEY",
    "COINBASE_MATURITY",
    "LOCKTIME_THRESHOLD",
    "REGTEST_HALVING_INTERVAL",
    "block_subsidy",
    "merkle_root",
    "check_transaction",
    "check_standard",
    "is_final",
    "sequence_locks",
    "check_inputs",
    "check_witness_standard",
    "check_scripts",
    "dust_threshold",
    "accept_to_mempool",
    "MempoolEntry",
    "format_money",
    "format_feerate",
    "fee_for",
    "reject_code",
    "validate_block_tx",
]

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
COINBASE_MATURITY = 100
LOCKTIME_THRESHOLD = 500_000_000
REGTEST_HALVING_INTERVAL = 150
MIN_RELAY_FEE_PER_KVB = 100  # sat per 1000 virtual bytes (bitcoind v29.1+: 0.1 sat/vB)
INCREMENTAL_RELAY_FEE_PER_KVB = 100  # the extra a replacement must pay, per 1000 vbytes
MAX_REPLACEMENT_CANDIDATES = 100
DUST_RELAY_FEE_PER_KVB = 3000
MAX_STANDARD_TX_WEIGHT = 400_000
MAX_BLOCK_WEIGHT = 4_000_000
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
MAX_STANDARD_SCRIPTSIG_SIZE = 1650
MIN_STANDARD_TX_NONWITNESS_SIZE = 65

SEQ_DISABLE = 1 << 31
SEQ_TYPE = 1 << 22
SEQ_MASK = 0xFFFF
SEQ_GRANULARITY = 9


def format_money(sat: int) -> str:
    """bitcoind's FormatMoney: BTC with at least two decimals, trailing zeros cut
    (``50.00``, ``0.0003``, ``0.00000005``)."""
    sign = "-" if sat < 0 else ""
    q, r = divmod(abs(sat), COIN)
    frac = f"{r:08d}".rstrip("0")
    return f"{sign}{q}.{frac.ljust(2, '0')}"


def fee_for(vsize: int, per_kvb: int) -> int:
    """bitcoind's CFeeRate::GetFee: the fee at ``per_kvb`` sat/kvB for ``vsize``, rounded up."""
    return -(-vsize * per_kvb // 1000)


def format_feerate(fee: int, vsize: int) -> str:
    """bitcoind's CFeeRate(fee, vsize).ToString(): ``0.00090909 BTC/kvB``."""
    per_k = fee * 1000 // vsize if vsize else 0
    return f"{per_k // COIN}.{per_k % COIN:08d} BTC/kvB"


def reject_code(reason: str) -> str:
    """The code of a reject reason, without bitcoind's details: ``bad-txns-in-belowout, value
    in (...) < value out (...)`` -> ``bad-txns-in-belowout``; ``mempool-script-verify-flag-failed
    (...), input 0 of ...`` -> ``mempool-script-verify-flag-failed``; ``min relay fee not met, 0 <
    11`` -> ``min relay fee not met``."""
    code = reason.split(", ", 1)[0]
    return code.split(" (", 1)[0]


@dataclass(frozen=True)
class MempoolEntry:
    """What replacement checks need of a mempool transaction."""

    txid: bytes
    fee: int
    vsize: int
    parents: frozenset  # txids its inputs spend from


@dataclass(frozen=True)
class Coin:
    """An unspent output as validation needs it. ``height`` is the block height that created
    it (for a mempool output: the height of the next block)."""

    value: int
    script_pubkey: bytes
    height: int
    coinbase: bool = False


@dataclass(frozen=True)
class ChainContext:
    """Where a transaction would be mined: ``next_height`` (tip + 1), ``tip_mtp`` (median time
    past of the tip, BIP 113) and ``mtp_at(height)`` (median time past of the block at a height,
    for BIP 68 time locks)."""

    next_height: int
    tip_mtp: int
    mtp_at: Callable[[int], int]


def block_subsidy(height: int, halving_interval: int = REGTEST_HALVING_INTERVAL) -> int:
    halvings = height // halving_interval
    if halvings >= 64:
        return 0
    return (50 * COIN) >> halvings


def merkle_root(txids: Sequence[bytes]) -> bytes:
    """Bitcoin's merkle root of internal-order txids (the last one doubled on odd levels)."""
    if not txids:
        return bytes(32)
    level = list(txids)
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# --------------------------------------------------------------------------------------------
# Context-free and policy checks


def check_transaction(tx: Transaction) -> None:
    """bitcoind's CheckTransaction (consensus, no context)."""
    if not tx.inputs:
        raise TxRejected("bad-txns-vin-empty")
    if not tx.outputs:
        raise TxRejected("bad-txns-vout-empty")
    if tx.base_size() * 4 > MAX_BLOCK_WEIGHT:
        raise TxRejected("bad-txns-oversize")
    total = 0
    for out in tx.outputs:
        if out.value_sat > MAX_MONEY:
            raise TxRejected("bad-txns-vout-toolarge")
        total += out.value_sat
        if total > MAX_MONEY:
            raise TxRejected("bad-txns-txouttotal-toolarge")
    seen = set()
    for txin in tx.inputs:
        key = (txin.prevout.txid, txin.prevout.vout)
        if key in seen:
            raise TxRejected("bad-txns-inputs-duplicate")
        seen.add(key)
    if tx.is_coinbase():
        if not 2 <= len(tx.inputs[0].script_sig) <= 100:
            raise TxRejected("bad-cb-length")
    else:
        for txin in tx.inputs:
            if txin.prevout.is_null():
                raise TxRejected("bad-txns-prevout-null")


def dust_threshold(script_pubkey: bytes, dust_relay_fee_per_kvb: int = DUST_RELAY_FEE_PER_KVB) -> int:
    """bitcoind's GetDustThreshold: below this value an output is dust (0 for OP_RETURN)."""
    if script_pubkey[:1] == b"\x6a" or len(script_pubkey) > 10_000:
        return 0
    size = 8 + len(script_pubkey) + (1 if len(script_pubkey) < 0xFD else 3)
    kind, _ = classify(script_pubkey)
    if kind in ("p2wpkh", "p2wsh", "p2tr", "p2a", "witness_unknown"):
        size += 32 + 4 + 1 + 107 // 4 + 4
    else:
        size += 32 + 4 + 1 + 107 + 4
    return size * dust_relay_fee_per_kvb // 1000


def check_standard(tx: Transaction) -> int:
    """bitcoind's IsStandardTx (relay policy); returns the number of dust outputs (0 or 1)."""
    if not 1 <= tx.version <= 3:
        raise TxRejected("version")
    if tx.weight() > MAX_STANDARD_TX_WEIGHT:
        raise TxRejected("tx-size")
    if tx.base_size() < MIN_STANDARD_TX_NONWITNESS_SIZE:
        raise TxRejected("tx-size-small")
    for txin in tx.inputs:
        if len(txin.script_sig) > MAX_STANDARD_SCRIPTSIG_SIZE:
            raise TxRejected("scriptsig-size")
        if not _push_only(txin.script_sig):
            raise TxRejected("scriptsig-not-pushonly")
    n_data = n_dust = 0
    for out in tx.outputs:
        kind, _ = classify(out.script_pubkey)
        if kind in ("nonstandard", "witness_unknown"):
            raise TxRejected("scriptpubkey")
        if kind == "nulldata":
            n_data += 1
            continue
        if kind == "multisig":
            raise TxRejected("bare-multisig")
        if out.value_sat < dust_threshold(out.script_pubkey):
            n_dust += 1
    if n_dust > 1:  # one dust output is allowed (ephemeral dust), but then the tx must pay no fee
        raise TxRejected("dust")
    if n_data > 1:
        raise TxRejected("multi-op-return")
    return n_dust


def _push_only(script: bytes) -> bool:
    from lncli.bitcoin.script import is_push_only

    return not script or is_push_only(script)


# --------------------------------------------------------------------------------------------
# Locks


def is_final(tx: Transaction, block_height: int, block_time: int) -> bool:
    """bitcoind's IsFinalTx: ``block_time`` is the tip's median time past (BIP 113)."""
    lock = tx.locktime
    if lock == 0:
        return True
    limit = block_height if lock < LOCKTIME_THRESHOLD else block_time
    if lock < limit:
        return True
    return all(txin.sequence == 0xFFFFFFFF for txin in tx.inputs)


def sequence_locks(tx: Transaction, coin_heights: Sequence[int], ctx: ChainContext) -> tuple[int, int]:
    """BIP 68 (CalculateSequenceLocks): the (min_height, min_time) the tx's inputs impose;
    the tx may be in a block of height > min_height whose predecessor's MTP > min_time."""
    min_height = -1
    min_time = -1
    if tx.version < 2:
        return min_height, min_time
    for txin, coin_height in zip(tx.inputs, coin_heights):
        seq = txin.sequence
        if seq & SEQ_DISABLE:
            continue
        if seq & SEQ_TYPE:
            coin_time = ctx.mtp_at(max(coin_height - 1, 0))
            min_time = max(min_time, coin_time + ((seq & SEQ_MASK) << SEQ_GRANULARITY) - 1)
        else:
            min_height = max(min_height, coin_height + (seq & SEQ_MASK) - 1)
    return min_height, min_time


def check_sequence_locks(tx: Transaction, coin_heights: Sequence[int], ctx: ChainContext) -> bool:
    min_height, min_time = sequence_locks(tx, coin_heights, ctx)
    return min_height < ctx.next_height and min_time < ctx.tip_mtp


# --------------------------------------------------------------------------------------------
# Inputs


def check_inputs(tx: Transaction, coins: Sequence[Coin], spend_height: int) -> int:
    """bitcoind's Consensus::CheckTxInputs; returns the fee."""
    value_in = 0
    for coin in coins:
        if coin.coinbase and spend_height - coin.height < COINBASE_MATURITY:
            raise TxRejected(
                f"bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth {spend_height - coin.height}"
            )
        value_in += coin.value
        if coin.value > MAX_MONEY or value_in > MAX_MONEY:
            raise TxRejected("bad-txns-inputvalues-outofrange")
    value_out = tx.output_value()
    if value_in < value_out:
        raise TxRejected(
            f"bad-txns-in-belowout, value in ({format_money(value_in)}) < value out ({format_money(value_out)})"
        )
    fee = value_in - value_out
    if fee > MAX_MONEY:
        raise TxRejected("bad-txns-fee-outofrange")
    return fee


def check_witness_standard(tx: Transaction, coins: Sequence[Coin]) -> None:
    """bitcoind's IsWitnessStandard (P2WSH limits) and AreInputsStandard, simplified."""
    for txin, coin in zip(tx.inputs, coins):
        kind, _ = classify(coin.script_pubkey)
        if kind == "nonstandard" and coin.script_pubkey not in (b"\x51",):
            raise TxRejected("bad-txns-nonstandard-inputs")
        if kind == "p2wsh" and txin.witness:
            script = txin.witness[-1]
            if len(script) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                raise TxRejected("bad-witness-nonstandard")
            items = txin.witness[:-1]
            if len(items) > MAX_STANDARD_P2WSH_STACK_ITEMS:
                raise TxRejected("bad-witness-nonstandard")
            if any(len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE for item in items):
                raise TxRejected("bad-witness-nonstandard")


def check_scripts(tx: Transaction, coins: Sequence[Coin], policy: bool = True) -> None:
    """Every input's script; raises TxRejected with bitcoind's script-verify reason."""
    cache = SighashCache(tx)
    for i, coin in enumerate(coins):
        try:
            if policy:
                verify_input_policy(tx, i, coin.script_pubkey, coin.value, cache)
            else:
                verify_input(tx, i, coin.script_pubkey, coin.value, MANDATORY_FLAGS, cache)
        except ScriptError as err:
            if not policy:
                err.mandatory = True
            prev = tx.inputs[i].prevout
            where = f"input {i} of {tx.txid_hex()} (wtxid {tx.wtxid()[::-1].hex()}), spending {prev.txid[::-1].hex()}:{prev.vout}"
            prefix = "mempool" if policy else "block"
            raise TxRejected(f"{prefix}-script-verify-flag-failed ({err.reason}), {where}", tx.txid_hex()) from None


# --------------------------------------------------------------------------------------------
# Whole-transaction entry points


def accept_to_mempool(
    tx: Transaction,
    get_coin: Callable[[OutPoint], Coin | None],
    mempool_spender: Callable[[OutPoint], bytes | None],
    ctx: ChainContext,
    *,
    in_mempool: Callable[[bytes], bool] = lambda txid: False,
    min_relay_fee_per_kvb: int = MIN_RELAY_FEE_PER_KVB,
    mempool_entry: Callable[[bytes], MempoolEntry | None] | None = None,
    mempool_descendants: Callable[[bytes], set[bytes]] = lambda txid: set(),
    replaced: list[bytes] | None = None,
) -> tuple[int, list[Coin]]:
    """Validate ``tx`` for the mempool; return ``(fee, coins spent)``. Raises TxRejected.

    A transaction spending an output some mempool transaction already spends replaces it (and
    its descendants, which ``mempool_descendants(txid)`` lists) when it passes bitcoind's
    replacement rules; ``mempool_entry(txid)`` describes a mempool transaction. The txids to
    evict are appended to ``replaced``. Without ``mempool_entry`` any conflict is refused
    (``txn-mempool-conflict``)."""
    txid_hex = tx.txid_hex()
    try:
        check_transaction(tx)
        if tx.is_coinbase():
            raise TxRejected("coinbase")
        n_dust = check_standard(tx)
        if not is_final(tx, ctx.next_height, ctx.tip_mtp):
            raise TxRejected("non-final")
        if in_mempool(tx.txid()):
            raise TxRejected("txn-already-in-mempool")
        direct: list[bytes] = []
        for txin in tx.inputs:
            spender = mempool_spender(txin.prevout)
            if spender is not None:
                if mempool_entry is None:
                    raise TxRejected("txn-mempool-conflict")
                if spender not in direct:
                    direct.append(spender)
        coins: list[Coin] = []
        for txin in tx.inputs:
            coin = get_coin(txin.prevout)
            if coin is None:
                raise TxRejected("bad-txns-inputs-missingorspent")
            coins.append(coin)
        if not check_sequence_locks(tx, [c.height for c in coins], ctx):
            raise TxRejected("non-BIP68-final")
        fee = check_inputs(tx, coins, ctx.next_height)
        check_witness_standard(tx, coins)
        if n_dust and fee != 0:
            raise TxRejected("dust, tx with dust output must be 0-fee")
        vsize = tx.vsize()
        min_fee = fee_for(vsize, min_relay_fee_per_kvb)
        if fee < min_fee:
            raise TxRejected(f"min relay fee not met, {fee} < {min_fee}")
        if direct:
            evict = _replacement_checks(tx, fee, vsize, direct, mempool_entry, mempool_descendants)
            if replaced is not None:
                replaced.extend(evict)
    except TxRejected as err:
        if err.txid is None:
            raise TxRejected(err.reason, txid_hex) from None
        raise
    check_scripts(tx, coins, policy=True)
    return fee, coins


def _replacement_checks(
    tx: Transaction,
    fee: int,
    vsize: int,
    direct: list[bytes],
    mempool_entry: Callable[[bytes], MempoolEntry | None],
    mempool_descendants: Callable[[bytes], set[bytes]],
) -> list[bytes]:
    """bitcoind's replacement rules (full RBF); returns every txid the replacement evicts."""
    txid_hex = tx.txid_hex()
    entries = {t: mempool_entry(t) for t in direct}
    parents = {txin.prevout.txid for txin in tx.inputs}
    for t in direct:
        if t in parents:
            raise TxRejected(f"bad-txns-spends-conflicting-tx, {txid_hex} spends conflicting transaction {t[::-1].hex()}")
    # rule 6: a higher feerate than every direct conflict
    new_rate = fee * 1000 // vsize
    for t in direct:
        e = entries[t]
        if new_rate <= e.fee * 1000 // e.vsize:
            raise TxRejected(
                f"insufficient fee, rejecting replacement {txid_hex}; new feerate {format_feerate(fee, vsize)} "
                f"<= old feerate {format_feerate(e.fee, e.vsize)}"
            )
    # rule 5: not too many evictions
    evict: list[bytes] = []
    for t in direct:
        for d in [t, *sorted(mempool_descendants(t))]:
            if d not in evict:
                evict.append(d)
    if len(evict) > MAX_REPLACEMENT_CANDIDATES:
        raise TxRejected(
            f"too many potential replacements, rejecting replacement {txid_hex}; too many potential "
            f"replacements ({len(evict)} > {MAX_REPLACEMENT_CANDIDATES})"
        )
    for t in evict:
        if t not in entries:
            entries[t] = mempool_entry(t)
    if parents & set(evict):
        bad = next(t for t in evict if t in parents)
        raise TxRejected(f"bad-txns-spends-conflicting-tx, {txid_hex} spends conflicting transaction {bad[::-1].hex()}")
    # rule 2: no new unconfirmed inputs
    old_parents: set[bytes] = set()
    for t in evict:
        old_parents |= entries[t].parents
    for j, txin in enumerate(tx.inputs):
        p = txin.prevout.txid
        if p not in old_parents and mempool_entry(p) is not None:
            raise TxRejected(f"replacement-adds-unconfirmed, replacement {txid_hex} adds unconfirmed input, idx {j}")
    # rules 3 and 4: pay for what it evicts, and for its own relay
    old_fees = sum(entries[t].fee for t in evict)
    if fee < old_fees:
        raise TxRejected(
            f"insufficient fee, rejecting replacement {txid_hex}, less fees than conflicting txs; "
            f"{format_money(fee)} < {format_money(old_fees)}"
        )
    relay = fee_for(vsize, INCREMENTAL_RELAY_FEE_PER_KVB)
    if fee - old_fees < relay:
        raise TxRejected(
            f"insufficient fee, rejecting replacement {txid_hex}, not enough additional fees to relay; "
            f"{format_money(fee - old_fees)} < {format_money(relay)}"
        )
    return evict


def validate_block_tx(tx: Transaction, coins: Sequence[Coin], ctx: ChainContext, *, scripts: bool = True) -> int:
    """Consensus checks of a non-coinbase transaction in a block at ``ctx.next_height`` (whose
    predecessor's MTP is ``ctx.tip_mtp``), given the coins it spends. Returns the fee."""
    check_transaction(tx)
    if tx.is_coinbase():
        raise TxRejected("bad-cb-multiple", tx.txid_hex())
    if not is_final(tx, ctx.next_height, ctx.tip_mtp):
        raise TxRejected("bad-txns-nonfinal", tx.txid_hex())
    if not check_sequence_locks(tx, [c.height for c in coins], ctx):
        raise TxRejected("bad-txns-nonfinal", tx.txid_hex())
    fee = check_inputs(tx, coins, ctx.next_height)
    if scripts:
        check_scripts(tx, coins, policy=False)
    return fee


def coinbase_height(tx: Transaction) -> int | None:
    """The BIP 34 height in a coinbase script_sig, or None."""
    s = tx.inputs[0].script_sig
    if not s:
        return None
    op = s[0]
    if op == 0:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    if 1 <= op <= 8 and len(s) > op:
        v = s[1 : 1 + op]
        n = int.from_bytes(v, "little")
        if v[-1] & 0x80:
            return None
        return n
    return None


_HEADER = struct.Struct("<I32s32sIII")


def block_header(version: int, prev_hash: bytes, merkle: bytes, time: int, bits: int, nonce: int) -> bytes:
    return _HEADER.pack(version, prev_hash, merkle, time, bits, nonce)


def parse_header(header: bytes) -> tuple[int, bytes, bytes, int, int, int]:
    return _HEADER.unpack(header)
