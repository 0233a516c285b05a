"""``lncli chain-status`` and ``lncli mine``: the chain backend in use."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit


def chain_status(ctx: typer.Context) -> None:
    """Show the chain backend's state, like bitcoin-cli -getinfo (and the wallet balance, if any)."""
    env: Env = ctx.obj
    from lncli.chain.backend import open_backend
    from lncli.wallet.wallet import open_wallet

    backend = open_backend(env)
    try:
        info = backend.info()
        data = {
            "chain": info.chain,
            "blocks": info.blocks,
            "headers": info.headers,
            "verification_progress": info.verification_progress,
            "difficulty": info.difficulty,
            "best_block_hash": info.best_block_hash,
            "mempool_size": info.mempool_size,
            "backend": info.backend,
            "version": info.version,
            "location": info.location,
        }
        wallet = open_wallet(env, backend, create=False)
        if wallet is not None:
            try:
                wallet.sync()
                data["wallet_balance"] = wallet.balance().to_json()
            finally:
                wallet.close()
    finally:
        backend.close()
    if env.human:
        _panel(env, data)
    else:
        emit(env, data)


def _panel(env: Env, data: dict) -> None:
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for k in ("chain", "blocks", "headers", "best_block_hash", "difficulty", "mempool_size", "backend", "version", "location"):
        v = data[k]
        t.add_row(k.replace("_", " "), f"{v:,}" if isinstance(v, int) else str(v))
    progress = data["verification_progress"]
    bar = Table(show_header=False, box=None, pad_edge=False)
    bar.add_column(style="bold cyan", no_wrap=True)
    bar.add_column()
    bar.add_column(no_wrap=True)
    bar.add_row("verification", ProgressBar(total=1.0, completed=progress, width=30), f"{progress * 100:.2f}%")
    parts = [t, bar]
    bal = data.get("wallet_balance")
    if bal:
        w = Table(show_header=False, box=None, pad_edge=False, title="wallet")
        w.add_column(style="bold cyan", no_wrap=True)
        w.add_column(justify="right")
        for k, v in bal.items():
            w.add_row(k.replace("_", " "), f"{v:,}")
        parts.append(w)
    Console(file=env.stdout, soft_wrap=False).print(Panel(Group(*parts), title="chain status", expand=False))


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
