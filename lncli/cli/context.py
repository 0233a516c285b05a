"""The environment every command runs in: streams, datadir, network, config, output mode.

Built once by the top-level callback and passed to commands through ``typer.Context.obj``; tests
can build one directly. Commands read arguments through :func:`arg`, so ``-`` means stdin.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

from lncli.errors import InputError


@dataclass
class Env:
    datadir: Path
    network: str
    conf_option: str | None = None
    human: bool = False
    debug: bool = False
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _stdin_used: bool = False

    @property
    def netdir(self) -> Path:
        """Per-network state: ``DATADIR/NETWORK/``."""
        return self.datadir / self.network

    @cached_property
    def config(self):
        from lncli.config import load_config

        return load_config(self.datadir, self.network, self.conf_option)

    def ensure_netdir(self) -> Path:
        """Create the datadir (0700) and the network directory on first use."""
        for d in (self.datadir, self.netdir):
            if not d.exists():
                d.mkdir(parents=True, exist_ok=True)
                os.chmod(d, 0o700)
        return self.netdir

    @property
    def stderr_tty(self) -> bool:
        return hasattr(self.stderr, "isatty") and self.stderr.isatty()

    def read_stdin(self, what: str) -> str:
        if self._stdin_used:
            raise InputError(f"only one argument may be '-' (stdin): {what} cannot also read it")
        self._stdin_used = True
        data = self.stdin.read()
        value = data.strip()
        if not value:
            raise InputError(f"no {what} on stdin (the argument was '-')")
        return value


def arg(env: Env, value: str | None, what: str) -> str | None:
    """Resolve a string argument: ``-`` reads it from stdin (whitespace stripped)."""
    if value == "-":
        return env.read_stdin(what)
    return value


def parse_hex(value: str, what: str, length: int | None = None) -> bytes:
    text = value.strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{what} is not valid hex") from None
    if length is not None and len(data) != length:
        raise InputError(f"{what} must be {length} bytes ({2 * length} hex characters), got {len(data)}")
    return data
