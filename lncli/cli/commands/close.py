"""``lncli close``: close a channel cooperatively, or force close it."""

from __future__ import annotations

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def close(
    ctx: typer.Context,
    channel: str = typer.Argument(
        ..., metavar="CHANNEL", help="channel_id (64 hex), short_channel_id (BLOCKxTXxOUT), funding TXID:VOUT, or the peer's node id. '-' reads stdin."
    ),
    force: bool = typer.Option(False, "--force", help="Broadcast our latest commitment now (no peer needed); our balance returns after to_self_delay blocks."),
    timeout: float = typer.Option(30, "--timeout", metavar="SECONDS", help="How long to wait for the closing transaction [default 30].", show_default=False),
) -> None:
    """Close a channel: shutdown and closing_signed fee negotiation with the peer, or --force; prints the closing txid."""
    env: Env = ctx.obj
    from lncli.errors import InputError, LncliError
    from lncli.rpc.client import call

    if not 0 < timeout <= 3600:
        raise InputError("--timeout must be more than 0 and at most 3600 seconds")
    text = arg(env, channel, "CHANNEL").strip()
    ch = call(env.netdir, "close", datadir=env.datadir, timeout=timeout + 30, channel=text, force=force, wait=timeout)
    emit(env, ch)
    if not ch.get("closing_txid") and ch["state"] not in ("CLOSED",):
        raise LncliError(
            f"channel {ch['channel_id']} is {ch['state']}: no closing transaction yet after {timeout:g} s (see lncli channels)"
        )
