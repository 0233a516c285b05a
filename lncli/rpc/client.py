"""A small synchronous JSON-RPC 2.0 client for the CLI: plain ``socket`` and ``json``, no asyncio.

The wire format is one JSON object per line (``\\n``-terminated) in each direction over the unix
socket ``DATADIR/NETWORK/lncli-rpc``. Errors come back as ``LncliError`` subclasses with the exit
code the node chose, so a refused request exits 1 here just as it would in-process.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
from pathlib import Path
from typing import Any

from lncli import errors
from lncli.errors import LncliError, UnreachableError

SOCKET_NAME = "lncli-rpc"
MAX_RESPONSE = 64 * 1024 * 1024
# Unix socket paths are limited to 108 bytes (sun_path); longer ones go through /proc/self/fd.
_SUN_PATH_MAX = 100

# JSON-RPC error code for an application error; ``data`` holds ``exit_code`` and ``type``.
APP_ERROR = -32000


def socket_path(netdir: Path | str) -> Path:
    return Path(netdir) / SOCKET_NAME


def not_running(datadir: Path | str) -> UnreachableError:
    """The error when nothing listens for ``datadir``, with the command that starts a node for
    it: ``--datadir`` (quoted for the shell) unless it is the default one."""
    from lncli.config import DEFAULT_DATADIR

    start = "lncli node start"
    if Path(datadir).expanduser() != Path(DEFAULT_DATADIR).expanduser():
        start = f"lncli --datadir {shlex.quote(str(datadir))} node start"
    return UnreachableError(f"no node running for {datadir} (start one with: {start})")


class RemoteError(LncliError):
    """An error raised by the node that maps to no class of lncli.errors; keeps its exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _error_from(err: dict) -> LncliError:
    message = str(err.get("message", "unknown error from the node"))
    data = err.get("data") if isinstance(err.get("data"), dict) else {}
    code = data.get("exit_code")
    name = data.get("type")
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if isinstance(cls, type) and issubclass(cls, LncliError) and cls.exit_code == code:
        return cls(message)
    if isinstance(code, int) and 1 <= code <= 125:
        return RemoteError(message, code)
    if err.get("code") in (-32601, -32602, -32600):
        return errors.UsageError(message)
    return RemoteError(message, 1)


def _connect(path: Path, timeout: float | None) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    text = str(path)
    dirfd = None
    try:
        if len(os.fsencode(text)) > _SUN_PATH_MAX:
            dirfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
            text = f"/proc/self/fd/{dirfd}/{path.name}"
        s.connect(text)
    except BaseException:
        s.close()
        raise
    finally:
        if dirfd is not None:
            os.close(dirfd)
    return s


class RpcClient:
    """One connection to the node; ``call`` may be used many times."""

    def __init__(self, netdir: Path | str, datadir: Path | str | None = None, timeout: float | None = 120.0):
        self.path = socket_path(netdir)
        self.datadir = datadir if datadir is not None else Path(netdir).parent
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._id = 0

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _ensure(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = _connect(self.path, self.timeout)
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
                raise not_running(self.datadir) from None
            except OSError as e:
                raise UnreachableError(f"cannot reach the node at {self.path}: {e.strerror or e}") from None
        return self._sock

    def call(self, method: str, **params: Any) -> Any:
        sock = self._ensure()
        self._id += 1
        request = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        try:
            sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            line = self._read_line(sock)
        except TimeoutError:
            self.close()
            raise UnreachableError(f"the node did not answer {method} within {self.timeout:g} s") from None
        except OSError as e:
            self.close()
            raise UnreachableError(f"lost the connection to the node during {method}: {e.strerror or e}") from None
        try:
            response = json.loads(line)
        except ValueError:
            self.close()
            raise UnreachableError("the node sent a response that is not JSON") from None
        if not isinstance(response, dict):
            raise UnreachableError("the node sent a malformed JSON-RPC response")
        if "error" in response and response["error"] is not None:
            raise _error_from(response["error"] if isinstance(response["error"], dict) else {})
        return response.get("result")

    def _read_line(self, sock: socket.socket) -> bytes:
        buf = self._buf
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                self._buf = buf[i + 1 :]
                return buf[:i]
            if len(buf) > MAX_RESPONSE:
                raise OSError("response too large")
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("the node closed the connection (shutting down?)")
            buf += chunk


def call(netdir: Path | str, method: str, datadir: Path | str | None = None, timeout: float | None = 120.0, **params):
    """One call on a fresh connection."""
    with RpcClient(netdir, datadir, timeout) as c:
        return c.call(method, **params)
