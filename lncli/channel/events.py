"""What a channel handler returns: messages to send, monitor updates, and events.

Every ``Channel`` handler returns an :class:`Outcome`. The caller must persist the channel
(``Channel.to_record()``) and the monitor updates *before* sending the messages, then act on
the events (broadcast, watch the chain, settle a payment...).

Monitor updates (after LDK's ``ChannelMonitorUpdateStep``) are the append-only log a chain
watcher needs: each carries a strictly increasing ``update_id`` per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from lncli.bitcoin.tx import Transaction

__all__ = [
    "Outcome",
    "MonitorUpdate",
    "ChannelSetup",
    "HolderHtlcTx",
    "LatestHolderCommitment",
    "LatestCounterpartyCommitment",
    "CommitmentSecret",
    "PaymentPreimage",
    "ChannelForceClosed",
    "Event",
    "FundingRequired",
    "BroadcastFunding",
    "WatchFunding",
    "ChannelReady",
    "HtlcReceived",
    "HtlcFulfilled",
    "HtlcFailed",
    "BroadcastClosing",
    "BroadcastCommitment",
]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names, in order (cached)


def _json(v: Any) -> Any:
    t = type(v)
    if t is int or t is str or v is None or t is bool or t is float:
        return v
    if t is bytes:
        return v.hex()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, Transaction):
        return v.to_hex()
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    names = _FIELD_NAMES.get(t)
    if names is None:
        if not hasattr(v, "__dataclass_fields__"):
            return v
        names = _FIELD_NAMES[t] = tuple(f.name for f in fields(v))
    return {n: _json(getattr(v, n)) for n in names}


class _Jsonable:
    def to_json(self) -> dict:
        d = {"type": type(self).__name__}
        d.update(_json(self))
        return d


# --------------------------------------------------------------------------- monitor updates


@dataclass(frozen=True)
class MonitorUpdate(_Jsonable):
    update_id: int


@dataclass(frozen=True)
class ChannelSetup(MonitorUpdate):
    """Static facts of the channel, sent once when commitment 0 is signed both ways."""

    channel_id: bytes
    funding_txid: bytes
    funding_output_index: int
    funding_satoshis: int
    funding_script: bytes
    local_basepoints: Any
    remote_basepoints: Any
    local_to_self_delay: int  # delay on our outputs (announced by the peer)
    remote_to_self_delay: int  # delay on their outputs (announced by us)
    local_dust_limit_satoshis: int
    remote_dust_limit_satoshis: int
    is_opener: bool
    anchors: bool
    obscure_factor: int


@dataclass(frozen=True)
class HolderHtlcTx(_Jsonable):
    """A second-stage tx of our commitment and the counterparty's signature of it.

    As the channel hands it over (``local_signature`` None) ``tx`` is unsigned: the monitor
    signs it only if it ever needs it (``ChannelMonitor.signed_holder``). Signed (and as
    written before the monitor signed lazily): ``local_signature`` is ours and ``tx`` is
    fully signed for HTLC-timeout, and for HTLC-success once the preimage is known
    (``complete``)."""

    htlc_id: int
    offered: bool  # True: HTLC-timeout (ours to time out); False: HTLC-success
    payment_hash: bytes
    cltv_expiry: int
    tx: Transaction
    witness_script: bytes
    remote_signature: bytes  # DER, no sighash byte
    local_signature: bytes | None  # DER, no sighash byte; None: not signed yet
    complete: bool


@dataclass(frozen=True)
class LatestHolderCommitment(MonitorUpdate):
    """Our new commitment, after LDK's ``LatestHolderCommitmentTXInfo``: the channel gives the
    unsigned tx and the counterparty's signature of it (``remote_signature``, DER, no sighash
    byte; verified by the channel), and the monitor signs it only when it must broadcast it.
    ``remote_signature`` None: ``tx`` is already fully signed (updates written before)."""

    commitment_number: int
    tx: Transaction
    htlc_txs: tuple[HolderHtlcTx, ...]
    remote_signature: bytes | None = None


@dataclass(frozen=True)
class LatestCounterpartyCommitment(MonitorUpdate):
    txid: bytes
    commitment_number: int
    per_commitment_point: bytes
    htlcs: tuple[Any, ...]  # lncli.proto.commitment.Htlc, offered = offered by the counterparty
    feerate_per_kw: int
    to_local_sat: int  # the counterparty's own output (0 if trimmed)
    to_remote_sat: int  # our output on their commitment


@dataclass(frozen=True)
class CommitmentSecret(MonitorUpdate):
    commitment_number: int
    secret: bytes


@dataclass(frozen=True)
class PaymentPreimage(MonitorUpdate):
    payment_hash: bytes
    payment_preimage: bytes


@dataclass(frozen=True)
class ChannelForceClosed(MonitorUpdate):
    commitment_number: int


# --------------------------------------------------------------------------- events


class Event(_Jsonable):
    pass


@dataclass(frozen=True)
class FundingRequired(Event):
    """Build (do not broadcast) a tx paying ``amount_sat`` to ``script_pubkey``; then call
    ``Channel.funding_tx_built(txid, vout)``."""

    script_pubkey: bytes
    amount_sat: int


@dataclass(frozen=True)
class BroadcastFunding(Event):
    funding_txid: bytes
    funding_output_index: int


@dataclass(frozen=True)
class WatchFunding(Event):
    funding_txid: bytes
    funding_output_index: int
    script_pubkey: bytes
    minimum_depth: int


@dataclass(frozen=True)
class ChannelReady(Event):
    channel_id: bytes
    short_channel_id: Any


@dataclass(frozen=True)
class HtlcReceived(Event):
    """An HTLC they offered is irrevocably committed: settle, fail or forward it."""

    htlc_id: int
    amount_msat: int
    payment_hash: bytes
    cltv_expiry: int
    onion_routing_packet: bytes


@dataclass(frozen=True)
class HtlcFulfilled(Event):
    htlc_id: int
    payment_hash: bytes
    payment_preimage: bytes


@dataclass(frozen=True)
class HtlcFailed(Event):
    """An HTLC we offered was failed, irrevocably. ``reason`` is the encrypted onion error
    (update_fail_htlc), or ``failure_code``/``sha256_of_onion`` for update_fail_malformed_htlc."""

    htlc_id: int
    payment_hash: bytes
    reason: bytes | None = None
    failure_code: int | None = None
    sha256_of_onion: bytes | None = None


@dataclass(frozen=True)
class BroadcastClosing(Event):
    tx: Transaction
    fee_satoshis: int


@dataclass(frozen=True)
class BroadcastCommitment(Event):
    tx: Transaction
    htlc_txs: tuple[HolderHtlcTx, ...]


# --------------------------------------------------------------------------- outcome


@dataclass
class Outcome:
    """Messages to send (in order), monitor updates to persist first, events to act on."""

    messages: list = field(default_factory=list)
    monitor_updates: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def extend(self, other: Outcome) -> Outcome:
        self.messages += other.messages
        self.monitor_updates += other.monitor_updates
        self.events += other.events
        return self
