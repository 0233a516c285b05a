"""``lncli open``: open a channel to a connected peer, funded from this node's wallet."""

from __future__ import annotations

import time
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
    from lncli.errors import InputError, LncliError
    from lncli.rpc.client import call

    nid = arg(env, node_id, "NODE_ID").strip().lower()
    amount_sat = parse_sat(amount)
    if amount_sat <= 0:
        raise InputError("the channel amount must be positive")
    push_msat = parse_msat(push) if push is not None else 0
    if push_msat < 0:
        raise InputError("the push amount cannot be negative")
    if timeout < 0:
        raise InputError("--timeout cannot be negative")
    ch = call(env.netdir, "open", datadir=env.datadir, node_id=nid, amount_sat=amount_sat, push_msat=push_msat, private=private)
    if no_wait or ch["state"] == "NORMAL":
        emit(env, ch)
        return
    deadline = time.monotonic() + timeout if timeout else None
    last = None
    while True:
        (ch,) = call(env.netdir, "listchannels", datadir=env.datadir, channel=ch["channel_id"])
        if ch["state"] != "AWAITING_LOCKIN":
            break
        need = max(ch["minimum_depth"] - ch["confirmations"], 0)
        if need:
            note = f"waiting for {need} more confirmation{'s' if need != 1 else ''} of {ch['funding_txid']}"
            if env.network == "regtest":
                note += f" (lncli mine {need})"
        else:
            note = "confirmed; waiting for the peer's channel_ready"
        if note != last:
            progress(env, note)
            last = note
        if deadline is not None and time.monotonic() > deadline:
            raise LncliError(
                f"channel {ch['channel_id']} is not ready after {timeout:g} s ({note}); it stays open: see lncli channels"
            )
        time.sleep(0.2)
    if ch["state"] != "NORMAL":
        raise LncliError(f"channel {ch['channel_id']} is {ch['state']}: {ch.get('close_reason') or 'not ready'}")
    emit(env, ch)
