"""A stand-in for the CLI's Env (lncli.cli.context.Env) for engine functions that take one: a
datadir, a network and a Config given directly, no lncli.conf read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lncli.config import Config


@dataclass
class FakeEnv:
    datadir: Path
    config: Config
    network: str = "regtest"

    @property
    def netdir(self) -> Path:
        return self.datadir / self.network

    def ensure_netdir(self) -> Path:
        self.netdir.mkdir(parents=True, exist_ok=True)
        return self.netdir
