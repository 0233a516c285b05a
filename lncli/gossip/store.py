"""Core Lightning's ``gossip_store`` file: a streaming reader and the graph it describes.

The format (CLN ``common/gossip_store.h``, checked against files CLN v26.06 wrote):

- byte 0: the version; the top 3 bits are the major version (0; anything else is a different
  format), the low 5 bits the minor version (16 today; minor changes stay readable);
- then records back to back, each a 12-byte big-endian header ``flags u16 | len u16 | crc u32 |
  timestamp u32`` and ``len`` bytes of message (which starts with its own u16 type);
- ``crc`` is CRC32C (Castagnoli) of the message, started from the header's timestamp;
- flags: 0x8000 DELETED (superseded, kept in place), 0x2000 COMPLETED (fully written),
  0x0800 DYING (the channel's funding output is spent; it is forgotten 72 blocks later).

Record types: the BOLT 7 messages 256/257/258, and CLN's own 4101 ``channel_amount`` (right after
each channel_announcement), 4103 ``delete_chan``, 4105 ``ended`` (the file was replaced),
4106 ``chan_dying``, 4107 ``uuid`` (always first) and the obsolete private-channel 4102/4104.

:func:`iter_records` streams :class:`Record` s from a binary file; :func:`decode_record` turns one
into a message; :func:`load_graph` applies the live records to a :class:`~lncli.proto.gossip.Graph`
(what CLN's ``listchannels``/``listnodes`` show); :func:`load_routing_graph` reads only what
pathfinding needs straight into a :class:`~lncli.proto.route_graph.RoutingGraph` (the mainnet
store in about a second, in a fraction of the memory); :func:`dump_records` and :func:`summarize` are
what ``lncli gossip-dump`` prints.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from lncli.errors import DecodeError
from lncli.proto import gossip
from lncli.proto.scid import ShortChannelId

__all__ = [
    "GossipStoreError",
    "DELETED",
    "COMPLETED",
    "DYING",
    "MAJOR_VERSION",
    "MINOR_VERSION",
    "RECORD_TYPES",
    "crc32c",
    "Record",
    "ChannelAmount",
    "DeleteChan",
    "Ended",
    "ChanDying",
    "StoreUuid",
    "PrivateChannelObs",
    "PrivateUpdateObs",
    "UnknownRecord",
    "read_version",
    "StoreReader",
    "iter_records",
    "decode_record",
    "load_graph",
    "load_routing_graph",
    "dump_records",
    "summarize",
]

DELETED = 0x8000
COMPLETED = 0x2000
DYING = 0x0800
_FLAG_NAMES = ((DELETED, "DELETED"), (COMPLETED, "COMPLETED"), (DYING, "DYING"))

MAJOR_VERSION = 0
MINOR_VERSION = 16

CHANNEL_AMOUNT = 4101
PRIVATE_UPDATE_OBS = 4102
DELETE_CHAN = 4103
PRIVATE_CHANNEL_OBS = 4104
ENDED = 4105
CHAN_DYING = 4106
UUID = 4107

#: record type -> name (CLN's gossip_store_wire.csv names, without the ``gossip_store_`` prefix)
RECORD_TYPES = {
    gossip.CHANNEL_ANNOUNCEMENT: "channel_announcement",
    gossip.NODE_ANNOUNCEMENT: "node_announcement",
    gossip.CHANNEL_UPDATE: "channel_update",
    CHANNEL_AMOUNT: "channel_amount",
    PRIVATE_UPDATE_OBS: "private_update_obs",
    DELETE_CHAN: "delete_chan",
    PRIVATE_CHANNEL_OBS: "private_channel_obs",
    ENDED: "ended",
    CHAN_DYING: "chan_dying",
    UUID: "uuid",
}

_HEADER = struct.Struct(">HHII")
HEADER_SIZE = 12


class GossipStoreError(DecodeError):
    """A gossip_store that does not read: ``offset`` is where (the record's header, or 0)."""

    def __init__(self, offset: int, message: str):
        super().__init__(f"gossip_store offset {offset}: {message}")
        self.offset = offset


# --------------------------------------------------------------------------- CRC32C


def _crc_tables() -> tuple[list[int], ...]:
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli, reflected
        t0.append(c)
    tables = [t0]
    for _ in range(3):  # slicing-by-4: table k advances a byte through k more zero bytes
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tuple(tables)


_T0, _T1, _T2, _T3 = _crc_tables()
_WORDS: dict[int, struct.Struct] = {}


def crc32c_py(data: bytes, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``, continuing from ``crc`` (as zlib.crc32 continues; CLN's
    ``crc32c(start, buf, len)`` is the same function). Slicing-by-4 over little-endian words.

    The reference implementation: :func:`crc32c` uses the ``crc32c`` package (hardware CRC
    instructions, ~1000x faster on a 40 MB store) when it is installed, this otherwise."""
    crc ^= 0xFFFFFFFF
    n = len(data)
    n4 = n & ~3
    t0, t1, t2, t3 = _T0, _T1, _T2, _T3
    if n4:
        st = _WORDS.get(n4)
        if st is None:
            st = struct.Struct(f"<{n4 >> 2}I")
            if len(_WORDS) < 1024:
                _WORDS[n4] = st
        for w in st.unpack_from(data):
            c = crc ^ w
            crc = t3[c & 0xFF] ^ t2[(c >> 8) & 0xFF] ^ t1[(c >> 16) & 0xFF] ^ t0[c >> 24]
    for b in data[n4:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    from crc32c import crc32c as _crc32c_c
except ImportError:  # pragma: no cover - the package is a declared dependency
    crc32c = crc32c_py
else:

    def crc32c(data: bytes, crc: int = 0) -> int:
        return _crc32c_c(data, value=crc)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Record:
    """One record: where it starts (its header's offset), its header, and the message bytes
    (2-byte type included)."""

    offset: int
    flags: int
    crc: int
    timestamp: int
    message: bytes

    @property
    def type(self) -> int:
        m = self.message
        return m[0] << 8 | m[1] if len(m) >= 2 else -1

    @property
    def type_name(self) -> str:
        return RECORD_TYPES.get(self.type, f"unknown_{self.type}")

    @property
    def deleted(self) -> bool:
        return bool(self.flags & DELETED)

    @property
    def dying(self) -> bool:
        return bool(self.flags & DYING)

    @property
    def completed(self) -> bool:
        return bool(self.flags & COMPLETED)

    @property
    def flag_names(self) -> list[str]:
        names = [n for bit, n in _FLAG_NAMES if self.flags & bit]
        other = self.flags & ~(DELETED | COMPLETED | DYING)
        if other:
            names.append(f"0x{other:04x}")
        return names


def read_version(first: bytes) -> tuple[int, int]:
    """``(major, minor)`` of the version byte; a major other than 0 raises."""
    if not first:
        raise GossipStoreError(0, "empty file (no version byte)")
    v = first[0]
    major, minor = v >> 5, v & 0x1F
    if major != MAJOR_VERSION:
        raise GossipStoreError(0, f"version byte 0x{v:02x} is major version {major}; only major 0 is readable")
    return major, minor


def _stream(source: BinaryIO | bytes | bytearray | memoryview) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    return source


class StoreReader:
    """The records of a gossip_store, streamed from a binary file object (or the whole file as
    bytes). The version byte is read and checked on construction (``major``, ``minor``);
    iterating yields :class:`Record` s. A truncated header or message, a message too short for
    its type or (with ``verify_crc``) a CRC mismatch raises :class:`GossipStoreError` with the
    record's offset."""

    def __init__(self, source: BinaryIO | bytes, *, verify_crc: bool = True):
        self._f = _stream(source)
        self.verify_crc = verify_crc
        self.major, self.minor = read_version(self._f.read(1))

    def __iter__(self) -> Iterator[Record]:
        read = self._f.read
        verify_crc = self.verify_crc
        unpack = _HEADER.unpack
        off = 1
        while True:
            hdr = read(HEADER_SIZE)
            if not hdr:
                return
            if len(hdr) < HEADER_SIZE:
                raise GossipStoreError(off, f"truncated record header ({len(hdr)} of {HEADER_SIZE} bytes)")
            flags, length, crc, ts = unpack(hdr)
            msg = read(length)
            if len(msg) < length:
                raise GossipStoreError(off, f"truncated record ({len(msg)} of {length} message bytes)")
            if length < 2:
                raise GossipStoreError(off, f"record of {length} bytes has no message type")
            if verify_crc:
                got = crc32c(msg, ts)
                if got != crc:
                    raise GossipStoreError(off, f"bad CRC: header says 0x{crc:08x}, the message gives 0x{got:08x}")
            yield Record(off, flags, crc, ts, msg)
            off += HEADER_SIZE + length


def iter_records(source: BinaryIO | bytes, *, verify_crc: bool = True) -> Iterator[Record]:
    """Stream the records of a gossip_store (see :class:`StoreReader`)."""
    return iter(StoreReader(source, verify_crc=verify_crc))


# --------------------------------------------------------------------------- CLN's own records


def _scid(data: bytes, off: int) -> ShortChannelId:
    return int.__new__(ShortChannelId, int.from_bytes(data[off : off + 8], "big"))  # any u64 is one


def _exact(data: bytes, size: int, name: str) -> None:
    if len(data) != size:
        raise DecodeError(f"{name}: {len(data)} bytes, expected {size}")


@dataclass(frozen=True, slots=True)
class ChannelAmount:
    """4101: the capacity of the channel announced just before."""

    satoshis: int

    @classmethod
    def from_bytes(cls, data: bytes) -> ChannelAmount:
        _exact(data, 10, "channel_amount")
        return cls(int.from_bytes(data[2:10], "big"))

    def to_json(self) -> dict[str, Any]:
        return {"satoshis": self.satoshis}


@dataclass(frozen=True, slots=True)
class DeleteChan:
    """4103: the channel is forgotten (72 blocks after its funding output was spent)."""

    scid: ShortChannelId

    @classmethod
    def from_bytes(cls, data: bytes) -> DeleteChan:
        _exact(data, 10, "delete_chan")
        return cls(_scid(data, 2))

    def to_json(self) -> dict[str, Any]:
        return {"scid": str(self.scid)}


@dataclass(frozen=True, slots=True)
class Ended:
    """4105: this file was replaced; ``equivalent_offset`` is where to continue in the new one."""

    equivalent_offset: int
    uuid: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Ended:
        _exact(data, 42, "ended")
        return cls(int.from_bytes(data[2:10], "big"), bytes(data[10:42]))

    def to_json(self) -> dict[str, Any]:
        return {"equivalent_offset": self.equivalent_offset, "uuid": self.uuid.hex()}


@dataclass(frozen=True, slots=True)
class ChanDying:
    """4106: the channel's funding output is spent; it is deleted at ``blockheight``."""

    scid: ShortChannelId
    blockheight: int

    @classmethod
    def from_bytes(cls, data: bytes) -> ChanDying:
        _exact(data, 14, "chan_dying")
        return cls(_scid(data, 2), int.from_bytes(data[10:14], "big"))

    def to_json(self) -> dict[str, Any]:
        return {"scid": str(self.scid), "blockheight": self.blockheight}


@dataclass(frozen=True, slots=True)
class StoreUuid:
    """4107: the file's identity (always the first record)."""

    uuid: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> StoreUuid:
        _exact(data, 34, "uuid")
        return cls(bytes(data[2:34]))

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid.hex()}


def _inner(data: bytes, off: int, name: str) -> bytes:
    if len(data) < off + 2:
        raise DecodeError(f"{name}: truncated")
    n = data[off] << 8 | data[off + 1]
    _exact(data, off + 2 + n, name)
    return bytes(data[off + 2 :])


@dataclass(frozen=True, slots=True)
class PrivateChannelObs:
    """4104 (obsolete): a private channel, as a channel_announcement with zeroed signatures."""

    satoshis: int
    announcement: gossip.ChannelAnnouncement

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateChannelObs:
        name = "private_channel_obs"
        if len(data) < 10:
            raise DecodeError(f"{name}: truncated")
        return cls(int.from_bytes(data[2:10], "big"), gossip.ChannelAnnouncement.from_bytes(_inner(data, 10, name)))

    def to_json(self) -> dict[str, Any]:
        return {"satoshis": self.satoshis, "announcement": self.announcement.to_json()}


@dataclass(frozen=True, slots=True)
class PrivateUpdateObs:
    """4102 (obsolete): a channel_update of a private channel."""

    update: gossip.ChannelUpdate

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateUpdateObs:
        return cls(gossip.ChannelUpdate.from_bytes(_inner(data, 2, "private_update_obs")))

    def to_json(self) -> dict[str, Any]:
        return {"update": self.update.to_json()}


@dataclass(frozen=True, slots=True)
class UnknownRecord:
    """A record type this reader does not know (a later minor version may add some)."""

    type: int
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        return {"payload": self.payload.hex()}


_DECODERS = {
    gossip.CHANNEL_ANNOUNCEMENT: gossip.ChannelAnnouncement.from_bytes,
    gossip.NODE_ANNOUNCEMENT: gossip.NodeAnnouncement.from_bytes,
    gossip.CHANNEL_UPDATE: gossip.ChannelUpdate.from_bytes,
    CHANNEL_AMOUNT: ChannelAmount.from_bytes,
    PRIVATE_UPDATE_OBS: PrivateUpdateObs.from_bytes,
    DELETE_CHAN: DeleteChan.from_bytes,
    PRIVATE_CHANNEL_OBS: PrivateChannelObs.from_bytes,
    ENDED: Ended.from_bytes,
    CHAN_DYING: ChanDying.from_bytes,
    UUID: StoreUuid.from_bytes,
}


def decode_record(record: Record):
    """The record's message as its dataclass (UnknownRecord for a type not listed above).
    Raises GossipStoreError (a DecodeError) with the record's offset."""
    dec = _DECODERS.get(record.type)
    if dec is None:
        return UnknownRecord(record.type, record.message[2:])
    try:
        return dec(record.message)
    except DecodeError as e:
        raise GossipStoreError(record.offset, str(e)) from None


# --------------------------------------------------------------------------- graph


def load_graph(source: BinaryIO | bytes | Iterable[Record], *, verify: bool = True) -> gossip.Graph:
    """The graph the store's live records describe, as CLN's ``listchannels``/``listnodes``
    show it: deleted records skipped; dying ones kept and marked; 4103 removes a channel.
    With ``verify``, a message whose signature does not verify is ignored (BOLT 7)."""
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        records: Iterable[Record] = StoreReader(source)
    else:
        records = source
    graph = gossip.Graph()
    last_announced: ShortChannelId | None = None
    for rec in records:
        if rec.flags & DELETED:
            continue
        t = rec.type
        if t == gossip.CHANNEL_UPDATE:
            upd = decode_record(rec)
            if verify:
                ch = graph.channels.get(upd.short_channel_id)
                if ch is None or not gossip.verify_channel_update(upd, gossip.update_signer(ch.announcement, upd)):
                    continue
            graph.apply_update(upd, dying=rec.dying)
        elif t == gossip.CHANNEL_ANNOUNCEMENT:
            ann = decode_record(rec)
            last_announced = None
            if verify and not gossip.verify_channel_announcement(ann):
                continue
            if graph.add_channel(ann, None, dying=rec.dying):
                last_announced = ann.short_channel_id
        elif t == CHANNEL_AMOUNT:
            amt = decode_record(rec)
            if last_announced is not None:
                graph.set_amount(last_announced, amt.satoshis)
            last_announced = None
        elif t == gossip.NODE_ANNOUNCEMENT:
            na = decode_record(rec)
            if verify and not gossip.verify_node_announcement(na):
                continue
            graph.apply_node_announcement(na, dying=rec.dying)
        elif t == CHAN_DYING:
            graph.mark_dying(decode_record(rec).scid)
        elif t == DELETE_CHAN:
            graph.remove_channel(decode_record(rec).scid)
        else:
            decode_record(rec)  # checked, not applied (uuid, ended, obsolete private records)
    return graph


_ANN_TAIL = struct.Struct(">32sQ33s33s")
_UPDATE_FIELDS = struct.Struct(">QIBBHQIIQ")  # scid .. htlc_maximum_msat, after signature and chain_hash


def load_routing_graph(source: BinaryIO | bytes | Iterable[Record], *, verify_crc: bool = True):
    """The :class:`~lncli.proto.route_graph.RoutingGraph` of the store's live records: what
    :func:`load_graph` then :func:`~lncli.proto.route_graph.from_graph` give, without building
    a message object per record. Dying and deleted channels are left out; signatures are not
    checked (CLN checked them before writing; use ``load_graph(verify=True)`` to re-check)."""
    from lncli.proto.route_graph import GraphBuilder

    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        records: Iterable[Record] = StoreReader(source, verify_crc=verify_crc)
    else:
        records = source
    b = GraphBuilder()
    dying: set[int] = set()
    last: int | None = None
    ann_unpack, upd_unpack = _ANN_TAIL.unpack_from, _UPDATE_FIELDS.unpack_from
    for rec in records:
        flags = rec.flags
        if flags & DELETED:
            continue
        m = rec.message
        t = m[0] << 8 | m[1]
        if t == gossip.CHANNEL_UPDATE:
            if len(m) < 130:
                raise GossipStoreError(rec.offset, "channel_update: truncated")
            scid, ts, _mflags, cflags, cltv, hmin, base, ppm, hmax = upd_unpack(m, 98)
            if flags & DYING:
                dying.add(scid)
            b.update(scid, cflags & 1, ts, bool(cflags & 2), base, ppm, cltv, hmin, hmax)
        elif t == gossip.CHANNEL_ANNOUNCEMENT:
            flen = int.from_bytes(m[258:260], "big") if len(m) >= 260 else -1
            if flen < 0 or len(m) < 260 + flen + 106:
                raise GossipStoreError(rec.offset, "channel_announcement: truncated")
            _chain, scid, n1, n2 = ann_unpack(m, 260 + flen)
            b.add_channel(scid, n1, n2, None)
            if flags & DYING:
                dying.add(scid)
            last = scid
            continue
        elif t == CHANNEL_AMOUNT:
            if last is not None and len(m) >= 10:
                b.set_capacity(last, int.from_bytes(m[2:10], "big") * 1000)
        elif t == CHAN_DYING or t == DELETE_CHAN:
            if len(m) >= 10:
                dying.add(int.from_bytes(m[2:10], "big"))  # both end the channel for routing
        last = None
    for scid in dying:
        b.remove(scid)
    return b.build()


# --------------------------------------------------------------------------- dump and summary


class _Verifier:
    """Signature checks along a store: remembers each announcement's node ids (deleted ones
    too) so that channel_updates can be checked against the right key."""

    def __init__(self) -> None:
        self.node_ids: dict[ShortChannelId, gossip.ChannelAnnouncement] = {}

    def check(self, msg) -> tuple[bool | None, list[str]]:
        """(all valid, or None if no key is known; the names of the invalid signatures)."""
        if isinstance(msg, gossip.ChannelUpdate):
            ann = self.node_ids.get(msg.short_channel_id)
            if ann is None:
                return None, []
            ok = gossip.verify_channel_update(msg, gossip.update_signer(ann, msg))
            return ok, [] if ok else ["signature"]
        if isinstance(msg, gossip.ChannelAnnouncement):
            self.node_ids.setdefault(msg.short_channel_id, msg)
            bad = [k for k, v in msg.signatures().items() if not v]
            return not bad, bad
        if isinstance(msg, gossip.NodeAnnouncement):
            ok = gossip.verify_node_announcement(msg)
            return ok, [] if ok else ["signature"]
        return None, []

    def remember(self, msg) -> None:
        if isinstance(msg, gossip.ChannelAnnouncement):
            self.node_ids.setdefault(msg.short_channel_id, msg)


_SIGNED = (gossip.ChannelAnnouncement, gossip.NodeAnnouncement, gossip.ChannelUpdate)
_SIGNED_TYPES = frozenset((gossip.CHANNEL_ANNOUNCEMENT, gossip.NODE_ANNOUNCEMENT, gossip.CHANNEL_UPDATE))


def dump_records(
    source: BinaryIO | bytes, *, include_deleted: bool = False, verify: bool = True
) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per record: offset, flags, type, timestamp, the decoded message,
    its BOLT 7 ``problems`` and (with ``verify``) ``signatures_valid``."""
    v = _Verifier()
    amounts: dict[ShortChannelId, int] = {}
    last_scid: ShortChannelId | None = None
    for rec in iter_records(source):
        msg = decode_record(rec)
        if isinstance(msg, ChannelAmount) and last_scid is not None:
            amounts[last_scid] = msg.satoshis
        last_scid = msg.short_channel_id if isinstance(msg, gossip.ChannelAnnouncement) else None
        if rec.flags & DELETED and not include_deleted:
            v.remember(msg)
            continue
        out: dict[str, Any] = {
            "offset": rec.offset,
            "flags": rec.flag_names,
            "type": rec.type_name,
            "timestamp": rec.timestamp,
            "message": msg.to_json(),
        }
        if isinstance(msg, UnknownRecord):
            out["type_number"] = msg.type
        if isinstance(msg, _SIGNED):
            if isinstance(msg, gossip.ChannelUpdate):
                cap = amounts.get(msg.short_channel_id)
                out["problems"] = list(msg.problems(None if cap is None else cap * 1000))
            else:
                out["problems"] = list(msg.problems())
            if verify:
                ok, bad = v.check(msg)
                out["signatures_valid"] = ok
                if bad:
                    out["invalid_signatures"] = bad
            else:
                v.remember(msg)
        yield out


def summarize(source: BinaryIO | bytes, *, verify: bool = True) -> dict[str, Any]:
    """Counts for the whole store: records by type, live/deleted/dying, signatures, and the
    graph (channels, directions, nodes, total capacity of the live channels). With ``verify``,
    messages whose signatures fail are counted and left out of the graph."""
    reader = StoreReader(source)
    by_type: dict[str, int] = {}
    counts = {"live": 0, "deleted": 0, "dying": 0, "valid": 0, "invalid": 0, "unchecked": 0}
    v = _Verifier()

    def walk() -> Iterator[Record]:
        for rec in reader:
            name = rec.type_name
            by_type[name] = by_type.get(name, 0) + 1
            counts["deleted" if rec.flags & DELETED else "live"] += 1
            if rec.flags & DYING:
                counts["dying"] += 1
            if verify and rec.type in _SIGNED_TYPES:
                ok, _ = v.check(decode_record(rec))
                counts["unchecked" if ok is None else "valid" if ok else "invalid"] += 1
                if ok is False:
                    continue
            yield rec

    graph = load_graph(walk(), verify=False)
    channels = list(graph.channels.values())
    nodes = graph.nodes
    out: dict[str, Any] = {
        "version": {"major": reader.major, "minor": reader.minor},
        "records": counts["live"] + counts["deleted"],
        "by_type": by_type,
        "live": counts["live"],
        "deleted": counts["deleted"],
        "dying": counts["dying"],
        "channels": len(channels),
        "dying_channels": sum(1 for c in channels if c.dying),
        "directions": sum(1 for c in channels for u in c.updates if u is not None),
        "disabled_directions": sum(1 for c in channels for u in c.updates if u is not None and u.disabled),
        "nodes": len(nodes),
        "announced_nodes": sum(1 for n in nodes.values() if n.announcement is not None),
        "total_capacity_sat": sum(c.amount_sat or 0 for c in channels),
    }
    if verify:
        out["signatures"] = {k: counts[k] for k in ("valid", "invalid", "unchecked")}
    return out
