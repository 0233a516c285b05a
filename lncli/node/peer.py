"""One peer connection: the BOLT 8 handshake over asyncio streams, then BOLT 1 messaging.

A :class:`Peer` owns its stream and its :class:`~lncli.proto.transport.Transport`. It does the
``init`` exchange (features, networks), answers ``ping``, sends keepalive pings and drops a peer
that stops answering, records ``warning`` and ``error`` messages, ignores unknown odd messages and
closes on unknown even ones. Every other message goes through a dispatch table
(``message name -> handler(peer, message)``) that the node fills in; a known message with no
handler is logged as an error, answered with a ``warning``, and (if even) ends the connection.

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
from lncli.proto.features import Features, FeatureError
from lncli.proto.transport import (
    ACT_ONE_SIZE,
    ACT_THREE_SIZE,
    ACT_TWO_SIZE,
    HEADER_SIZE,
    MAC_SIZE,
    InvalidKeyError,
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

Handler = Callable[["Peer", wire.Message], "Awaitable[None] | None"]


class PeerError(LncliError):
    """A connection that failed: refused, timed out, bad handshake, incompatible init."""


def _ephemeral_key() -> bytes:
    return os.urandom(32)


async def handshake_outbound(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local_key: bytes,
    remote_node_id: bytes,
    timeout: float,
) -> Transport:
    """Run the initiator side of the BOLT 8 handshake; raises PeerError."""
    while True:
        try:
            initiator = Initiator(local_key, remote_node_id, _ephemeral_key())
            break
        except InvalidKeyError as e:
            if "remote" in str(e):
                raise PeerError(f"invalid node id: {e}") from None
    try:
        async with asyncio.timeout(timeout):
            writer.write(initiator.act_one())
            act2 = await reader.readexactly(ACT_TWO_SIZE)
            act3, transport = initiator.read_act_two(act2)
            writer.write(act3)
            await writer.drain()
    except TimeoutError:
        raise PeerError(f"handshake timed out after {timeout:g} s") from None
    except asyncio.IncompleteReadError as e:
        raise PeerError(
            f"the peer closed the connection during the handshake after {len(e.partial)} of {ACT_TWO_SIZE} "
            "bytes of act two (wrong node id?)"
        ) from None
    except TransportError as e:
        raise PeerError(f"handshake failed: {e}") from None
    except OSError as e:
        raise PeerError(f"connection lost during the handshake: {e.strerror or e}") from None
    return transport


async def handshake_inbound(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, local_key: bytes, timeout: float
) -> Transport:
    """Run the responder side of the BOLT 8 handshake; raises PeerError."""
    responder = Responder(local_key, _ephemeral_key())
    try:
        async with asyncio.timeout(timeout):
            act1 = await reader.readexactly(ACT_ONE_SIZE)
            writer.write(responder.read_act_one(act1))
            act3 = await reader.readexactly(ACT_THREE_SIZE)
            return responder.read_act_three(act3)
    except TimeoutError:
        raise PeerError(f"handshake timed out after {timeout:g} s") from None
    except asyncio.IncompleteReadError as e:
        raise PeerError(f"the peer closed the connection during the handshake ({len(e.partial)} bytes of an act)") from None
    except TransportError as e:
        raise PeerError(f"handshake failed: {e}") from None
    except OSError as e:
        raise PeerError(f"connection lost during the handshake: {e.strerror or e}") from None


def _printable(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:limit] + ("..." if len(text) > limit else "")


class Peer:
    """A connected, handshaken peer. Call :meth:`run` (a task) and await :attr:`ready`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
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
    ):
        self.reader = reader
        self.writer = writer
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
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self._pongs: deque[tuple[asyncio.Future, float]] = deque()
        self._tasks: set[asyncio.Task] = set()

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
        self.writer.write(self.transport.encrypt_message(message))
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close("the peer does not read what we send (write buffer full)")

    def send_warning(self, text: str, channel_id: bytes = _ZERO_CHANNEL) -> None:
        self.send(wire.encode_message("warning", channel_id=channel_id, data=text.encode()))

    async def ping(self, num_pong_bytes: int = 0, timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; returns the round trip in seconds."""
        fut = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        self._pongs.append((fut, start))
        self.send(_U16U16.pack(MSG_PING, num_pong_bytes) + b"\x00\x00")
        try:
            await asyncio.wait_for(fut, timeout if timeout is not None else self.ping_timeout)
        except TimeoutError:
            raise PeerError(f"peer {self.short_id} did not answer a ping") from None
        return time.perf_counter() - start

    # --- lifecycle ---

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            log.info("peer %s disconnected: %s", self.short_id, reason)
        if not self.writer.is_closing():
            self.writer.close()
        for t in list(self._tasks):
            t.cancel()
        while self._pongs:
            fut, _ = self._pongs.popleft()
            if not fut.done():
                fut.set_exception(PeerError(f"peer {self.short_id} disconnected: {reason}"))
        if not self.ready.done():
            self.ready.set_exception(PeerError(reason))
            self.ready.exception()  # retrieved: nobody may be waiting
        self.closed.set()

    async def run(self) -> None:
        """Exchange init, then serve messages until the connection ends. Never raises."""
        try:
            await self._exchange_init()
            t = asyncio.ensure_future(self._keepalive())
            self._tasks.add(t)
            await self._serve()
        except asyncio.IncompleteReadError:
            self.close("the peer closed the connection")
        except TransportError as e:
            self.close(f"transport failure: {e}")
        except TimeoutError:
            self.close("timed out waiting for the peer")
        except PeerError as e:
            self.close(str(e))
        except (ConnectionError, OSError) as e:
            self.close(f"connection lost: {e.strerror or e}" if isinstance(e, OSError) else str(e))
        except asyncio.CancelledError:
            self.close(self.close_reason or "node shutting down")
        except Exception as e:  # noqa: BLE001 - a bug in a handler ends this connection only
            log.exception("peer %s: unexpected failure", self.short_id)
            self.close(f"internal error: {type(e).__name__}: {e}")
        finally:
            self.close(self.close_reason or "connection ended")

    async def _read(self) -> bytes:
        header = await self.reader.readexactly(HEADER_SIZE)
        length = self.transport.decrypt_length(header)
        return self.transport.decrypt_body(await self.reader.readexactly(length + MAC_SIZE))

    async def _exchange_init(self) -> None:
        self.send(
            wire.encode_message(
                "init",
                globalfeatures=b"",
                features=self.local_features.to_bytes(),
                tlvs={"networks": {"chains": (self.chain_hash,)}},
            )
        )
        async with asyncio.timeout(self.init_timeout):
            raw = await self._read()
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
        if not self.ready.done():
            self.ready.set_result(self)
        log.info("peer %s ready (%s %s, features %s)", self.short_id, self.direction, self.address, ",".join(features.names()))

    def _fail(self, reason: str) -> None:
        try:
            self.send_warning(reason)
        except LncliError:
            pass
        raise PeerError(reason)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.ping(0, self.ping_timeout)
            except PeerError:
                if self.close_reason is None:
                    self.close(f"no pong within {self.ping_timeout:g} s")
                    return

    async def _serve(self) -> None:
        read = self._read
        writer = self.writer
        pongs = self._pongs
        while True:
            raw = await read()
            if len(raw) < 2:
                raise PeerError(f"message of {len(raw)} bytes has no type")
            typ = (raw[0] << 8) | raw[1]
            if typ == MSG_PING:
                if len(raw) < 6:
                    raise PeerError("malformed ping")
                num_pong_bytes, byteslen = _U16U16.unpack_from(raw, 2)
                if len(raw) < 6 + byteslen:
                    raise PeerError("malformed ping: truncated ignored bytes")
                if num_pong_bytes <= MAX_PONG_BYTES:
                    self.send(_U16U16.pack(MSG_PONG, num_pong_bytes) + bytes(num_pong_bytes))
            elif typ == MSG_PONG:
                if len(raw) < 4:
                    raise PeerError("malformed pong")
                if pongs:
                    fut, _ = pongs.popleft()
                    if not fut.done():
                        fut.set_result(None)
            else:
                result = self._dispatch(raw)
                if result is not None:
                    await result
            if writer.transport.get_write_buffer_size() > 1 << 16:
                await writer.drain()

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
