"""``lncli route``: the route a payer would take, from the running node or a gossip_store file."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def route(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="SOURCE", help="The payer's node id."),
    destination: str = typer.Argument(..., metavar="DESTINATION", help="The payee's node id."),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="What the payee receives (100000msat, 100sat; a bare number is sat)."),
    graph: Optional[str] = typer.Option(None, "--graph", metavar="FILE", help="Search a gossip_store file offline instead of asking the node."),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", metavar="SCID|SCID/DIR|NODE_ID", help="A channel (or one direction) or node not to use; repeatable."),
    max_fee: Optional[str] = typer.Option(None, "--max-fee", metavar="AMOUNT", help="The most the route may pay in fees."),
    max_cltv: Optional[int] = typer.Option(None, "--max-cltv", metavar="BLOCKS", help="The most the route may add to the payee's cltv delta [default 2016]."),
    final_cltv: int = typer.Option(18, "--final-cltv", metavar="BLOCKS", help="The payee's min_final_cltv_expiry_delta [default 18].", show_default=False),
) -> None:
    """Print the route a payment from SOURCE to DESTINATION would take: each hop's node_id, short_channel_id, amount_msat, fee_msat and cltv (blocks from now), with the cost model of lncli pay (fees, cltv and the liquidity the node has learnt). From the running node's graph and channels, or with --graph from a gossip_store file."""
    env: Env = ctx.obj
    from lncli.amount import parse_msat

    amount_msat = parse_msat(amount)
    max_fee_msat = None if max_fee is None else parse_msat(max_fee)
    if graph is not None:
        from lncli.node.routes import route_from_store

        out = route_from_store(graph, source, destination, amount_msat, exclude=exclude or (), max_fee_msat=max_fee_msat,
                               max_cltv=max_cltv, final_cltv=final_cltv)
    else:
        from lncli.rpc.client import call

        out = call(env.netdir, "getroute", datadir=env.datadir, source=source, destination=destination,
                   amount_msat=amount_msat, exclude=exclude or [], max_fee_msat=max_fee_msat, max_cltv=max_cltv,
                   final_cltv=final_cltv)
    emit(env, out, title="route")
