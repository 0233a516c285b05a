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


LOG_LEVELS = ("debug", "info", "warning")
DEFAULT_LISTEN = "127.0.0.1:9735"


@dataclass(frozen=True)
class NodeOptions:
    """The node's settings from ``lncli node start``: each command-line option over its config
    key (``listen=``, ``alias=``, ``rgb=``, ``log-level=``, ``handshake-timeout=``,
    ``ping-interval=``, ``poll-interval=``, ``event-loop=``) over the default, checked."""

    listen: list[str]  # HOST:PORT, as given
    alias: str | None
    rgb: str | None  # "#rrggbb"
    log_level: str
    handshake_timeout: float
    ping_interval: float
    ping_timeout: float
    poll_interval: float | None  # None: the backend's default
    event_loop: str | None  # as configured: checked when the loop starts


def node_options(
    config: Config,
    *,
    listen: list[str] | None = None,
    alias: str | None = None,
    rgb: str | None = None,
    log_level: str | None = None,
    handshake_timeout: float | None = None,
    ping_interval: float | None = None,
    poll_interval: float | None = None,
) -> NodeOptions:
    """Merge the options (None: not given) with ``config``. UsageError for an unknown log level,
    InputError for a bad colour, alias, timeout or interval."""
    level = (log_level or config.get("log-level") or "info").lower()
    if level not in LOG_LEVELS:
        raise UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    rgb = rgb if rgb is not None else config.get("rgb")
    if rgb is not None:
        text = rgb.lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise InputError(f"rgb must be a colour like #3399ff, got {rgb!r}")
        rgb = "#" + text.lower()
    alias = alias if alias is not None else config.get("alias")
    if alias is not None and len(alias.encode()) > 32:
        raise InputError("alias must be at most 32 bytes")
    ht = handshake_timeout if handshake_timeout is not None else float(config.get("handshake-timeout", "10"))
    pi = ping_interval if ping_interval is not None else float(config.get("ping-interval", "30"))
    if ht <= 0 or pi <= 0:
        raise InputError("timeouts and intervals must be positive")
    poll = poll_interval
    if poll is None and config.get("poll-interval") is not None:
        try:
            poll = float(config.get("poll-interval"))
        except ValueError:
            raise InputError(f"poll-interval={config.get('poll-interval')!r} is not a number of seconds") from None
    if poll is not None and not 0 < poll <= 3600:
        raise InputError("the poll interval must be more than 0 and at most 3600 seconds")
    return NodeOptions(
        listen=list(listen or config.get_all("listen") or [DEFAULT_LISTEN]),
        alias=alias,
        rgb=rgb,
        log_level=level,
        handshake_timeout=ht,
        ping_interval=pi,
        ping_timeout=max(pi, 5.0) if ping_interval is None else pi,
        poll_interval=poll,
        event_loop=config.get("event-loop"),
    )


#: The forwarding policy's lncli.conf keys (each also settable per channel with ``lncli
#: setchannel``), with the names they had before: fee-base-msat, fee-per-millionth, cltv-expiry-delta.
POLICY_KEYS = {
    "fee-base": ("fee_base_msat", "fee-base-msat"),
    "fee-ppm": ("fee_proportional_millionths", "fee-per-millionth"),
    "cltv-delta": ("cltv_expiry_delta", "cltv-expiry-delta"),
    "htlc-minimum": ("htlc_minimum_msat", None),
    "htlc-maximum": ("htlc_maximum_msat", None),
}


def parse_msat_option(text: str, what: str) -> int:
    """An amount in msat as an option gives it: a bare whole number is msat (not sat, unlike
    :func:`lncli.amount.parse_msat`), or a number with a unit (``1sat``, ``1500msat``)."""
    from lncli.amount import parse_msat

    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        return parse_msat(t)
    except InputError:
        raise InputError(f"{what}={text!r} is not an amount (msat, or with a unit: 1500msat, 2sat)") from None


def policy_options(config: Config) -> dict[str, int]:
    """The forwarding policy keys set in ``config`` (``fee-base=`` msat, ``fee-ppm=``,
    ``cltv-delta=`` blocks, ``htlc-minimum=`` and ``htlc-maximum=`` msat), by their BOLT 7 field
    names; keys not set are left out. InputError for a value that is not a whole number (the
    policy's own limits are checked where it is built, lncli.node.channel_policy)."""
    out: dict[str, int] = {}
    for key, (name, old) in POLICY_KEYS.items():
        k = key if config.get(key) is not None else old
        if k is None or config.get(k) is None:
            continue
        if name.endswith("_msat"):
            out[name] = parse_msat_option(config.get(k), k)
        else:
            out[name] = config.get_int(k)
    return out
