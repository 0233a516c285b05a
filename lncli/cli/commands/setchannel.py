"""``lncli setchannel``: change one channel's forwarding policy and announce it."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def setchannel(
    ctx: typer.Context,
    channel: str = typer.Argument(
        ..., metavar="CHANNEL", help="channel_id (64 hex), short_channel_id (BLOCKxTXxOUT), funding TXID:VOUT, or the peer's node id. '-' reads stdin."
    ),
    fee_base: Optional[str] = typer.Option(None, "--fee-base", metavar="MSAT", help="Base fee per forwarded HTLC (a bare number is msat; 1sat works too)."),
    fee_ppm: Optional[int] = typer.Option(None, "--fee-ppm", metavar="N", help="Proportional fee, in millionths of the forwarded amount."),
    cltv_delta: Optional[int] = typer.Option(None, "--cltv-delta", metavar="N", help="Blocks between the incoming and the outgoing HTLC's expiry (1 to 2016)."),
    htlc_minimum: Optional[str] = typer.Option(None, "--htlc-minimum", metavar="MSAT", help="Smallest HTLC forwarded over the channel (at least what the peer accepts)."),
    htlc_maximum: Optional[str] = typer.Option(None, "--htlc-maximum", metavar="MSAT", help="Largest HTLC forwarded over the channel (at most its capacity)."),
    enforce_delay: int = typer.Option(600, "--enforce-delay", metavar="SECONDS", help="How long the old policy is still accepted (BOLT 7: 10 minutes) [default 600].", show_default=False),
) -> None:
    """Set a channel's forwarding policy (fields not given stay as they are; lncli.conf's fee-base, fee-ppm, cltv-delta, htlc-minimum, htlc-maximum are the defaults); signs, stores and sends its new channel_update; prints the channel's policy as announced."""
    env: Env = ctx.obj
    from lncli.config import parse_msat_option
    from lncli.rpc.client import call

    text = arg(env, channel, "CHANNEL").strip()
    msat = {name: (parse_msat_option(v, "--" + name.replace("_", "-")) if v is not None else None)
            for name, v in (("fee_base", fee_base), ("htlc_minimum", htlc_minimum), ("htlc_maximum", htlc_maximum))}
    # the node checks the values (lncli.node.channel_policy.ChannelPolicies.set)
    res = call(env.netdir, "setchannel", datadir=env.datadir, channel=text, fee_base_msat=msat["fee_base"],
               fee_proportional_millionths=fee_ppm, cltv_expiry_delta=cltv_delta, htlc_minimum_msat=msat["htlc_minimum"],
               htlc_maximum_msat=msat["htlc_maximum"], enforce_delay=enforce_delay)
    emit(env, res, title="channel policy")
