"""``lncli node start|stop|info``: run the node and control it."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env
from lncli.cli.output import emit
from lncli.errors import LncliError

app = typer.Typer(help="Run the node (start), stop it, show what it is (info).", no_args_is_help=True)


@app.command("start")
def start(
    ctx: typer.Context,
    listen: Optional[list[str]] = typer.Option(
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
    from lncli.config import node_options
    from lncli.node.daemon import node_settings, run_foreground, start_daemon

    options = node_options(
        env.config, listen=listen, alias=alias, rgb=rgb, log_level=log_level,
        handshake_timeout=handshake_timeout, ping_interval=ping_interval, poll_interval=poll_interval,
    )
    env.ensure_netdir()
    settings = node_settings(env, options, dev_seed)
    if daemon and not detached:
        argv = ["--datadir", str(env.datadir.resolve()), "--network", env.network]
        if env.conf_option:
            argv += ["--conf", env.conf_option]
        argv += ["node", "start", "--detached", "--log-level", options.log_level]
        for a in listen or []:
            argv += ["--listen", a]
        for flag, value in (("--alias", alias), ("--rgb", rgb), ("--dev-seed", dev_seed), ("--handshake-timeout", handshake_timeout), ("--ping-interval", ping_interval), ("--poll-interval", poll_interval)):
            if value is not None:
                argv += [flag, str(value)]
        emit(env, start_daemon(env.netdir, env.datadir, argv))
        return
    run_foreground(settings, options, quiet=detached, ready=None if detached else lambda node: emit(env, node.info()))


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
