"""``lncli channels``: the node's channels with their state and balances."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def channels(
    ctx: typer.Context,
    peer: Optional[str] = typer.Option(None, "--peer", metavar="NODE_ID", help="Only the channels with this peer."),
    channel: Optional[str] = typer.Option(None, "--channel", metavar="CHANNEL", help="Only this channel (channel_id, short_channel_id, TXID:VOUT or peer id)."),
) -> None:
    """List channels: state, local/remote balance (msat), capacity, funding outpoint, channel_id, short_channel_id, peer, private."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    params = {}
    if peer is not None:
        params["peer"] = peer.strip().lower()
    if channel is not None:
        params["channel"] = channel.strip()
    rows = call(env.netdir, "listchannels", datadir=env.datadir, **params)
    if env.human:
        keys = ("state", "short_channel_id", "capacity_sat", "local_balance_msat", "remote_balance_msat", "peer", "channel_id")
        rows = [{k: r[k] for k in keys} for r in rows]
    emit(env, rows, title="channels")
