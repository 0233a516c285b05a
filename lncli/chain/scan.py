"""Block scanning: find outputs paying watched scripts and spends of watched outpoints.

Works with any ``ChainBackend`` (it only needs ``block_at``). The wallet watches its scripts;
the node's chain watcher watches funding outpoints and channel scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

from lncli.bitcoin.tx import OutPoint, Transaction

__all__ = ["OutputEvent", "SpendEvent", "ScanEvent", "scan_blocks", "scan_block"]


@dataclass(frozen=True)
class OutputEvent:
    """An output paying a watched script."""

    txid: bytes  # internal order
    vout: int
    value_sat: int
    script_pubkey: bytes
    height: int
    block_hash: bytes

    @property
    def outpoint(self) -> OutPoint:
        return OutPoint(self.txid, self.vout)


@dataclass(frozen=True)
class SpendEvent:
    """A watched outpoint spent by input ``input_index`` of ``tx``."""

    outpoint: OutPoint
    spending_txid: bytes  # internal order
    input_index: int
    height: int
    block_hash: bytes
    tx: Transaction


ScanEvent = Union[OutputEvent, SpendEvent]


def scan_block(block, scripts: set[bytes], outpoints: set[OutPoint], follow: bool = False) -> list[ScanEvent]:
    """Events in one block, in transaction order (within a tx: spends, then outputs). With
    ``follow``, outputs found are added to ``outpoints`` so that later spends are reported."""
    events: list[ScanEvent] = []
    for tx in block.txs:
        txid = tx.txid()
        if outpoints:
            for i, txin in enumerate(tx.inputs):
                if txin.prevout in outpoints:
                    events.append(SpendEvent(txin.prevout, txid, i, block.height, block.hash, tx))
        if scripts:
            for vout, out in enumerate(tx.outputs):
                if out.script_pubkey in scripts:
                    events.append(OutputEvent(txid, vout, out.value_sat, out.script_pubkey, block.height, block.hash))
                    if follow:
                        outpoints.add(OutPoint(txid, vout))
    return events


def scan_blocks(
    backend,
    from_height: int,
    to_height: int,
    scripts: Iterable[bytes] = (),
    outpoints: Iterable[OutPoint] = (),
    *,
    follow: bool = False,
) -> list[ScanEvent]:
    """Scan blocks ``from_height`` .. ``to_height`` (inclusive; capped at the tip) for outputs
    paying any of ``scripts`` and spends of any of ``outpoints``. Events come in chain order.
    With ``follow``, outputs found become watched outpoints too (a wallet's own coins)."""
    scripts = set(scripts)
    watched = set(outpoints)
    tip_height = backend.tip()[0]
    events: list[ScanEvent] = []
    for height in range(max(0, from_height), min(to_height, tip_height) + 1):
        events.extend(scan_block(backend.block_at(height), scripts, watched, follow))
    return events
