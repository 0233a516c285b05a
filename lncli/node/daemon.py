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

from lncli.errors import LncliError

LOCK_NAME = "node.lock"
LOG_NAME = "debug.log"
DAEMON_ERR_NAME = "daemon.err"
LOG_LEVELS = ("debug", "info", "warning")


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
