"""``lncli demo``: the whole regtest walkthrough, each step as the command a user would type."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit_line


def demo(
    ctx: typer.Context,
    keep: bool = typer.Option(False, "--keep", help="Leave the nodes and the chain running for exploration."),
    directory: Optional[str] = typer.Option(None, "--dir", metavar="DIR", help="Work in DIR instead of a temporary directory."),
    payments: int = typer.Option(3, "--payments", min=1, max=100, help="How many invoices to pay."),
) -> None:
    """Two nodes on the embedded regtest chain: fund, connect, open a channel, pay invoices, close.

    Prints one JSON line per step (with -H, a narration) with the command to type to do it by hand."""
    env: Env = ctx.obj
    from lncli.demo import Demo

    root = Path(directory).expanduser() if directory else Path(tempfile.mkdtemp(prefix="lncli-demo-"))
    d = Demo(root=root, payments=payments)
    ok = False
    try:
        for n, step in enumerate(d.steps(), 1):
            if env.human:
                _narrate(env, n, step)
            else:
                emit_line(env, step)
        ok = True
    finally:
        if not keep:
            d.stop()
            if directory is None:
                shutil.rmtree(root, ignore_errors=True)
        elif ok:
            msg = f"nodes left running: datadirs {root / 'alice'} and {root / 'bob'} (stop: lncli --datadir DIR node stop)"
            env.stderr.write(msg + "\n")


def _narrate(env: Env, n: int, step: dict) -> None:
    from rich.console import Console

    console = Console(file=env.stdout, soft_wrap=True, highlight=False)
    console.print(f"[bold]{n:2}. {step['step']}[/bold]  [dim]({step['seconds']:.2f}s)[/dim]")
    console.print(f"    [cyan]$ {step['command']}[/cyan]", markup=True)
