"""``lncli graph``: the public channels and nodes this node has learnt from gossip."""

from __future__ import annotations

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def graph(ctx: typer.Context) -> None:
    """Show the gossip graph: channels (one entry per direction, like CLN's listchannels), nodes (like listnodes), peers' channel_updates for our private channels, gossip waiting for its block (pending) and gossip dropped since the node started, by reason (dropped)."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    emit(env, call(env.netdir, "graph", datadir=env.datadir), title="graph")
