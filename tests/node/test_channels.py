"""ChannelManager and Payments with two (and three) in-process nodes on one event loop and a
private embedded chain: open, lock-in, payments both ways, failures, restart, close."""

from __future__ import annotations

import asyncio

import pytest

from lncli.channel.state import ChannelState
from lncli.config import Config
from lncli.errors import InputError, LncliError, RefusedError
from lncli.node.node import Node, NodeSettings
from lncli.wallet.fund import fund

S = ChannelState


def settings(tmp_path, name: str, port: int = 0) -> NodeSettings:
    return NodeSettings(
        datadir=tmp_path / name,
        network="regtest",
        listen=[("127.0.0.1", port)],
        config=Config({"to-self-delay": ["5"], "min-depth": ["2"]}, None),
        poll_interval=0.02,
        reconnect_initial=0.05,
    )


async def start(tmp_path, name: str, port: int = 0) -> Node:
    node = Node(settings(tmp_path, name, port))
    await node.start()
    return node


async def until(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def mine(node: Node, n: int) -> int:
    await node.chain.call(node.chain.backend.mine, n)
    target = node.chain.height + n
    await node.chain.wait_for_height(target, 10)
    return target


async def fund_wallet(node: Node, sat: int) -> None:
    """Give ``node``'s wallet ``sat`` on the private chain and wait until it sees the coins."""
    await node.chain.call(fund, node.chain.wallet, node.chain.backend, sat)
    await node.chain.wait_for_height(node.chain.backend.tip()[0], 10)


async def connect(a: Node, b: Node) -> None:
    host, port = b.peers.listen_addresses[0]
    await a.peers.connect(b.node_id, host, port, persist=True)


def chan(node: Node, peer: Node) -> dict:
    (c,) = [c for c in node.channels.list(peer.node_id) if c["state"] != "CLOSED"]
    return c


async def open_channel(a: Node, b: Node, amount: int = 500_000, push: int = 0):
    e = await a.channels.open(b.node_id, amount, push)
    assert e.state == S.AWAITING_LOCKIN
    await mine(a, 2)
    await until(lambda: chan(a, b)["state"] == "NORMAL" and chan(b, a)["state"] == "NORMAL", what="NORMAL")
    return e.channel_id


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 60))


def test_open_pay_restart_close(tmp_path):
    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            cid = await open_channel(a, b, 500_000, push=10_000_000)
            ca, cb = chan(a, b), chan(b, a)
            assert ca["channel_id"] == cb["channel_id"] == cid.hex()
            assert ca["short_channel_id"] == cb["short_channel_id"] is not None
            assert ca["local_balance_msat"] == 490_000_000 and cb["local_balance_msat"] == 10_000_000
            assert a.info()["num_channels"] == 1
            # a pays b
            inv = b.invoices.create(1_234_000, "x")
            p = await a.channels.payments.pay(inv.bolt11)
            assert p["status"] == "succeeded" and bytes.fromhex(p["payment_preimage"]) == inv.preimage
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0)
            assert chan(a, b)["local_balance_msat"] == 490_000_000 - 1_234_000
            assert chan(b, a)["local_balance_msat"] == 10_000_000 + 1_234_000
            assert b.invoices.lookup(inv.payment_hash).paid_at is not None
            # paying again is refused; b pays a back
            with pytest.raises(RefusedError):
                await a.channels.payments.pay(inv.bolt11)
            inv2 = a.invoices.create(None)
            p = await b.channels.payments.pay(inv2.bolt11, 234_000)
            assert p["status"] == "succeeded"
            # unknown payment hash: failure decoded from the onion
            inv3 = b.invoices.create(5000)
            b.db.execute("DELETE FROM invoices WHERE payment_hash=?", (inv3.payment_hash,))
            p = await a.channels.payments.pay(inv3.bolt11)
            assert p["status"] == "failed" and p["failure"] == "incorrect_or_unknown_payment_details"
            # too much
            inv4 = b.invoices.create(499_000_000)
            with pytest.raises(RefusedError, match="cannot pay"):
                await a.channels.payments.pay(inv4.bolt11)
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0)
            assert chan(a, b)["local_balance_msat"] == 490_000_000 - 1_000_000
            # restart b: channels reestablish, payments continue
            port = b.peers.listen_addresses[0][1]
            await b.close()
            b = await start(tmp_path, "b", port)
            await until(lambda: a.channels.by_id[cid].reestablished and b.channels.by_id[cid].reestablished, what="reestablish")
            inv5 = b.invoices.create(7_000)
            assert (await a.channels.payments.pay(inv5.bolt11))["status"] == "succeeded"
            # every form of reference finds it (one parser: lncli.proto.scid.parse_channel_ref)
            e = a.channels.find(cid.hex())
            ch = e.channel
            forms = [cid.hex().upper(), str(ch.funding_outpoint), b.node_id.hex()]
            if ch.short_channel_id is not None:
                forms += [str(ch.short_channel_id), str(int(ch.short_channel_id)), hex(ch.short_channel_id)]
            for form in forms:
                assert a.channels.find(form) is e, form
            with pytest.raises(InputError, match="no channel with short_channel_id 1x2x3"):
                a.channels.find("1x2x3")
            with pytest.raises(InputError, match="no open channel with peer"):
                a.channels.find("03" + "11" * 32)
            with pytest.raises(InputError, match="is not a channel_id"):
                a.channels.find("0" * 2732)
            # cooperative close
            res = await a.channels.close_channel(a.channels.find(cid.hex()))
            assert res["state"] == "CLOSING" and res["closing_txid"]
            await until(lambda: chan(b, a)["state"] == "CLOSING" if b.channels.list() else False)
            await mine(a, 1)
            await until(lambda: a.channels.list()[0]["state"] == "CLOSED" and b.channels.list()[0]["state"] == "CLOSED")
            assert a.info()["num_channels"] == 0
        finally:
            await a.close()
            await b.close()

    run(main())


def test_force_close_and_refusals(tmp_path):
    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            with pytest.raises(RefusedError, match="not connected"):
                await a.channels.open(b.node_id, 100_000)
            await connect(a, b)
            with pytest.raises(RefusedError, match="insufficient funds"):
                await a.channels.open(b.node_id, 100_000)
            await fund_wallet(a, 1_000_000)
            # b refuses a channel below its minimum (the error comes back)
            with pytest.raises(LncliError):
                await a.channels.open(b.node_id, 10_000, timeout=5)
            assert [c["state"] for c in a.channels.list()] == ["CLOSED"]
            cid = await open_channel(a, b, 300_000)
            inv = b.invoices.create(50_000_000)
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            # the HTLC's removal from b's commitment is batched (commit-delay): let it settle, so
            # b's commitment does not outbid a's in the mempool (both broadcast theirs)
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0)
            e = a.channels.by_id[cid]
            latest = e.channel.latest_holder_commitment()[0].txid()
            res = await a.channels.close_channel(e, force=True)
            assert res["state"] == "FORCE_CLOSING"
            assert bytes.fromhex(res["closing_txid"])[::-1] == latest
            await until(lambda: latest in a.chain.backend.mempool_txids(), what="commitment in mempool")
            await mine(a, 1)
            # b sees its peer's commitment spend the funding output
            await until(lambda: chan(b, a)["state"] == "FORCE_CLOSING", what="b notices")
            assert chan(a, b)["closing_txid"] == res["closing_txid"]
            # the monitor updates went to the watcher (the queue keeps at most the last outcome's)
            queued = [r[0] for r in a.db.execute("SELECT update_id FROM channel_monitor_queue")]
            assert queued in ([], [e.channel.next_update_id - 1])
            m = a.channels.watcher.monitors[cid]
            assert m.latest_update_id == e.channel.next_update_id - 1
            # after to_self_delay (5) the watcher sweeps our to_local into the wallet
            before = a.chain.wallet.balance().total_sat
            for _ in range(8):
                await mine(a, 1)
            await until(lambda: a.chain.wallet.balance().total_sat > before, what="sweep to the wallet")
        finally:
            await a.close()
            await b.close()

    run(main())
