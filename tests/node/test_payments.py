"""Payments.pay checks its arguments once, for the RPC method and for direct callers alike."""

from __future__ import annotations

import asyncio

import pytest

from lncli.errors import InputError
from tests.node.test_channels import start

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
