"""ChainWatcher: the monitors driven by the node's block feed (ChainSync on an embedded chain),
broadcasting through the backend, surviving a restart."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lncli.bitcoin.address import script_to_address
from lncli.monitor import monitor as mon
from lncli.monitor.store import MonitorStore
from lncli.monitor.watcher import ChainWatcher, penalty_tx_for_channel
from lncli.node.chainsync import ChainSync
from tests.channel.harness import A
from tests.monitor.chainpair import DEST, new_chain, of_type, received_at
from tests.monitor.test_monitor import htlc_pair, revoked_pair


class Backend:
    """The chain, but closing a ChainSync does not close it."""

    def __init__(self, chain):
        self.chain = chain

    def __getattr__(self, name):
        return getattr(self.chain, name)

    def close(self):
        pass


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


def make_watcher(chain, path, p, seen):
    sync = ChainSync(Backend(chain), poll_interval=1)
    store = MonitorStore(path)
    w = ChainWatcher(
        sync,
        store,
        chain.broadcast,
        lambda cid: p.ch[A].secrets,
        lambda: script_to_address(DEST[A], "regtest"),
        feerate_fn=lambda: 2000,
        on_action=lambda cid, a: seen.append(a),
    )
    return sync, store, w


def test_force_close_through_the_watcher_with_a_restart(chain, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lncli.monitor")
    p, tip = htlc_pair(chain)
    path = tmp_path / "regtest" / "node.sqlite3"
    seen: list = []
    cid = p.ch[A].channel_id

    async def phase1():
        sync, store, w = make_watcher(chain, path, p, seen)
        w.start()
        await sync.poll()
        w.persist_updates(cid, p.monitor[A])
        out = p.call(A, "force_close")
        w.persist_updates(cid, out.monitor_updates)
        for _ in range(3):
            chain.mine(1)
            await sync.poll()
        w.close()
        await sync.close()
        store.close()

    async def phase2():
        sync, store, w = make_watcher(chain, path, p, seen)
        w.start()
        assert list(w.monitors) == [cid]
        for _ in range(80):
            await sync.poll()
            if not w.monitors:
                break
            chain.mine(1)
        assert not w.monitors and store.channel_ids() == [] and store.channel_ids(include_resolved=True) == [cid]
        w.close()
        await sync.close()
        store.close()

    asyncio.run(phase1())
    (spent,) = of_type(seen, mon.FundingSpent)
    assert spent.kind == mon.HOLDER_COMMITMENT
    asyncio.run(phase2())
    assert of_type(seen, mon.Resolved)
    reasons = {a.reason for a in of_type(seen, mon.Broadcast)}
    assert "sweep to_local of our commitment" in reasons
    assert "sweep output of our HTLC-timeout tx of HTLC 0" in reasons
    assert received_at(chain, DEST[A], spent.height) > 700_000
    assert "resolved (holder_commitment)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_penalty_from_the_store(chain, tmp_path):
    p, tip, old, _ = revoked_pair(chain)
    path = tmp_path / "node.sqlite3"
    seen: list = []

    async def main():
        sync, store, w = make_watcher(chain, path, p, seen)
        w.start()
        w.persist_updates(p.ch[A].channel_id, p.monitor[A])
        await sync.poll()
        chain.mine(1)
        await sync.poll()  # the destination script is set at the first block
        await sync.close()
        return store

    store = asyncio.run(main())
    tx = penalty_tx_for_channel(store, p.ch[A].channel_id, p.ch[A].secrets, old.to_hex())
    assert tx.outputs[0].script_pubkey == DEST[A]
    chain.broadcast(old)
    chain.broadcast(tx)
    store.close()
