"""Routing the BOLT 2 messages of a peer to its channels, and the peer's comings and goings.

:meth:`MessageDispatch.handle_message` is the handler the peer manager calls for every channel
message of a read: it finds the channel (by ``channel_id``, or ``temporary_channel_id`` during the
open), lets it handle the message, and commits the outcome (:mod:`lncli.node.commits`: written
before anything it says is sent). A failing handler rolls the channel back to its last committed
record; a protocol error fails the channel (BOLT 2). ``error`` messages fail the channels they
name; a connection that becomes ready sends channel_reestablish for every live channel.

A mixin of :class:`lncli.node.channels.ChannelManager` (its entries, commit group and sending).
"""

from __future__ import annotations

import asyncio
import logging
import os

from lncli.channel import events as ev
from lncli.channel.channel import Channel, ChannelError, WeAreBehind
from lncli.channel.events import Outcome
from lncli.channel.state import ChannelState
from lncli.node.commits import rollback
from lncli.node.entry import LIVE, PRE_FUNDING, Entry
from lncli.proto.wire import Message

log = logging.getLogger("lncli.channels")

S = ChannelState
_ZERO32 = bytes(32)

# Updates whose receipt needs no write of its own: until a commitment_signed covers them they
# commit nothing, and a crash forgets them as BOLT 2 asks of a disconnection. Their outcome waits
# for the next write (the commitment_signed that usually follows in a moment).
_QUIET_UPDATES = frozenset(("update_add_htlc", "update_fee", "update_fail_htlc", "update_fail_malformed_htlc"))


def _next_iteration() -> asyncio.Future:
    """A done future: returned by a message handler, it makes the peer handle the rest of the
    read in a task of its own (Peer._process), i.e. after what the event loop has ready."""
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class MessageDispatch:
    """The message routing of the channel manager. Uses the manager's ``by_id``/``entries``,
    ``commit`` (lncli.node.commits), ``payments``, ``chain``, and its sending helpers."""

    def handle_message(self, peer, msg: Message):
        """One channel message of a peer's read (the peer calls this for each, in order): find
        the channel, let it handle the message, commit the outcome. Returns None, a coroutine
        (open_channel), or a done future that makes the peer handle the rest of its read in a
        task of its own (after a fulfill that woke a payer)."""
        name = msg.name
        if name == "open_channel":
            if bytes(msg.chain_hash) != self.chain_hash:
                self._send_error(peer.node_id, bytes(msg.temporary_channel_id), "open_channel for another chain")
                return None
            return self._on_open_channel(peer, msg)
        cid = msg.get("channel_id")
        if cid is None:
            cid = msg.get("temporary_channel_id")
        cid = bytes(cid)
        e = self.by_id.get(cid)
        if e is None or e.peer != peer.node_id:
            if name == "channel_reestablish":
                closed = next((x for x in self.entries if x.channel_id == cid and x.peer == peer.node_id), None)
                if closed is not None:
                    self._send_error(peer.node_id, cid, "this channel is closed")
                    return None
            self._send_error(peer.node_id, cid, f"unknown channel for {name}")
            return None
        if e.state in (S.FORCE_CLOSING, S.CLOSED):
            self._send_error(peer.node_id, cid, "this channel is closed")
            return None
        old = e.channel_id
        try:
            out = e.channel.handle(msg)
        except WeAreBehind as exc:
            log.error("channel %s: %s", cid.hex(), exc)
            # keep data_loss (set by the channel) and tell the peer to close; never broadcast ours
            saved_flag = e.channel.data_loss
            rollback(e)
            e.channel.data_loss = saved_flag or True
            e.close_reason = str(exc)
            self.commit(e, Outcome(), auto_commit=False)
            self._send_error(peer.node_id, cid, str(exc))
            return None
        except ChannelError as exc:
            rollback(e)
            self.fail_channel(e, f"{name}: {exc}", send_error=True)
            return None
        except Exception:
            rollback(e)  # a bug or a malformed field: drop the connection, keep the state
            raise
        self._rekey(e, old)
        if name == "channel_reestablish":
            e.reestablished = True
        if name == "funding_signed" or name == "funding_created":
            e.watch_from = self.chain.height if self.chain is not None else None
        if name == "update_fulfill_htlc" and self._wake_payer(e, out):
            # pay answers first (its task runs next); this outcome is committed right after it,
            # before the rest of the read
            asyncio.get_running_loop().call_soon(self._commit_after_reply, e, out)
            return _next_iteration()
        self.commit(e, out, quiet=name in _QUIET_UPDATES)
        if name == "channel_reestablish":
            self.maybe_update_fee(e)  # after what the peer missed, in the same group write
        return None

    def _wake_payer(self, e: Entry, out: Outcome) -> bool:
        """Hand the verified preimages in ``out`` to the payments waiting for them; True if one was."""
        woke = False
        if self.payments is not None:
            for event in out.events:
                if isinstance(event, ev.HtlcFulfilled) and self.payments.fulfilled(e, event):
                    woke = True
        return woke

    def _commit_after_reply(self, e: Entry, out: Outcome) -> None:
        try:
            self.commit(e, out)
        except Exception:  # noqa: BLE001 - as a handler's failure: state back, connection dropped
            log.exception("channel %s: committing a fulfill failed", e.channel_id.hex())
            rollback(e)
            peer = self.peer(e.peer)
            if peer is not None:
                peer.close("internal error committing a fulfill", abort=True)

    def on_error(self, peer, msg: Message):
        cid = bytes(msg.channel_id)
        text = bytes(msg.data).decode("utf-8", "replace")[:200]
        targets = (
            [e for e in self.by_id.values() if e.peer == peer.node_id]
            if cid == _ZERO32
            else [e for e in [self.by_id.get(cid)] if e is not None and e.peer == peer.node_id]
        )
        for e in targets:
            self.fail_channel(e, f"the peer sent an error: {text}", send_error=False)
        return None

    def fail_channel(self, e: Entry, reason: str, send_error: bool = True) -> None:
        """Fail a channel (BOLT 2): forget it before funding, else broadcast our latest commitment."""
        log.warning("failing channel %s: %s", e.channel_id.hex(), reason)
        if send_error:
            self._send_error(e.peer, e.channel_id, reason)
        if e.state in PRE_FUNDING:
            self._abandon(e, reason)
            return
        if e.state in (S.CLOSING, S.FORCE_CLOSING, S.CLOSED):
            return  # a mutual close is signed (or we already closed): nothing better to do
        e.close_reason = reason
        try:
            out = e.channel.force_close()
        except WeAreBehind as exc:
            e.close_reason = f"{reason} (not broadcasting: {exc})"
            self.commit(e, Outcome(), auto_commit=False)
            return
        self.commit(e, out, auto_commit=False)

    async def _on_open_channel(self, peer, msg: Message) -> None:
        tmp = bytes(msg.temporary_channel_id)
        if tmp in self.by_id:
            self._send_error(peer.node_id, tmp, "temporary_channel_id already in use")
            return
        script = await self._shutdown_script()
        try:
            ch, accept = Channel.from_open_channel(
                msg,
                channel_seed=os.urandom(32),
                chain_hash=self.chain_hash,
                feerate_estimate_per_kw=self.feerate_per_kw,
                policy=self.policy,
            )
        except ChannelError as exc:
            log.info("refused open_channel from %s: %s", peer.short_id, exc)
            self._send_error(peer.node_id, tmp, str(exc))
            return
        ch.local_shutdown_script = script
        e = Entry(row_id=0, channel=ch, peer=peer.node_id, private=not (ch.channel_flags & 1), reestablished=True)
        e.watch_from = self.chain.height if self.chain is not None else None
        self._insert(e)
        self.commit(e, Outcome(messages=[accept]))

    def peer_ready(self, peer) -> None:
        for e in list(self.by_id.values()):
            if e.peer != peer.node_id:
                continue
            e.reestablished = False
            if e.state in LIVE:
                msg = e.channel.reestablish_message()
                self.commit(e, Outcome(messages=[msg]), auto_commit=False)

    def peer_closed(self, peer) -> None:
        for e in list(self.by_id.values()):
            if e.peer != peer.node_id:
                continue
            e.reestablished = False
            if e.state in PRE_FUNDING:
                self._abandon(e, "the peer disconnected during the open")


__all__ = ["MessageDispatch"]
