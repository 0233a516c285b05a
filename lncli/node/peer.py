"""One peer connection: the BOLT 8 handshake and BOLT 1 messaging, as asyncio protocols.

The connection is callback driven (no task and no stream per connection): bytes arrive in
``data_received``, go through the sans-IO :class:`~lncli.proto.transport.Transport` and are handled
at once; replies go straight to the socket with ``transport.write``. Timeouts are single timer
handles, not a ``wait_for`` per read.

* :class:`Handshake` runs the BOLT 8 acts (as responder or initiator) and hands over to
* :class:`Peer`, which does the ``init`` exchange (features, networks), answers ``ping``, sends
  keepalive pings and drops a peer that stops answering, records ``warning`` and ``error``
  messages, ignores unknown odd messages and closes on unknown even ones. Every other message goes
  through a dispatch table (``message name -> handler(peer, message)``) that the node fills in; a
  known message with no handler is logged as an error, answered with a ``warning``, and (if even)
  ends the connection. A handler may return an awaitable: reading from that peer pauses until it
  finishes, so messages are always handled in order.

Nothing here knows about the RPC, the CLI, or other peers: failures end this connection only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from lncli.errors import DecodeError, LncliError
from lncli.node.features import check_peer_features
from lncli.proto import wire
from lncli.proto.features import FeatureError, Features
from lncli.proto.transport import (
    ACT_ONE_SIZE,
    ACT_THREE_SIZE,
    ACT_TWO_SIZE,
    Initiator,
    Responder,
    Transport,
    TransportError,
)

log = logging.getLogger("lncli.peer")

MSG_PING = 18
MSG_PONG = 19
MAX_PONG_BYTES = 65531  # a ping asking for more than this gets no pong (BOLT 1)
MAX_WRITE_BUFFER = 4 << 20  # a peer that does not read is dropped past this
_ZERO_CHANNEL = bytes(32)
_U16U16 = struct.Struct(">HH")
_EMPTY_PONG = _U16U16.pack(MSG_PONG, 0)
_KEEPALIVE = None  # marks a keepalive ping in the queue of pings waiting for their pong

Handler = Callable[["Peer", wire.Message], "Awaitable[None] | None"]


class PeerError(LncliError):
    """A connection that failed: refused, timed out, bad handshake, incompatible init."""


def _ephemeral_key() -> bytes:
    return os.urandom(32)


def _printable(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:limit] + ("..." if len(text) > limit else "")


def _format_peername(tcp: asyncio.BaseTransport) -> str:
    peername = tcp.get_extra_info("peername")
    if not peername:
        return "?"
    host, port = peername[0], peername[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def init_message(local_features: Features, chain_hash: bytes) -> bytes:
    """Our ``init``: the features and the networks TLV with our chain."""
    return wire.encode_message(
        "init",
        globalfeatures=b"",
        features=local_features.to_bytes(),
        tlvs={"networks": {"chains": (chain_hash,)}},
    )


class Handshake(asyncio.Protocol):
    """The BOLT 8 handshake over one TCP connection.

    ``noise`` is a fresh :class:`Responder` (inbound: read act one, write act two, read act three)
    or :class:`Initiator` (outbound: write act one, read act two, write act three). On success
    ``on_done(handshake, transport, leftover_bytes)`` is called, which must switch the connection
    to its :class:`Peer` (``handshake.tcp.set_protocol(peer)``). On failure or timeout the
    connection is closed and ``on_fail(handshake, reason)`` is called. Exactly one of them is
    called, once. ``live`` (optional) holds the handshakes in progress.
    """

    def __init__(
        self,
        noise: Responder | Initiator,
        timeout: float,
        on_done: Callable[[Handshake, Transport, bytes], None],
        on_fail: Callable[[Handshake, str], None],
        live: set | None = None,
    ):
        self.noise = noise
        self.outbound = isinstance(noise, Initiator)
        self.timeout = timeout
        self.tcp: asyncio.Transport | None = None
        self._on_done = on_done
        self._on_fail = on_fail
        self._live = live
        self._buf = b""
        self._need = ACT_TWO_SIZE if self.outbound else ACT_ONE_SIZE
        self._timer: asyncio.TimerHandle | None = None
        self._finished = False

    @property
    def address(self) -> str:
        return _format_peername(self.tcp) if self.tcp is not None else "?"

    def connection_made(self, tcp: asyncio.Transport) -> None:
        self.tcp = tcp
        if self._live is not None:
            self._live.add(self)
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._timed_out)
        if self.outbound:
            tcp.write(self.noise.act_one())

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        buf = self._buf + data if self._buf else data
        need = self._need
        if len(buf) < need:
            self._buf = buf
            return
        try:
            if self.outbound:
                act3, transport = self.noise.read_act_two(buf[:need])
                self.tcp.write(act3)
            else:
                if need == ACT_ONE_SIZE:
                    self.tcp.write(self.noise.read_act_one(buf[:need]))
                    buf = buf[need:]
                    need = self._need = ACT_THREE_SIZE
                    if len(buf) < need:
                        self._buf = buf
                        return
                transport = self.noise.read_act_three(buf[:need])
        except TransportError as e:
            self._fail(f"handshake failed: {e}")
            return
        self._finish()
        self._on_done(self, transport, buf[need:])

    def eof_received(self) -> None:
        return None  # close: a handshake is never half-duplex

    def connection_lost(self, exc: Exception | None) -> None:
        if self._finished:
            return
        if exc is not None:
            self._fail(f"connection lost during the handshake: {getattr(exc, 'strerror', None) or exc}")
        elif self.outbound:
            self._fail(
                f"the peer closed the connection during the handshake after {len(self._buf)} of {ACT_TWO_SIZE} "
                "bytes of act two (wrong node id?)"
            )
        else:
            self._fail(f"the peer closed the connection during the handshake ({len(self._buf)} bytes of an act)")

    def abort(self, reason: str) -> None:
        """Give up (node shutting down)."""
        self._fail(reason)

    def _timed_out(self) -> None:
        self._fail(f"handshake timed out after {self.timeout:g} s")

    def _finish(self) -> None:
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        if self._live is not None:
            self._live.discard(self)

    def _fail(self, reason: str) -> None:
        if self._finished:
            return
        self._finish()
        if self.tcp is not None:
            self.tcp.close()
        self._on_fail(self, reason)


class Peer(asyncio.Protocol):
    """A connected, handshaken peer: the protocol of its TCP connection after the handshake.

    Create it from a finished :class:`Handshake`, ``tcp.set_protocol(peer)``, then call
    :meth:`start` (sends our ``init``). ``ready`` resolves once the peer's ``init`` is accepted;
    ``closed`` is set when the connection ends (``close_reason`` says why).
    """

    def __init__(
        self,
        tcp: asyncio.Transport,
        transport: Transport,
        *,
        direction: str,
        address: str,
        local_features: Features,
        chain_hash: bytes,
        handlers: dict[str, Handler] | None = None,
        init_timeout: float = 10.0,
        ping_interval: float = 30.0,
        ping_timeout: float = 30.0,
        init_bytes: bytes | None = None,
        on_ready: Callable[[Peer], None] | None = None,
        on_close: Callable[[Peer], None] | None = None,
    ):
        self.tcp = tcp
        self.transport = transport
        self.node_id: bytes = transport.remote_static_pubkey
        self.direction = direction
        self.address = address
        self.local_features = local_features
        self.chain_hash = chain_hash
        self.handlers = handlers if handlers is not None else {}
        self.init_timeout = init_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.features: Features | None = None
        self.networks: tuple[bytes, ...] | None = None
        self.connected_since = time.time()
        self.last_error: str | None = None
        self.close_reason: str | None = None
        self._loop = asyncio.get_running_loop()
        self.ready: asyncio.Future = self._loop.create_future()
        self.closed = asyncio.Event()
        self._init_bytes = init_bytes
        self._on_ready = on_ready
        self._on_close = on_close
        self._pongs: deque[asyncio.Future | None] = deque()
        self._timer: asyncio.TimerHandle | None = None  # init timeout, then keepalive
        self._backlog: deque[bytes] | None = None  # messages waiting for an async handler
        self._handler_task: asyncio.Task | None = None
        self._write_paused = False

    def __repr__(self) -> str:
        return f"Peer({self.node_id.hex()}@{self.address}, {self.direction})"

    @property
    def short_id(self) -> str:
        return self.node_id.hex()[:16]

    # --- sending ---

    def send(self, message: bytes) -> None:
        """Frame and queue one message (type || payload). Order is the call order."""
        if self.close_reason is not None:
            raise PeerError(f"peer {self.short_id} is disconnected ({self.close_reason})")
        tcp = self.tcp
        tcp.write(self.transport.encrypt_message(message))
        if tcp.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close("the peer does not read what we send (write buffer full)", abort=True)

    def send_many(self, messages) -> None:
        """:meth:`send` for several messages, in order, with one write (one system call)."""
        if self.close_reason is not None:
            raise PeerError(f"peer {self.short_id} is disconnected ({self.close_reason})")
        encrypt = self.transport.encrypt_message
        tcp = self.tcp
        tcp.write(b"".join([encrypt(m) for m in messages]))
        if tcp.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close("the peer does not read what we send (write buffer full)", abort=True)

    def send_warning(self, text: str, channel_id: bytes = _ZERO_CHANNEL) -> None:
        self.send(wire.encode_message("warning", channel_id=channel_id, data=text.encode()))

    async def ping(self, num_pong_bytes: int = 0, timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; returns the round trip in seconds."""
        fut = self._loop.create_future()
        start = time.perf_counter()
        self._pongs.append(fut)
        self.send(_U16U16.pack(MSG_PING, num_pong_bytes) + b"\x00\x00")
        try:
            await asyncio.wait_for(fut, timeout if timeout is not None else self.ping_timeout)
        except TimeoutError:
            raise PeerError(f"peer {self.short_id} did not answer a ping") from None
        return time.perf_counter() - start

    # --- lifecycle ---

    def start(self, leftover: bytes = b"") -> None:
        """Send our init, arm the init timeout, and handle bytes that came with the handshake."""
        init = self._init_bytes
        if init is None:
            init = init_message(self.local_features, self.chain_hash)
        self.send(init)
        self._timer = self._loop.call_later(self.init_timeout, self.close, "timed out waiting for the peer")
        if leftover:
            self.data_received(leftover)

    def close(self, reason: str, abort: bool = False) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if log.isEnabledFor(logging.INFO):
            log.info("peer %s disconnected: %s", self.short_id, reason)
        if self._timer is not None:
            self._timer.cancel()
        if abort:
            self.tcp.abort()
        else:
            self.tcp.close()  # what is queued (a warning) still goes out
        if self._handler_task is not None:
            self._handler_task.cancel()
        while self._pongs:
            fut = self._pongs.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(PeerError(f"peer {self.short_id} disconnected: {reason}"))
        if not self.ready.done():
            self.ready.set_exception(PeerError(reason))
            self.ready.exception()  # retrieved: nobody may be waiting
        self.closed.set()
        if self._on_close is not None:
            self._on_close(self)

    # --- asyncio.Protocol ---

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.close("the peer closed the connection")
        else:
            self.close(f"connection lost: {getattr(exc, 'strerror', None) or exc}")

    def eof_received(self) -> None:
        return None  # the transport closes itself; connection_lost says why

    def pause_writing(self) -> None:
        # The peer does not read what we send: stop reading what it sends until it catches up.
        self._write_paused = True
        self.tcp.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._backlog is None and self.close_reason is None:
            self.tcp.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.close_reason is not None:
            return
        try:
            messages = self.transport.feed(data)
        except TransportError as e:
            self._process(getattr(e, "messages", ()))  # the good ones before the bad MAC
            self.close(f"transport failure: {e}")
            return
        if messages:
            self._process(messages)

    # --- handling messages ---

    def _process(self, messages) -> None:
        if self._backlog is not None:  # an async handler is running: keep the order
            self._backlog.extend(messages)
            return
        handle = self._handle
        for i, raw in enumerate(messages):
            if self.close_reason is not None:
                return
            try:
                result = handle(raw)
            except PeerError as e:
                self.close(str(e))
                return
            except Exception as e:  # noqa: BLE001 - a bug in a handler ends this connection only
                log.exception("peer %s: unexpected failure", self.short_id)
                self.close(f"internal error: {type(e).__name__}: {e}")
                return
            if result is not None:
                self._backlog = deque(messages[i + 1 :])
                self.tcp.pause_reading()
                self._handler_task = self._loop.create_task(self._await_handler(result))
                return

    async def _await_handler(self, awaitable) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            return
        except PeerError as e:
            self.close(str(e))
            return
        except Exception as e:  # noqa: BLE001
            log.exception("peer %s: unexpected failure", self.short_id)
            self.close(f"internal error: {type(e).__name__}: {e}")
            return
        self._handler_task = None
        backlog = self._backlog
        self._backlog = None
        if backlog:
            self._process(list(backlog))
        if self._backlog is None and self.close_reason is None and not self._write_paused:
            self.tcp.resume_reading()

    def _handle(self, raw: bytes):
        if len(raw) < 2:
            if self.features is None:
                self._fail("bad first message (expected init): no message type")
            raise PeerError(f"message of {len(raw)} bytes has no type")
        if self.features is None:
            return self._handle_init(raw)
        typ = (raw[0] << 8) | raw[1]
        if typ == MSG_PING:
            if len(raw) < 6:
                raise PeerError("malformed ping")
            num_pong_bytes, byteslen = _U16U16.unpack_from(raw, 2)
            if len(raw) < 6 + byteslen:
                raise PeerError("malformed ping: truncated ignored bytes")
            if num_pong_bytes == 0:
                self.send(_EMPTY_PONG)
            elif num_pong_bytes <= MAX_PONG_BYTES:
                self.send(_U16U16.pack(MSG_PONG, num_pong_bytes) + bytes(num_pong_bytes))
            return None
        if typ == MSG_PONG:
            if len(raw) < 4:
                raise PeerError("malformed pong")
            pongs = self._pongs
            if pongs:
                fut = pongs.popleft()
                if fut is _KEEPALIVE:
                    self._arm_keepalive()
                elif not fut.done():
                    fut.set_result(None)
            return None
        return self._dispatch(raw)

    def _handle_init(self, raw: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            msg = wire.decode_message(raw)
        except DecodeError as e:
            self._fail(f"bad first message (expected init): {e}")
        if msg.name != "init":
            self._fail(f"first message is {msg.name}, not init")
        features = Features.from_init(msg.globalfeatures, msg.features)
        try:
            check_peer_features(features)
        except FeatureError as e:
            self._fail(f"incompatible init: {e}")
        networks = msg.tlvs.get("networks")
        if networks is not None:
            chains = tuple(networks.get("chains", ()))
            self.networks = chains
            if self.chain_hash not in chains:
                self._fail("no common network: the peer's init lists none of our chain")
        self.features = features
        self.connected_since = time.time()
        if log.isEnabledFor(logging.INFO):
            log.info("peer %s ready (%s %s, features %s)", self.short_id, self.direction, self.address, ",".join(features.names()))
        if self._on_ready is not None:
            self._on_ready(self)
        if not self.ready.done():
            self.ready.set_result(self)
        self._arm_keepalive()

    def _fail(self, reason: str) -> None:
        try:
            self.send_warning(reason)
        except LncliError:
            pass
        raise PeerError(reason)

    # --- keepalive: one timer handle, re-armed by each keepalive pong ---

    def _arm_keepalive(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.close_reason is None:
            self._timer = self._loop.call_later(self.ping_interval, self._keepalive_ping)

    def _keepalive_ping(self) -> None:
        if self.close_reason is not None:
            return
        self._pongs.append(_KEEPALIVE)
        self.send(b"\x00\x12\x00\x00\x00\x00")
        if self.close_reason is None:
            self._timer = self._loop.call_later(self.ping_timeout, self.close, f"no pong within {self.ping_timeout:g} s")

    def _dispatch(self, raw: bytes):
        try:
            msg = wire.decode_message(raw)
        except wire.UnknownOptionalMessage as e:
            log.debug("peer %s: ignoring unknown odd message type %d", self.short_id, e.msg_type)
            return None
        except wire.UnknownMandatoryMessage as e:
            raise PeerError(f"unknown even message type {e.msg_type}") from None
        except DecodeError as e:
            self._fail(f"malformed message: {e}")
        name = msg.name
        if name == "warning" or name == "error":
            text = _printable(msg.data)
            where = "" if msg.channel_id == _ZERO_CHANNEL else f" (channel {msg.channel_id.hex()})"
            self.last_error = f"{name}{where}: {text}"
            log.warning("peer %s sent %s%s: %s", self.short_id, name, where, text)
            handler = self.handlers.get(name)
            return handler(self, msg) if handler is not None else None
        if name == "init":
            log.warning("peer %s sent a second init: ignored", self.short_id)
            return None
        handler = self.handlers.get(name)
        if handler is None:
            log.error("peer %s: no handler for %s (type %d)", self.short_id, name, msg.type)
            self.send_warning(f"unsupported message {name}")
            if msg.type % 2 == 0:
                raise PeerError(f"unhandled message {name} (type {msg.type})")
            return None
        return handler(self, msg)

    def info(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id.hex(),
            "address": self.address,
            "direction": self.direction,
            "connected": self.close_reason is None and self.features is not None,
            "features": self.features.names() if self.features is not None else [],
            "connected_since": int(self.connected_since),
            "last_error": self.last_error,
        }
