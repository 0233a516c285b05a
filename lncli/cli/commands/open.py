"""``lncli open``: open a channel to a connected peer, funded from this node's wallet."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit, progress


def open_channel(
    ctx: typer.Context,
    node_id: str = typer.Argument(..., metavar="NODE_ID", help="The peer (connected first with lncli connect). '-' reads stdin."),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Channel size (100000, 100000sat, 0.001btc; a bare number is sat)."),
    push: Optional[str] = typer.Option(None, "--push", metavar="AMOUNT", help="Give the peer this much of the channel at open (1000sat, 5000msat)."),
    private: bool = typer.Option(False, "--private", help="Mark the channel private (not to be announced)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the funding tx is broadcast, without waiting for channel_ready."),
    timeout: float = typer.Option(0, "--timeout", metavar="SECONDS", help="Give up waiting for channel_ready after this long (0: wait until ready) [default 0].", show_default=False),
) -> None:
    """Open a channel: BOLT 2 funding and broadcast, then wait for minimum_depth confirmations and channel_ready both ways."""
    env: Env = ctx.obj
    from lncli.amount import parse_msat, parse_sat
    from lncli.rpc.channels import open_channel as engine

    nid = arg(env, node_id, "NODE_ID").strip().lower()
    amount_sat = parse_sat(amount)
    push_msat = parse_msat(push) if push is not None else 0
    ch = engine(
        env.netdir, env.datadir, node_id=nid, amount_sat=amount_sat, push_msat=push_msat, private=private,
        wait=not no_wait, timeout=timeout, network=env.network, progress=lambda note: progress(env, note),
    )
    emit(env, ch)
