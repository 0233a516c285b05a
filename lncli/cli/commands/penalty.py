"""``lncli penalty``: build (and optionally broadcast) the justice transaction for a revoked
commitment the peer published. Offline: the datadir's monitor store and channel records are
enough (no node needed; reading while one runs is fine)."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def penalty(
    ctx: typer.Context,
    channel: str = typer.Argument(
        ..., metavar="CHANNEL", help="channel_id (64 hex), short_channel_id (BLOCKxTXxOUT) or funding TXID:VOUT."
    ),
    revoked_tx: str = typer.Argument(
        ...,
        metavar="REVOKED_TX",
        help="The revoked commitment the peer published: its hex, or its txid if the chain backend can fetch it. '-' reads stdin.",
    ),
    destination: Optional[str] = typer.Option(
        None, "--destination", metavar="ADDRESS", help="Where the swept funds go [default: the monitor's sweep address, else a new wallet address]."
    ),
    feerate: Optional[float] = typer.Option(
        None, "--feerate", metavar="SAT_PER_VB", help="Fee rate in sat/vB [default: the monitor's sweep fee rate]."
    ),
    broadcast: bool = typer.Option(False, "--broadcast", help="Send the justice transaction through the chain backend."),
) -> None:
    """Punish a revoked commitment (BOLT 5): print the signed justice tx taking the cheater's to_local and HTLC outputs."""
    env: Env = ctx.obj
    from lncli.node.penalty import punish

    channel = arg(env, channel, "CHANNEL")
    text = arg(env, revoked_tx, "REVOKED_TX")
    result = punish(env, channel, text, destination=destination, feerate_sat_per_vb=feerate, broadcast=broadcast)
    emit(env, result.to_json())
