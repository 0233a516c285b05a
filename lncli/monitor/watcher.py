"""The chain watcher's asyncio glue, and the ``penalty`` helpers.

:class:`ChainWatcher` holds the live :class:`~lncli.monitor.monitor.ChannelMonitor` of every
unresolved channel. It subscribes to the node's block feed (``ChainSync.subscribe``; blocks in
order, re-delivered from the fork point after a reorg), feeds each block to every monitor,
snapshots the monitors, and carries out their actions: broadcasts go to the chain backend on the
chain worker thread (``ChainSync.call``) every block until they confirm; resolved monitors are
archived. The channel code hands it monitor updates through :meth:`ChainWatcher.persist_updates`,
which returns only once they are committed to disk.

The monitor never sees the wallet or the node: the watcher is given narrow callables
(``broadcast``, ``secrets_for_channel``, ``destination_script_fn``).

:func:`penalty_tx` is what a ``lncli penalty`` command calls: the signed justice transaction
for a revoked commitment, from a monitor's state alone.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from lncli.bitcoin.tx import Transaction
from lncli.chain.interface import TxRejected
from lncli.errors import RefusedError
from lncli.monitor import monitor as mon
from lncli.monitor.monitor import ChannelMonitor
from lncli.monitor.store import MonitorStore

__all__ = ["ChainWatcher", "penalty_tx", "penalty_tx_for_channel"]

log = logging.getLogger("lncli.monitor")

#: rejections that only mean "already there" when we rebroadcast
_BENIGN = ("txn-already-in-mempool", "txn-already-known", "Transaction outputs already in utxo set",
           "transaction already in block chain")


class ChainWatcher:
    """See the module docstring.

    ``chainsync``: a ``lncli.node.chainsync.ChainSync`` (``subscribe``, ``call``);
    ``store``: a :class:`MonitorStore`;
    ``broadcast(tx) -> txid``: blocking, e.g. the backend's ``broadcast`` (raises TxRejected);
    ``secrets_for_channel(channel_id) -> ChannelSecrets``;
    ``destination_script_fn() -> bytes | str``: blocking; a scriptPubKey, or an address of the
    backend's network (e.g. ``Wallet.new_address``), asked once per channel;
    ``feerate_fn() -> int``: blocking, sweep fee rate per kw (default: the monitors' own);
    ``on_action(channel_id, action)``: optional listener (function or coroutine function).
    """

    def __init__(
        self,
        chainsync,
        store: MonitorStore,
        broadcast: Callable[[Transaction], Any],
        secrets_for_channel: Callable[[bytes], Any],
        destination_script_fn: Callable[[], bytes | str],
        *,
        feerate_fn: Callable[[], int] | None = None,
        on_action: Callable[[bytes, mon.Action], Any] | None = None,
    ):
        self.chainsync = chainsync
        self.store = store
        self.broadcast = broadcast
        self.secrets_for_channel = secrets_for_channel
        self.destination_script_fn = destination_script_fn
        self.feerate_fn = feerate_fn
        self.on_action = on_action
        self.monitors: dict[bytes, ChannelMonitor] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._announced: set[bytes] = set()  # txids whose broadcast was logged at info

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load every unresolved monitor and subscribe to blocks from the lowest height any of
        them still needs (the next new block if none has seen a block yet)."""
        for m in self.store.load_all(self.secrets_for_channel):
            self.monitors[m.channel_id] = m
        seen = [m.best_height for m in self.monitors.values() if m.best_height is not None]
        from_height = min(seen) + 1 if seen else None
        self._unsubscribe = self.chainsync.subscribe(self.on_block, from_height)
        log.info("monitor: watching %d channel(s)%s", len(self.monitors),
                 f" from block {from_height}" if from_height is not None else "")

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- updates from the channel code ------------------------------------------------------------

    def persist_updates(self, channel_id: bytes, updates: Iterable) -> ChannelMonitor | None:
        """Persist then apply ``updates`` (``Outcome.monitor_updates``) to the channel's monitor,
        creating it at the ``ChannelSetup``. Returns once everything is on disk; raises
        ``MonitorUpdateError`` on a refused update (those before it are kept)."""
        updates = list(updates)
        channel_id = bytes(channel_id)
        m = self.monitors.get(channel_id)
        if m is None and updates:
            m = ChannelMonitor(channel_id, self.secrets_for_channel(channel_id))
            m.check_update(updates[0])  # must be the ChannelSetup
            self.store.add(m)
            self.monitors[channel_id] = m
        if m is not None:
            self.store.apply_all(m, updates)
        return m

    def stage_updates(self, conn, channel_id: bytes, updates: Iterable) -> ChannelMonitor | None:
        """:meth:`persist_updates` inside the caller's open transaction on the store's connection
        (the channel's own transaction: one disk sync for both). Updates already applied are
        skipped. Raises ``MonitorUpdateError`` on a refused update (those before it stay applied
        and written). If the transaction does not commit, the caller calls :meth:`reload`."""
        channel_id = bytes(channel_id)
        m = self.monitors.get(channel_id)
        if m is None:
            updates = list(updates)
            if not updates:
                return None
            m = ChannelMonitor(channel_id, self.secrets_for_channel(channel_id))
            m.check_update(updates[0])  # must be the ChannelSetup
            self.store.add_in(conn, m)
            self.monitors[channel_id] = m
        for u in updates:
            if u.update_id > m.latest_update_id:
                self.store.apply_in(conn, m, u)
        return m

    def reload(self, channel_id: bytes) -> None:
        """Forget the in-memory monitor of ``channel_id`` and load it again from the store (after
        a transaction that :meth:`stage_updates` wrote into was rolled back)."""
        channel_id = bytes(channel_id)
        self.monitors.pop(channel_id, None)
        if channel_id in self.store.channel_ids():
            self.monitors[channel_id] = self.store.load(channel_id, self.secrets_for_channel(channel_id))

    # -- blocks -----------------------------------------------------------------------------------

    async def on_block(self, block) -> None:
        """Feed ``block`` to every live monitor and act on what they return."""
        if not self.monitors:
            return
        feerate = None
        if self.feerate_fn is not None:
            try:
                feerate = await self.chainsync.call(self.feerate_fn)
            except Exception as e:  # noqa: BLE001 - keep the monitors' last fee rate
                log.warning("monitor: fee estimate failed: %s", e)
        for m in list(self.monitors.values()):
            if feerate is not None:
                m.feerate_per_kw = feerate
            if m.destination_script is None and m.setup is not None:
                m.destination_script = await self._destination()
            actions = m.block_connected(block, block.height)
            self.store.save(m)
            for a in actions:
                await self._act(m, a)

    async def _destination(self) -> bytes:
        dest = await self.chainsync.call(self.destination_script_fn)
        if isinstance(dest, str):
            from lncli.bitcoin.address import address_to_script

            dest = address_to_script(dest, self.chainsync.backend.network)
        return bytes(dest)

    async def _act(self, m: ChannelMonitor, a: mon.Action) -> None:
        cid = m.channel_id.hex()
        if isinstance(a, mon.Broadcast):
            txid = a.tx.txid()
            try:
                await self.chainsync.call(self.broadcast, a.tx)
                if txid not in self._announced:
                    self._announced.add(txid)
                    log.info("monitor %s: broadcast %s: %s", cid, a.reason, a.tx.txid_hex())
                else:
                    log.debug("monitor %s: rebroadcast %s: %s", cid, a.reason, a.tx.txid_hex())
            except TxRejected as e:
                level = logging.DEBUG if e.reason in _BENIGN else logging.WARNING
                log.log(level, "monitor %s: %s %s rejected: %s", cid, a.reason, a.tx.txid_hex(), e.reason)
            except Exception as e:  # noqa: BLE001 - retried at the next block
                log.warning("monitor %s: broadcasting %s failed: %s", cid, a.reason, e)
        elif isinstance(a, mon.WaitUntil):
            log.debug("monitor %s: waiting for block %d: %s", cid, a.height, a.reason)
        elif isinstance(a, mon.FundingSpent):
            log.info("monitor %s: funding output spent by %s (%s) at block %d",
                     cid, a.txid[::-1].hex(), a.kind, a.height)
        elif isinstance(a, mon.PreimageLearned):
            log.info("monitor %s: learned the preimage of %s on chain", cid, a.payment_hash.hex())
        elif isinstance(a, mon.OfferedHtlcResolved):
            log.info("monitor %s: our HTLC %d %s on chain (%s)", cid, a.htlc_id,
                     "timed out" if a.timed_out else "claimed with its preimage", a.txid[::-1].hex())
        elif isinstance(a, mon.Resolved):
            log.info("monitor %s: resolved (%s) at block %d", cid, a.kind, a.height)
            self.store.mark_resolved(m)
            self.monitors.pop(m.channel_id, None)
        if self.on_action is not None:
            try:
                result = self.on_action(m.channel_id, a)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the watcher
                log.exception("monitor %s: on_action failed", cid)


# -- penalty --------------------------------------------------------------------------------------


def penalty_tx(
    revoked_commitment_hex: str,
    monitor: ChannelMonitor,
    *,
    destination_script: bytes | None = None,
    feerate_per_kw: int | None = None,
) -> Transaction:
    """The signed justice tx for a revoked commitment (hex) of ``monitor``'s channel: its
    to_local and every HTLC output, with the revocation key, to ``destination_script`` (default:
    the monitor's). DecodeError for a bad hex tx; RefusedError if it is not a revoked commitment
    of this channel or nothing is worth sweeping."""
    tx = Transaction.from_hex(revoked_commitment_hex.strip())
    return monitor.build_justice_tx(tx, destination_script=destination_script, feerate_per_kw=feerate_per_kw)


def penalty_tx_for_channel(
    store: MonitorStore,
    channel_id: bytes,
    secrets,
    revoked_commitment_hex: str,
    **kw,
) -> Transaction:
    """:func:`penalty_tx` with the channel's monitor loaded from ``store`` (resolved or not)."""
    if bytes(channel_id) not in store.channel_ids(include_resolved=True):
        raise RefusedError(f"no monitor for channel {bytes(channel_id).hex()}")
    return penalty_tx(revoked_commitment_hex, store.load(channel_id, secrets), **kw)
