"""Where lncli keeps its state, and the bitcoin.conf-style configuration file.

Resolution order for every setting: command-line option, then environment (``LNCLI_DATADIR``,
``LNCLI_NETWORK``), then the config file, then the default. The config file is ``key=value`` lines;
``#`` starts a comment; a ``[regtest]`` (``[testnet]``, ``[signet]``, ``[mainnet]``/``[main]``)
section holds settings that apply to that network only and override the global ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lncli.errors import InputError, UsageError

NETWORKS = ("regtest", "testnet", "signet", "mainnet")
_SECTION_ALIASES = {"main": "mainnet", "test": "testnet"}

DEFAULT_DATADIR = "~/.lncli"
CONF_NAME = "lncli.conf"


def parse_conf(text: str, source: str = "config") -> dict[str, dict[str, list[str]]]:
    """Parse into ``{section: {key: [values...]}}``; the global section is ``""``.

    Keys may repeat (``listen=`` twice); every value is kept in order.
    """
    sections: dict[str, dict[str, list[str]]] = {"": {}}
    current = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().lower()
            current = _SECTION_ALIASES.get(name, name)
            if current not in NETWORKS:
                raise InputError(f"{source}:{lineno}: unknown section [{name}] (use one of {', '.join(NETWORKS)})")
            sections.setdefault(current, {})
            continue
        if "=" not in line:
            raise InputError(f"{source}:{lineno}: expected key=value, got {raw.strip()!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise InputError(f"{source}:{lineno}: empty key")
        sections[current].setdefault(key, []).append(value)
    return sections


@dataclass(frozen=True)
class Config:
    """The settings that apply to one network: flattened from the global and network sections."""

    values: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None

    def get(self, key: str, default: str | None = None) -> str | None:
        vals = self.values.get(key)
        return vals[-1] if vals else default

    def get_all(self, key: str) -> list[str]:
        return list(self.values.get(key, ()))

    def get_int(self, key: str, default: int | None = None) -> int | None:
        v = self.get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise InputError(f"{self.path or 'config'}: {key}={v!r} is not a whole number") from None

    def get_bool(self, key: str, default: bool = False) -> bool:
        v = self.get(key)
        if v is None:
            return default
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"{self.path or 'config'}: {key}={v!r} is not a boolean (use 1 or 0)")


def resolve_network(option: str | None) -> str:
    network = (option or os.environ.get("LNCLI_NETWORK") or "regtest").lower()
    network = _SECTION_ALIASES.get(network, network)
    if network not in NETWORKS:
        raise UsageError(f"unknown network {network!r} (use one of {', '.join(NETWORKS)})")
    return network


def resolve_datadir(option: str | None) -> Path:
    return Path(option or os.environ.get("LNCLI_DATADIR") or DEFAULT_DATADIR).expanduser()


def load_config(datadir: Path, network: str, conf_option: str | None) -> Config:
    """Read ``--conf`` (which must exist) or ``DATADIR/lncli.conf`` (optional)."""
    path = Path(conf_option).expanduser() if conf_option else datadir / CONF_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        if conf_option:
            raise InputError(f"config file {path} does not exist") from None
        return Config({}, None)
    except OSError as e:
        raise InputError(f"cannot read config file {path}: {e.strerror}") from None
    sections = parse_conf(text, str(path))
    merged = {k: list(v) for k, v in sections[""].items()}
    for k, v in sections.get(network, {}).items():
        merged[k] = list(v)
    return Config(merged, path)
