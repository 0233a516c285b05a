"""The node's control API methods (JSON-RPC): getinfo, stop, connect, disconnect, listpeers, ping."""

from __future__ import annotations

import asyncio
import os

from lncli.errors import InputError
from lncli.node.peer import PeerError
from lncli.node.peers import format_address
from lncli.proto.transport import InvalidKeyError
from lncli.rpc.server import Registry


def parse_node_id(text: str) -> bytes:
    from lncli.proto.transport import _parse_point

    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise InputError("node id must be 66 hex characters (a 33-byte public key)") from None
    if len(raw) != 33 or _parse_point(raw) is None:
        raise InputError("node id is not a valid 33-byte compressed public key")
    return raw


def register(registry: Registry, node) -> None:
    peers = node.peers

    async def getinfo() -> dict:
        info = node.info()
        info["pid"] = os.getpid()
        return info

    async def stop() -> dict:
        asyncio.get_running_loop().call_later(0.05, node.request_stop)
        return {"stopping": True, "pid": os.getpid()}

    async def connect(node_id: str, host: str, port: int = 9735, persist: bool = False) -> dict:
        nid = parse_node_id(node_id)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"port must be 1-65535, got {port!r}")
        before = peers.get(nid)
        already = before is not None and before.close_reason is None
        try:
            peer = await peers.connect(nid, host, port, persist=True if persist else None)
        except InvalidKeyError as e:
            raise InputError(str(e)) from None
        out = peer.info()
        stored = (peers.store.get(nid) if peers.store is not None else None) or {}
        out["persistent"] = bool(stored.get("persistent"))  # what is true now, not what was asked
        out["already_connected"] = already
        if already:
            # like lightning-cli connect: the existing connection, no new dial; say what was not done
            asked, known = format_address(host, port), peers.known_address(nid, peer)
            if asked != peer.address:
                out["requested_address"] = asked
            if asked != known:
                out["note"] = (f"already connected ({peer.direction}, at {peer.address}): {asked} was not dialled"
                               + (" and not stored" if known is None else f" and not stored (we dial {known})")
                               + ("; --persist not applied" if persist and not out["persistent"] else "")
                               + "; disconnect first to connect there")
        return out

    async def disconnect(node_id: str) -> dict:
        nid = parse_node_id(node_id)
        if not await peers.disconnect(nid):
            raise InputError(f"not connected to {node_id}")
        return {"node_id": node_id, "disconnected": True}

    async def listpeers() -> list:
        return peers.list()

    async def ping(node_id: str, num_pong_bytes: int = 0) -> dict:
        nid = parse_node_id(node_id)
        peer = peers.get(nid)
        if peer is None:
            raise InputError(f"not connected to {node_id}")
        if not isinstance(num_pong_bytes, int) or not 0 <= num_pong_bytes <= 65531:
            raise InputError("num_pong_bytes must be 0-65531")
        rtt = await peer.ping(num_pong_bytes)
        return {"node_id": node_id, "rtt_ms": round(rtt * 1000, 3)}

    async def help() -> list:
        return registry.names()

    for name, fn in (
        ("getinfo", getinfo),
        ("stop", stop),
        ("connect", connect),
        ("disconnect", disconnect),
        ("listpeers", listpeers),
        ("ping", ping),
        ("help", help),
    ):
        registry.add(name, fn)


__all__ = ["register", "parse_node_id", "PeerError"]
