"""``lncli invoice``: BOLT 11 invoices. ``decode`` works offline; creation goes through the node."""

from __future__ import annotations

import typer

from lncli.cli.context import Env, arg
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
