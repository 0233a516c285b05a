"""``lncli channel-id``: channel identifiers in every form, offline."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def channel_id(
    ctx: typer.Context,
    ident: str = typer.Argument(
        ...,
        metavar="ID",
        help="FUNDING_TXID:VOUT (or TXID and VOUT as two arguments) for the BOLT 2 channel_id; "
        "or a short_channel_id as BLOCKxTXxOUT, a decimal u64 or 0x-prefixed hex. '-' reads stdin.",
    ),
    vout: Optional[int] = typer.Argument(None, metavar="[VOUT]", help="Funding output index, if ID is a bare txid."),
) -> None:
    """Compute a channel_id from a funding outpoint, or convert a short_channel_id between forms."""
    env: Env = ctx.obj
    from lncli.cli.channel_ids import describe

    emit(env, describe(arg(env, ident, "ID"), vout))
