"""The node's view of the chain: a poller that follows the backend's tip.

:class:`ChainSync` owns the chain backend and the node's wallet. A task polls the tip every
``poll_interval`` seconds and, when it moves:

- delivers each new block, in height order, once, to every subscriber (``subscribe(callback)``;
  the channel code and the chain watcher use it). When a block's ``prev_hash`` is not the hash
  of the block delivered below it (a reorg), the poller walks back to the fork point and
  delivers the blocks of the new branch from there: a subscriber then sees a height again, with a
  different hash, and must undo what it did for the old block at that height and above;
- syncs the wallet (``Wallet.sync``: new blocks, and the mempool when it changed);
- updates :attr:`height`, which ``node info`` shows as ``block_height``.

Backend and wallet calls block (SQLite, HTTP to bitcoind): they run on one worker thread, so the
event loop never waits on them and they never run concurrently with each other. Use :meth:`call`
to run anything else that touches the backend or the wallet.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from lncli.errors import InputError, LncliError

log = logging.getLogger("lncli.node.chain")

DEFAULT_POLL_INTERVAL = {"embedded": 0.5, "bitcoind": 2.0}
HASH_WINDOW = 2016  # block hashes remembered below the tip, to find fork points
FETCH_BATCH = 64  # blocks fetched per worker-thread hop while catching up

BlockCallback = Callable[[Any], Any]  # callback(block) -> None or an awaitable


@dataclass
class _Subscriber:
    callback: BlockCallback
    next_height: int | None  # None: from the next new block


class ChainSync:
    """Follows ``backend``'s tip; see the module docstring. ``wallet`` (optional) is synced."""

    def __init__(self, backend, *, wallet=None, poll_interval: float = 0.5):
        if poll_interval <= 0:
            raise InputError("the poll interval must be positive")
        self.backend = backend
        self.wallet = wallet
        self.poll_interval = poll_interval
        self.height: int | None = None  # best block seen
        self.tip_hash: bytes | None = None
        self._hashes: dict[int, bytes] = {}  # height -> hash of the block delivered there
        self._subscribers: list[_Subscriber] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lncli-chain")
        self._task: asyncio.Task | None = None
        self._poll_lock = asyncio.Lock()
        self._mempool: frozenset[bytes] | None = None
        self._wallet_height: int | None = None
        self._wallet_failed = False
        self._tip_event = asyncio.Event()
        self._polled_height: int | None = None  # tip of the last completed poll
        self.last_error: str | None = None

    # -- running blocking calls -----------------------------------------------------------------

    async def call(self, fn: Callable, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` on the chain worker thread."""
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- subscribers --------------------------------------------------------------------------

    def subscribe(self, callback: BlockCallback, from_height: int | None = None) -> Callable[[], None]:
        """Deliver blocks to ``callback(block)`` (a function or a coroutine function), in order,
        from ``from_height`` (catching up on past blocks at the next poll) or else from the next
        new block. Returns a function that unsubscribes."""
        sub = _Subscriber(callback, from_height)
        if from_height is None and self.height is not None:
            sub.next_height = self.height + 1
        self._subscribers.append(sub)

        def unsubscribe() -> None:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

        return unsubscribe

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the tip (so the height is known when the node answers), then keep polling; the
        wallet's first sync (possibly a long scan) happens in the background."""
        try:
            await self.poll(sync_wallet=False)
        except LncliError as e:
            log.warning("chain: %s (will retry)", e)
        self._task = asyncio.create_task(self._run(), name="chain-poller")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        async with self._poll_lock:
            pass
        await self.call(self._close_blocking)
        self._executor.shutdown(wait=True)

    def _close_blocking(self) -> None:
        for thing in (self.wallet, self.backend):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing must not fail the shutdown
                    log.debug("closing %r failed", thing, exc_info=True)

    async def _run(self) -> None:
        failing = False
        first = True
        while True:
            if not first:
                await asyncio.sleep(self.poll_interval)
            first = False
            try:
                await self.poll()
                if failing:
                    log.info("chain: backend reachable again, tip %s", self.height)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep polling whatever the backend did
                self.last_error = str(e)
                if not failing:
                    (log.warning if isinstance(e, LncliError) else log.exception)("chain: poll failed: %s", e)
                failing = True

    async def wait_for_height(self, height: int, timeout: float | None = None) -> int:
        """Wait until a poll has completed (blocks delivered, wallet synced) with the tip at
        least ``height``; return that tip height."""

        async def wait() -> int:
            while self._polled_height is None or self._polled_height < height:
                self._tip_event.clear()
                await self._tip_event.wait()
            return self._polled_height

        return await asyncio.wait_for(wait(), timeout)

    # -- one poll -------------------------------------------------------------------------------

    async def poll(self, sync_wallet: bool = True) -> int:
        """Follow the tip once: deliver new blocks, sync the wallet. Returns the tip height."""
        async with self._poll_lock:
            height, tip_hash = await self.call(self.backend.tip)
            if self.height is None:  # first poll: start here
                for sub in self._subscribers:
                    if sub.next_height is None:
                        sub.next_height = height + 1
            if tip_hash != self.tip_hash or self._catching_up(height):
                await self._follow(height, tip_hash)
            if not sync_wallet:
                return self.height
            await self._sync_wallet()
            self._polled_height = self.height
            self._tip_event.set()
            return self.height

    def _catching_up(self, height: int) -> bool:
        return any(s.next_height is not None and s.next_height <= height for s in self._subscribers)

    async def _follow(self, tip_height: int, tip_hash: bytes) -> None:
        if self.height is None:
            self._hashes[tip_height] = tip_hash
            self._set_tip(tip_height, tip_hash)
        elif tip_hash != self.tip_hash:
            # did the blocks we delivered stay in the best chain?
            top = min(self.height, tip_height)
            known = self._hashes.get(top)
            if known is not None and (top < self.height or await self.call(self.backend.block_hash, top) != known):
                self._rewind(await self._fork_point(top))
        # the lowest height anyone (us included) still needs
        h = min([s.next_height for s in self._subscribers if s.next_height is not None] + [self.height + 1])
        h = max(h, 0)
        while h <= tip_height:
            blocks = await self.call(_fetch, self.backend, h, min(h + FETCH_BATCH - 1, tip_height))
            for block in blocks:
                below = self._hashes.get(block.height - 1)
                if below is not None and block.prev_hash != below:  # the chain moved while we read it
                    h = await self._fork_point(block.height - 1)
                    self._rewind(h)
                    break
                seen = self._hashes.get(block.height)
                if seen is not None and seen != block.hash:
                    self._forget_above(block.height - 1)
                    self._rewind(block.height)
                self._hashes[block.height] = block.hash
                await self._deliver(block)
                if block.height > self.height:
                    self._set_tip(block.height, block.hash)
                h = block.height + 1
            self._forget_below(h - HASH_WINDOW)
        if tip_height <= self.height:
            self._set_tip(tip_height, self._hashes.get(tip_height, tip_hash))

    def _rewind(self, height: int) -> None:
        """Blocks from ``height`` up were replaced: deliver them again."""
        log.info("chain: reorg, blocks from height %d replaced", height)
        for sub in self._subscribers:
            if sub.next_height is not None and sub.next_height > height:
                sub.next_height = height
        if self.height is not None and self.height >= height:
            below = height - 1
            self.height, self.tip_hash = below, self._hashes.get(below)

    async def _fork_point(self, height: int) -> int:
        """The first height whose block differs from what was delivered; forgets the hashes above it."""
        while height >= 0 and height in self._hashes:
            if await self.call(self.backend.block_hash, height) == self._hashes[height]:
                break
            height -= 1
        self._forget_above(height)
        return height + 1

    def _forget_above(self, height: int) -> None:
        for k in [k for k in self._hashes if k > height]:
            del self._hashes[k]

    def _forget_below(self, height: int) -> None:
        if len(self._hashes) > HASH_WINDOW + FETCH_BATCH:
            for k in [k for k in self._hashes if k < height]:
                del self._hashes[k]

    def _set_tip(self, height: int, block_hash: bytes) -> None:
        self.height, self.tip_hash = height, block_hash

    async def _deliver(self, block) -> None:
        for sub in list(self._subscribers):
            if sub.next_height is None or sub.next_height > block.height:
                continue
            if sub.next_height < block.height:
                continue  # cannot happen: blocks come in order from the lowest height needed
            try:
                result = sub.callback(block)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one subscriber's bug must not stop the others
                log.exception("chain: subscriber %r failed on block %d", sub.callback, block.height)
            sub.next_height = block.height + 1

    async def _sync_wallet(self) -> None:
        if self.wallet is None:
            return
        mempool = frozenset(await self.call(self.backend.mempool_txids))
        if mempool == self._mempool and self._wallet_height == self.height and not self._wallet_failed:
            return
        try:
            self._wallet_height = await self.call(self.wallet.sync)
            self._mempool = mempool
            self._wallet_failed = False
        except Exception:
            self._wallet_failed = True
            raise

    # -- wallet through the node ------------------------------------------------------------------

    def _need_wallet(self):
        if self.wallet is None:
            raise LncliError("this node has no wallet")
        return self.wallet

    async def new_address(self, change: bool = False) -> str:
        return await self.call(self._need_wallet().new_address, change)

    async def wallet_balance(self) -> dict:
        """The balance after a poll (so it includes what the chain has now)."""
        wallet = self._need_wallet()
        try:
            await self.poll()
        except LncliError as e:  # backend unreachable: the balance as last synced
            log.warning("chain: %s", e)

        def balance() -> dict:
            out = wallet.balance().to_json()
            out["scanned_height"] = wallet.scanned_height()
            return out

        return await self.call(balance)


def _fetch(backend, first: int, last: int) -> list:
    out = []
    for h in range(first, last + 1):
        out.append(backend.block_at(h))
    return out


# -- wiring into the node ---------------------------------------------------------------------


def open_node_backend(settings):
    """The chain backend for a node's settings (its config, network and datadir)."""
    from lncli.chain.backend import open_backend

    env = SimpleNamespace(config=settings.config, network=settings.network, datadir=settings.datadir)
    return open_backend(env)


def open_chain(settings, seed: bytes) -> ChainSync | None:
    """The chain view of a node with these settings and wallet seed when its settings carry a
    config (``None`` otherwise: a node built without one, as in unit tests, has no chain)."""
    sync: ChainSync | None = None
    if getattr(settings, "config", None) is not None:
        from lncli.chain.backend import backend_kind
        from lncli.wallet.wallet import Wallet, wallet_path

        kind = backend_kind(SimpleNamespace(config=settings.config, network=settings.network, datadir=settings.datadir))
        interval = getattr(settings, "poll_interval", None) or DEFAULT_POLL_INTERVAL[kind]
        backend = open_node_backend(settings)
        try:
            wallet = Wallet(wallet_path(settings.netdir), settings.network, seed, backend)
        except BaseException:
            backend.close()
            raise
        sync = ChainSync(backend, wallet=wallet, poll_interval=interval)
    return sync


def register(registry, sync: ChainSync | None) -> None:
    def need() -> ChainSync:
        if sync is None:
            raise LncliError("this node runs without a chain backend")
        return sync

    async def newaddress(change: bool = False) -> dict:
        return {"address": await need().new_address(bool(change))}

    async def walletbalance() -> dict:
        return await need().wallet_balance()

    registry.add("newaddress", newaddress)
    registry.add("walletbalance", walletbalance)


__all__ = ["ChainSync", "open_chain", "register", "open_node_backend", "DEFAULT_POLL_INTERVAL"]
