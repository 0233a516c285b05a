"""``lncli invoice``: BOLT 11 invoices. ``decode`` works offline; creation goes through the node."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg, parse_hex
from lncli.cli.output import emit

app = typer.Typer(
    help="BOLT 11 invoices: decode (offline), and create and list through the running node.",
    no_args_is_help=True,
)


@app.command("decode")
def decode(
    ctx: typer.Context,
    bolt11: str = typer.Argument(..., metavar="BOLT11", help="The invoice ('lightning:' prefix allowed; '-' reads stdin)."),
) -> None:
    """Decode a BOLT 11 invoice, verify its signature, and print every field."""
    env: Env = ctx.obj
    text = arg(env, bolt11, "BOLT11").strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:") :]
    from lncli.proto import invoice as invoice_mod

    emit(env, invoice_mod.decode(text).to_json())


@app.command("create")
def create(
    ctx: typer.Context,
    amount: Optional[str] = typer.Argument(
        None, metavar="[AMOUNT]", help="Amount to request (1000sat, 1500msat, 0.001btc; a bare number is sat); 'any' or omitted: any amount."
    ),
    description: Optional[str] = typer.Option(None, "-d", "--description", metavar="TEXT", help="What the payment is for ('-' reads stdin)."),
    description_hash: Optional[str] = typer.Option(
        None, "--description-hash", metavar="HEX", help="SHA-256 of a long description given elsewhere (instead of --description)."
    ),
    expiry: Optional[int] = typer.Option(None, "--expiry", metavar="SECONDS", help="Seconds until the invoice expires [default 3600]."),
    no_route_hints: bool = typer.Option(
        False, "--no-route-hints", help="Leave out the route hints (r fields) the node adds for its private channels."
    ),
) -> None:
    """Create an invoice through the running node; prints bolt11, payment_hash, payment_secret, amount_msat, expires_at.

    When the node has private channels whose peer can pay us, the invoice carries one route hint
    per channel (the peer, the short_channel_id, and CLN's default fees and cltv delta)."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    amount_msat = None
    text = arg(env, amount, "AMOUNT")
    if text is not None and text.strip().lower() != "any":
        from lncli.amount import parse_msat

        amount_msat = parse_msat(text)
    # the node checks the values (lncli.node.invoices.InvoiceStore.create): amount, description, expiry
    description = arg(env, description, "description")
    if description_hash is not None:
        description_hash = parse_hex(description_hash, "the description hash", 32).hex()
    params = {"amount_msat": amount_msat, "description": description, "description_hash": description_hash}
    if expiry is not None:
        params["expiry"] = expiry
    if no_route_hints:
        params["route_hints"] = False
    inv = call(env.netdir, "invoice", datadir=env.datadir, **params)
    emit(env, {k: inv[k] for k in ("bolt11", "payment_hash", "payment_secret", "amount_msat", "expires_at")})


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", metavar="STATUS", help="Only paid, unpaid or expired invoices."),
) -> None:
    """List the node's invoices (oldest first) with their status."""
    env: Env = ctx.obj
    from lncli.errors import UsageError
    from lncli.rpc.client import call

    if status is not None:
        status = status.lower()
        if status not in ("paid", "unpaid", "expired"):
            raise UsageError(f"--status must be paid, unpaid or expired, got {status!r}")
    params = {} if status is None else {"status": status}
    emit(env, call(env.netdir, "listinvoices", datadir=env.datadir, **params))
