"""``lncli pay``: pay a BOLT 11 invoice: to a direct peer, over a route hint, or along a route
found in the gossip graph."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def pay(
    ctx: typer.Context,
    bolt11: str = typer.Argument(..., metavar="BOLT11", help="The invoice ('lightning:' prefix allowed; '-' reads stdin)."),
    amount: Optional[str] = typer.Option(None, "--amount", metavar="AMOUNT", help="Amount for an any-amount invoice (1000sat, 1500msat; a bare number is sat)."),
    timeout: float = typer.Option(60, "--timeout", metavar="SECONDS", help="How long to wait for the outcome [default 60].", show_default=False),
) -> None:
    """Pay an invoice: to a direct peer, over the invoice's route hints, or along a route found in the gossip graph (up to 3 attempts); prints payment_hash, payment_preimage, amount_msat, fee_msat, status and the route.

    A failure exits 1 with its BOLT 4 name (e.g. incorrect_or_unknown_payment_details) and the failing_node."""
    env: Env = ctx.obj
    from lncli.errors import LncliError
    from lncli.rpc.client import call

    text = arg(env, bolt11, "BOLT11").strip()
    amount_msat = None
    if amount is not None:
        from lncli.amount import parse_msat

        amount_msat = parse_msat(amount)
    # the node checks the values (lncli.node.payments.Payments.pay); the socket waits a little longer
    p = call(env.netdir, "pay", datadir=env.datadir, timeout=(timeout if 0 < timeout <= 3600 else 0) + 30, bolt11=text, amount_msat=amount_msat, wait=timeout)
    out = {k: p[k] for k in ("payment_hash", "payment_preimage", "amount_msat", "fee_msat", "status", "destination")}
    for k in ("route", "attempts"):
        if p.get(k):
            out[k] = p[k]
    if p["status"] == "failed":
        if p.get("failure"):
            out["failure"] = p["failure"]
        if p.get("failing_node"):
            out["failing_node"], out["failure_hop"] = p["failing_node"], p.get("failure_hop")
        emit(env, out)
        raise LncliError(f"payment failed: {p.get('failure') or 'unknown failure'}")
    emit(env, out)
    if p["status"] != "succeeded":
        raise LncliError(f"payment {p['payment_hash']} is still {p['status']} after {timeout:g} s (lncli channels shows its HTLC)")
