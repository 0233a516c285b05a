"""``lncli chain-status`` and ``lncli mine``: the chain backend in use."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def chain_status(ctx: typer.Context) -> None:
    """Show the chain backend's state, like bitcoin-cli -getinfo (and the wallet balance, if any)."""
    env: Env = ctx.obj
    from lncli.node.chain_status import chain_status as engine

    emit(env, engine(env).to_json(), title="chain status")


def mine(
    ctx: typer.Context,
    blocks: int = typer.Argument(1, metavar="N", help="How many blocks to mine (regtest only)."),
    address: Optional[str] = typer.Option(
        None, "--address", metavar="ADDR", help="Pay the coinbases here [default: a burn on the embedded chain, bitcoind's wallet on bitcoind]."
    ),
) -> None:
    """Mine N blocks on regtest (embedded chain or bitcoind)."""
    env: Env = ctx.obj
    from lncli.errors import InputError, RefusedError

    if env.network != "regtest":
        raise RefusedError(f"mine works on regtest only (this is {env.network})")
    if blocks < 0 or blocks > 10_000:
        raise InputError(f"N must be between 0 and 10000, got {blocks}")
    from lncli.bitcoin.address import address_to_script
    from lncli.chain.backend import open_backend

    spk = address_to_script(address, env.network) if address else None
    backend = open_backend(env)
    try:
        hashes = backend.mine(blocks, spk)
        height = backend.tip()[0]
    finally:
        backend.close()
    emit(env, {"mined": len(hashes), "height": height, "block_hashes": [h[::-1].hex() for h in hashes]})
