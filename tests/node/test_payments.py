"""Payments (lncli.node.payments) between in-process nodes: what the payee prepares ahead, and
Payments.pay checking its arguments once, for the RPC method and for direct callers alike."""

from __future__ import annotations

import asyncio

import pytest

from lncli.errors import InputError, RefusedError
from tests.node.test_channels import connect, fund_wallet, open_channel, run, start


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

BAD = [
    (dict(bolt11=None), "bolt11 must be a string"),
    (dict(amount_msat=0), "the amount must be a positive whole number of msat"),
    (dict(amount_msat=-5), "the amount must be a positive whole number of msat"),
    (dict(amount_msat=1.5), "the amount must be a positive whole number of msat"),
    (dict(amount_msat=True), "the amount must be a positive whole number of msat"),
    (dict(timeout=0), "the timeout must be more than 0 and at most 3600 seconds"),
    (dict(timeout=3601), "the timeout must be more than 0 and at most 3600 seconds"),
    (dict(timeout=float("nan")), "the timeout must be more than 0 and at most 3600 seconds"),
    (dict(timeout="60"), "the timeout must be more than 0 and at most 3600 seconds"),
]


def test_pay_argument_checks_direct_and_over_rpc(tmp_path):
    async def main():
        node = await start(tmp_path, "a")
        try:
            invoice = node.invoices.create(1000, "x").bolt11
            handler, _sig = node.registry.get("pay")
            for bad, message in BAD:
                args = dict(bolt11=invoice, amount_msat=None, timeout=60.0) | bad
                with pytest.raises(InputError, match=f"^{message}$"):
                    await node.channels.payments.pay(**args)
                rpc = dict(bolt11=args["bolt11"], amount_msat=args["amount_msat"], wait=args["timeout"])
                with pytest.raises(InputError, match=f"^{message}$"):
                    await handler(**rpc)
        finally:
            await node.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def _two_channels(a, b, sat: int):
    """Two channels a -> b of ``sat`` each, NORMAL on both sides."""
    from tests.node.test_channels import mine, until

    cids = []
    for _ in range(2):
        cids.append((await a.channels.open(b.node_id, sat, 0)).channel_id)
        await mine(a, 1)  # the change confirmed: the second open spends it
    await mine(a, 2)
    await until(lambda: all(a.channels.by_id[c].state.value == "NORMAL" and b.channels.by_id[c].state.value == "NORMAL"
                            and a.channels.by_id[c].reestablished for c in cids), what="both channels NORMAL")
    return cids


def test_a_payment_no_channel_carries_alone_goes_in_parts_over_both(tmp_path):
    """a has two 300k sat channels to b; 400k sat fits in neither alone: pay splits it (the
    invoice offers basic_mpp), b settles both parts once the total is in, and the parts are what
    listpayments shows."""
    from lncli.proto.scid import ShortChannelId
    from tests.node.test_channels import until

    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            cids = await _two_channels(a, b, 300_000)
            inv = b.invoices.create(400_000_000, "in parts")
            p = await a.channels.payments.pay(inv.bolt11)
            assert p["status"] == "succeeded" and p["amount_msat"] == 400_000_000 and p["fee_msat"] == 0, p
            won = [t for t in p["attempts"] if t["status"] == "succeeded"]
            assert p["parts"] == len(won) >= 2 and sum(t["amount_msat"] for t in won) == 400_000_000
            scids = {str(ShortChannelId.from_int(int(a.channels.by_id[c].channel.short_channel_id))) for c in cids}
            assert {t["channels"][0] for t in won} == scids
            await until(lambda: b.invoices.lookup(inv.payment_hash).paid_at is not None, what="paid")
            assert b.invoices.lookup(inv.payment_hash).amount_received_msat == 400_000_000
            rows = a.channels.payments.list(inv.payment_hash)
            assert {r["total_msat"] for r in rows} == {400_000_000} and len(rows) == len(p["attempts"])
            # the fulfills are reported to pay before their write; the rows follow with it
            await until(lambda: sum(r["amount_msat"] for r in a.channels.payments.list(inv.payment_hash)
                                    if r["status"] == "succeeded") == 400_000_000, what="the parts written succeeded")
            # more than both together: refused before any part is sent
            inv2 = b.invoices.create(590_000_000, "too much")
            with pytest.raises(RefusedError, match="insufficient balance"):
                await a.channels.payments.pay(inv2.bolt11)
            assert a.channels.payments.list(inv2.payment_hash) == []
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_payers_restart_mid_payment_keeps_its_parts(tmp_path):
    """a offers one part of two and restarts; its listpayments still shows the part pending; b
    times the incomplete set out (dev-mpp-timeout) once the channel is back, and a's row ends
    failed with mpp_timeout."""
    from tests.node.test_channels import until
    from tests.node.test_htlc_sets import _offer, _pair, _start

    async def main():
        a, b = await _pair(tmp_path, dev_mpp_timeout=2)
        try:
            inv = b.invoices.create(300_000, "half")
            _fut, key = _offer(a, b, inv.bolt11, 150_000, 300_000, 0)
            await until(lambda: inv.payment_hash in b.channels.payments.htlc_sets.sets, what="the part held")
            await a.close()
            a = await _start(tmp_path, "a")
            (row,) = a.channels.payments.list(inv.payment_hash)
            assert (row["status"], row["part"], row["amount_msat"], row["total_msat"]) == ("pending", 0, 150_000, 300_000)
            await until(lambda: a.channels.payments.get(*key)["status"] == "failed", timeout=20, what="the part failed")
            assert a.channels.payments.get(*key)["failure"] == "mpp_timeout"
            assert b.invoices.lookup(inv.payment_hash).paid_at is None
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_paying_an_invoice_twice_is_refused_in_english(tmp_path):
    """Issue 12: not "payment ... is already succeeded"."""

    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            await open_channel(a, b, 500_000)
            inv = b.invoices.create(1_000_000, "once")
            h = inv.payment_hash.hex()
            first = asyncio.ensure_future(a.channels.payments.pay(inv.bolt11))
            while not a.db.execute("SELECT 1 FROM payments WHERE payment_hash=?", (inv.payment_hash,)).fetchone():
                await asyncio.sleep(0)
            with pytest.raises(RefusedError) as e:
                await a.channels.payments.pay(inv.bolt11)
            assert str(e.value) == f"payment {h} is already in progress: wait for it to succeed or fail"
            assert (await first)["status"] == "succeeded"
            # the payment's row is written with the channel's next transaction
            for _ in range(500):
                row = a.db.execute("SELECT status FROM payments WHERE payment_hash=?", (inv.payment_hash,)).fetchone()
                if row["status"] == "succeeded":
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(RefusedError) as e:
                await a.channels.payments.pay(inv.bolt11)
            assert str(e.value) == f"payment {h} has already succeeded: this invoice is paid"
        finally:
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 60))
