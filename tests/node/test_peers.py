"""Peer connections in-process: handshake, init, ping/pong, dispatch, robustness, reconnect, pyln."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest

from lncli.node.features import CHAIN_HASHES, INIT_FEATURES
from lncli.node.peer import PeerError
from lncli.node.peers import PEER_MIGRATIONS, PeerManager, PeerStore
from lncli.proto import wire
from lncli.proto.transport import Initiator, Transport, public_key
from lncli.store.db import open_db

REGTEST = CHAIN_HASHES["regtest"]


def key(i: int) -> bytes:
    return bytes([i]) * 32


def run(coro, timeout: float = 15.0):
    async def main():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


async def manager(i: int, **kw) -> PeerManager:
    kw.setdefault("handshake_timeout", 2.0)
    m = PeerManager(key(i), chain_hash=REGTEST, features=INIT_FEATURES, **kw)
    await m.listen("127.0.0.1", 0)
    return m


def init_message(features: bytes = INIT_FEATURES.to_bytes(), chains=(REGTEST,)) -> bytes:
    tlvs = {"networks": {"chains": tuple(chains)}} if chains is not None else {}
    return wire.encode_message("init", globalfeatures=b"", features=features, tlvs=tlvs)


class RawPeer:
    """A hand-driven initiator for poking at the node."""

    def __init__(self, reader, writer, transport: Transport | None = None):
        self.reader, self.writer, self.t = reader, writer, transport

    @classmethod
    async def open(cls, m: PeerManager, handshake: bool = True, key_byte: int = 0x55):
        host, port = m.listen_addresses[0]
        reader, writer = await asyncio.open_connection(host, port)
        raw = cls(reader, writer)
        if handshake:
            ini = Initiator(key(key_byte), m.node_id, os.urandom(32))
            writer.write(ini.act_one())
            act3, raw.t = ini.read_act_two(await reader.readexactly(50))
            writer.write(act3)
        return raw

    def send(self, msg: bytes) -> None:
        self.writer.write(self.t.encrypt_message(msg))

    async def read(self) -> bytes:
        n = self.t.decrypt_length(await self.reader.readexactly(18))
        return self.t.decrypt_body(await self.reader.readexactly(n + 16))

    async def init(self, **kw) -> wire.Message:
        msg = wire.decode_message(await self.read())
        assert msg.name == "init"
        self.send(init_message(**kw))
        return msg

    async def closed(self, timeout: float = 5.0) -> bytes:
        """Wait until the node closes; returns what it sent meanwhile (undecrypted)."""
        data = b""
        async with asyncio.timeout(timeout):
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    return data
                data += chunk

    async def read_until_closed(self, timeout: float = 5.0) -> list[wire.Message]:
        out = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    out.append(wire.decode_message(await self.read()))
        except asyncio.IncompleteReadError:
            return out


async def good_connection_works(m: PeerManager) -> None:
    raw = await RawPeer.open(m, key_byte=0x77)
    init = await raw.init()
    assert init.tlvs["networks"]["chains"] == (REGTEST,)
    raw.send(struct.pack(">HHH", 18, 3, 0))
    pong = wire.decode_message(await raw.read())
    assert pong.name == "pong" and pong.ignored == bytes(3)
    raw.writer.close()


def test_two_nodes_connect_ping_disconnect():
    async def main():
        a, b = await manager(1), await manager(2)
        try:
            host, port = b.listen_addresses[0]
            peer = await a.connect(b.node_id, host, port)
            assert peer.features == INIT_FEATURES
            await asyncio.sleep(0.05)
            assert list(b.peers) == [a.node_id]
            assert [p["direction"] for p in b.list()] == ["inbound"]
            info = a.list()[0]
            assert info["node_id"] == b.node_id.hex() and info["connected"]
            assert info["features"] == INIT_FEATURES.names()
            assert await peer.ping(10) < 1
            # connecting again returns the same connection
            assert await a.connect(b.node_id, host, port) is peer
            assert await a.disconnect(b.node_id)
            await asyncio.sleep(0.05)
            assert not a.peers and not b.peers
            with pytest.raises(PeerError, match="ourselves"):
                await a.connect(a.node_id, host, port)
        finally:
            await a.close()
            await b.close()

    run(main())


def test_connect_errors():
    async def main():
        a, b = await manager(1), await manager(2)
        try:
            host, port = b.listen_addresses[0]
            # wrong node id: the responder cannot read act one and hangs up
            with pytest.raises(PeerError, match="act two"):
                await a.connect(public_key(key(9)), host, port)
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
            s.close()
            with pytest.raises(PeerError, match="refused"):
                await a.connect(b.node_id, "127.0.0.1", free)
            # a listener that never answers the handshake
            silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            a.handshake_timeout = 0.2
            with pytest.raises(PeerError, match="timed out"):
                await a.connect(b.node_id, "127.0.0.1", silent.sockets[0].getsockname()[1])
            silent.close()
        finally:
            await a.close()
            await b.close()

    run(main())


@pytest.mark.parametrize(
    "attack",
    ["garbage_act1", "bad_version_act1", "short_act1_then_close", "bad_act3", "silent", "bad_mac", "truncated_max_length"],
)
def test_misbehaving_client_affects_only_itself(attack):
    async def main():
        m = await manager(3, handshake_timeout=0.3)
        try:
            other = await RawPeer.open(m, key_byte=0x66)  # a good peer connected throughout
            await other.init()
            if attack in ("garbage_act1", "bad_version_act1", "short_act1_then_close", "bad_act3", "silent"):
                raw = await RawPeer.open(m, handshake=False)
                if attack == "garbage_act1":
                    raw.writer.write(os.urandom(50))
                elif attack == "bad_version_act1":
                    ini = Initiator(key(0x55), m.node_id, os.urandom(32))
                    raw.writer.write(b"\x01" + ini.act_one()[1:])
                elif attack == "short_act1_then_close":
                    raw.writer.write(b"\x00" * 20)
                    raw.writer.write_eof()
                elif attack == "bad_act3":
                    ini = Initiator(key(0x55), m.node_id, os.urandom(32))
                    raw.writer.write(ini.act_one())
                    await raw.reader.readexactly(50)
                    raw.writer.write(b"\x00" + os.urandom(65))
                await raw.closed()
            else:
                raw = await RawPeer.open(m)
                await raw.init()
                if attack == "bad_mac":
                    raw.writer.write(os.urandom(18))
                else:  # announce the maximum length, then send only part of it and stop
                    frame = raw.t.encrypt_message(b"\x00\x21" + bytes(65533))
                    raw.writer.write(frame[:1000])
                    raw.writer.write_eof()
                await raw.closed()
            await good_connection_works(m)
            other.send(struct.pack(">HHH", 18, 1, 0))
            assert wire.decode_message(await other.read()).name == "pong"
        finally:
            await m.close()

    run(main())


def test_maximum_size_unknown_odd_message_is_ignored_unknown_even_ends():
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.init()
            raw.send(b"\x80\x01" + bytes(65533))  # 65535 bytes, unknown odd type
            raw.send(struct.pack(">HHH", 18, 0, 0))
            assert wire.decode_message(await raw.read()).name == "pong"
            raw.send(b"\x80\x00")  # unknown even
            await raw.closed()
            assert not m.peers
            await good_connection_works(m)
        finally:
            await m.close()

    run(main())


def test_large_ping_request_is_not_answered():
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.init()
            raw.send(struct.pack(">HHH", 18, 65532, 0))
            raw.send(struct.pack(">HHH", 18, 65531, 0))
            pong = wire.decode_message(await raw.read())
            assert len(pong.ignored) == 65531
        finally:
            await m.close()

    run(main())


@pytest.mark.parametrize(
    "bad_init, reason",
    [
        ({"features": (1 << 100).to_bytes(13, "big")}, "unknown required"),
        ({"chains": (CHAIN_HASHES["mainnet"],)}, "no common network"),
    ],
)
def test_incompatible_init_is_refused(bad_init, reason):
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.init(**bad_init)
            msgs = await raw.read_until_closed()
            assert msgs and msgs[-1].name == "warning" and reason in msgs[-1].data.decode()
            assert not m.peers
        finally:
            await m.close()

    run(main())


def test_init_without_networks_and_odd_unknown_features_is_fine():
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.init(features=(1 << 101 | 1 << 13).to_bytes(13, "big"), chains=None)
            await asyncio.sleep(0.05)
            assert "bit_101" in m.list()[0]["features"]
        finally:
            await m.close()

    run(main())


def test_first_message_must_be_init():
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.read()
            raw.send(struct.pack(">HHH", 18, 0, 0))
            msgs = await raw.read_until_closed()
            assert msgs[-1].name == "warning" and b"not init" in msgs[-1].data
        finally:
            await m.close()

    run(main())


def test_warning_and_error_are_recorded_and_unhandled_messages_fail_loudly(caplog):
    async def main():
        m = await manager(3)
        try:
            raw = await RawPeer.open(m)
            await raw.init()
            raw.send(wire.encode_message("warning", channel_id=bytes(32), data=b"be careful"))
            raw.send(wire.encode_message("error", channel_id=b"\x01" * 32, data=b"it broke"))
            raw.send(struct.pack(">HHH", 18, 0, 0))
            await raw.read()
            info = m.list()[0]
            assert info["last_error"] == "error (channel " + "01" * 32 + "): it broke"
            # a known message nobody handles: a warning, then (even type) the connection ends
            raw.send(wire.encode_message("shutdown", channel_id=bytes(32), scriptpubkey=b"\x00\x14" + bytes(20)))
            msgs = await raw.read_until_closed()
            assert msgs[-1].name == "warning" and b"unsupported message shutdown" in msgs[-1].data
        finally:
            await m.close()

    run(main())
    assert "no handler for shutdown" in caplog.text


def test_keepalive_drops_a_peer_that_does_not_answer():
    async def main():
        m = await manager(3, ping_interval=0.1, ping_timeout=0.2)
        try:
            raw = await RawPeer.open(m)
            await raw.init()
            msgs = await raw.read_until_closed(timeout=3)
            assert [x.name for x in msgs] == ["ping"]
            await asyncio.sleep(0.05)
            assert not m.peers
        finally:
            await m.close()

    run(main())


def test_new_connection_replaces_old():
    async def main():
        m = await manager(3)
        try:
            r1 = await RawPeer.open(m)
            await r1.init()
            r2 = await RawPeer.open(m)
            await r2.init()
            await r1.read_until_closed()
            await asyncio.sleep(0.05)
            assert len(m.peers) == 1
            r2.send(struct.pack(">HHH", 18, 0, 0))
            assert wire.decode_message(await r2.read()).name == "pong"
        finally:
            await m.close()

    run(main())


def test_persistent_peer_is_redialed(tmp_path):
    async def main():
        db = open_db(tmp_path / "node.sqlite3", {"peers": PEER_MIGRATIONS})
        a = await manager(1, store=PeerStore(db), reconnect_initial=0.05)
        b = await manager(2)
        try:
            host, port = b.listen_addresses[0]
            await a.connect(b.node_id, host, port, persist=True)
            await asyncio.sleep(0.05)
            b.peers[a.node_id].close("test drop")
            for _ in range(100):
                await asyncio.sleep(0.02)
                if b.node_id in a.peers and a.node_id in b.peers:
                    break
            assert b.node_id in a.peers
            assert a.list()[0]["persistent"] is True
            # an explicit disconnect stops redialing
            await a.disconnect(b.node_id)
            await asyncio.sleep(0.3)
            assert b.node_id not in a.peers
            assert a.list()[0]["connected"] is False
        finally:
            await a.close()
            await b.close()
            db.close()
        # a restarted manager dials persistent peers at startup
        db = open_db(tmp_path / "node.sqlite3", {"peers": PEER_MIGRATIONS})
        b = await manager(2)
        PeerStore(db).save(b.node_id, *b.listen_addresses[0], persistent=True)
        a = await manager(1, store=PeerStore(db))
        try:
            a.start_reconnecting()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if b.node_id in a.peers:
                    break
            assert b.node_id in a.peers
        finally:
            await a.close()
            await b.close()
            db.close()

    run(main())


def test_pyln_proto_interop():
    from pyln.proto.primitives import PrivateKey
    from pyln.proto.wire import connect

    async def main():
        m = await manager(4)
        try:
            host, port = m.listen_addresses[0]

            def client():
                lc = connect(PrivateKey(key(0x42)), m.node_id, host, port)
                theirs = wire.decode_message(lc.read_message())
                lc.send_message(init_message())
                lc.send_message(struct.pack(">HHH", 18, 7, 2) + b"\x00\x00")
                pong = wire.decode_message(lc.read_message())
                lc.connection.close()
                return theirs, pong

            theirs, pong = await asyncio.to_thread(client)
            assert theirs.name == "init" and theirs.features == INIT_FEATURES.to_bytes()
            assert pong.name == "pong" and pong.ignored == bytes(7)
        finally:
            await m.close()

    run(main())


def test_our_initiator_against_pyln_responder():
    from pyln.proto.primitives import PrivateKey
    from pyln.proto.wire import LightningServerSocket

    async def main():
        srv = LightningServerSocket(PrivateKey(key(0x43)))
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]

        def serve():
            lc, _ = srv.accept()
            lc.send_message(init_message())
            got = wire.decode_message(lc.read_message())
            ping = wire.decode_message(lc.read_message())
            return got, ping

        a = await manager(1)
        try:
            fut = asyncio.ensure_future(asyncio.to_thread(serve))
            peer = await a.connect(public_key(key(0x43)), "127.0.0.1", port)
            assert peer.features == INIT_FEATURES
            asyncio.ensure_future(peer.ping(5, timeout=0.5)).add_done_callback(lambda f: f.exception())
            got, ping = await fut
            assert got.name == "init" and ping.name == "ping" and ping.num_pong_bytes == 5
        finally:
            await a.close()
            srv.close()

    run(main())
