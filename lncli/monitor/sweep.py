"""Sweep transactions: spend claimable outputs to one destination, fee from its weight.

:func:`sweep_tx` signs a version-2 tx over :class:`SweepInput` s (each with its witness
template), paying the feerate on the weight with maximal-size signatures. Used by
:class:`~lncli.monitor.monitor.ChannelMonitor` for every claim it broadcasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lncli.bitcoin.ecdsa import sign, witness_signature
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut, relay_fee_for

__all__ = ["MIN_SWEEP_OUTPUT_SAT", "SweepInput", "sweep_tx"]

#: outputs below this are not worth sweeping (the P2WSH dust threshold)
MIN_SWEEP_OUTPUT_SAT = 330
_MAX_SIG_ITEM = 73


@dataclass(frozen=True)
class SweepInput:
    """One input of a sweep: ``witness_template`` is the witness with ``None`` where our
    SIGHASH_ALL signature goes; ``script_code`` is the witness script (P2WSH) or the P2WPKH
    script code."""

    outpoint: OutPoint
    amount_sat: int
    script_code: bytes
    privkey: bytes
    sequence: int
    witness_template: tuple


def _fill(template: tuple, sig_item: bytes) -> tuple[bytes, ...]:
    return tuple(sig_item if item is None else item for item in template)


def sweep_tx(
    inputs: Sequence[SweepInput],
    destination_script: bytes,
    feerate_per_kw: int,
    *,
    locktime: int = 0,
    min_output_sat: int = MIN_SWEEP_OUTPUT_SAT,
) -> Transaction | None:
    """A signed version-2 tx spending ``inputs`` to one ``destination_script`` output, paying
    ``feerate_per_kw`` on its weight with maximal signatures; None if what is left would be
    below ``min_output_sat``."""
    txins = tuple(TxIn(i.outpoint, b"", i.sequence) for i in inputs)
    total = sum(i.amount_sat for i in inputs)
    placeholder = b"\x00" * _MAX_SIG_ITEM
    draft = Transaction(
        2,
        tuple(t.with_witness(_fill(i.witness_template, placeholder)) for t, i in zip(txins, inputs)),
        (TxOut(total, destination_script),),
        locktime,
    )
    value = total - relay_fee_for(draft, feerate_per_kw)
    if value < min_output_sat:
        return None
    unsigned = Transaction(2, txins, (TxOut(value, destination_script),), locktime)
    cache = SighashCache(unsigned)
    witnesses = []
    for n, i in enumerate(inputs):
        sig = sign(i.privkey, cache.segwit_v0(n, i.script_code, i.amount_sat, SIGHASH_ALL))
        witnesses.append(_fill(i.witness_template, witness_signature(sig, SIGHASH_ALL)))
    return unsigned.with_witnesses(witnesses)
