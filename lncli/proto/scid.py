"""Channel identifiers: BOLT 7 ``short_channel_id`` and BOLT 2 ``channel_id``.

``short_channel_id`` (BOLT 7, "Definition of short_channel_id"): 8 bytes, big-endian; the
upper 3 bytes are the funding tx's block height, the next 3 its index in the block, the lower
2 the funding output index. Text form ``BLOCKxTXxOUTPUT`` (e.g. ``539268x845x1``); older CLN
and LND's logs use ``BLOCK:TX:OUTPUT``, which :meth:`ShortChannelId.from_str` accepts too.
LND's RPC ``chan_id`` is the same 64-bit value printed in decimal (:meth:`ShortChannelId.parse`).
:class:`ShortChannelId` is an ``int`` holding that u64, the one type for every use: the wire
codec (:mod:`lncli.proto.wire`), gossip and the stores hash, compare and pack it as the integer.

:func:`parse_channel_ref` is the one parser of a channel reference a user writes (a channel_id,
a short_channel_id in any form, a funding outpoint, a peer node id); the callers match its
result against their own channels (:func:`lncli.channel.reference.match_channel`).

``channel_id`` (BOLT 2, "Definition of channel_id"): the funding txid XOR the funding output
index, "big-endian exclusive-OR", i.e. the 16-bit index alters the *last 2 bytes* of the
32-byte txid. (This is the v1 channel_id; channels opened with the v2 "dual-funding" protocol
use ``SHA256(lesser revocation_basepoint || greater revocation_basepoint)`` instead, which this
module does not compute.)

Byte order, the conclusion: the 32 bytes are the txid in *internal* byte order, the order in
which it appears inside a serialized transaction's outpoint (and in the wire's ``funding_txid``
field of ``funding_created``). Block explorers and bitcoind show the txid byte-reversed, so in
display terms the output index alters the *first* 2 bytes of the shown hex. Facts checked:
CLN's ``derive_channel_id`` copies its ``bitcoin_txid`` (a double-SHA256 held in internal order)
and XORs bytes 30 and 31; LND's ``NewChanIDFromOutPoint`` copies the ``chainhash.Hash`` (internal
order) and XORs bytes 30 and 31; Eclair's ``toLongId`` takes the ``fundingTxHash`` (internal
order, as opposed to its reversed ``TxId``) and XORs bytes 30 and 31. A published CLN
``listpeers`` output agrees: funding_txid ``fa709f9a...1edb56b7``, output 1, has channel_id
``b756db1e...9a9f70fb`` (the reversed txid with its last byte XOR 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from lncli.errors import DecodeError

__all__ = [
    "ChannelRef",
    "ShortChannelId",
    "channel_id",
    "channel_id_from_outpoint",
    "parse_channel_ref",
    "parse_outpoint",
]

_BLOCK_LIMIT = 1 << 24
_TX_LIMIT = 1 << 24
_OUTPUT_LIMIT = 1 << 16

# ASCII digits only (str.isdigit/int() would accept other scripts' digits, "_" and spaces).
_SCID_RE = re.compile(r"([0-9]{1,10})([x:])([0-9]{1,10})\2([0-9]{1,10})", re.ASCII)
_U64_RE = re.compile(r"[0-9]{1,20}", re.ASCII)
_HEX_U64_RE = re.compile(r"0[xX][0-9a-fA-F]{1,16}", re.ASCII)
_HEX66_RE = re.compile(r"[0-9a-fA-F]{66}", re.ASCII)
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_VOUT_RE = re.compile(r"[0-9]{1,10}", re.ASCII)

_QUOTE_LIMIT = 40


def _quote(value) -> str:
    """``repr(value)``, cut to its first 40 characters and an ellipsis when longer: an error
    message quotes a short prefix of a bad input, not all of it."""
    if isinstance(value, str) and len(value) > _QUOTE_LIMIT:
        return repr(value[:_QUOTE_LIMIT]) + "…"
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT + 2 else text[:_QUOTE_LIMIT] + "…"


class ShortChannelId(int):
    """BOLT 7 ``short_channel_id``: the u64 ``block << 40 | txindex << 16 | output``.

    An immutable ``int`` (so it hashes, compares and packs as its u64 on the wire and gossip
    hot paths) that prints as ``BLOCKxTXxOUTPUT``. ``ShortChannelId(block, txindex, output)``
    builds one from its parts, ``ShortChannelId(u64)`` from the integer, ``ShortChannelId(text)``
    parses any text form (:meth:`parse`)."""

    __slots__ = ()

    def __new__(cls, *args):
        if len(args) == 3:
            return cls.from_parts(*args)
        if len(args) == 1:
            value = args[0]
            if type(value) is cls:
                return value
            if isinstance(value, str):
                return cls.parse(value)
            return cls.from_int(value)
        if not args:
            return int.__new__(cls, 0)
        raise TypeError(f"ShortChannelId takes 1 or 3 arguments, got {len(args)}")

    @classmethod
    def from_parts(cls, block: int, txindex: int, output: int) -> ShortChannelId:
        """From the funding block height, tx index in the block and output index."""
        for value, name, limit in (
            (block, "block height", _BLOCK_LIMIT),
            (txindex, "transaction index", _TX_LIMIT),
            (output, "output index", _OUTPUT_LIMIT),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
                raise DecodeError(f"short_channel_id {name} {_quote(value)} is out of range (0 to {limit - 1})")
        return int.__new__(cls, block << 40 | txindex << 16 | output)

    @classmethod
    def from_int(cls, value: int) -> ShortChannelId:
        """From the 64-bit integer (block << 40 | txindex << 16 | output)."""
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise DecodeError(f"short_channel_id {_quote(value)} is not a 64-bit unsigned integer")
        return int.__new__(cls, value)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShortChannelId:  # type: ignore[override]
        """From the 8-byte big-endian wire encoding."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != 8:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise DecodeError(f"short_channel_id must be 8 bytes, got {size}")
        return int.__new__(cls, int.from_bytes(data, "big"))

    @classmethod
    def from_str(cls, text: str) -> ShortChannelId:
        """From ``BLOCKxTXxOUTPUT`` (BOLT 7) or ``BLOCK:TX:OUTPUT`` (same separator twice)."""
        if not isinstance(text, str):
            raise DecodeError("short_channel_id must be text")
        m = _SCID_RE.fullmatch(text)
        if m is None:
            raise DecodeError(f"{_quote(text)} is not a short_channel_id (expected BLOCKxTXxOUTPUT, e.g. 539268x845x1)")
        return cls.from_parts(int(m.group(1)), int(m.group(3)), int(m.group(4)))

    @classmethod
    def parse(cls, text: str) -> ShortChannelId:
        """Any common text form: ``BxTxO``, ``B:T:O``, the decimal u64 (LND's ``chan_id``, at most
        20 digits) or ``0x`` and at most 16 hex digits."""
        if isinstance(text, str):
            if _U64_RE.fullmatch(text):
                return cls.from_int(int(text))
            if _HEX_U64_RE.fullmatch(text):
                return int.__new__(cls, int(text[2:], 16))
        return cls.from_str(text)

    @property
    def block(self) -> int:
        return int(self) >> 40

    @property
    def txindex(self) -> int:
        return (int(self) >> 16) & 0xFFFFFF

    @property
    def output(self) -> int:
        return int(self) & 0xFFFF

    def to_int(self) -> int:
        return int(self)

    def to_bytes(self, length: int = 8, byteorder: str = "big", *, signed: bool = False) -> bytes:  # type: ignore[override]
        return int.to_bytes(self, length, byteorder, signed=signed)

    def __str__(self) -> str:
        v = int(self)
        return f"{v >> 40}x{(v >> 16) & 0xFFFFFF}x{v & 0xFFFF}"

    def __repr__(self) -> str:
        return f"ShortChannelId('{self}')"


def channel_id(funding_txid: bytes, funding_output_index: int) -> bytes:
    """BOLT 2 ``channel_id``: ``funding_txid`` (32 bytes, *internal* byte order, as in the
    transaction) with its last 2 bytes XORed with ``funding_output_index`` big-endian."""
    if not isinstance(funding_txid, (bytes, bytearray)) or len(funding_txid) != 32:
        raise DecodeError("funding_txid must be 32 bytes")
    if (
        not isinstance(funding_output_index, int)
        or isinstance(funding_output_index, bool)
        or not 0 <= funding_output_index < _OUTPUT_LIMIT
    ):
        raise DecodeError(
            f"funding_output_index {funding_output_index!r} does not fit the 16 bits a channel_id allows"
        )
    cid = bytearray(funding_txid)
    cid[30] ^= funding_output_index >> 8
    cid[31] ^= funding_output_index & 0xFF
    return bytes(cid)


def _txid_from_display(txid_hex: str) -> bytes:
    if not isinstance(txid_hex, str) or not _HEX64_RE.fullmatch(txid_hex):
        raise DecodeError(f"{_quote(txid_hex)} is not a txid (expected 64 hex characters)")
    return bytes.fromhex(txid_hex)[::-1]


def channel_id_from_outpoint(txid_hex_display: str, vout: int) -> bytes:
    """``channel_id`` from a txid as bitcoind/explorers display it (byte-reversed hex) and a vout."""
    return channel_id(_txid_from_display(txid_hex_display), vout)


def parse_outpoint(text: str) -> tuple[bytes, int]:
    """Parse ``TXID:VOUT`` (displayed txid hex) into ``(txid in internal byte order, vout)``."""
    if not isinstance(text, str):
        raise DecodeError("outpoint must be text")
    txid_hex, sep, vout_text = text.partition(":")
    if not sep:
        raise DecodeError(f"{_quote(text)} is not an outpoint (expected TXID:VOUT)")
    txid = _txid_from_display(txid_hex)
    if not _VOUT_RE.fullmatch(vout_text):
        raise DecodeError(f"{_quote(vout_text)} is not an output index (expected a decimal number)")
    vout = int(vout_text)
    if vout > 0xFFFFFFFF:
        raise DecodeError(f"output index {vout} does not fit 32 bits")
    return txid, vout


# --------------------------------------------------------------------------- a user's reference

RefKind = Literal["channel_id", "short_channel_id", "outpoint", "node_id"]
REF_KINDS: tuple[RefKind, ...] = ("channel_id", "short_channel_id", "outpoint", "node_id")
_KIND_TEXT = {
    "channel_id": "a channel_id (64 hex)",
    "short_channel_id": "a short_channel_id (BLOCKxTXxOUT, u64 or 0x-hex)",
    "outpoint": "a funding outpoint TXID:VOUT",
    "node_id": "a peer node id (66 hex)",
}


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """What a user's channel reference names. ``value`` by ``kind``: ``channel_id`` the 32
    bytes; ``short_channel_id`` a :class:`ShortChannelId`; ``outpoint`` ``(txid in internal
    byte order, vout)``; ``node_id`` the 33 bytes."""

    kind: RefKind
    value: bytes | ShortChannelId | tuple[bytes, int]
    text: str  # as given, stripped and lower-cased


def parse_channel_ref(text: str, kinds: Iterable[RefKind] = REF_KINDS) -> ChannelRef:
    """The one parser of a channel reference a user writes: a channel_id (64 hex), a funding
    outpoint ``TXID:VOUT`` (displayed txid), a peer node id (66 hex), or a short_channel_id in
    any form :meth:`ShortChannelId.parse` takes (case-insensitive here). ``kinds``: those the
    caller accepts; any other is refused naming them. DecodeError if it is none of them."""
    kinds = tuple(kinds)
    if not isinstance(text, str):
        raise DecodeError("a channel reference must be text")
    low = text.strip().lower()
    ref: ChannelRef | None = None
    if _HEX64_RE.fullmatch(low):
        ref = ChannelRef("channel_id", bytes.fromhex(low), low)
    elif _HEX66_RE.fullmatch(low):
        ref = ChannelRef("node_id", bytes.fromhex(low), low)
    elif ":" in low and len(low.partition(":")[0]) == 64:
        ref = ChannelRef("outpoint", parse_outpoint(low), low)
    elif _SCID_RE.fullmatch(low) or _U64_RE.fullmatch(low) or _HEX_U64_RE.fullmatch(low):
        ref = ChannelRef("short_channel_id", ShortChannelId.parse(low), low)
    if ref is None or ref.kind not in kinds:
        accepted = [_KIND_TEXT[k] for k in kinds]
        listed = ", ".join(accepted[:-1]) + " or " + accepted[-1] if len(accepted) > 1 else accepted[0]
        raise DecodeError(f"{_quote(text.strip())} is not {listed}")
    return ref
