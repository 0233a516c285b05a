"""Process lifecycle of the node: the datadir lock, logging, detaching, waiting for a stop.

No asyncio and no protocol code here, so ``lncli node stop`` stays cheap.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from lncli.config import LOG_LEVELS  # noqa: F401 - still importable from here
from lncli.errors import LncliError

LOCK_NAME = "node.lock"
LOG_NAME = "debug.log"
DAEMON_ERR_NAME = "daemon.err"


class AlreadyRunning(LncliError):
    """A node already holds this datadir's lock."""


def lock_path(netdir: Path) -> Path:
    return Path(netdir) / LOCK_NAME


def acquire_lock(netdir: Path, datadir: Path) -> int:
    """Take the one-node-per-datadir lock (held until the process exits); returns its fd."""
    path = lock_path(netdir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            pid = os.read(fd, 32).decode().strip()
        except OSError:
            pid = ""
        os.close(fd)
        who = f" (pid {pid})" if pid.isdigit() else ""
        raise AlreadyRunning(f"a node is already running for {datadir}{who}: stop it first (lncli node stop)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.set_inheritable(fd, False)
    return fd


def is_locked(netdir: Path) -> bool:
    """True while some process holds the node lock of this datadir."""
    try:
        fd = os.open(lock_path(netdir), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wait_unlocked(netdir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_locked(netdir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def setup_logging(netdir: Path, level: str, to_stderr: bool) -> None:
    """Log to ``NETDIR/debug.log`` (0600) with timestamps, and to stderr in the foreground."""
    path = Path(netdir) / LOG_NAME
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    fmt = logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    fh = logging.FileHandler(path)
    fh.setFormatter(fmt)
    root.addHandler(fh)
    if to_stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    root.setLevel(getattr(logging, level.upper()))


def raise_nofile_limit() -> None:
    """Allow as many open sockets as the hard limit permits."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 16
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def spawn_detached(argv: list[str], netdir: Path) -> subprocess.Popen:
    """Start ``python -m lncli <argv>`` in a new session, stdin/stdout on /dev/null, stderr in a
    file (early errors, before logging starts)."""
    err_path = Path(netdir) / DAEMON_ERR_NAME
    with open(os.devnull, "rb") as devnull_in, open(os.devnull, "wb") as devnull_out:
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "lncli", *argv],
                stdin=devnull_in,
                stdout=devnull_out,
                stderr=fd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(fd)


def daemon_error(netdir: Path) -> str:
    try:
        lines = [ln for ln in (Path(netdir) / DAEMON_ERR_NAME).read_text().splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    last = lines[-1]
    return last.split("error: ", 1)[1] if last.startswith("lncli: error: ") else last


# ------------------------------------------------------------------ starting a node
#
# ``env`` below is anything with ``datadir``, ``network``, ``netdir``, ``config`` and
# ``ensure_netdir()`` (the CLI's ``Env``).

DAEMON_START_TIMEOUT = 10.0


def node_settings(env, options, dev_seed: str | None = None):
    """The ``lncli.node.node.NodeSettings`` for ``env``'s datadir from merged
    :class:`lncli.config.NodeOptions`: the listen addresses parsed, the datadir seed (``dev_seed``
    or ``dev-seed=``, regtest only), and the chain backend checked (off regtest without
    bitcoind: InputError saying what to configure, before anything starts)."""
    from lncli.chain.backend import backend_kind
    from lncli.node.address import parse_host_port
    from lncli.node.node import NodeSettings
    from lncli.wallet.seed import datadir_seed

    addrs = [parse_host_port(a, allow_zero=True) for a in options.listen]
    seed = datadir_seed(env, dev_seed)
    backend_kind(env)
    return NodeSettings(
        datadir=env.datadir,
        network=env.network,
        listen=addrs,
        alias=options.alias,
        rgb=options.rgb,
        dev_seed=seed,
        handshake_timeout=options.handshake_timeout,
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        config=env.config,
        poll_interval=options.poll_interval,
    )


def start_daemon(netdir: Path, datadir: Path, argv: list[str], timeout: float = DAEMON_START_TIMEOUT) -> dict:
    """Run ``python -m lncli <argv>`` (a ``node start --detached``) in the background and return
    its ``getinfo`` once it answers. AlreadyRunning if a node holds the datadir; LncliError if
    the child exits first (with its error) or does not answer within ``timeout`` seconds."""
    from lncli.rpc.client import call

    if is_locked(netdir):
        pid = lock_path(netdir).read_text().strip()
        raise AlreadyRunning(f"a node is already running for {datadir} (pid {pid}): stop it first (lncli node stop)")
    proc = spawn_detached(argv, netdir)
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            raise LncliError(daemon_error(netdir) or f"the node exited at start with status {rc} (see {netdir / 'debug.log'})")
        try:
            return call(netdir, "getinfo", datadir=datadir, timeout=5.0)
        except LncliError:
            pass
        if time.monotonic() > deadline:
            raise LncliError(f"the node did not answer within {timeout:g} s (see {netdir / 'debug.log'})")
        time.sleep(0.03)


def event_loop_runner(name: str | None):
    """``asyncio.run`` or uvloop's: ``event-loop`` in lncli.conf, ``uvloop`` (the default, when
    installed: the same asyncio API with its loop, sockets and timers in C, ~5% more payments/s
    one at a time) or ``asyncio`` (the standard library's loop)."""
    import asyncio

    from lncli.errors import InputError

    name = (name or "uvloop").strip().lower()
    if name not in ("uvloop", "asyncio"):
        raise InputError(f"event-loop={name!r} in the configuration: use uvloop or asyncio")
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not built for this platform: the standard loop does the same job
            return asyncio.run
        return uvloop.run
    return asyncio.run


def run_foreground(settings, options, *, quiet: bool, ready=None) -> None:
    """Run the node in this process until it stops: the datadir lock, logging (to stderr too
    unless ``quiet``), the event loop ``options.event_loop`` names. ``ready(node)`` is called once
    it listens."""
    from lncli.node.node import run_node

    run = event_loop_runner(options.event_loop)
    acquire_lock(settings.netdir, settings.datadir)
    setup_logging(settings.netdir, options.log_level, to_stderr=not quiet)
    raise_nofile_limit()
    try:
        run(run_node(settings, ready))
    except OSError as e:
        raise LncliError(f"cannot start the node: {e.strerror or e}") from None
