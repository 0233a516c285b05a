"""The node's chain poller: ordered, once-each block delivery; reorgs; the wallet following the chain."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

from lncli.bitcoin.address import address_to_script
from lncli.chain.embedded import EmbeddedChain
from lncli.chain.interface import Block
from lncli.errors import InputError, LncliError
from lncli.node import chainsync
from lncli.node.chainsync import ChainSync
from lncli.rpc.server import Registry
from lncli.wallet.wallet import Wallet

SEED = bytes(range(32))


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def chain(tmp_path):
    c = EmbeddedChain(tmp_path / "chain")
    yield c
    c.close()


@pytest.fixture
def wallet_factory(tmp_path):
    def make(backend):
        return Wallet(tmp_path / "wallet.sqlite3", "regtest", SEED, backend)

    return make


def test_subscribers_see_each_block_once_in_order(chain, wallet_factory):
    async def main():
        sync = ChainSync(chain, wallet=wallet_factory(chain), poll_interval=0.02)
        seen_a, seen_b, seen_c = [], [], []
        sync.subscribe(lambda b: seen_a.append((b.height, b.hash)))

        async def async_sub(b):
            await asyncio.sleep(0)
            seen_b.append(b.height)

        sync.subscribe(async_sub)
        await sync.start()
        assert sync.height == 0 and seen_a == [] and seen_b == []
        await sync.call(chain.mine, 3)
        assert await sync.wait_for_height(3, timeout=5) == 3
        # a late subscriber catching up from height 1
        sync.subscribe(lambda b: seen_c.append(b.height), from_height=1)
        await sync.call(chain.mine, 2)
        await sync.wait_for_height(5, timeout=5)
        await sync.poll()
        await sync.poll()  # nothing new: nothing delivered
        assert [h for h, _ in seen_a] == [1, 2, 3, 4, 5]
        assert [bh for _, bh in seen_a] == [chain.block_hash(h) for h in range(1, 6)]
        assert seen_b == [1, 2, 3, 4, 5]
        assert seen_c == [1, 2, 3, 4, 5]
        assert sync.tip_hash == chain.tip()[1]
        await sync.close()

    run(main())


def test_poll_does_not_block_the_loop(chain):
    """Backend calls run on the worker thread, not on the event loop's thread."""
    threads = set()

    class Spy:
        def __getattr__(self, name):
            attr = getattr(chain, name)
            if not callable(attr):
                return attr

            def wrapped(*a, **k):
                threads.add(threading.current_thread().name)
                return attr(*a, **k)

            return wrapped

    async def main():
        sync = ChainSync(Spy(), poll_interval=1)
        await sync.poll()
        chain.mine(1)
        await sync.poll()
        await sync.close()

    run(main())
    assert threads and all(t.startswith("lncli-chain") for t in threads)


def test_unsubscribe_and_failing_subscriber(chain):
    async def main():
        sync = ChainSync(chain, poll_interval=1)
        got = []

        def bad(b):
            raise RuntimeError("boom")

        sync.subscribe(bad)
        unsub = sync.subscribe(got.append)
        await sync.poll()
        chain.mine(1)
        await sync.poll()
        unsub()
        unsub()
        chain.mine(1)
        await sync.poll()
        assert [b.height for b in got] == [1]
        assert sync.height == 2
        await sync.close()

    run(main())


def test_wallet_balance_follows(chain, wallet_factory):
    async def main():
        wallet = wallet_factory(chain)
        sync = ChainSync(chain, wallet=wallet, poll_interval=0.02)
        await sync.start()
        assert (await sync.wallet_balance())["total_sat"] == 0
        addr = await sync.new_address()
        spk = address_to_script(addr, "regtest")
        await sync.call(chain.mine, 1, spk)
        await sync.wait_for_height(1, timeout=5)
        bal = await sync.wallet_balance()
        assert bal["immature_sat"] == 50 * 10**8 and bal["confirmed_sat"] == 0 and bal["scanned_height"] == 1
        await sync.call(chain.mine, 100)
        await sync.wait_for_height(101, timeout=10)
        await sync.poll()
        bal = await sync.wallet_balance()
        assert bal["confirmed_sat"] == 50 * 10**8 and bal["immature_sat"] == 0 and bal["scanned_height"] == 101
        await sync.close()

    run(main())


# -- reorgs, on a chain we control --------------------------------------------------------------


class FakeChain:
    """A chain of made-up blocks whose tip can be replaced (the embedded chain never reorgs)."""

    kind = "fake"
    network = "regtest"

    def __init__(self):
        self.blocks: list[Block] = []
        self.extend(1, "genesis")
        self.closed = False

    def extend(self, n: int, branch: str = "a") -> None:
        for _ in range(n):
            h = len(self.blocks)
            prev = self.blocks[-1].hash if self.blocks else b"\x00" * 32
            bh = hashlib.sha256(f"{branch}:{h}:{prev.hex()}".encode()).digest()
            self.blocks.append(Block(h, bh, prev, 1_600_000_000 + h, ()))

    def reorg(self, fork_height: int, n: int, branch: str) -> None:
        del self.blocks[fork_height:]
        self.extend(n, branch)

    def tip(self):
        return len(self.blocks) - 1, self.blocks[-1].hash

    def block_hash(self, height):
        if height >= len(self.blocks):
            raise LncliError("above the tip")
        return self.blocks[height].hash

    def block_at(self, height):
        if height >= len(self.blocks):
            raise LncliError("above the tip")
        return self.blocks[height]

    def mempool_txids(self):
        return []

    def close(self):
        self.closed = True


def test_reorg_redelivers_from_the_fork_point():
    async def main():
        fc = FakeChain()
        sync = ChainSync(fc, poll_interval=1)
        seen = []
        sync.subscribe(lambda b: seen.append((b.height, b.hash)))
        await sync.poll()
        fc.extend(5)
        await sync.poll()
        assert [h for h, _ in seen] == [1, 2, 3, 4, 5]
        old = dict(seen)
        # blocks 4 and 5 replaced by a longer branch
        fc.reorg(4, 3, "b")
        await sync.poll()
        assert [h for h, _ in seen] == [1, 2, 3, 4, 5, 4, 5, 6]
        assert seen[5][1] != old[4] and seen[5][1] == fc.block_hash(4)
        assert sync.height == 6 and sync.tip_hash == fc.tip()[1]
        # the tip alone replaced (same height)
        fc.reorg(6, 1, "c")
        await sync.poll()
        assert [h for h, _ in seen[-2:]] == [6, 6] and seen[-1][1] == fc.tip()[1]
        # a shorter branch: delivered from the fork point, the height goes down
        fc.reorg(3, 1, "d")
        await sync.poll()
        assert seen[-1] == (3, fc.block_hash(3)) and sync.height == 3 and sync.tip_hash == fc.tip()[1]
        # and on from there
        fc.extend(2, "d")
        await sync.poll()
        assert [h for h, _ in seen[-3:]] == [3, 4, 5]
        # every delivered block links to the one delivered before it at height - 1
        last = {}
        for h, bh in seen:
            last[h] = bh
        assert [last[h] for h in range(1, 6)] == [fc.block_hash(h) for h in range(1, 6)]
        await sync.close()
        assert fc.closed

    run(main())


def test_chain_moving_during_a_fetch():
    """A reorg between reading the tip and reading the blocks is noticed through prev_hash."""

    async def main():
        fc = FakeChain()
        fc.extend(2)
        sync = ChainSync(fc, poll_interval=1)
        seen = []
        sync.subscribe(lambda b: seen.append(b.height))
        await sync.poll()
        fc.extend(2)  # heights 3, 4
        original = fc.block_at
        fired = []

        def block_at(height):
            if height == 4 and not fired:
                fired.append(1)
                fc.reorg(3, 2, "x")  # 3 and 4 replaced just before 4 is read
            return original(height)

        fc.block_at = block_at
        await sync.poll()
        await sync.poll()
        assert seen == [3, 3, 4] and sync.tip_hash == fc.tip()[1]
        await sync.close()

    run(main())


def test_backend_errors_do_not_stop_the_poller():
    async def main():
        fc = FakeChain()
        sync = ChainSync(fc, poll_interval=0.01)
        calls = {"n": 0}
        real_tip = fc.tip

        def flaky_tip():
            calls["n"] += 1
            if calls["n"] in (2, 3):
                raise LncliError("cannot reach bitcoind")
            return real_tip()

        fc.tip = flaky_tip
        await sync.start()
        fc.extend(1)
        await sync.wait_for_height(1, timeout=5)
        assert sync.last_error == "cannot reach bitcoind"
        await sync.close()

    run(main())


def test_bad_interval():
    with pytest.raises(InputError):
        ChainSync(FakeChain(), poll_interval=0)


def test_rpc_without_chain():
    reg = Registry()
    chainsync.register(reg, None)
    with pytest.raises(LncliError, match="without a chain backend"):
        run(reg.get("walletbalance")[0]())
    with pytest.raises(LncliError):
        run(reg.get("newaddress")[0]())


def test_catch_up_over_many_blocks_keeps_a_bounded_window():
    async def main():
        fc = FakeChain()
        fc.extend(3000)
        sync = ChainSync(fc, poll_interval=1)
        await sync.poll()
        seen = []
        sync.subscribe(lambda b: seen.append(b.height), from_height=0)
        await sync.poll()
        assert seen == list(range(0, 3001))
        assert len(sync._hashes) <= chainsync.HASH_WINDOW + chainsync.FETCH_BATCH
        # a reorg deep inside the window is still found
        fc.reorg(2000, 1002, "z")
        await sync.poll()
        assert seen[3001:] == list(range(2000, 3002)) and sync.tip_hash == fc.tip()[1]
        await sync.close()

    run(main())
