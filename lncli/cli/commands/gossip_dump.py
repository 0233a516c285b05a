"""``lncli gossip-dump``: read a Core Lightning gossip_store file, offline."""

from __future__ import annotations

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit, emit_line
from lncli.errors import InputError, UsageError


def gossip_dump(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="A CLN gossip_store file ('-' reads stdin)."),
    deleted: bool = typer.Option(False, "--deleted", help="Include deleted (superseded) records."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the signature checks (faster)."),
    summary: bool = typer.Option(False, "--summary", help="Print one object of counts instead of the records."),
    graph: bool = typer.Option(
        False, "--graph", help="Print the channels and nodes as CLN's listchannels/listnodes show them."
    ),
) -> None:
    """Dump a gossip_store as JSON Lines, one record per line (offset, flags, type, timestamp,
    decoded message, BOLT 7 problems, signatures_valid); or --summary, or --graph."""
    env: Env = ctx.obj
    if summary and graph:
        raise UsageError("give --summary or --graph, not both")
    from lncli.gossip import store

    with _open(env, file) as f:
        verify = not no_verify
        if summary:
            emit(env, store.summarize(f, verify=verify))
        elif graph:
            g = store.load_graph(f, verify=verify)
            emit(env, {"channels": g.listchannels(), "nodes": g.listnodes()})
        else:
            for rec in store.dump_records(f, include_deleted=deleted, verify=verify):
                emit_line(env, rec)


class _Stdin:
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        return False


def _open(env: Env, path: str):
    if path == "-":
        stream = getattr(env.stdin, "buffer", None)
        if stream is None:
            raise InputError("FILE is '-' but stdin is not a binary stream")
        return _Stdin(stream)
    try:
        return open(path, "rb", buffering=1 << 16)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
