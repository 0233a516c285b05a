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
