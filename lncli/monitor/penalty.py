"""``lncli penalty``: the justice transaction for a revoked commitment, offline, from a datadir.

BOLT 5 ("Revoked Transaction Close Handling"): when the peer publishes one of its commitments
whose ``per_commitment_secret`` it has already given us, we take its to_local and every HTLC
output at once with the revocation key. The running node's chain watcher does this by itself;
this module does the same from what the datadir holds, with no node running:

* the channel's :class:`~lncli.monitor.monitor.ChannelMonitor`, loaded from the monitor store in
  ``DATADIR/NETWORK/node.sqlite3`` (snapshot + updates; reading while a node runs is fine: WAL);
* the channel's ``ChannelSecrets``, from the channel record in the same database, rebuilt the
  way the node rebuilds it. The monitor does not read channel records: the caller passes the
  channels in (:func:`penalty_for_channels`; :func:`lncli.node.penalty.penalty_for_datadir`
  reads them from a datadir).

:func:`build_penalty` checks the transaction (spends this channel's funding output; is a
commitment of the peer; its number is one we hold the secret of) with clear refusals, then asks
the monitor for the signed justice tx (:meth:`ChannelMonitor.build_justice_tx`, the same code
the watcher broadcasts) and describes it as a :class:`Penalty`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lncli.bitcoin.tx import OutPoint, Transaction
from lncli.errors import DecodeError, InputError, RefusedError
from lncli.monitor.monitor import ChannelMonitor
from lncli.monitor.store import MonitorStore
from lncli.proto import justice
from lncli.proto.keys import commitment_number_from_tx

__all__ = [
    "NOT_REVOKED",
    "MIN_FEERATE_PER_KW",
    "Penalty",
    "feerate_per_kw_from_sat_per_vb",
    "parse_revoked_tx",
    "find_channel",
    "build_penalty",
    "penalty_for_channels",
]

NOT_REVOKED = "this commitment has not been revoked: nothing to punish"
#: the relay floor (1 sat/vB, with the rounding of sweep fees): 253 sat per 1000 weight units
MIN_FEERATE_PER_KW = 253
_MAX_SAT_PER_VB = 10_000


@dataclass(frozen=True)
class Penalty:
    """A signed justice transaction and what it does. ``swept``: the revoked outputs it spends
    (``lncli.proto.justice.RevokedOutput``, kinds ``to_local``, ``offered_htlc``,
    ``received_htlc``); ``to_remote``: our own output on that commitment (already ours, not
    spent here: the node's watcher sweeps it), if any, as ``(outpoint, value_sat)``."""

    channel_id: bytes
    revoked_tx: Transaction
    commitment_number: int
    tx: Transaction
    swept: tuple
    feerate_per_kw: int
    destination_script: bytes
    to_remote: tuple | None = None

    @property
    def swept_sat(self) -> int:
        return sum(o.amount_sat for o in self.swept)

    @property
    def fee_sat(self) -> int:
        return self.swept_sat - sum(o.value_sat for o in self.tx.outputs)

    def to_json(self, network: str) -> dict:
        from lncli.bitcoin.address import script_to_address

        try:
            destination = script_to_address(self.destination_script, network)
        except InputError:
            destination = None
        vsize = self.tx.vsize()
        return {
            "channel_id": self.channel_id.hex(),
            "revoked_txid": self.revoked_tx.txid_hex(),
            "commitment_number": self.commitment_number,
            "txid": self.tx.txid_hex(),
            "hex": self.tx.to_hex(),
            "swept": [
                {"kind": o.kind, "outpoint": f"{o.outpoint.txid_hex}:{o.outpoint.vout}", "value_sat": o.amount_sat}
                for o in self.swept
            ],
            "swept_sat": self.swept_sat,
            "fee_sat": self.fee_sat,
            "vsize": vsize,
            "feerate": round(self.fee_sat / vsize, 3),
            "feerate_per_kw": self.feerate_per_kw,
            "destination": destination,
            "destination_script": self.destination_script.hex(),
            "amount_sat": sum(o.value_sat for o in self.tx.outputs),
            "our_to_remote": None
            if self.to_remote is None
            else {"outpoint": f"{self.to_remote[0].txid_hex}:{self.to_remote[0].vout}", "value_sat": self.to_remote[1]},
        }


def feerate_per_kw_from_sat_per_vb(sat_per_vb: float) -> int:
    """sat/vB -> sat per 1000 weight units (rounded up, at least the relay floor)."""
    if not isinstance(sat_per_vb, (int, float)) or math.isnan(sat_per_vb) or not 1 <= sat_per_vb <= _MAX_SAT_PER_VB:
        raise InputError(f"the fee rate must be between 1 and {_MAX_SAT_PER_VB} sat/vB, got {sat_per_vb}")
    return max(MIN_FEERATE_PER_KW, math.ceil(sat_per_vb * 250))


def _is_txid(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def parse_revoked_tx(text: str, fetch: Callable[[bytes], Transaction | None] | None = None) -> Transaction:
    """A transaction from its hex, or from its txid (64 hex, display order) through ``fetch``
    (internal-order txid -> Transaction or None). DecodeError / InputError otherwise."""
    text = text.strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    if _is_txid(text):
        if fetch is None:
            raise InputError("a txid needs a chain backend to fetch the transaction: give its hex instead")
        tx = fetch(bytes.fromhex(text)[::-1])
        if tx is None:
            raise InputError(f"the chain backend does not know transaction {text.lower()}: give its hex instead")
        return tx
    try:
        bytes.fromhex(text)
    except ValueError:
        raise DecodeError("TX is neither a transaction in hex nor a txid") from None
    return Transaction.from_hex(text)


def find_channel(channels, text: str):
    """The channel (``lncli.channel.channel.Channel``) that ``text`` names among ``channels``:
    channel_id (64 hex), funding outpoint TXID:VOUT, or short_channel_id (BLOCKxTXxOUT or a
    number). Closed channels included: a breach may come after the channel is gone.
    InputError if none."""
    from lncli.channel.reference import match_channel, parse_channel_ref

    try:
        ref = parse_channel_ref(text, ("channel_id", "short_channel_id", "outpoint"))
    except DecodeError as e:
        raise InputError(str(e)) from None
    ch = match_channel(ref, channels)
    if ch is not None:
        return ch
    what = {"channel_id": "channel_id", "outpoint": "funding outpoint"}.get(ref.kind)
    if what:
        raise InputError(f"no channel with {what} {ref.text} in this datadir")
    raise InputError(f"no channel with short_channel_id {ref.value} in this datadir")


def build_penalty(
    monitor: ChannelMonitor,
    revoked_tx: Transaction,
    *,
    destination_script: bytes | None = None,
    feerate_per_kw: int | None = None,
) -> Penalty:
    """The signed justice tx for ``revoked_tx`` (see the module docstring). RefusedError when
    it does not spend the funding output, is ours, is not a commitment, is not revoked
    (:data:`NOT_REVOKED`), or has nothing worth sweeping."""
    s = monitor.setup
    if s is None:
        raise RefusedError(f"the monitor of channel {monitor.channel_id.hex()} has no channel set up")
    fo = monitor.funding_outpoint
    if not any(i.prevout == fo for i in revoked_tx.inputs):
        raise RefusedError(
            f"transaction {revoked_tx.txid_hex()} does not spend this channel's funding output {fo.txid_hex}:{fo.vout}"
        )
    txid = revoked_tx.txid()
    for own in (monitor.holder, monitor.prev_holder):
        if own is not None and own.tx.txid() == txid:
            raise RefusedError("this is our own commitment, not the peer's: nothing to punish")
    try:
        n = commitment_number_from_tx(revoked_tx.locktime, revoked_tx.inputs[0].sequence, s.obscure_factor)
    except DecodeError:
        raise RefusedError("the transaction is not a commitment transaction (a cooperative close?): nothing to punish") from None
    known = monitor.revocations.next_commitment_number
    if n >= known:
        raise RefusedError(
            f"{NOT_REVOKED} (commitment number {n}; the peer has revoked its commitments 0..{known - 1})"
            if known
            else f"{NOT_REVOKED} (commitment number {n}; the peer has revoked none yet)"
        )
    dest = destination_script if destination_script is not None else monitor.destination_script
    if dest is None:
        raise RefusedError("no destination for the justice transaction: give one (--destination)")
    feerate = monitor.feerate_per_kw if feerate_per_kw is None else feerate_per_kw
    keys, swept = _revoked_outputs(monitor, revoked_tx, n)
    if not swept:
        raise RefusedError(
            f"no output of this transaction belongs to the peer's revoked commitment {n} (is it one of our own commitments?)"
        )
    tx = monitor.build_justice_tx(revoked_tx, destination_script=dest, feerate_per_kw=feerate)
    spent = {i.prevout for i in tx.inputs}
    swept = tuple(o for o in swept if o.outpoint in spent)
    return Penalty(monitor.channel_id, revoked_tx, n, tx, swept, feerate, bytes(dest), _to_remote(monitor, revoked_tx))


def _revoked_outputs(monitor: ChannelMonitor, tx: Transaction, n: int):
    from lncli.proto import commitment as bolt3
    from lncli.proto.keys import per_commitment_point

    s = monitor.setup
    secret = monitor.revocations.get_commitment_secret(n)
    keys = bolt3.derive_commitment_keys(per_commitment_point(secret), s.remote_basepoints, s.local_basepoints)
    info = monitor.counterparty.get(n)
    htlcs = info.htlcs if info is not None else ()
    return keys, justice.find_revoked_outputs(tx, keys, htlcs, s.remote_to_self_delay, s.anchors)


def _to_remote(monitor: ChannelMonitor, tx: Transaction) -> tuple | None:
    from lncli.bitcoin.script import p2wsh_script
    from lncli.proto.scripts import to_remote_anchor_script, to_remote_script_pubkey

    pub = monitor.secrets.payment_basepoint
    if monitor.setup.anchors:
        spk = p2wsh_script(to_remote_anchor_script(pub))
    else:
        spk = to_remote_script_pubkey(pub, False)
    txid = tx.txid()
    for vout, out in enumerate(tx.outputs):
        if out.script_pubkey == spk:
            return OutPoint(txid, vout), out.value_sat
    return None


def penalty_for_channels(
    store: MonitorStore,
    channels,
    channel: str,
    revoked_tx: Transaction,
    *,
    destination_script: bytes | None = None,
    destination_fn: Callable[[], bytes] | None = None,
    feerate_per_kw: int | None = None,
) -> Penalty:
    """:func:`build_penalty` for the channel ``channel`` names among ``channels`` (the channel
    records, closed ones included, which the caller reads), with its monitor from ``store``.
    ``destination_fn`` gives a destination when none is given and the monitor has none yet."""
    ch = find_channel(channels, channel)
    if ch.channel_id not in store.channel_ids(include_resolved=True):
        raise RefusedError(
            f"channel {ch.channel_id.hex()} has no monitor (its funding was never signed): nothing on chain to punish"
        )
    monitor = store.load(ch.channel_id, ch.secrets)
    if destination_script is None and monitor.destination_script is None and destination_fn is not None:
        destination_script = destination_fn()
    return build_penalty(monitor, revoked_tx, destination_script=destination_script, feerate_per_kw=feerate_per_kw)
