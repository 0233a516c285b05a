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
    timeout: float = typer.Option(60, "--timeout", metavar="SECONDS", help="How long to keep retrying and waiting for the outcome [default 60].", show_default=False),
    max_fee: Optional[str] = typer.Option(None, "--max-fee", metavar="AMOUNT", help="The most all parts may pay in fees (1000sat, 1500msat; a bare number is sat) [default: 0.5% of the amount, at least 5sat, as Core Lightning].", show_default=False),
    max_fee_percent: Optional[float] = typer.Option(None, "--max-fee-percent", metavar="PERCENT", help="The fee limit as a percent of the amount (instead of --max-fee).", show_default=False),
    max_cltv: Optional[int] = typer.Option(None, "--max-cltv", metavar="BLOCKS", help="The most blocks from now a part's HTLC may be locked for [default 2016].", show_default=False),
) -> None:
    """Pay an invoice: to a direct peer, over the invoice's route hints, or along routes found in the gossip graph, retrying around failures until the timeout and splitting the amount into parts (basic_mpp) when no single route carries it; prints payment_hash, payment_preimage, amount_msat, fee_msat, status, parts, the route and every attempt (its hops, status, failure and erring node or channel).

    A failure exits 1 with its BOLT 4 name (e.g. incorrect_or_unknown_payment_details) and the failing_node."""
    env: Env = ctx.obj
    from lncli.errors import LncliError
    from lncli.rpc.client import call

    text = arg(env, bolt11, "BOLT11").strip()
    amount_msat = None
    if amount is not None:
        from lncli.amount import parse_msat

        amount_msat = parse_msat(amount)
    max_fee_msat = None
    if max_fee is not None:
        from lncli.amount import parse_msat

        max_fee_msat = parse_msat(max_fee)
    # the node checks the values (lncli.node.payments.Payments.pay); the socket waits a little longer
    p = call(env.netdir, "pay", datadir=env.datadir, timeout=(timeout if 0 < timeout <= 3600 else 0) + 30, bolt11=text,
             amount_msat=amount_msat, wait=timeout, max_fee_msat=max_fee_msat, max_fee_percent=max_fee_percent, max_cltv=max_cltv)
    out = {k: p[k] for k in ("payment_hash", "payment_preimage", "amount_msat", "fee_msat", "status", "destination")}
    for k in ("parts", "route", "attempts"):
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


def listpayments(
    ctx: typer.Context,
    payment_hash: Optional[str] = typer.Option(None, "--payment-hash", metavar="HEX", help="Only this payment's parts."),
) -> None:
    """List our payments, one row per HTLC offered (each part of a multi-part payment, and each retry): payment_hash, part, status, amount_msat (this part's), total_msat (the payment's), fee_msat, destination, route, failure, failing_node and the preimage once paid."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    rows = call(env.netdir, "listpayments", datadir=env.datadir, payment_hash=payment_hash)
    if env.human:
        keys = ("payment_hash", "part", "status", "amount_msat", "total_msat", "fee_msat", "failure")
        rows = [{k: r.get(k) for k in keys} for r in rows]
    emit(env, rows, title="payments")
