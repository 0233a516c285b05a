"""The channels' side of the chain: every block, funding transactions, spends, expiry, fees.

Every block from :class:`~lncli.node.chainsync.ChainSync` (:meth:`ChainEvents.on_block`) is
scanned for funding transactions (depth and the real short_channel_id go to
``funding_confirmed``), spends of the funding outputs (mutual close settled; the peer's
commitment), and HTLC expiry (``expiring_htlcs``, BOLT 2 "cltv_expiry_delta Selection"
deadlines: an offered HTLC still on a commitment at its ``cltv_expiry``, or one we fulfilled
still there ``FULFILL_SAFETY_DELTA`` blocks before it, fails the channel, and its chain watcher
times it out or claims it with the preimage). The funding transaction is built with the wallet and broadcast (again
after a restart, with a closing transaction not yet on chain).

Commitment feerate (update_fee, BOLT 2): as the opener, the node keeps each NORMAL channel's
commitment feerate near the backend's estimate (``estimate_feerate_per_kw``, read on every block).
On each block and after each ``channel_reestablish``, a channel we opened, with no fee update
still in flight, gets ``update_fee`` + ``commitment_signed`` when the estimate is more than
:data:`FEE_UPDATE_UP` times the current feerate (over 20% higher) or below :data:`FEE_UPDATE_DOWN`
times it (under half): small moves are not worth a round trip, and a falling estimate is
followed lazily (a higher feerate only costs the opener). The new feerate is capped at what the
opener can pay on either commitment while keeping the reserve the peer requires
(:meth:`Channel.max_affordable_feerate`) and never goes below 253 sat/kw. The non-opener never
sends update_fee. For tests on regtest only, ``dev-feerate=N`` in lncli.conf, or the RPC
``dev-setfeerate``, replaces the backend's estimate.

A mixin of :class:`lncli.node.channels.ChannelManager` (its entries, chain and commit group).
"""

from __future__ import annotations

import logging

from lncli.bitcoin.tx import Transaction, TxOut
from lncli.channel import events as ev
from lncli.channel.channel import ChannelError
from lncli.channel.closing import FULFILL_SAFETY_DELTA
from lncli.channel.events import Outcome
from lncli.channel.state import ChannelState
from lncli.errors import LncliError, RefusedError
from lncli.node.entry import LIVE, PRE_FUNDING, Entry
from lncli.proto.scid import ShortChannelId
from lncli.store.db import transaction

log = logging.getLogger("lncli.channels")

S = ChannelState
#: update_fee when the estimate exceeds the current commitment feerate by more than 20% ...
FEE_UPDATE_UP = 1.2
#: ... or falls below half of it.
FEE_UPDATE_DOWN = 0.5
FEERATE_FLOOR = 253


class ChainEvents:
    """Blocks, funding and fees for the channel manager. Uses the manager's ``by_id``/``entries``,
    ``chain``, ``db`` (the scanned height), ``commit``/``commits`` (lncli.node.commits),
    ``fail_channel`` and its sending and task helpers."""

    async def on_block(self, block) -> None:
        height = block.height
        await self._refresh_feerate()
        active = [e for e in self.by_id.values() if e.state not in PRE_FUNDING and e.channel.funding_txid is not None]
        if active:
            txids = {tx.txid(): (i, tx) for i, tx in enumerate(block.txs)}
            spends = {}
            for tx in block.txs:
                for txin in tx.inputs:
                    spends[(txin.prevout.txid, txin.prevout.vout)] = tx
            for e in active:
                self._block_for(e, height, txids, spends)
            self.update_fees()
        self.commits.write_pending()  # the channels' state of this block is on disk before its height is
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO channel_meta(key, value) VALUES('scanned_height', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(height),),
            )

    def _block_for(self, e: Entry, height: int, txids: dict, spends: dict) -> None:
        ch = e.channel
        if e.funding_height is None:
            hit = txids.get(ch.funding_txid)
            if hit is not None:
                e.funding_height, e.funding_txindex = height, hit[0]
        elif e.funding_height > height:  # a reorg took it out
            e.funding_height = e.funding_txindex = None
        if e.funding_height is not None and (e.state == S.AWAITING_LOCKIN or ch.short_channel_id is None) and e.state in LIVE:
            scid = ShortChannelId.from_parts(e.funding_height, e.funding_txindex, ch.funding_output_index)
            out = ch.funding_confirmed(height - e.funding_height + 1, scid)
            self.commit(e, out)
        spender = spends.get((ch.funding_txid, ch.funding_output_index))
        if spender is not None and e.closing_height is None:
            self._funding_spent(e, spender, height)
        if e.state in (S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING):
            expiring = ch.expiring_htlcs(height)
            if expiring:
                kind, hid = expiring[0]
                if kind == "out":
                    why = f"HTLC {hid} (offered) reaches its cltv_expiry at block {height}"
                else:  # we know its preimage: claim it on chain while there is time
                    why = (f"HTLC {hid} (fulfilled, still not removed by the peer) is within {FULFILL_SAFETY_DELTA} "
                           f"blocks of its cltv_expiry at block {height}")
                self.fail_channel(e, why)

    def _funding_spent(self, e: Entry, tx: Transaction, height: int) -> None:
        ch = e.channel
        e.closing_height = height
        txid = tx.txid()
        if e.closing_txid is not None and e.closing_txid != txid and e.state == S.FORCE_CLOSING:
            e.close_reason = (e.close_reason or "") + "; the peer's commitment confirmed instead of ours"
        if e.closing_txid is None or e.closing_txid != txid:
            e.closing_txid = txid
            e.closing_tx = tx
            if e.state in (S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING):
                e.close_reason = e.close_reason or "the funding output was spent by the peer's transaction"
                ch.set_state(S.FORCE_CLOSING)
        if e.state == S.CLOSING:
            ch.mark_closed()
        self.commit(e, Outcome(), auto_commit=False)
        if e.state == S.CLOSED:
            self.by_id.pop(e.channel_id, None)

    def _scan_from(self) -> int | None:
        row = self.db.execute("SELECT value FROM channel_meta WHERE key='scanned_height'").fetchone()
        watching = [e for e in self.entries if e.state not in (S.CLOSED,) + PRE_FUNDING]
        if not watching:
            return None
        heights = [int(row[0]) + 1] if row else []
        heights += [e.watch_from for e in watching if e.funding_height is None and e.watch_from is not None]
        return min(heights) if heights else None

    async def _refresh_feerate(self) -> None:
        if self.dev_feerate is not None:
            self.feerate_per_kw = self.dev_feerate
            return
        try:
            self.feerate_per_kw = max(FEERATE_FLOOR, int(await self.chain.call(self.chain.backend.estimate_feerate_per_kw)))
        except LncliError as e:
            log.warning("fee estimate failed: %s", e)

    def fee_target(self, e: Entry) -> int | None:
        """The feerate to send in an update_fee for ``e`` now, or None (see the module doc)."""
        ch = e.channel
        if not ch.is_opener or e.state != S.NORMAL or not e.reestablished:
            return None
        if ch.shutdown_sent or ch.shutdown_received or ch.fee_update_pending():
            return None
        current = ch.current_feerate()
        estimate = max(FEERATE_FLOOR, int(self.feerate_per_kw))
        if current * FEE_UPDATE_DOWN <= estimate <= current * FEE_UPDATE_UP:
            return None
        target = ch.max_affordable_feerate(estimate)
        if target == current or (estimate > current and target < current):
            return None  # rising, but we cannot even afford what we have: leave it
        return target

    def maybe_update_fee(self, e: Entry) -> bool:
        """Send update_fee + commitment_signed on ``e`` if its feerate is off (True if sent).
        The fee update is written before it is sent, like every other update."""
        target = self.fee_target(e)
        if target is None:
            return False
        before = e.channel.current_feerate()
        try:
            out = e.channel.update_fee(target)  # checks everything before changing anything
        except ChannelError as exc:
            log.info("channel %s: no update_fee to %d: %s", e.channel_id.hex(), target, exc)
            return False
        log.info("channel %s: update_fee %d -> %d sat/kw", e.channel_id.hex(), before, target)
        self.commit(e, out)  # auto-commit adds commitment_signed when the peer can take one
        return True

    def update_fees(self) -> list[str]:
        """:meth:`maybe_update_fee` on every channel; the channel_ids that got one."""
        return [e.channel_id.hex() for e in list(self.by_id.values()) if self.maybe_update_fee(e)]

    async def _build_funding(self, e: Entry, req: ev.FundingRequired) -> None:
        ch = e.channel
        try:
            if self.chain is None or self.chain.wallet is None:
                raise RefusedError("this node has no wallet to fund the channel")
            tx, _change = await self.chain.call(
                self.chain.wallet.create_funding, [TxOut(req.amount_sat, req.script_pubkey)], self.feerate_per_kw
            )
        except LncliError as exc:
            self._send_error(e.peer, ch.temporary_channel_id, "funding failed")
            self._abandon(e, f"cannot build the funding transaction: {exc}")
            return
        if e.state != S.AWAITING_FUNDING_TX:
            await self.chain.call(self.chain.wallet.release, tx.txid())
            return
        vout = next(i for i, o in enumerate(tx.outputs) if o.script_pubkey == req.script_pubkey and o.value_sat == req.amount_sat)
        e.funding_tx = tx
        old = ch.channel_id
        out = ch.funding_tx_built(tx.txid(), vout)
        self._rekey(e, old)
        self.commit(e, out)

    async def _broadcast_funding(self, e: Entry) -> None:
        tx = e.funding_tx
        if tx is None:
            return
        from lncli.chain.interface import TxRejected

        try:
            await self.chain.call(self.chain.backend.broadcast, tx)
        except TxRejected as exc:
            if "already" not in exc.reason and "known" not in exc.reason and "missingorspent" not in exc.reason:
                log.error("funding tx %s rejected: %s", tx.txid_hex(), exc.reason)
        except LncliError as exc:
            log.warning("broadcasting the funding tx failed (will retry): %s", exc)
        try:
            await self.chain.call(self.chain.wallet.mark_broadcast, tx)
        except LncliError:
            pass
        if e.opened is not None and not e.opened.done():
            e.opened.set_result(e)

    async def _broadcast(self, tx: Transaction | None, what: str) -> None:
        if tx is None or self.chain is None:
            return
        from lncli.chain.interface import TxRejected

        try:
            await self.chain.call(self.chain.backend.broadcast, tx)
            log.info("broadcast %s tx %s", what, tx.txid_hex())
        except TxRejected as exc:
            log.info("%s tx %s not accepted: %s", what, tx.txid_hex(), exc.reason)
        except LncliError as exc:
            log.warning("broadcasting the %s tx failed: %s", what, exc)

    async def _rebroadcast(self, e: Entry) -> None:
        """After a restart: send out again what may not have reached the chain."""
        if e.state == S.AWAITING_LOCKIN and e.channel.is_opener and e.funding_height is None and e.funding_tx is not None:
            await self._broadcast_funding(e)
        if e.state in (S.CLOSING, S.FORCE_CLOSING) and e.closing_height is None and e.closing_tx is not None:
            await self._broadcast(e.closing_tx, "closing")


__all__ = ["ChainEvents", "FEE_UPDATE_UP", "FEE_UPDATE_DOWN", "FEERATE_FLOOR"]
