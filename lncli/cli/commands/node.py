"""``lncli node start|stop|info``: run the node and control it."""

from __future__ import annotations

import time
from typing import List, Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit
from lncli.errors import InputError, LncliError, RefusedError, UsageError

app = typer.Typer(help="Run the node (start), stop it, show what it is (info).", no_args_is_help=True)

DAEMON_START_TIMEOUT = 10.0


def _settings(env: Env, listen, alias, rgb, dev_seed, handshake_timeout, ping_interval, poll_interval=None):
    from lncli.node.address import parse_host_port
    from lncli.node.node import NodeSettings
    from lncli.wallet.seed import datadir_seed

    conf = env.config
    addrs = [parse_host_port(a, allow_zero=True) for a in (listen or conf.get_all("listen") or ["127.0.0.1:9735"])]
    seed = datadir_seed(env, dev_seed)
    rgb = rgb if rgb is not None else conf.get("rgb")
    if rgb is not None:
        text = rgb.lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise InputError(f"rgb must be a colour like #3399ff, got {rgb!r}")
        rgb = "#" + text.lower()
    alias = alias if alias is not None else conf.get("alias")
    if alias is not None and len(alias.encode()) > 32:
        raise InputError("alias must be at most 32 bytes")
    ht = handshake_timeout if handshake_timeout is not None else float(conf.get("handshake-timeout", "10"))
    pi = ping_interval if ping_interval is not None else float(conf.get("ping-interval", "30"))
    if ht <= 0 or pi <= 0:
        raise InputError("timeouts and intervals must be positive")
    from lncli.chain.backend import backend_kind

    backend_kind(env)  # off regtest without bitcoind: say what to configure, before starting
    poll = poll_interval
    if poll is None and conf.get("poll-interval") is not None:
        try:
            poll = float(conf.get("poll-interval"))
        except ValueError:
            raise InputError(f"poll-interval={conf.get('poll-interval')!r} is not a number of seconds") from None
    if poll is not None and not 0 < poll <= 3600:
        raise InputError("the poll interval must be more than 0 and at most 3600 seconds")
    return NodeSettings(
        datadir=env.datadir,
        network=env.network,
        listen=addrs,
        alias=alias,
        rgb=rgb,
        dev_seed=seed,
        handshake_timeout=ht,
        ping_interval=pi,
        ping_timeout=max(pi, 5.0) if ping_interval is None else pi,
        config=conf,
        poll_interval=poll,
    )


@app.command("start")
def start(
    ctx: typer.Context,
    listen: Optional[List[str]] = typer.Option(
        None, "--listen", metavar="HOST:PORT", help="Accept peers here (repeatable; [::1]:9735 for IPv6; port 0 picks one) [config listen=; default 127.0.0.1:9735]."
    ),
    alias: Optional[str] = typer.Option(None, "--alias", help="Node alias, up to 32 bytes [config alias=]."),
    rgb: Optional[str] = typer.Option(None, "--rgb", metavar="#RRGGBB", help="Node colour [config rgb=]."),
    log_level: Optional[str] = typer.Option(None, "--log-level", metavar="LEVEL", help="debug, info or warning [config log-level=; default info]."),
    dev_seed: Optional[str] = typer.Option(None, "--dev-seed", metavar="HEX", help="Regtest only: a fixed 32-byte seed (node key and channel secrets) [config dev-seed=]."),
    daemon: bool = typer.Option(False, "--daemon", help="Run in the background; return once the node answers."),
    handshake_timeout: Optional[float] = typer.Option(None, "--handshake-timeout", metavar="SECONDS", help="Time a peer has to finish the BOLT 8 handshake [default 10]."),
    ping_interval: Optional[float] = typer.Option(None, "--ping-interval", metavar="SECONDS", help="Keepalive ping interval; a peer that does not answer within it is dropped [default 30]."),
    poll_interval: Optional[float] = typer.Option(None, "--poll-interval", metavar="SECONDS", help="How often to poll the chain for new blocks [config poll-interval=; default 0.5 embedded, 2 bitcoind]."),
    detached: bool = typer.Option(False, "--detached", hidden=True),
) -> None:
    """Start the node (in the foreground unless --daemon); prints its info once it listens."""
    env: Env = ctx.obj
    level = (log_level or env.config.get("log-level") or "info").lower()
    from lncli.node.daemon import LOG_LEVELS

    if level not in LOG_LEVELS:
        raise UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    env.ensure_netdir()
    settings = _settings(env, listen, alias, rgb, dev_seed, handshake_timeout, ping_interval, poll_interval)
    if daemon and not detached:
        argv = ["--datadir", str(env.datadir.resolve()), "--network", env.network]
        if env.conf_option:
            argv += ["--conf", env.conf_option]
        argv += ["node", "start", "--detached", "--log-level", level]
        for a in listen or []:
            argv += ["--listen", a]
        for flag, value in (("--alias", alias), ("--rgb", rgb), ("--dev-seed", dev_seed), ("--handshake-timeout", handshake_timeout), ("--ping-interval", ping_interval), ("--poll-interval", poll_interval)):
            if value is not None:
                argv += [flag, str(value)]
        emit(env, _start_daemon(env, argv))
        return
    _run_foreground(env, settings, level, quiet=detached)


def _start_daemon(env: Env, argv: list[str]) -> dict:
    from lncli.node.daemon import AlreadyRunning, daemon_error, is_locked, lock_path, spawn_detached
    from lncli.rpc.client import call

    netdir = env.netdir
    if is_locked(netdir):
        pid = lock_path(netdir).read_text().strip()
        raise AlreadyRunning(f"a node is already running for {env.datadir} (pid {pid}): stop it first (lncli node stop)")
    proc = spawn_detached(argv, netdir)
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while True:
        rc = proc.poll()
        if rc is not None:
            raise LncliError(daemon_error(netdir) or f"the node exited at start with status {rc} (see {netdir / 'debug.log'})")
        try:
            return call(netdir, "getinfo", datadir=env.datadir, timeout=5.0)
        except LncliError:
            pass
        if time.monotonic() > deadline:
            raise LncliError(f"the node did not answer within {DAEMON_START_TIMEOUT:g} s (see {netdir / 'debug.log'})")
        time.sleep(0.03)


def _event_loop_runner(env: Env):
    """``asyncio.run`` or uvloop's: ``event-loop`` in lncli.conf, ``uvloop`` (the default, when
    installed: the same asyncio API with its loop, sockets and timers in C, ~5% more payments/s
    one at a time) or ``asyncio`` (the standard library's loop)."""
    import asyncio

    name = (env.config.get("event-loop") or "uvloop").strip().lower()
    if name not in ("uvloop", "asyncio"):
        raise InputError(f"event-loop={name!r} in the configuration: use uvloop or asyncio")
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not built for this platform: the standard loop does the same job
            return asyncio.run
        return uvloop.run
    return asyncio.run


def _run_foreground(env: Env, settings, level: str, quiet: bool) -> None:
    from lncli.node.daemon import acquire_lock, raise_nofile_limit, setup_logging
    from lncli.node.node import run_node

    run = _event_loop_runner(env)
    acquire_lock(env.netdir, env.datadir)
    setup_logging(env.netdir, level, to_stderr=not quiet)
    raise_nofile_limit()

    def ready(node) -> None:
        if not quiet:
            emit(env, node.info())

    try:
        run(run_node(settings, ready))
    except OSError as e:
        raise LncliError(f"cannot start the node: {e.strerror or e}") from None


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the running node cleanly; waits until it has exited."""
    env: Env = ctx.obj
    from lncli.node.daemon import wait_unlocked
    from lncli.rpc.client import call

    result = call(env.netdir, "stop", datadir=env.datadir, timeout=30.0)
    if not wait_unlocked(env.netdir, 30.0):
        raise LncliError(f"the node (pid {result.get('pid')}) did not exit within 30 s")
    emit(env, {"stopped": True, "pid": result.get("pid")})


@app.command("info")
def info(ctx: typer.Context) -> None:
    """Node id, alias, colour, listen URIs, network, block height, peers and channels, version."""
    env: Env = ctx.obj
    from lncli.rpc.client import call

    emit(env, call(env.netdir, "getinfo", datadir=env.datadir))
