"""``lncli connect``: open an encrypted connection to a peer."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def connect(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NODE_ID[@HOST[:PORT]]", help="The peer: NODE_ID@HOST[:PORT] (default port 9735), or NODE_ID followed by HOST [PORT]. '-' reads stdin."),
    host: Optional[str] = typer.Argument(None, metavar="[HOST]", help="Host, if not given with @."),
    port: Optional[int] = typer.Argument(None, metavar="[PORT]", help="Port, if not given with @ [default 9735]."),
    persist: bool = typer.Option(False, "--persist", help="Keep this peer connected: redial it with backoff (after restarts too)."),
) -> None:
    """Connect to a peer (BOLT 8 handshake and init); returns once init is exchanged. Already connected: no new dial; already_connected is true, the address is the existing connection's, and a note says what was not done (a different HOST:PORT is neither dialled nor stored, --persist applies only to the address we know)."""
    env: Env = ctx.obj
    from lncli.node.address import parse_peer_uri
    from lncli.rpc.client import call

    node_id, h, p = parse_peer_uri(arg(env, target, "NODE_ID"), host, port)
    emit(env, call(env.netdir, "connect", datadir=env.datadir, node_id=node_id, host=h, port=p, persist=persist))
