"""lncli.node.htlc_sets, the payee's side of basic_mpp, between two in-process nodes: parts are
held until their total_msat arrives and then all fulfilled, a set short of its total fails whole
with mpp_timeout, a part with another total_msat fails the set, and a held part survives the
payee's restart. The parts are offered one by one with Payments._offer (what the pay loop does
for each part), so a payment can be left incomplete on purpose."""

from __future__ import annotations

import asyncio
import hashlib

from lncli.config import Config
from lncli.node.node import Node, NodeSettings
from lncli.proto import invoice as bolt11
from lncli.proto.routing import Route, RouteHop
from tests.node.test_channels import chan, connect, fund_wallet, open_channel, until


def _settings(tmp_path, name: str, port: int = 0, **extra) -> NodeSettings:
    conf = {"to-self-delay": ["5"], "min-depth": ["2"]} | {k.replace("_", "-"): [str(v)] for k, v in extra.items()}
    return NodeSettings(datadir=tmp_path / name, network="regtest", listen=[("127.0.0.1", port)],
                        config=Config(conf, None), poll_interval=0.02, reconnect_initial=0.05)


async def _start(tmp_path, name: str, port: int = 0, **extra) -> Node:
    node = Node(_settings(tmp_path, name, port, **extra))
    await node.start()
    return node


async def _pair(tmp_path, **b_extra):
    a, b = await _start(tmp_path, "a"), await _start(tmp_path, "b", **b_extra)
    await fund_wallet(a, 2_000_000)
    await connect(a, b)
    await open_channel(a, b, 500_000)
    return a, b


def _offer(a: Node, b: Node, text: str, amount: int, total: int, part: int):
    """Offer one part of ``amount`` msat (of ``total``) straight to the payee b; its waiter."""
    pays = a.channels.payments
    inv = bolt11.decode(text, network_hint="regtest")
    (e,) = a.channels.usable(b.node_id)
    scid = int(e.channel.short_channel_id)
    cltv = a.block_height + inv.min_final_cltv_expiry_delta + 3
    route = Route((RouteHop(b.node_id, None, amount, cltv),), scid, amount, cltv, 0)
    key = pays._offer(inv, text, route, total, part)
    return pays._waiters[key], key


def _failure(a: Node, key) -> str | None:
    return a.channels.payments.get(*key)["failure"]


def test_parts_are_held_until_the_total_then_all_fulfilled(tmp_path):
    async def main():
        a, b = await _pair(tmp_path)
        try:
            inv = b.invoices.create(300_000, "two parts")
            f1, k1 = _offer(a, b, inv.bolt11, 100_000, 300_000, 0)
            await until(lambda: inv.payment_hash in b.channels.payments.htlc_sets.sets, what="the first part held")
            await asyncio.sleep(0.3)
            assert not f1.done() and b.invoices.lookup(inv.payment_hash).paid_at is None  # held, not settled
            f2, k2 = _offer(a, b, inv.bolt11, 200_000, 300_000, 1)
            assert await asyncio.wait_for(f2, 10) == inv.preimage
            assert await asyncio.wait_for(f1, 10) == inv.preimage
            await until(lambda: b.invoices.lookup(inv.payment_hash).paid_at is not None, what="paid")
            assert b.invoices.lookup(inv.payment_hash).amount_received_msat == 300_000
            rows = a.channels.payments.list(inv.payment_hash)
            assert [(r["part"], r["amount_msat"], r["total_msat"]) for r in rows] == [(0, 100_000, 300_000), (1, 200_000, 300_000)]
            assert inv.payment_hash not in b.channels.payments.htlc_sets.sets
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_set_short_of_its_total_fails_whole_with_mpp_timeout(tmp_path):
    async def main():
        a, b = await _pair(tmp_path, dev_mpp_timeout=1)
        try:
            inv = b.invoices.create(300_000, "never completed")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            f1, k1 = _offer(a, b, inv.bolt11, 100_000, 300_000, 0)
            f2, k2 = _offer(a, b, inv.bolt11, 100_000, 300_000, 1)
            assert await asyncio.wait_for(f1, 10) is None and await asyncio.wait_for(f2, 10) is None
            assert loop.time() - t0 >= 1.0  # not before the timeout
            assert _failure(a, k1) == _failure(a, k2) == "mpp_timeout"
            assert b.invoices.lookup(inv.payment_hash).paid_at is None
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0)
            # the whole payment, paid in one part now, still succeeds
            p = await a.channels.payments.pay(inv.bolt11)
            assert p["status"] == "succeeded", p
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_part_with_another_total_fails_the_whole_set(tmp_path):
    async def main():
        a, b = await _pair(tmp_path)
        try:
            inv = b.invoices.create(300_000, "mismatch")
            f1, k1 = _offer(a, b, inv.bolt11, 100_000, 300_000, 0)
            await until(lambda: inv.payment_hash in b.channels.payments.htlc_sets.sets, what="the first part held")
            f2, k2 = _offer(a, b, inv.bolt11, 250_000, 400_000, 1)
            assert await asyncio.wait_for(f1, 10) is None and await asyncio.wait_for(f2, 10) is None
            assert _failure(a, k1) == _failure(a, k2) == "incorrect_or_unknown_payment_details"
            assert b.invoices.lookup(inv.payment_hash).paid_at is None
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_held_part_survives_the_payees_restart_and_completes(tmp_path):
    async def main():
        a, b = await _pair(tmp_path)
        try:
            inv = b.invoices.create(300_000, "restart")
            f1, k1 = _offer(a, b, inv.bolt11, 100_000, 300_000, 0)
            await until(lambda: inv.payment_hash in b.channels.payments.htlc_sets.sets, what="the first part held")
            port = b.peers.listen_addresses[0][1]
            await b.close()
            b = await _start(tmp_path, "b", port)
            # recovered from the channel record: the part rejoins its set
            await until(lambda: inv.payment_hash in b.channels.payments.htlc_sets.sets, what="the part held again")
            cid = bytes.fromhex(chan(a, b)["channel_id"])
            await until(lambda: a.channels.by_id[cid].reestablished and b.channels.by_id[cid].reestablished,
                        what="reestablish")
            assert a.channels.payments.get(*k1)["status"] == "pending"  # the payer's listpayments shows the part
            f2, k2 = _offer(a, b, inv.bolt11, 200_000, 300_000, 1)
            assert await asyncio.wait_for(f2, 10) == inv.preimage
            assert await asyncio.wait_for(f1, 10) == inv.preimage
            assert hashlib.sha256(inv.preimage).digest() == inv.payment_hash
            await until(lambda: b.invoices.lookup(inv.payment_hash).amount_received_msat == 300_000, what="paid")
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))
