"""``lncli peers``, ``lncli disconnect`` and ``lncli ping``: the node's peer connections."""

from __future__ import annotations

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit

_NODE_ID_HELP = "The peer's node id (66 hex characters). '-' reads stdin."


def peers(ctx: typer.Context) -> None:
    """List peers: node id, address, direction, features, connected since, last error."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    emit(env, call(env.netdir, "listpeers", datadir=env.datadir))


def disconnect(ctx: typer.Context, node_id: str = typer.Argument(..., metavar="NODE_ID", help=_NODE_ID_HELP)) -> None:
    """Close the connection to a peer (a persistent peer is not redialed until the next connect or restart)."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    emit(env, call(env.netdir, "disconnect", datadir=env.datadir, node_id=arg(env, node_id, "NODE_ID").lower()))


def ping(
    ctx: typer.Context,
    node_id: str = typer.Argument(..., metavar="NODE_ID", help=_NODE_ID_HELP),
    num_pong_bytes: int = typer.Option(0, "--pong-bytes", metavar="N", help="Ask for N bytes of pong padding (0-65531)."),
) -> None:
    """Ping a connected peer and print the round-trip time."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    emit(env, call(env.netdir, "ping", datadir=env.datadir, node_id=arg(env, node_id, "NODE_ID").lower(), num_pong_bytes=num_pong_bytes))
