"""``lncli forwards``: the HTLCs this node forwarded (or refused to forward)."""

from __future__ import annotations

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def forwards(ctx: typer.Context) -> None:
    """List forwarded HTLCs: incoming and outgoing channel, in_msat, out_msat, fee_msat earned, status (offered, settled, failed, local_failed), failure and failure_code (refused here: the BOLT 4 code we sent)."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    rows = call(env.netdir, "listforwards", datadir=env.datadir)
    if env.human:
        keys = ("status", "in_short_channel_id", "out_short_channel_id", "in_msat", "out_msat", "fee_msat", "failure", "failure_code")
        rows = [{k: r[k] for k in keys} for r in rows]
    emit(env, rows, title="forwards")
