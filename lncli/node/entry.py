"""One channel as the node holds it (:class:`Entry`), and the groups of channel states the
node's channel modules act on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lncli.bitcoin.tx import Transaction
from lncli.channel.channel import Channel
from lncli.channel.state import ChannelState

S = ChannelState

# Before funding_signed nothing is on chain: a failure or a restart just forgets the channel.
PRE_FUNDING = (S.AWAITING_ACCEPT, S.AWAITING_FUNDING_TX, S.AWAITING_FUNDING_CREATED, S.AWAITING_FUNDING_SIGNED)
# Channels that talk to their peer (channel_reestablish on every connection).
LIVE = (S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING)


@dataclass
class Entry:
    """One channel and what the node knows around it."""

    row_id: int
    channel: Channel
    peer: bytes
    private: bool = False
    funding_tx: Transaction | None = None
    funding_height: int | None = None
    funding_txindex: int | None = None
    watch_from: int | None = None
    closing_tx: Transaction | None = None
    closing_txid: bytes | None = None
    closing_height: int | None = None
    close_reason: str | None = None
    created_at: int = 0
    reestablished: bool = False
    saved: str = ""  # the record of the last commit (JSON), to roll back a failed handler
    durable: str = ""  # the last record known to be on disk, to roll back a failed write
    opened: asyncio.Future | None = None  # opener: resolves at funding broadcast (or fails)
    closed: asyncio.Future | None = None  # resolves when a closing tx is handed out
    commit_timer: asyncio.TimerHandle | None = None  # a batched commitment_signed (COMMIT_DELAY)
    sent_ahead: bool = False  # an update went out before the write now pending (send_ahead)
    hex_cache: dict = field(default_factory=dict)  # attribute -> (tx, its hex), for every write
    written_meta: tuple | None = None  # the columns besides the record as last written (_write)

    @property
    def channel_id(self) -> bytes:
        return self.channel.channel_id

    @property
    def state(self) -> ChannelState:
        return self.channel.state


__all__ = ["Entry", "PRE_FUNDING", "LIVE"]
