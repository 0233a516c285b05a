"""OnchainHtlcs (lncli.node.onchain_htlcs) in three in-process nodes a -> b -> c: c holds the
HTLC (dev-hold-htlcs); the chain watcher's per-HTLC report at b (HtlcResolvedOnChain, emitted on
b's bus as the watcher would) settles a's HTLC: fulfilled with the preimage, or failed with
permanent_channel_failure; a report told again changes nothing. The chain path itself (the
monitor's reports from real force closes) is tests/e2e/test_onchain_htlcs.py."""

from __future__ import annotations

import asyncio

from lncli.node.events import ChannelResolved, HtlcResolvedOnChain
from tests.node.test_channel_upkeep import rpc, start
from tests.node.test_channels import chan, connect, fund_wallet, mine, open_channel, run, until


async def three(tmp_path):
    a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
    c = await start(tmp_path, "c", **{"dev-hold-htlcs": 1})
    await fund_wallet(a, 2_000_000)
    await fund_wallet(b, 2_000_000)
    await connect(a, b)
    await connect(b, c)
    await open_channel(a, b, 500_000)
    e = await b.channels.open(c.node_id, 400_000, 0, private=True)
    await mine(b, 2)
    await until(lambda: chan(b, c)["state"] == "NORMAL" and chan(c, b)["state"] == "NORMAL", what="b-c NORMAL")
    return a, b, c, e.channel_id


async def held_payment(a, b, c, amount_msat=20_000_000):
    made = await rpc(c, "invoice", amount_msat=amount_msat, description="held")  # with b's route hint
    inv = c.invoices.lookup(bytes.fromhex(made["payment_hash"]))
    task = asyncio.ensure_future(a.channels.payments.pay(made["bolt11"], timeout=30))
    await until(lambda: chan(c, b)["pending_htlcs"] == 1 and chan(a, b)["pending_htlcs"] == 1, what="HTLC at c")
    (f,) = b.forwarding.list()
    assert f["status"] == "offered"
    return inv, task, f


def test_preimage_on_chain_fulfils_upstream_once(tmp_path):
    async def main():
        a, b, c, bc = await three(tmp_path)
        try:
            ab_before = chan(a, b)["local_balance_msat"]
            inv, task, f = await held_payment(a, b, c)
            rec = c.invoices.lookup(inv.payment_hash)
            # a wrong channel or HTLC id settles nothing
            b.events.emit(HtlcResolvedOnChain(bytes(32), f["out_htlc_id"], inv.payment_hash, rec.preimage))
            b.events.emit(HtlcResolvedOnChain(bc, f["out_htlc_id"] + 1, inv.payment_hash, rec.preimage))
            await asyncio.sleep(0.2)
            assert not task.done() and b.forwarding.list()[0]["status"] == "offered"
            b.events.emit(HtlcResolvedOnChain(bc, f["out_htlc_id"], inv.payment_hash, rec.preimage))
            p = await asyncio.wait_for(task, 10)
            assert p["status"] == "succeeded" and p["payment_preimage"] == rec.preimage.hex()
            (f,) = b.forwarding.list()
            assert f["status"] == "settled" and f["fee_msat"] == f["in_msat"] - f["out_msat"] > 0
            await until(lambda: chan(a, b)["pending_htlcs"] == 0, what="a-b settled")
            assert chan(a, b)["local_balance_msat"] == ab_before - f["in_msat"]
            # told again (after a restart the watcher repeats itself), and the channel resolved: nothing changes
            b.events.emit(HtlcResolvedOnChain(bc, f["out_htlc_id"], inv.payment_hash, rec.preimage))
            b.events.emit(HtlcResolvedOnChain(bc, f["out_htlc_id"], inv.payment_hash, None))
            b.events.emit(ChannelResolved(bc))
            await asyncio.sleep(0.2)
            assert b.forwarding.list() == [f]
            assert chan(a, b)["local_balance_msat"] == ab_before - f["in_msat"]
        finally:
            for n in (a, b, c):
                await n.close()

    run(main())


def test_timeout_on_chain_fails_upstream(tmp_path):
    async def main():
        a, b, c, bc = await three(tmp_path)
        try:
            ab_before = chan(a, b)["local_balance_msat"]
            inv, task, f = await held_payment(a, b, c)
            b.events.emit(HtlcResolvedOnChain(bc, f["out_htlc_id"], inv.payment_hash, None))
            p = await asyncio.wait_for(task, 10)
            assert p["status"] == "failed" and p["failure"] == "permanent_channel_failure"
            assert p["failing_node"] == b.node_id.hex()
            (f,) = b.forwarding.list()
            assert f["status"] == "failed" and f["failure"] == "timed out on chain" and f["fee_msat"] == 0
            await until(lambda: chan(a, b)["pending_htlcs"] == 0, what="a-b settled")
            assert chan(a, b)["local_balance_msat"] == ab_before  # nothing moved
        finally:
            for n in (a, b, c):
                await n.close()

    run(main())


def test_channel_resolved_fails_what_never_reached_the_chain(tmp_path):
    async def main():
        a, b, c, bc = await three(tmp_path)
        try:
            inv, task, f = await held_payment(a, b, c)
            b.events.emit(ChannelResolved(bc))
            p = await asyncio.wait_for(task, 10)
            assert p["status"] == "failed" and p["failure"] == "permanent_channel_failure"
            assert b.forwarding.list()[0]["failure"] == "outgoing channel closed on chain"
        finally:
            for n in (a, b, c):
                await n.close()

    run(main())
