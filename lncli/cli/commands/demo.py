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
    """Three nodes on the embedded regtest chain: fund, connect, open channels alice -> bob -> carol, pay invoices over one channel, through bob, and in parts over two channels, close.

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
            msg = f"nodes left running: datadirs {root / 'alice'}, {root / 'bob'} and {root / 'carol'} (stop: lncli --datadir DIR node stop)"
            env.stderr.write(msg + "\n")


#: the result fields worth a line in the narration, in this order
_SUMMARY_KEYS = (
    "alias", "state", "short_channel_id", "status", "amount_msat", "fee_msat", "parts", "amount_sat",
    "confirmed_sat", "capacity_sat", "local_balance_msat", "remote_balance_msat", "height",
)


def _summary(result) -> str:
    if isinstance(result, list):
        if result and isinstance(result[0], dict) and "status" in result[0]:
            return ", ".join(f"{r.get('status')}" + (f" (fee msat {r['fee_msat']:,})" if isinstance(r.get("fee_msat"), int) else "")
                             for r in result)
        result = result[0] if result and isinstance(result[0], dict) else {}
    if not isinstance(result, dict):
        return ""
    if isinstance(result.get("channels"), list) and isinstance(result.get("nodes"), list):  # lncli graph
        return f"{len(result['channels'])} channel directions, {len(result['nodes'])} nodes"
    parts = [f"{k.replace('_', ' ')} {result[k]:,}" if isinstance(result[k], int) else f"{k.replace('_', ' ')} {result[k]}"
             for k in _SUMMARY_KEYS if result.get(k) is not None]
    if isinstance(result.get("connected"), bool):  # a peer (lncli connect)
        where = f" to {result['address']}" if result.get("address") else ""
        parts.insert(0, f"connected{where}" if result["connected"] else f"not connected{where}")
    return ", ".join(parts)


def _narrate(env: Env, n: int, step: dict) -> None:
    from rich.console import Console

    console = Console(file=env.stdout, soft_wrap=True, highlight=False)
    console.print(f"[bold]{n:2}. {step['step']}[/bold]  [dim]({step['seconds']:.2f}s)[/dim]")
    console.print(f"    [cyan]$ {step['command']}[/cyan]", markup=True)
    summary = _summary(step.get("result"))
    if summary:
        console.print(f"    [green]{summary}[/green]", markup=True)
