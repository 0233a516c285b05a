"""``lncli penalty``: build (and optionally broadcast) the justice transaction for a revoked
commitment the peer published. Offline: the datadir's monitor store and channel records are
enough (no node needed; reading while one runs is fine)."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit


def penalty(
    ctx: typer.Context,
    channel: str = typer.Argument(
        ..., metavar="CHANNEL", help="channel_id (64 hex), short_channel_id (BLOCKxTXxOUT) or funding TXID:VOUT."
    ),
    revoked_tx: str = typer.Argument(
        ...,
        metavar="REVOKED_TX",
        help="The revoked commitment the peer published: its hex, or its txid if the chain backend can fetch it. '-' reads stdin.",
    ),
    destination: Optional[str] = typer.Option(
        None, "--destination", metavar="ADDRESS", help="Where the swept funds go [default: the monitor's sweep address, else a new wallet address]."
    ),
    feerate: Optional[float] = typer.Option(
        None, "--feerate", metavar="SAT_PER_VB", help="Fee rate in sat/vB [default: the monitor's sweep fee rate]."
    ),
    broadcast: bool = typer.Option(False, "--broadcast", help="Send the justice transaction through the chain backend."),
) -> None:
    """Punish a revoked commitment (BOLT 5): print the signed justice tx taking the cheater's to_local and HTLC outputs."""
    env: Env = ctx.obj
    from lncli.monitor import penalty as engine

    channel = arg(env, channel, "CHANNEL")
    text = arg(env, revoked_tx, "REVOKED_TX")
    feerate_per_kw = None if feerate is None else engine.feerate_per_kw_from_sat_per_vb(feerate)
    dest_script = None
    if destination is not None:
        from lncli.bitcoin.address import address_to_script

        dest_script = address_to_script(destination, env.network)
    backend = None

    def get_backend():
        nonlocal backend
        if backend is None:
            from lncli.chain.backend import open_backend

            backend = open_backend(env)
        return backend

    def fetch(txid: bytes):
        status = get_backend().get_transaction(txid)
        return None if status is None else status.tx

    def new_address() -> bytes:
        from lncli.bitcoin.address import address_to_script
        from lncli.wallet.wallet import open_wallet

        w = open_wallet(env, None)
        try:
            return address_to_script(w.new_address(False), env.network)
        finally:
            w.close()

    try:
        tx = engine.parse_revoked_tx(text, fetch)
        p = engine.penalty_for_datadir(
            env.datadir, env.network, channel, tx,
            destination_script=dest_script, destination_fn=new_address, feerate_per_kw=feerate_per_kw,
        )
        data = p.to_json(env.network)
        if broadcast:
            get_backend().broadcast(p.tx)
        data["broadcast"] = broadcast
    finally:
        if backend is not None:
            backend.close()
    emit(env, data)
