"""The one output path: every command hands a JSON-ready value to :func:`emit`.

JSON (the default) goes to stdout, two-space indented, keys as given (snake_case). With ``-H`` the
same data is rendered with rich: dicts as key/value tables, lists of dicts as tables; a fraction
under a ``*_progress`` key as a progress bar with its percentage.
Progress and chatter never go to stdout; :func:`progress` writes to stderr, and only on a TTY.
"""

from __future__ import annotations

import json
from typing import Any

from lncli.cli.context import Env


def _default(o: Any):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if hasattr(o, "to_json"):
        return o.to_json()
    raise TypeError(f"cannot render {type(o).__name__} as JSON")


def to_json_text(data: Any) -> str:
    return json.dumps(data, indent=2, default=_default, ensure_ascii=False)


def emit(env: Env, data: Any, title: str | None = None, human=None) -> None:
    """Print ``data``: JSON, or with ``-H`` rich tables; ``human(data)``, if given, returns the
    rich renderables to print instead of the generic tables (a command's own breakdown)."""
    if env.human:
        if human is not None:
            from rich.console import Console

            console = Console(file=env.stdout, soft_wrap=False)
            for r in human(data):
                console.print(r)
            return
        _render_human(env, data, title)
    else:
        env.stdout.write(to_json_text(data) + "\n")
        env.stdout.flush()


def emit_line(env: Env, data: Any) -> None:
    """One JSON Lines record (for streams), flushed at once."""
    env.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":")) + "\n")
    env.stdout.flush()


def progress(env: Env, message: str) -> None:
    if env.stderr_tty:
        env.stderr.write(message + "\n")
        env.stderr.flush()


#: a list of records with more columns than this is shown record by record, not as one wide table
WIDE_TABLE_COLUMNS = 6
_TIME_KEYS = ("_at", "_since", "timestamp")


def _fmt_key(key: str) -> str:
    return key.replace("_", " ")


def _is_time(key: str, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and key.endswith(_TIME_KEYS) and value > 10**8


def _is_progress(key: str, value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and key.endswith("_progress") and 0 <= value <= 1
    )


def _progress_bar(fraction: float):
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    bar = Table.grid(padding=(0, 1))
    bar.add_column()
    bar.add_column(no_wrap=True)
    bar.add_row(ProgressBar(total=1.0, completed=fraction, width=30), f"{fraction * 100:.2f}%")
    return bar


def _cell(value: Any, key: str = ""):
    if _is_progress(key, value):
        return _progress_bar(value)
    if _is_time(key, value):
        import datetime

        return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dict):
        return _dict_table(value) if value else "-"
    if isinstance(value, (list, tuple)):
        if not value:
            return "-"
        if all(isinstance(v, dict) for v in value):
            return _list_table(list(value))
        return "\n".join(str(_cell(v)) for v in value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if key.endswith(("_msat", "_sat")) else str(value)
    return str(value)


def _dict_table(data: dict, title: str | None = None):
    from rich.table import Table

    t = Table(show_header=False, title=title, box=None, pad_edge=False)
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in data.items():
        t.add_row(_fmt_key(str(k)), _cell(v, str(k)))
    return t


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _list_table(rows: list[dict], title: str | None = None):
    from rich.table import Table

    cols = _columns(rows)
    t = Table(title=title)
    for c in cols:
        t.add_column(_fmt_key(c), overflow="fold")
    for r in rows:
        t.add_row(*(_cell(r.get(c), c) for c in cols))
    return t


def _render_human(env: Env, data: Any, title: str | None) -> None:
    from rich.console import Console
    from rich.rule import Rule

    console = Console(file=env.stdout, soft_wrap=False)
    if isinstance(data, dict):
        console.print(_dict_table(data, title))
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        if len(_columns(data)) <= WIDE_TABLE_COLUMNS:
            console.print(_list_table(data, title))
            return
        for i, row in enumerate(data, 1):  # too wide for one table: one block per record
            console.print(Rule(f"{title + ' ' if title else ''}{i}/{len(data)}", align="left", style="dim"))
            console.print(_dict_table(row))
    elif isinstance(data, list) and not data:
        console.print("(none)")
    else:
        console.print(_cell(data))
