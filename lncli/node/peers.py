"""The set of peer connections: listeners, outbound connects, reconnection to persistent peers.

:class:`PeerManager` accepts inbound connections, dials outbound ones, keeps one :class:`Peer` per
node id (a newer connection replaces an older one, as BOLT 1 suggests), remembers why a peer went
away, and redials ``persistent`` peers (the ones we have channels with) with exponential backoff.
Peer addresses and the persistent flag live in the node database (:class:`PeerStore`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from typing import Any

from lncli.node.events import PeerClosed, PeerReady
from lncli.node.peer import Handler, Handshake, Peer, PeerError, _ephemeral_key, init_message
from lncli.proto.features import Features
from lncli.proto.transport import Initiator, InvalidKeyError, Responder, Transport, public_key
from lncli.store.db import transaction

log = logging.getLogger("lncli.peers")

PEER_MIGRATIONS = [
    "CREATE TABLE peers (\n"
    "  node_id TEXT PRIMARY KEY,\n"
    "  host TEXT NOT NULL,\n"
    "  port INTEGER NOT NULL,\n"
    "  persistent INTEGER NOT NULL DEFAULT 0,\n"
    "  last_connected INTEGER\n"
    ")",
]


class PeerStore:
    """Known peer addresses and which peers to keep connected."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def save(self, node_id: bytes, host: str, port: int, persistent: bool | None = None) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO peers(node_id, host, port, persistent, last_connected) VALUES(?, ?, ?, ?, ?) "
                "ON CONFLICT(node_id) DO UPDATE SET host=excluded.host, port=excluded.port, "
                "last_connected=excluded.last_connected"
                + (", persistent=excluded.persistent" if persistent is not None else ""),
                (node_id.hex(), host, port, int(bool(persistent)), int(time.time())),
            )

    def set_persistent(self, node_id: bytes, persistent: bool) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE peers SET persistent=? WHERE node_id=?", (int(persistent), node_id.hex()))

    def get(self, node_id: bytes) -> dict | None:
        row = self.conn.execute("SELECT * FROM peers WHERE node_id=?", (node_id.hex(),)).fetchone()
        return dict(row) if row else None

    def persistent(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM peers WHERE persistent=1 ORDER BY node_id")]


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PeerManager:
    def __init__(
        self,
        node_key: bytes,
        *,
        chain_hash: bytes,
        features: Features,
        store: PeerStore | None = None,
        handlers: dict[str, Handler] | None = None,
        handshake_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        init_timeout: float = 10.0,
        ping_interval: float = 30.0,
        ping_timeout: float = 30.0,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 60.0,
        events=None,
    ):
        self.node_key = node_key
        self.node_id = public_key(node_key)
        self.chain_hash = chain_hash
        self.features = features
        self.store = store
        self.handlers: dict[str, Handler] = handlers if handlers is not None else {}
        self.handshake_timeout = handshake_timeout
        self.connect_timeout = connect_timeout
        self.init_timeout = init_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.events = events  # lncli.node.events.EventBus: PeerReady / PeerClosed (None: not told)
        self.peers: dict[bytes, Peer] = {}  # ready peers by node id
        self.listen_addresses: list[tuple[str, int]] = []
        self._servers: list[asyncio.base_events.Server] = []
        self._handshaking: set[Handshake] = set()
        self._connections: set[Peer] = set()  # every handshaken connection, ready or not
        self._reconnecting: dict[bytes, asyncio.Task] = {}
        self._suspended: set[bytes] = set()
        self._gone: dict[bytes, dict[str, Any]] = {}  # node_id -> last info of a disconnected peer
        self._closing = False
        self._init_bytes = init_message(features, chain_hash)

    # --- listening ---

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._new_inbound, host, port, reuse_address=True, backlog=1024)
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        bound = (sockname[0], sockname[1])
        self.listen_addresses.append(bound)
        log.info("listening for peers on %s", format_address(*bound))
        return bound

    def _new_inbound(self) -> asyncio.Protocol:
        if self._closing:
            return _Refuse()
        return Handshake(
            Responder(self.node_key, _ephemeral_key()),
            self.handshake_timeout,
            self._inbound_done,
            self._inbound_failed,
            self._handshaking,
        )

    def _inbound_done(self, hs: Handshake, transport: Transport, leftover: bytes) -> None:
        self._attach(hs.tcp, transport, "inbound", hs.address, leftover)

    def _inbound_failed(self, hs: Handshake, reason: str) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("inbound connection from %s failed: %s", hs.address, reason)

    # --- outbound ---

    async def connect(self, node_id: bytes, host: str, port: int, persist: bool | None = None) -> Peer:
        """Dial, handshake and exchange init; returns the ready peer or raises PeerError."""
        if node_id == self.node_id:
            raise PeerError("cannot connect to ourselves")
        existing = self.peers.get(node_id)
        if existing is not None and existing.close_reason is None:
            # already connected: no dial. ``persist`` is applied only if HOST:PORT is the address
            # we know for this peer (an untried one is neither stored nor made persistent)
            if self.store is not None and persist and self.known_address(node_id, existing) == format_address(host, port):
                self.store.set_persistent(node_id, True)
            return existing
        while True:
            try:
                initiator = Initiator(self.node_key, node_id, _ephemeral_key())
                break
            except InvalidKeyError as e:
                if "remote" in str(e):
                    raise PeerError(f"invalid node id: {e}") from None
        where = format_address(host, port)
        loop = asyncio.get_running_loop()
        handshaken: asyncio.Future = loop.create_future()

        def done(hs: Handshake, transport: Transport, leftover: bytes) -> None:
            peer = self._attach(hs.tcp, transport, "outbound", where, leftover)
            if not handshaken.done():
                handshaken.set_result(peer)

        def failed(hs: Handshake, reason: str) -> None:
            if not handshaken.done():
                handshaken.set_exception(PeerError(f"{where}: {reason}"))

        hs = Handshake(initiator, self.handshake_timeout, done, failed, self._handshaking)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: hs, host, port)
        except TimeoutError:
            raise PeerError(f"connecting to {where} timed out after {self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise PeerError(f"connection refused by {where} (is a node listening there?)") from None
        except OSError as e:
            raise PeerError(f"cannot connect to {where}: {e.strerror or e}") from None
        peer = await handshaken
        try:
            await asyncio.shield(peer.ready)
        except PeerError as e:
            raise PeerError(f"{where}: {e}") from None
        self._suspended.discard(node_id)
        if self.store is not None:
            self.store.save(node_id, host, port, True if persist else None)
        return peer

    def known_address(self, node_id: bytes, peer: Peer | None = None) -> str | None:
        """The address we dial this peer at: the stored one, else an outbound connection's."""
        row = self.store.get(node_id) if self.store is not None else None
        if row is not None and row.get("host"):
            return format_address(row["host"], row["port"])
        if peer is not None and peer.direction == "outbound":
            return peer.address
        return None

    def _attach(self, tcp: asyncio.Transport, transport: Transport, direction: str, address: str, leftover: bytes) -> Peer:
        """Turn a handshaken connection into a Peer and start the init exchange."""
        peer = Peer(
            tcp,
            transport,
            direction=direction,
            address=address,
            local_features=self.features,
            chain_hash=self.chain_hash,
            handlers=self.handlers,
            init_timeout=self.init_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            init_bytes=self._init_bytes,
            on_ready=self._on_ready,
            on_close=self._on_closed,
        )
        tcp.set_protocol(peer)
        self._connections.add(peer)
        peer.start(leftover)
        return peer

    def _on_ready(self, peer: Peer) -> None:
        if peer.close_reason is not None:
            return
        old = self.peers.get(peer.node_id)
        self.peers[peer.node_id] = peer
        self._gone.pop(peer.node_id, None)
        if old is not None and old is not peer:
            old.close("replaced by a new connection from the same node")
        if self.events is not None:
            self.events.emit(PeerReady(peer))

    def _on_closed(self, peer: Peer) -> None:
        self._connections.discard(peer)
        if self.peers.get(peer.node_id) is peer:
            del self.peers[peer.node_id]
            info = peer.info()
            info["connected"] = False
            info["last_error"] = peer.last_error or peer.close_reason
            self._gone[peer.node_id] = info
            self._maybe_reconnect(peer.node_id)
            if self.events is not None and peer.node_id not in self.peers:
                self.events.emit(PeerClosed(peer))

    # --- reconnection ---

    def start_reconnecting(self) -> None:
        """Dial every persistent peer (at startup)."""
        if self.store is None:
            return
        for row in self.store.persistent():
            self._maybe_reconnect(bytes.fromhex(row["node_id"]), delay=0.0)

    def _maybe_reconnect(self, node_id: bytes, delay: float | None = None) -> None:
        if self._closing or self.store is None or node_id in self._suspended or node_id in self._reconnecting:
            return
        row = self.store.get(node_id)
        if row is None or not row["persistent"]:
            return
        task = asyncio.ensure_future(self._reconnect_loop(node_id, self.reconnect_initial if delay is None else delay))
        self._reconnecting[node_id] = task
        task.add_done_callback(lambda t, n=node_id: self._reconnecting.pop(n, None))

    async def _reconnect_loop(self, node_id: bytes, delay: float) -> None:
        backoff = max(self.reconnect_initial, 0.01)
        while not self._closing and node_id not in self.peers and node_id not in self._suspended:
            if delay:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            row = self.store.get(node_id) if self.store is not None else None
            if row is None or not row["persistent"] or node_id in self.peers or node_id in self._suspended:
                return
            try:
                await self.connect(node_id, row["host"], row["port"])
                log.info("reconnected to persistent peer %s", node_id.hex()[:16])
                return
            except PeerError as e:
                log.info("reconnecting to %s failed (next try in %.0f s): %s", node_id.hex()[:16], backoff, e)
                gone = self._gone.setdefault(node_id, {"node_id": node_id.hex(), "connected": False})
                gone["last_error"] = str(e)
                delay = backoff
                backoff = min(backoff * 2, self.reconnect_max)

    # --- control ---

    async def disconnect(self, node_id: bytes) -> bool:
        """Close the connection to a peer; stops redialing it until the next connect or restart."""
        self._suspended.add(node_id)
        task = self._reconnecting.pop(node_id, None)
        if task is not None:
            task.cancel()
        peer = self.peers.get(node_id)
        if peer is None:
            return False
        peer.close("disconnected on request")
        await peer.closed.wait()
        return True

    def get(self, node_id: bytes) -> Peer | None:
        return self.peers.get(node_id)

    def list(self) -> list[dict[str, Any]]:
        out = [p.info() for p in self.peers.values()]
        seen = set(self.peers)
        if self.store is not None:
            for row in self.store.persistent():
                nid = bytes.fromhex(row["node_id"])
                if nid in seen:
                    continue
                info = dict(self._gone.get(nid, {}))
                out.append(
                    {
                        "node_id": row["node_id"],
                        "address": format_address(row["host"], row["port"]),
                        "direction": info.get("direction", "outbound"),
                        "connected": False,
                        "features": info.get("features", []),
                        "connected_since": None,
                        "last_error": info.get("last_error"),
                    }
                )
        for p in out:
            if self.store is not None:
                row = self.store.get(bytes.fromhex(p["node_id"]))
                p["persistent"] = bool(row and row["persistent"])
            else:
                p["persistent"] = False
        return out

    async def close(self) -> None:
        self._closing = True
        for s in self._servers:
            s.close()
        for t in list(self._reconnecting.values()):
            t.cancel()
        for p in list(self._connections):
            p.close("node shutting down")
        for hs in list(self._handshaking):
            hs.abort("node shutting down")
        await asyncio.gather(*self._reconnecting.values(), return_exceptions=True)
        await asyncio.sleep(0)  # let the transports finish closing
        for s in self._servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 1.0)
            except (TimeoutError, Exception):  # noqa: BLE001
                pass


class _Refuse(asyncio.Protocol):
    """Hangs up at once (connections that arrive while the node shuts down)."""

    def connection_made(self, tcp: asyncio.BaseTransport) -> None:
        tcp.close()
