"""JSON-RPC 2.0 over a unix socket (mode 0600), asyncio, any number of concurrent clients.

One JSON object per line in each direction. Methods live in a :class:`Registry` (name -> async
handler taking keyword parameters); components add theirs with ``registry.add(name, handler)``.
An ``LncliError`` raised by a handler becomes error code -32000 with ``data = {"exit_code",
"type"}``, which :mod:`lncli.rpc.client` turns back into the same exception class.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lncli.errors import LncliError
from lncli.rpc.client import _SUN_PATH_MAX, APP_ERROR

log = logging.getLogger("lncli.rpc")

Handler = Callable[..., Awaitable[Any]]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

MAX_REQUEST = 1 << 20  # one request line


class Registry:
    """The method table: ``name -> async handler(**params)``."""

    def __init__(self) -> None:
        self._methods: dict[str, tuple[Handler, inspect.Signature]] = {}

    def add(self, name: str, handler: Handler) -> None:
        if name in self._methods:
            raise ValueError(f"RPC method {name!r} registered twice")
        self._methods[name] = (handler, inspect.signature(handler))

    def method(self, name: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(name, fn)
            return fn

        return deco

    def names(self) -> list[str]:
        return sorted(self._methods)

    def get(self, name: str):
        return self._methods.get(name)


def _error(id_, code: int, message: str, data: Any = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


class RpcServer:
    def __init__(self, path: Path | str, registry: Registry):
        self.path = Path(path)
        self.registry = registry
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self) -> None:
        try:
            self.path.unlink()  # a stale socket: the caller holds the datadir lock
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        dirfd = None
        try:
            target = str(self.path)
            if len(os.fsencode(target)) > _SUN_PATH_MAX:
                dirfd = os.open(self.path.parent, os.O_PATH | os.O_DIRECTORY)
                target = f"/proc/self/fd/{dirfd}/{self.path.name}"
            sock.bind(target)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
            if dirfd is not None:
                os.close(dirfd)
        os.chmod(self.path, 0o600)
        sock.listen(128)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST + 1)
        log.info("control API listening on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._clients):
                t.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(self._encode(_error(None, INVALID_REQUEST, "request too large")))
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                response = await self.handle_line(line)
                writer.write(self._encode(response))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    @staticmethod
    def _encode(obj: dict) -> bytes:
        return json.dumps(obj, separators=(",", ":"), default=_json_default).encode() + b"\n"

    async def handle_line(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
        except ValueError:
            return _error(None, PARSE_ERROR, "parse error: the request is not JSON")
        return await self.handle(request)

    async def handle(self, request: Any) -> dict:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error(request.get("id") if isinstance(request, dict) else None, INVALID_REQUEST, "invalid request")
        id_ = request.get("id")
        name = request["method"]
        params = request.get("params", {})
        entry = self.registry.get(name)
        if entry is None:
            return _error(id_, METHOD_NOT_FOUND, f"unknown method {name!r}")
        handler, sig = entry
        args: list = []
        kwargs: dict = {}
        if isinstance(params, list):
            args = params
        elif isinstance(params, dict):
            kwargs = params
        elif params is not None:
            return _error(id_, INVALID_PARAMS, "params must be an object or an array")
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            return _error(id_, INVALID_PARAMS, f"{name}: {e}")
        try:
            result = await handler(*args, **kwargs)
        except LncliError as e:
            return _error(id_, APP_ERROR, str(e), {"exit_code": e.exit_code, "type": type(e).__name__})
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a handler bug must not take the server down
            log.exception("RPC %s failed", name)
            return _error(id_, INTERNAL_ERROR, f"internal error in {name}: {type(e).__name__}: {e}")
        return {"jsonrpc": "2.0", "id": id_, "result": result}


def _json_default(o: Any):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if hasattr(o, "to_json"):
        return o.to_json()
    raise TypeError(f"cannot render {type(o).__name__} as JSON")
