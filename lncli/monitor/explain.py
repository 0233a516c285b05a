"""``lncli penalty``'s explanation: what a transaction that spends a channel of ours is, read with
the channel's monitor (BOLT 3, BOLT 5), and the justice transaction it calls for.

:mod:`lncli.proto.commitment_explain` does the reading; this module gives it the candidate
readings a :class:`~lncli.monitor.monitor.ChannelMonitor` knows (our commitment for the number
the transaction carries: its keys from our shachain seed; theirs: its per_commitment_point from
the secret they revealed, or from the commitment they signed), and asks the monitor for the
justice tx of a revoked commitment of the peer (:func:`lncli.monitor.penalty.build_penalty`, the
same code the watcher broadcasts).

:func:`explain_offline` does the same with no datadir: keys by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lncli.bitcoin.script import p2wpkh_script_for_pubkey, p2wsh_script
from lncli.bitcoin.tx import Transaction
from lncli.errors import RefusedError
from lncli.monitor.monitor import ChannelMonitor
from lncli.monitor.penalty import NOT_REVOKED, Penalty, build_penalty, find_channel
from lncli.monitor.store import MonitorStore
from lncli.proto import commitment as bolt3
from lncli.proto import commitment_explain as cx
from lncli.proto import justice
from lncli.proto.keys import per_commitment_point
from lncli.proto.scripts import to_remote_anchor_script

__all__ = ["Explained", "monitor_views", "explain_with_monitor", "explain_for_channels", "explain_offline"]

_JUSTICE_KINDS = {cx.TO_LOCAL: justice.TO_LOCAL, cx.OFFERED_HTLC: justice.OFFERED_HTLC, cx.RECEIVED_HTLC: justice.RECEIVED_HTLC}
#: Penalty.to_json keys that the explanation already says
_DUPLICATES = ("channel_id", "revoked_txid", "commitment_number", "our_to_remote")


@dataclass(frozen=True)
class Explained:
    """An explanation, and the justice tx it calls for (None: none, ``justice_error`` says why
    when there is a revoked commitment but no justice tx)."""

    explanation: cx.Explanation
    penalty: Penalty | None = None
    justice_error: str | None = None

    def to_json(self, network: str) -> dict:
        data = self.explanation.to_json()
        if self.penalty is None:
            data["justice"] = None
        else:
            j = self.penalty.to_json(network)
            data["justice"] = {k: v for k, v in j.items() if k not in _DUPLICATES}
        if self.justice_error is not None:
            data["notes"].append(f"no justice transaction: {self.justice_error}")
        return data

    def require_justice(self) -> Penalty:
        """The penalty, or RefusedError saying why there is none (for ``--broadcast``)."""
        if self.penalty is not None:
            return self.penalty
        e = self.explanation
        if self.justice_error is not None:
            raise RefusedError(self.justice_error)
        if not e.spends_channel:
            raise RefusedError("the transaction does not spend a channel of ours: nothing to punish")
        if e.kind == cx.MUTUAL_CLOSE:
            raise RefusedError("the transaction is not a commitment transaction (a cooperative close?): nothing to punish")
        if e.owner == cx.LOCAL:
            raise RefusedError("this is our own commitment, not the peer's: nothing to punish")
        raise RefusedError(NOT_REVOKED)


def _htlcs_of_holder(hc) -> tuple[bolt3.Htlc, ...]:
    return tuple(bolt3.Htlc(h.htlc_id, 0, h.payment_hash, h.cltv_expiry, h.offered) for h in hc.htlc_txs)


def monitor_views(monitor: ChannelMonitor, n: int) -> list[cx.CommitmentView]:
    """Our commitment ``n`` and theirs, as far as ``monitor`` knows them."""
    s, sec = monitor.setup, monitor.secrets
    views = []
    keys = bolt3.derive_commitment_keys(sec.per_commitment_point(n), s.local_basepoints, s.remote_basepoints)
    holders = [hc for hc in (monitor.holder, monitor.prev_holder) if hc is not None and hc.commitment_number == n]
    views.append(
        cx.CommitmentView(
            cx.LOCAL, keys, s.local_to_self_delay, s.anchors,
            _to_remote_script(s.remote_basepoints.payment_basepoint, s.anchors),
            (s.local_basepoints.funding_pubkey, s.remote_basepoints.funding_pubkey),
            _htlcs_of_holder(holders[0]) if holders else (),
            revoked=monitor.holder is not None and n < monitor.holder.commitment_number,
        )
    )
    revoked = n < monitor.revocations.next_commitment_number
    info = monitor.counterparty.get(n)
    pcp = None
    if revoked:
        pcp = per_commitment_point(monitor.revocations.get_commitment_secret(n))
    elif info is not None:
        pcp = info.per_commitment_point
    theirs = None if pcp is None else bolt3.derive_commitment_keys(pcp, s.remote_basepoints, s.local_basepoints)
    views.append(
        cx.CommitmentView(
            cx.REMOTE, theirs, s.remote_to_self_delay, s.anchors,
            _to_remote_script(sec.payment_basepoint, s.anchors),
            (s.remote_basepoints.funding_pubkey, s.local_basepoints.funding_pubkey),
            info.htlcs if info is not None else (),
            revoked=revoked,
        )
    )
    return views


def _to_remote_script(payment_basepoint: bytes, anchors: bool) -> bytes:
    if anchors:
        return p2wsh_script(to_remote_anchor_script(payment_basepoint))
    return p2wpkh_script_for_pubkey(payment_basepoint)


def explain_with_monitor(monitor: ChannelMonitor, tx: Transaction) -> cx.Explanation:
    """``tx`` read with ``monitor``'s channel."""
    s = monitor.setup
    if s is None:
        raise RefusedError(f"the monitor of channel {monitor.channel_id.hex()} has no channel set up")
    number = cx.obscured_number(tx)
    views = [] if number is None else monitor_views(monitor, number ^ s.obscure_factor)
    txid = tx.txid()
    ours = any(hc is not None and hc.tx.txid() == txid for hc in (monitor.holder, monitor.prev_holder))

    def secret_of(view: cx.CommitmentView) -> bytes | None:
        n = number ^ s.obscure_factor
        if view.owner == cx.LOCAL:
            return monitor.secrets.per_commitment_secret(n)
        return monitor.revocations.get_commitment_secret(n)

    return cx.explain_transaction(
        tx,
        funding_outpoint=monitor.funding_outpoint,
        channel_id=monitor.channel_id,
        obscure_factor=s.obscure_factor,
        views=views,
        prefer=cx.LOCAL if ours else cx.REMOTE,
        secret_of=secret_of,
    )


def _with_justice(monitor: ChannelMonitor, e: cx.Explanation, tx: Transaction, destination_script, destination_fn, feerate_per_kw):
    if not (e.revoked and e.owner == cx.REMOTE):
        return Explained(e)
    dest = destination_script
    if dest is None and monitor.destination_script is None and destination_fn is not None:
        dest = destination_fn()
    try:
        p = build_penalty(monitor, tx, destination_script=dest, feerate_per_kw=feerate_per_kw)
    except RefusedError as err:
        return Explained(e, None, str(err))
    return Explained(e, p)


def explain_for_channels(
    store: MonitorStore,
    channels,
    tx: Transaction,
    channel: str | None = None,
    *,
    destination_script: bytes | None = None,
    destination_fn: Callable[[], bytes] | None = None,
    feerate_per_kw: int | None = None,
) -> Explained:
    """Explain ``tx`` against the channel ``channel`` names among ``channels`` (RefusedError if
    ``tx`` does not spend it), or, with no ``channel``, against the channel whose funding output
    it spends (none: explained as spending no channel of ours). A revoked commitment of the peer
    comes with its justice tx (to ``destination_script``, else the monitor's destination, else
    ``destination_fn()``)."""
    known = set(store.channel_ids(include_resolved=True))
    if channel is not None:
        ch = find_channel(channels, channel)
        if ch.channel_id not in known:
            raise RefusedError(
                f"channel {ch.channel_id.hex()} has no monitor (its funding was never signed): nothing on chain to punish"
            )
        monitor = store.load(ch.channel_id, ch.secrets)
        fo = monitor.funding_outpoint
        if fo is None or not any(i.prevout == fo for i in tx.inputs):
            where = "" if fo is None else f" {fo.txid_hex}:{fo.vout}"
            raise RefusedError(f"transaction {tx.txid_hex()} does not spend this channel's funding output{where}")
        candidates = [monitor]
    else:
        spent = {i.prevout for i in tx.inputs}
        candidates = []
        for ch in channels:
            if ch.channel_id not in known:
                continue
            fo = _funding_outpoint(ch)
            if fo is not None and fo not in spent:
                continue
            m = store.load(ch.channel_id, ch.secrets)
            if m.funding_outpoint is not None and m.funding_outpoint in spent:
                candidates.append(m)
                break
    if not candidates:
        return Explained(cx.explain_transaction(tx))
    monitor = candidates[0]
    e = explain_with_monitor(monitor, tx)
    return _with_justice(monitor, e, tx, destination_script, destination_fn, feerate_per_kw)


def _funding_outpoint(ch):
    """The channel record's funding outpoint (None before funding): skips loading the monitors
    of the other channels."""
    from lncli.bitcoin.tx import OutPoint

    return None if ch.funding_txid is None else OutPoint(ch.funding_txid, ch.funding_output_index)


def explain_offline(
    tx: Transaction,
    *,
    per_commitment_secret: bytes,
    revocation_basepoint_secret: bytes,
    remote_delayed_payment_basepoint: bytes,
    to_self_delay: int,
    destination_script: bytes,
    feerate_per_kw: int,
    remote_htlc_basepoint: bytes | None = None,
    local_htlc_basepoint: bytes | None = None,
    local_payment_basepoint: bytes | None = None,
    obscure_factor: int | None = None,
    htlcs: Sequence[bolt3.Htlc] = (),
    anchors: bool = False,
) -> Explained:
    """Explain ``tx`` as the peer's revoked commitment from keys given by hand (see
    :func:`lncli.proto.commitment_explain.offline_view`) and build its justice tx. RefusedError
    when ``tx`` is not shaped as a commitment or no output matches the keys."""
    view, priv = cx.offline_view(
        per_commitment_secret=per_commitment_secret,
        revocation_basepoint_secret=revocation_basepoint_secret,
        remote_delayed_payment_basepoint=remote_delayed_payment_basepoint,
        to_self_delay=to_self_delay,
        remote_htlc_basepoint=remote_htlc_basepoint,
        local_htlc_basepoint=local_htlc_basepoint,
        local_payment_basepoint=local_payment_basepoint,
        htlcs=htlcs,
        anchors=anchors,
    )
    number = cx.obscured_number(tx)
    if number is None:
        raise RefusedError(
            "the transaction is not a commitment transaction (BOLT 3: version 2, one input, "
            "locktime upper byte 0x20, sequence upper byte 0x80): nothing to punish"
        )
    outs = cx.explain_commitment(tx, view)
    revoked = [o for o in outs if o.type in _JUSTICE_KINDS]
    if not revoked:
        raise RefusedError(
            "no output of this transaction matches the keys given "
            "(wrong per-commitment secret, basepoints, to_self_delay or --anchors?)"
        )
    n = None if obscure_factor is None else number ^ obscure_factor
    e = cx.Explanation(
        tx, cx.COMMITMENT, True, None, cx.REMOTE, n, number, True, bytes(per_commitment_secret), outs,
        notes=("offline: read with the keys given; the funding output is not checked",),
    )
    swept = tuple(
        justice.RevokedOutput(tx.outpoint(o.vout), o.amount_sat, o.witness_script, _JUSTICE_KINDS[o.type]) for o in revoked
    )
    try:
        jtx = justice.sweep_revoked_outputs(swept, priv, feerate_per_kw=feerate_per_kw, destination_script=destination_script)
    except RefusedError as err:
        return Explained(e, None, str(err))
    return Explained(e, Penalty(b"", tx, n, jtx, swept, feerate_per_kw, bytes(destination_script)))
