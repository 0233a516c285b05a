"""Keeping channels healthy in the running node, with in-process nodes on a private embedded
chain: update_fee by the opener (on a block, on reestablish, capped, never by the non-opener),
HTLC expiry (the payee holds an HTLC; the payer force-closes, times it out on chain and sweeps
it back), and BOLT 11 route hints for private channels."""

from __future__ import annotations

import asyncio

import pytest

from lncli.config import Config
from lncli.errors import InputError
from lncli.node.node import Node, NodeSettings
from lncli.proto import invoice as bolt11
from lncli.proto.scid import ShortChannelId
from tests.node.test_channels import chan, connect, fund_wallet, mine, open_channel, run, until


def settings(tmp_path, name: str, port: int = 0, **extra) -> NodeSettings:
    conf = {"to-self-delay": ["5"], "min-depth": ["2"]}
    conf.update({k: [str(v)] for k, v in extra.items()})
    return NodeSettings(
        datadir=tmp_path / name,
        network="regtest",
        listen=[("127.0.0.1", port)],
        config=Config(conf, None),
        poll_interval=0.02,
        reconnect_initial=0.05,
    )


async def start(tmp_path, name: str, port: int = 0, **extra) -> Node:
    node = Node(settings(tmp_path, name, port, **extra))
    await node.start()
    return node


async def funded_pair(tmp_path, b_extra=None, private=False, amount=500_000, push=0):
    a, b = await start(tmp_path, "a"), await start(tmp_path, "b", **(b_extra or {}))
    await fund_wallet(a, 2_000_000)
    await connect(a, b)
    if private:
        e = await a.channels.open(b.node_id, amount, push, private=True)
        await mine(a, 2)
        await until(lambda: chan(a, b)["state"] == "NORMAL" and chan(b, a)["state"] == "NORMAL", what="NORMAL")
        cid = e.channel_id
    else:
        cid = await open_channel(a, b, amount, push)
    return a, b, cid


def settled_fee(a, b, rate):
    ca, cb = chan(a, b), chan(b, a)
    ea, eb = a.channels.by_id[bytes.fromhex(ca["channel_id"])], b.channels.by_id[bytes.fromhex(cb["channel_id"])]
    return (ca["feerate_per_kw"] == cb["feerate_per_kw"] == rate
            and not ea.channel.fee_update_pending() and not eb.channel.fee_update_pending())


async def rpc(node, method, **params):
    return await node.registry.get(method)[0](**params)


def test_update_fee_by_the_opener(tmp_path):
    async def main():
        a, b, cid = await funded_pair(tmp_path, push=50_000_000)
        try:
            start_rate = chan(a, b)["feerate_per_kw"]
            assert chan(b, a)["feerate_per_kw"] == start_rate
            # within the thresholds: nothing is sent
            r = await rpc(a, "dev-setfeerate", feerate_per_kw=int(start_rate * 1.1) + 1)
            assert r["updated"] == []
            # the non-opener never sends update_fee
            r = await rpc(b, "dev-setfeerate", feerate_per_kw=start_rate * 4)
            assert r["updated"] == []
            await mine(b, 1)
            assert not b.channels.by_id[cid].channel.fee_update_pending()
            # 20% up: the opener sends update_fee + commitment_signed at the next block
            a.channels.dev_feerate = start_rate * 3
            await mine(a, 1)
            await until(lambda: settled_fee(a, b, start_rate * 3), what="feerate x3 on both commitments")
            # both commitments really use it (the fee is taken from the opener's side)
            ea = a.channels.by_id[cid]
            assert ea.channel.feerate(0, ea.channel.local_ctn) == start_rate * 3
            assert ea.channel.feerate(1, ea.channel.remote_ctn) == start_rate * 3
            # payments still work both ways
            inv = b.invoices.create(1_000_000, "after update_fee")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            inv = a.invoices.create(2_000_000, "back")
            assert (await b.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            # down by more than half: updated through the RPC at once
            r = await rpc(a, "dev-setfeerate", feerate_per_kw=253)
            assert r["updated"] == [cid.hex()]
            await until(lambda: settled_fee(a, b, 253), what="feerate 253")
            # unaffordable: capped at what the opener can pay while keeping its reserve
            r = await rpc(a, "dev-setfeerate", feerate_per_kw=50_000_000)
            assert r["updated"] == [cid.hex()]
            await until(lambda: not a.channels.by_id[cid].channel.fee_update_pending(), what="capped fee settles")
            ch = a.channels.by_id[cid].channel
            capped = chan(a, b)["feerate_per_kw"]
            assert 253 < capped < 50_000_000 and chan(b, a)["feerate_per_kw"] == capped
            ours, _, live, _ = ch._projected()
            assert ours - ch._opener_fee_msat(live, capped) >= ch.remote_config.channel_reserve_satoshis * 1000
            assert ch.max_affordable_feerate(10**9) == capped
            # the floor: dev-setfeerate refuses less than 253
            with pytest.raises(InputError):
                await rpc(a, "dev-setfeerate", feerate_per_kw=252)
            await rpc(a, "dev-setfeerate", feerate_per_kw=1000)
            await until(lambda: settled_fee(a, b, 1000), what="feerate 1000")
            # after a restart of b, the change made while it was away goes out at reestablish
            port = b.peers.listen_addresses[0][1]
            await b.close()
            a.channels.dev_feerate = a.channels.feerate_per_kw = 5000
            assert a.channels.update_fees() == []  # the peer is away: nothing is sent
            b = await start(tmp_path, "b", port)
            await until(lambda: settled_fee(a, b, 5000), what="update_fee at reestablish")
            inv = b.invoices.create(3_000, "after reestablish")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
        finally:
            await a.close()
            await b.close()

    run(main())


def test_dev_feerate_config(tmp_path):
    async def main():
        a = await start(tmp_path, "a", **{"dev-feerate": 777})
        try:
            assert a.channels.feerate_per_kw == 777
            await mine(a, 1)
            assert a.channels.feerate_per_kw == 777
        finally:
            await a.close()

    run(main())


def test_held_htlc_expires_on_chain(tmp_path):
    """b holds the HTLC (dev-hold-htlcs): at its cltv_expiry a force-closes, broadcasts the
    HTLC-timeout once the commitment confirms, sweeps it after to_self_delay, and the payment
    fails."""

    async def main():
        a, b, cid = await funded_pair(tmp_path, b_extra={"dev-hold-htlcs": 1}, amount=500_000)
        try:
            before_wallet = a.chain.wallet.balance().total_sat
            local_before = chan(a, b)["local_balance_msat"] // 1000
            inv = b.invoices.create(200_000_000, "held")
            task = asyncio.ensure_future(a.channels.payments.pay(inv.bolt11, timeout=50))
            await until(lambda: chan(a, b)["pending_htlcs"] == 1 and chan(b, a)["pending_htlcs"] == 1, what="HTLC committed")
            await asyncio.sleep(0.2)
            assert not task.done()
            (p,) = a.channels.payments.list(inv.payment_hash)
            assert p["status"] == "pending"
            expiry = p["cltv_expiry"]
            assert b.invoices.lookup(inv.payment_hash).paid_at is None
            # one block short of the expiry: still open
            await mine(a, expiry - 1 - a.chain.height)
            await asyncio.sleep(0.1)
            assert chan(a, b)["state"] == "NORMAL"
            # at the expiry: a force-closes and its commitment goes out
            await mine(a, 1)
            await until(lambda: chan(a, b)["state"] == "FORCE_CLOSING", what="force close at cltv_expiry")
            c = chan(a, b)
            assert "cltv_expiry" in c["close_reason"]
            commitment = bytes.fromhex(c["closing_txid"])[::-1]
            await until(lambda: commitment in a.chain.backend.mempool_txids(), what="commitment in mempool")
            await mine(a, 1)
            # the commitment confirmed: the watcher broadcasts the HTLC-timeout (spending it)
            def htlc_timeout_in_mempool():
                for txid in a.chain.backend.mempool_txids():
                    st = a.chain.backend.get_transaction(txid)
                    if st is not None and any(i.prevout.txid == commitment for i in st.tx.inputs):
                        return True
                return False
            await until(htlc_timeout_in_mempool, what="HTLC-timeout in mempool")
            # to_self_delay (5) on both the to_local output and the HTLC-timeout output, then the
            # watcher's anti-reorg depth: the payment fails and the coins are back in the wallet
            for _ in range(20):
                await mine(a, 1)
                if task.done():
                    break
                await asyncio.sleep(0.05)
            p = await asyncio.wait_for(task, 10)
            assert p["status"] == "failed" and p["failure"] == "permanent_channel_failure"
            await until(lambda: a.chain.wallet.balance().total_sat > before_wallet + local_before - 20_000,
                        what="to_local and the HTLC swept back")
            assert b.invoices.lookup(inv.payment_hash).paid_at is None
        finally:
            await a.close()
            await b.close()

    run(main())


def _decode_cli(text: str) -> dict:
    import json
    import subprocess
    import sys

    from tests.e2e.procs import ROOT

    p = subprocess.run([sys.executable, "-m", "lncli", "invoice", "decode", text],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_route_hints_for_private_channels(tmp_path):
    async def main():
        a, b, cid = await funded_pair(tmp_path, private=True, push=100_000_000)
        c = None
        try:
            assert chan(a, b)["private"] and chan(b, a)["private"]
            scid = chan(b, a)["short_channel_id"]
            # b's invoice: a can pay b over the private channel -> one hint, from a, with its scid
            # and a's policy (the defaults, 1 ppm) from a's channel_update to b
            (e,) = b.channels.by_id.values()
            for _ in range(100):
                if b.gossip.peer_update(e) is not None:
                    break
                await asyncio.sleep(0.05)
            assert b.gossip.peer_update(e) is not None
            inv = await rpc(b, "invoice", amount_msat=5_000, description="private")
            dec = bolt11.decode(inv["bolt11"])
            ((hop,),) = dec.route_hints
            assert hop.pubkey == a.node_id and str(ShortChannelId(hop.short_channel_id)) == scid
            assert (hop.fee_base_msat, hop.fee_proportional_millionths, hop.cltv_expiry_delta) == (1000, 1, 34)
            shown = _decode_cli(inv["bolt11"])
            assert scid in str(shown) and a.node_id.hex() in str(shown)
            # --no-route-hints
            inv2 = await rpc(b, "invoice", amount_msat=5_000, route_hints=False)
            assert bolt11.decode(inv2["bolt11"]).route_hints == ()
            # a (the opener, 400k sat on its side) also gets a hint: b can pay it (its push)
            ((hop_a,),) = bolt11.decode((await rpc(a, "invoice", amount_msat=1000))["bolt11"]).route_hints
            assert hop_a.pubkey == b.node_id and hop_a.short_channel_id == hop.short_channel_id
            # the hinted invoice is paid as usual
            assert (await a.channels.payments.pay(inv["bolt11"]))["status"] == "succeeded"
            # a public channel gives no hint
            c = await start(tmp_path, "c")
            await connect(a, c)
            await open_channel(a, c, 300_000, push=50_000_000)
            assert not chan(c, a)["private"]
            assert bolt11.decode((await rpc(c, "invoice", amount_msat=1000))["bolt11"]).route_hints == ()
        finally:
            await a.close()
            await b.close()
            if c is not None:
                await c.close()

    run(main())
