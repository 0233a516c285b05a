"""A real ``bitcoind -regtest`` for tests, when one is on PATH.

``RegtestBitcoind.start(dir)`` runs ``bitcoind -regtest -daemon=0`` in the background on free P2P
and RPC ports with its datadir under ``dir``, and waits until RPC answers. ``stop()`` asks it with
``bitcoin-cli stop`` (then waits, and kills it only if it does not exit). The pytest fixtures
``bitcoind`` (one per test) and ``bitcoind_module`` (one per test module) skip with a visible
reason when no ``bitcoind`` binary is installed, and always stop the daemon in a finalizer.

Use them by importing: ``from tests.bitcoind import bitcoind  # noqa: F401`` (pytest finds an
imported fixture in the test module's namespace).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

BITCOIND = shutil.which("bitcoind")
BITCOIN_CLI = shutil.which("bitcoin-cli")
SKIP_REASON = "bitcoind is not on PATH: the tests against a real bitcoind -regtest need it"
RPCUSER = RPCPASSWORD = "regtest"

requires_bitcoind = pytest.mark.skipif(BITCOIND is None, reason=SKIP_REASON)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, ask_to_stop, grace: float) -> None:
    """Ask a daemon to stop (``ask_to_stop()``), wait ``grace`` seconds, then terminate, then kill."""
    try:
        ask_to_stop()
    except Exception:  # noqa: BLE001  (its CLI missing, hanging or refused: terminate below)
        pass
    try:
        proc.wait(grace)
        return
    except subprocess.TimeoutExpired:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RegtestBitcoind:
    """One running ``bitcoind -regtest``. ``cookie=True`` starts it without rpcuser/rpcpassword, so
    RPC clients must use the cookie file ``datadir/regtest/.cookie``; ``txindex=False`` without
    the transaction index."""

    def __init__(self, datadir: Path, *, cookie: bool = False, txindex: bool = True):
        self.datadir = Path(datadir)
        self.cookie = cookie
        self.txindex = txindex
        self.port = free_port()
        self.rpcport = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def cookiefile(self) -> Path:
        return self.datadir / "regtest" / ".cookie"

    def auth_args(self) -> list[str]:
        return [] if self.cookie else [f"-rpcuser={RPCUSER}", f"-rpcpassword={RPCPASSWORD}"]

    @classmethod
    def start(cls, datadir: Path, *, cookie: bool = False, txindex: bool = True, timeout: float = 60) -> RegtestBitcoind:
        node = cls(datadir, cookie=cookie, txindex=txindex)
        node._start(timeout)
        return node

    def _start(self, timeout: float) -> None:
        if BITCOIND is None:
            raise RuntimeError(SKIP_REASON)
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = open(self.datadir / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            [BITCOIND, "-regtest", f"-datadir={self.datadir}", f"-port={self.port}", f"-rpcport={self.rpcport}",
             *self.auth_args(), "-fallbackfee=0.0002", f"-txindex={int(self.txindex)}", "-daemon=0", "-server", "-listen=0",
             "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-printtoconsole=0",
             "-discover=0", "-dnsseed=0", "-fixedseeds=0"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        backend = self.backend()
        from lncli.chain.interface import BackendUnreachable

        deadline = time.monotonic() + timeout
        while True:
            try:
                backend.tip()
                return
            except BackendUnreachable as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"bitcoind did not start: {e}; see {self.datadir / 'stdout.log'}") from None
                time.sleep(0.1)

    def backend(self, **kw):
        """A fresh :class:`lncli.chain.bitcoind.BitcoindBackend` on this daemon."""
        from lncli.chain.bitcoind import BitcoindBackend

        if self.cookie:
            return BitcoindBackend("regtest", rpcport=self.rpcport, rpccookiefile=self.cookiefile, **kw)
        return BitcoindBackend("regtest", rpcport=self.rpcport, rpcuser=RPCUSER, rpcpassword=RPCPASSWORD, **kw)

    def conf_lines(self) -> str:
        """lncli.conf lines pointing a datadir at this daemon."""
        if self.cookie:
            return f"rpcport={self.rpcport}\nbitcoindatadir={self.datadir}\n"
        return f"rpcport={self.rpcport}\nrpcuser={RPCUSER}\nrpcpassword={RPCPASSWORD}\n"

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            [BITCOIN_CLI or "bitcoin-cli", "-regtest", f"-datadir={self.datadir}", f"-rpcport={self.rpcport}",
             *self.auth_args(), *args],
            capture_output=True, text=True, timeout=timeout,
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        stop_process(proc, lambda: self.cli("stop", timeout=15), grace=30)


def start_or_skip(request, datadir: Path, **kw) -> RegtestBitcoind:
    """Start a RegtestBitcoind stopped by ``request``'s finalizer, or skip the test."""
    if BITCOIND is None:
        pytest.skip(SKIP_REASON)
    node = RegtestBitcoind(datadir, **kw)
    request.addfinalizer(node.stop)  # registered before starting: a half-started daemon is stopped too
    node._start(60)
    return node


@pytest.fixture
def bitcoind_node(request, tmp_path) -> RegtestBitcoind:
    """A fresh regtest bitcoind (user/password auth) for one test."""
    return start_or_skip(request, tmp_path / "bitcoind")


@pytest.fixture(scope="module")
def bitcoind_module(request, tmp_path_factory) -> RegtestBitcoind:
    """One regtest bitcoind shared by the tests of a module."""
    return start_or_skip(request, tmp_path_factory.mktemp("bitcoind"))


@pytest.fixture
def bitcoind(bitcoind_node):
    """A BitcoindBackend on a fresh regtest bitcoind."""
    return bitcoind_node.backend()
