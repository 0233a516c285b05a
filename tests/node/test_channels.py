"""ChannelManager and Payments with two (and three) in-process nodes on one event loop and a
private embedded chain: open, lock-in, payments both ways, failures, restart, close."""

from __future__ import annotations

import asyncio
import json

import pytest

from lncli.channel.state import ChannelState
from lncli.config import Config
from lncli.errors import InputError, LncliError, RefusedError
from lncli.node.node import Node, NodeSettings
from lncli.proto.wire import default_schema
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


@pytest.mark.parametrize("delay_ms", [0, 50])
def test_payments_in_a_row_with_and_without_commitment_batching(tmp_path, delay_ms):
    """pay answers with the verified preimage; with commit-delay the removal's commitment waits
    for the next payment (or the timer), without it it goes at once; either way every payment
    lands, is written as succeeded, and the channel settles with the right balances."""

    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        for n in (a, b):
            n.channels.commit_delay = delay_ms / 1000
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            await open_channel(a, b, 500_000)
            invoices = [b.invoices.create(1_000_000 + i, f"n{i}") for i in range(6)]
            pays = a.channels.payments
            results, sessions = [], []
            for inv in invoices:
                sessions.append(pays._sessions.get(b.node_id))
                results.append(await pays.pay(inv.bolt11))
            # after the first, each payment's onion came from a session made ahead (its first
            # hop's shared secret is the one the payment row keeps), each session used once
            assert sessions[0] is None and None not in sessions[1:]
            assert len({s.session_key for s in sessions[1:]}) == 5
            for inv, s in zip(invoices[1:], sessions[1:]):
                row = pays.db.execute("SELECT shared_secret FROM payments WHERE payment_hash=?", (inv.payment_hash,)).fetchone()
                assert bytes(row[0]) == s.first_secret
            assert pays._sessions[b.node_id].session_key not in {s.session_key for s in sessions[1:]}
            for inv, r in zip(invoices, results):
                assert r["status"] == "succeeded" and bytes.fromhex(r["payment_preimage"]) == inv.preimage
            e = next(iter(a.channels.by_id.values()))
            if delay_ms:
                # pay answered at the fulfill; the commitments for the last removal wait for
                # the timer (nothing follows them)
                await until(lambda: e.commit_timer is not None, timeout=2, what="the batched commitment")
                assert e.channel.only_settlements_pending()
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")
            assert e.commit_timer is None
            total = sum(1_000_000 + i for i in range(6))
            assert chan(b, a)["local_balance_msat"] == total
            assert [p["status"] for p in a.channels.payments.list()] == ["succeeded"] * 6
            # pay's answer (built before the write) is the row listpayments shows after it
            for r in results:
                (listed,) = a.channels.payments.list(bytes.fromhex(r["payment_hash"]))
                assert abs(listed.pop("completed_at") - r.pop("completed_at")) <= 1
                assert listed == r
            assert all(b.invoices.lookup(inv.payment_hash).paid_at is not None for inv in invoices)
        finally:
            await a.close()
            await b.close()

    run(main())


def test_commit_delay_setting(tmp_path):
    s = settings(tmp_path, "x")
    s.config = Config({"commit-delay": ["2000"]}, None)
    with pytest.raises(LncliError, match="commit-delay"):
        Node(s)


def test_an_add_goes_ahead_of_its_write_and_a_failed_write_drops_it(tmp_path):
    """pay sends update_add_htlc before the write that commits it: the payee gets it while the
    payer still writes (and writes nothing for it alone: an uncommitted update is not state).
    When that write fails, the connection drops, so the payee forgets the add as BOLT 2 asks,
    and after the reconnect both sides agree and the next payment goes through."""
    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            cid = await open_channel(a, b, 500_000)
            ea, eb = a.channels.by_id[cid], b.channels.by_id[cid]
            sent, seen = [], []
            peer_b = a.peers.get(b.node_id)
            send_many = peer_b.send_many

            def spy_send(messages):
                # what a had on disk when each of its messages went out
                names = [default_schema().by_number[int.from_bytes(m[:2], "big")].name for m in messages]
                sent.append((names, len(json.loads(ea.durable)["offered"])))
                return send_many(messages)

            peer_b.send_many = spy_send
            orig = b.channels.handle_message

            def spy(peer, msg):
                seen.append((msg.name, len(json.loads(eb.durable)["received"])))
                return orig(peer, msg)

            b.peers.handlers["update_add_htlc"] = b.peers.handlers["commitment_signed"] = spy
            inv = b.invoices.create(50_000, "ahead")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            # the add went out before a wrote it, its commitment_signed after
            assert sent[0] == (["update_add_htlc"], 0)
            assert sent[1] == (["commitment_signed"], 1)
            # b wrote nothing for the add alone: its commitment_signed found it still unwritten
            assert seen[:2] == [("update_add_htlc", 0), ("commitment_signed", 0)]
            del peer_b.send_many
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")

            # the write after an add that went ahead fails: the peer is dropped and forgets it
            def failing(batch):
                raise OSError("disk I/O error (test)")

            a.channels._write = failing
            out = ea.channel.add_htlc(60_000, b"\x11" * 32, a.chain.height + 40, b"\x00" + b"\x02" * 1365)
            a.channels.send_ahead(ea, out)
            assert ea.sent_ahead and not out.messages
            a.channels.commit(ea, out)
            await until(lambda: not eb.reestablished or not ea.reestablished, what="the disconnect")
            del a.channels._write
            await until(lambda: ea.reestablished and eb.reestablished, what="reestablish")
            assert not ea.channel.offered and not eb.channel.received
            assert not ea.sent_ahead
            inv = b.invoices.create(70_000, "after")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")
            assert chan(b, a)["local_balance_msat"] == 120_000
        finally:
            await a.close()
            await b.close()

    run(main())


def test_the_payee_reads_the_invoice_ahead_and_never_settles_on_a_stale_read(tmp_path):
    """While the payer's commitment dance runs, the payee peels the onion and reads the invoice;
    settling uses that read only if no invoice changed since. An invoice paid in between (here by
    hand) is read again, and the HTLC fails as for any paid invoice."""

    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            await open_channel(a, b, 500_000)
            pays = b.channels.payments
            settle, seen = pays.settle_incoming, []

            def spy(e, event):
                got = pays._peeled.get((e.channel_id, event.htlc_id))
                seen.append(got is not None and got[2] is not None and got[2].payment_hash == event.payment_hash
                            and got[3] == b.invoices.version)
                if event.amount_msat == 2_000_000:  # the invoice changes after it was read
                    b.invoices.mark_paid(event.payment_hash, 1)
                return settle(e, event)

            pays.settle_incoming = spy
            inv = b.invoices.create(1_000_000, "fresh")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            stale = b.invoices.create(2_000_000, "stale")
            r = await a.channels.payments.pay(stale.bolt11)
            assert r["status"] == "failed" and r["failure"] == "incorrect_or_unknown_payment_details"
            assert seen == [True, True]  # both were read ahead; the second was stale when settled
            assert b.invoices.lookup(stale.payment_hash).amount_received_msat == 1  # not paid again
        finally:
            await a.close()
            await b.close()

    run(main())
