"""Channel identifiers: BOLT 7 ``short_channel_id`` and BOLT 2 ``channel_id``.

``short_channel_id`` (BOLT 7, "Definition of short_channel_id"): 8 bytes, big-endian; the
upper 3 bytes are the funding tx's block height, the next 3 its index in the block, the lower
2 the funding output index. Text form ``BLOCKxTXxOUTPUT`` (e.g. ``539268x845x1``); older CLN
and LND's logs use ``BLOCK:TX:OUTPUT``, which :meth:`ShortChannelId.from_str` accepts too.
LND's RPC ``chan_id`` is the same 64-bit value printed in decimal (:meth:`ShortChannelId.parse`).

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
from dataclasses import dataclass

from lncli.errors import DecodeError

__all__ = [
    "ShortChannelId",
    "channel_id",
    "channel_id_from_outpoint",
    "parse_outpoint",
]

_BLOCK_LIMIT = 1 << 24
_TX_LIMIT = 1 << 24
_OUTPUT_LIMIT = 1 << 16

# ASCII digits only (str.isdigit/int() would accept other scripts' digits, "_" and spaces).
_SCID_RE = re.compile(r"([0-9]{1,10})([x:])([0-9]{1,10})\2([0-9]{1,10})", re.ASCII)
_U64_RE = re.compile(r"[0-9]{1,20}", re.ASCII)
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_VOUT_RE = re.compile(r"[0-9]{1,10}", re.ASCII)


@dataclass(frozen=True, slots=True, order=True)
class ShortChannelId:
    """BOLT 7 ``short_channel_id``: funding block height, tx index in block, output index."""

    block: int
    txindex: int
    output: int

    def __post_init__(self) -> None:
        for value, name, limit in (
            (self.block, "block height", _BLOCK_LIMIT),
            (self.txindex, "transaction index", _TX_LIMIT),
            (self.output, "output index", _OUTPUT_LIMIT),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
                raise DecodeError(f"short_channel_id {name} {value!r} is out of range (0 to {limit - 1})")

    @classmethod
    def from_int(cls, value: int) -> ShortChannelId:
        """From the 64-bit integer (block << 40 | txindex << 16 | output)."""
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise DecodeError(f"short_channel_id {value!r} is not a 64-bit unsigned integer")
        return cls(value >> 40, (value >> 16) & 0xFFFFFF, value & 0xFFFF)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShortChannelId:
        """From the 8-byte big-endian wire encoding."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != 8:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise DecodeError(f"short_channel_id must be 8 bytes, got {size}")
        return cls.from_int(int.from_bytes(data, "big"))

    @classmethod
    def from_str(cls, text: str) -> ShortChannelId:
        """From ``BLOCKxTXxOUTPUT`` (BOLT 7) or ``BLOCK:TX:OUTPUT`` (same separator twice)."""
        if not isinstance(text, str):
            raise DecodeError("short_channel_id must be text")
        m = _SCID_RE.fullmatch(text)
        if m is None:
            raise DecodeError(f"{text!r} is not a short_channel_id (expected BLOCKxTXxOUTPUT, e.g. 539268x845x1)")
        return cls(int(m.group(1)), int(m.group(3)), int(m.group(4)))

    @classmethod
    def parse(cls, text: str) -> ShortChannelId:
        """Any common text form: ``BxTxO``, ``B:T:O``, or the decimal u64 (LND's ``chan_id``)."""
        if isinstance(text, str) and _U64_RE.fullmatch(text):
            return cls.from_int(int(text))
        return cls.from_str(text)

    def to_int(self) -> int:
        return self.block << 40 | self.txindex << 16 | self.output

    def to_bytes(self) -> bytes:
        return self.to_int().to_bytes(8, "big")

    def __str__(self) -> str:
        return f"{self.block}x{self.txindex}x{self.output}"


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
        raise DecodeError(f"{txid_hex!r} is not a txid (expected 64 hex characters)")
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
        raise DecodeError(f"{text!r} is not an outpoint (expected TXID:VOUT)")
    txid = _txid_from_display(txid_hex)
    if not _VOUT_RE.fullmatch(vout_text):
        raise DecodeError(f"{vout_text!r} is not an output index (expected a decimal number)")
    vout = int(vout_text)
    if vout > 0xFFFFFFFF:
        raise DecodeError(f"output index {vout} does not fit 32 bits")
    return txid, vout
