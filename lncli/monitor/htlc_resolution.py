"""How each HTLC we offered ended on chain, one report per HTLC (BOLT 5).

A forwarding node must settle the incoming HTLC of every outgoing one that a force close took on
chain (BOLT 5 "HTLC Output Handling: Local Commitment, Local Offers" and "Remote Commitment,
Local Offers"):

- an HTLC output spent with the payment preimage (the counterparty's HTLC-success tx on its own
  commitment, or its preimage spend of the HTLC output on ours): the preimage is known at once,
  so the incoming HTLC is fulfilled at once;
- an HTLC output spent by our timeout path (our HTLC-timeout tx, or our timeout spend of the
  output on their commitment): once that tx "has reached reasonable depth" the incoming HTLC is
  failed;
- an HTLC of a valid (unrevoked) commitment with no output on the confirmed one (trimmed as
  dust, or only partially committed): fulfilled if the preimage is known, otherwise failed once
  the commitment "has reached reasonable depth".

A revoked counterparty commitment is read the same way: an HTLC output the cheater took with
the preimage (its HTLC-success tx) tells the preimage; one our justice tx took is ours, without
the preimage, and is reported like a timeout once deep enough.

"Reasonable depth" is the monitor's ``ANTI_REORG_DELAY`` (6 blocks, passed in as ``depth``):
deep enough that a reorg will not bring the HTLC back, as LDK does (BOLT 5 keeps watching for
100 blocks, *irrevocably resolved*, but the incoming HTLC has its own expiry to meet).

:func:`offered_htlc_outcomes` is pure: a function of the monitor's state and the height. Each
:class:`OfferedHtlcResolved` is returned once per monitor object (``ChannelMonitor._told``,
not stored): after a restart the reports come again at the next block, so whoever acts on them
must be idempotent, and nothing is lost by a crash between the monitor's write and the action.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lncli.bitcoin.script import p2wsh_script
from lncli.bitcoin.tx import OutPoint
from lncli.proto import commitment as bolt3

if TYPE_CHECKING:
    from lncli.monitor.monitor import ChannelMonitor

__all__ = ["OfferedHtlcResolved", "offered_htlc_outcomes"]


@dataclass(frozen=True)
class OfferedHtlcResolved:
    """HTLC ``htlc_id`` (ours, offered on this channel) is resolved on chain: claimed by the
    counterparty with ``payment_preimage`` (fulfill the incoming HTLC now), or, with
    ``payment_preimage`` None, back to us without it: timed out (``txid``, the timeout spend, a
    justice tx, or the commitment it has no output on, deep enough at ``height``: fail the
    incoming HTLC)."""

    htlc_id: int
    payment_hash: bytes
    payment_preimage: bytes | None
    txid: bytes
    height: int

    @property
    def timed_out(self) -> bool:
        return self.payment_preimage is None


def _preimage_in(tx, prevout, payment_hash: bytes) -> bytes | None:
    for txin in tx.inputs:
        if txin.prevout == prevout:
            for item in txin.witness:
                if len(item) == 32 and hashlib.sha256(item).digest() == payment_hash:
                    return bytes(item)
    return None


def _offered_outputs(m: ChannelMonitor, holder: bool, info, spend) -> dict[int, OutPoint]:
    """{htlc_id: OutPoint} of the HTLCs we offered that have an output on the confirmed
    commitment ``spend`` (ours if ``holder``; ``info`` as the monitor classified it)."""
    found: dict[int, OutPoint] = {}
    if info is None:
        return found
    if holder:
        for h in info.htlc_txs:
            if h.offered:
                found[h.htlc_id] = h.tx.inputs[0].prevout
    else:
        s = m.setup
        keys = bolt3.derive_commitment_keys(info.per_commitment_point, s.remote_basepoints, s.local_basepoints)
        wanted = {}
        for h in info.htlcs:
            if not h.offered:  # offered by the counterparty's counterparty: us
                wanted.setdefault((p2wsh_script(bolt3.htlc_witness_script(h, keys, s.anchors)), h.amount_sat), []).append(h)
        for vout, out in enumerate(spend.tx.outputs):
            hs = wanted.get((out.script_pubkey, out.value_sat))
            if hs:
                found[hs.pop(0).htlc_id] = OutPoint(spend.txid, vout)
    return found


def _valid_offered(m: ChannelMonitor) -> dict[int, bytes]:
    """{htlc_id: payment_hash} of the HTLCs we offered on a valid commitment: our latest two,
    and the counterparty's not revoked."""
    got: dict[int, bytes] = {}
    for hc in (m.prev_holder, m.holder):
        if hc is not None:
            got.update({h.htlc_id: h.payment_hash for h in hc.htlc_txs if h.offered})
    for n, info in m.counterparty.items():
        if n >= m.revocations.next_commitment_number:
            got.update({h.htlc_id: h.payment_hash for h in info.htlcs if not h.offered})
    return got


def offered_htlc_outcomes(m: ChannelMonitor, spend, info, *, holder: bool, height: int, depth: int) -> list[OfferedHtlcResolved]:
    """The reports due at ``height`` not yet returned by ``m`` (see the module doc), for the
    commitment ``spend`` that confirmed: ours (``holder``, ``info`` its LatestHolderCommitment)
    or the counterparty's (``info`` its CounterpartyCommitment; None: a revoked one whose HTLCs
    were not kept, it had none); ``depth``: the confirmations a timeout needs."""
    deep = height - depth + 1  # a tx confirmed at or below this height is deep enough
    outputs = _offered_outputs(m, holder, info, spend)
    hashes = _valid_offered(m)
    if holder:
        hashes.update({h.htlc_id: h.payment_hash for h in info.htlc_txs if h.offered})
    elif info is not None:
        hashes.update({h.htlc_id: h.payment_hash for h in info.htlcs if not h.offered})
    reports = []
    for hid in sorted(hashes):
        if hid in m._told:
            continue
        ph = hashes[hid]
        op = outputs.get(hid)
        report = None
        if op is None:  # no output on the confirmed commitment
            preimage = m.preimages.get(ph)
            if preimage is not None:
                report = OfferedHtlcResolved(hid, ph, preimage, spend.txid, spend.height)
            elif spend.height <= deep:
                report = OfferedHtlcResolved(hid, ph, None, spend.txid, height)
        else:
            spender = m._spent_by.get(op)
            if spender is None:
                continue  # unresolved: the monitor claims it at its cltv_expiry
            conf = m._confirmed[spender]
            preimage = _preimage_in(conf.tx, op, ph)
            if preimage is not None:
                report = OfferedHtlcResolved(hid, ph, preimage, spender, conf.height)
            elif conf.height <= deep:
                report = OfferedHtlcResolved(hid, ph, None, spender, height)
        if report is not None:
            m._told.add(hid)
            reports.append(report)
    return reports
