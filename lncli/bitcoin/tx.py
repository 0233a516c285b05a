"""Bitcoin transactions: serialization (BIP 144 segwit format), ids, weight and fees.

Everything here is an immutable value. Lists are tuples, so a ``Transaction`` is hashable and
``dataclasses.replace`` (or the ``with_*`` helpers) gives modified copies.

Byte orders: ``OutPoint.txid`` and ``Transaction.txid()`` are in *internal* order (the order in
which they are hashed and serialized). ``txid_hex()`` and ``OutPoint.txid_hex`` are in *display*
order (reversed), the order block explorers and bitcoind RPC use.

Fee rates: Lightning (BOLT 3) counts fees in satoshi per 1000 weight units (``feerate_per_kw``),
on-chain wallets in satoshi per virtual byte. 1 sat/vB = 250 sat/kw.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Union

from lncli.errors import DecodeError

if TYPE_CHECKING:  # decimal/fractions cost milliseconds at CLI start-up: import them lazily
    from decimal import Decimal
    from fractions import Fraction

__all__ = [
    "OutPoint",
    "TxIn",
    "TxOut",
    "Transaction",
    "sha256d",
    "encode_compact_size",
    "decode_compact_size",
    "SEQUENCE_FINAL",
    "COINBASE_VOUT",
    "WITNESS_SCALE_FACTOR",
    "FEERATE_FLOOR_PER_KW",
    "fee_for_weight",
    "fee_for_vsize",
    "relay_fee_for",
    "sat_per_vbyte_to_per_kw",
    "per_kw_to_sat_per_vbyte",
    "feerate_per_kw",
    "feerate_sat_per_vbyte",
]

SEQUENCE_FINAL = 0xFFFFFFFF
COINBASE_VOUT = 0xFFFFFFFF
WITNESS_SCALE_FACTOR = 4
#: Bitcoin Core's minimum relay fee, 1 sat/vB, is 250 sat/kw; BOLT 2 uses 253 to round safely.
FEERATE_FLOOR_PER_KW = 253
MAX_MONEY = 21_000_000 * 100_000_000

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_OUTPOINT = struct.Struct("<32sI")
#: an input with an empty script_sig (every segwit input): outpoint, 0x00, sequence
_TXIN_EMPTY = struct.Struct("<32sIBI")
#: value and a one-byte compact size (scripts shorter than 0xfd bytes)
_TXOUT_HEAD = struct.Struct("<QB")
_NULL_TXID = bytes(32)


class _cached:
    """``functools.cached_property`` without its lock (Python 3.11 takes one on every first
    access, which costs more than the serializations cached here). The value is computed once
    and stored in the instance ``__dict__`` under the same name, which then shadows this
    non-data descriptor; a racing thread at worst computes the same value twice."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


def sha256d(data: bytes) -> bytes:
    """Double SHA-256, the hash of txids, sighashes and base58 checksums."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# ---------------------------------------------------------------------------------------------
# Compact size ("varint" in the Bitcoin serialization)


def encode_compact_size(n: int) -> bytes:
    """Encode ``n`` (0 <= n < 2**64) as a Bitcoin compact size, always in its minimal form."""
    if n < 0xFD:
        if n < 0:
            raise ValueError(f"compact size cannot be negative: {n}")
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    if n <= 0xFFFFFFFFFFFFFFFF:
        return b"\xff" + n.to_bytes(8, "little")
    raise ValueError(f"compact size too large: {n}")


def decode_compact_size(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode a compact size at ``data[offset:]``; return ``(value, offset_after)``.

    Raises DecodeError on truncation or a non-minimal encoding (as bitcoind does).
    """
    try:
        first = data[offset]
    except IndexError:
        raise DecodeError(f"truncated compact size at byte {offset}") from None
    if first < 0xFD:
        return first, offset + 1
    size = 2 if first == 0xFD else 4 if first == 0xFE else 8
    end = offset + 1 + size
    if end > len(data):
        raise DecodeError(f"truncated compact size at byte {offset}")
    value = int.from_bytes(data[offset + 1 : end], "little")
    if value < (0xFD if size == 2 else 0x10000 if size == 4 else 0x100000000):
        raise DecodeError(f"non-minimal compact size {value} at byte {offset}")
    return value, end


def _var_bytes(b: bytes) -> bytes:
    return encode_compact_size(len(b)) + b


# ---------------------------------------------------------------------------------------------
# Building blocks


@dataclass(frozen=True)
class OutPoint:
    """A reference to a transaction output: ``txid`` (32 bytes, internal order) and ``vout``."""

    txid: bytes
    vout: int

    def __post_init__(self) -> None:
        if not isinstance(self.txid, bytes) or len(self.txid) != 32:
            raise ValueError("OutPoint.txid must be 32 bytes (internal byte order)")
        if not 0 <= self.vout <= 0xFFFFFFFF:
            raise ValueError(f"OutPoint.vout out of range: {self.vout}")

    @classmethod
    def from_txid_hex(cls, txid_hex: str, vout: int) -> OutPoint:
        """Build from a txid in display order (as printed by bitcoind and explorers)."""
        try:
            txid = bytes.fromhex(txid_hex)
        except ValueError:
            raise DecodeError(f"txid is not hex: {txid_hex!r}") from None
        if len(txid) != 32:
            raise DecodeError(f"txid must be 32 bytes, got {len(txid)}")
        if not 0 <= vout <= 0xFFFFFFFF:
            raise DecodeError(f"output index out of range: {vout}")
        return cls(txid[::-1], vout)

    @classmethod
    def from_str(cls, text: str) -> OutPoint:
        """Parse ``"<txid display hex>:<vout>"``."""
        txid_hex, sep, vout = text.strip().rpartition(":")
        if not sep or not vout.isdigit():
            raise DecodeError(f"outpoint must look like <txid>:<index>, got {text!r}")
        return cls.from_txid_hex(txid_hex, int(vout))

    @property
    def txid_hex(self) -> str:
        """The txid in display (reversed) order."""
        return self.txid[::-1].hex()

    def is_null(self) -> bool:
        """True for the coinbase 'null' prevout (zero txid, index 0xffffffff)."""
        return self.vout == COINBASE_VOUT and self.txid == _NULL_TXID

    def to_bytes(self) -> bytes:
        return _OUTPOINT.pack(self.txid, self.vout)

    def __str__(self) -> str:
        return f"{self.txid_hex}:{self.vout}"


@dataclass(frozen=True)
class TxIn:
    """A transaction input. ``witness`` is a tuple of stack items (empty for non-segwit)."""

    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    witness: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.witness, tuple):
            object.__setattr__(self, "witness", tuple(self.witness))
        if not 0 <= self.sequence <= 0xFFFFFFFF:
            raise ValueError(f"TxIn.sequence out of range: {self.sequence}")

    def with_witness(self, witness: Iterable[bytes]) -> TxIn:
        if type(self) is TxIn:  # what dataclasses.replace does, without its field introspection
            return TxIn(self.prevout, self.script_sig, self.sequence, tuple(witness))
        return replace(self, witness=tuple(witness))

    def to_bytes(self) -> bytes:
        """The input without its witness (witnesses are serialized after all outputs)."""
        if self.script_sig == b"":
            prevout = self.prevout
            return _TXIN_EMPTY.pack(prevout.txid, prevout.vout, 0, self.sequence)
        return self.prevout.to_bytes() + _var_bytes(self.script_sig) + _U32.pack(self.sequence)


@dataclass(frozen=True)
class TxOut:
    """A transaction output: ``value_sat`` and its ``script_pubkey``."""

    value_sat: int
    script_pubkey: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.value_sat <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"TxOut.value_sat out of range: {self.value_sat}")

    def to_bytes(self) -> bytes:
        script = self.script_pubkey
        if len(script) < 0xFD:
            return _TXOUT_HEAD.pack(self.value_sat, len(script)) + script
        return _U64.pack(self.value_sat) + _var_bytes(script)


@dataclass(frozen=True)
class Transaction:
    """A Bitcoin transaction.

    ``version`` and ``locktime`` are unsigned 32-bit values. ``inputs`` and ``outputs`` are
    tuples (lists given to the constructor are converted). Ids and serializations are computed
    once per instance and cached.
    """

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, tuple):
            object.__setattr__(self, "inputs", tuple(self.inputs))
        if not isinstance(self.outputs, tuple):
            object.__setattr__(self, "outputs", tuple(self.outputs))
        if not 0 <= self.version <= 0xFFFFFFFF:
            raise ValueError(f"Transaction.version out of range: {self.version}")
        if not 0 <= self.locktime <= 0xFFFFFFFF:
            raise ValueError(f"Transaction.locktime out of range: {self.locktime}")

    # -- serialization ---------------------------------------------------------------------

    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.inputs)

    @_cached
    def _inputs_bytes(self) -> bytes:
        """The inputs' count and serializations (no witnesses)."""
        inputs = self.inputs
        return encode_compact_size(len(inputs)) + b"".join([txin.to_bytes() for txin in inputs])

    @_cached
    def _outputs_bytes(self) -> bytes:
        """The outputs' serializations, without their count (what BIP 143 hashOutputs hashes)."""
        return b"".join([txout.to_bytes() for txout in self.outputs])

    @_cached
    def _legacy_bytes(self) -> bytes:
        return b"".join(
            (
                _U32.pack(self.version),
                self._inputs_bytes,
                encode_compact_size(len(self.outputs)),
                self._outputs_bytes,
                _U32.pack(self.locktime),
            )
        )

    @_cached
    def _witness_bytes(self) -> bytes:
        if not self.has_witness():
            return self._legacy_bytes
        parts = [
            _U32.pack(self.version),
            b"\x00\x01",
            self._inputs_bytes,
            encode_compact_size(len(self.outputs)),
            self._outputs_bytes,
        ]
        for txin in self.inputs:
            witness = txin.witness
            parts.append(encode_compact_size(len(witness)))
            for item in witness:
                n = len(item)
                parts.append(bytes((n,)) if n < 0xFD else encode_compact_size(n))
                parts.append(item)
        parts.append(_U32.pack(self.locktime))
        return b"".join(parts)

    def to_bytes(self, include_witness: bool = True) -> bytes:
        """Serialize. With witnesses present and ``include_witness``, the BIP 144 format
        (marker 0x00, flag 0x01); otherwise the legacy format (which the txid hashes)."""
        return self._witness_bytes if include_witness else self._legacy_bytes

    def to_hex(self, include_witness: bool = True) -> str:
        return self.to_bytes(include_witness).hex()

    @classmethod
    def from_hex(cls, text: str) -> Transaction:
        try:
            raw = bytes.fromhex(text.strip())
        except (ValueError, AttributeError):
            raise DecodeError("transaction is not valid hex") from None
        return cls.from_bytes(raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        """Parse a serialized transaction (legacy or BIP 144 segwit). Strict: trailing bytes,
        truncation, non-minimal compact sizes, unknown segwit flags, a witness flag with no
        witness data, and zero inputs all raise DecodeError."""
        data = bytes(data)
        n = len(data)
        if n < 10:
            raise DecodeError(f"transaction too short ({n} bytes)")
        version = _U32.unpack_from(data, 0)[0]
        pos = 4
        segwit = False
        if data[pos] == 0:
            flag = data[pos + 1]
            if flag != 1:
                if flag == 0:
                    raise DecodeError("transaction has no inputs")
                raise DecodeError(f"unknown segwit flag 0x{flag:02x} (expected 0x01)")
            segwit = True
            pos += 2

        n_in, pos = decode_compact_size(data, pos)
        if n_in == 0:
            raise DecodeError("transaction has no inputs")
        if n_in * 41 > n - pos:
            raise DecodeError(f"truncated transaction: {n_in} inputs do not fit")
        prevouts: list[tuple[OutPoint, bytes, int]] = []
        for i in range(n_in):
            if pos + 36 > n:
                raise DecodeError(f"truncated transaction in input {i}")
            txid, vout = _OUTPOINT.unpack_from(data, pos)
            pos += 36
            slen, pos = decode_compact_size(data, pos)
            end = pos + slen
            if end + 4 > n:
                raise DecodeError(f"truncated transaction in input {i} script_sig")
            script_sig = data[pos:end]
            sequence = _U32.unpack_from(data, end)[0]
            pos = end + 4
            prevouts.append((OutPoint(txid, vout), script_sig, sequence))

        n_out, pos = decode_compact_size(data, pos)
        if n_out * 9 > n - pos:
            raise DecodeError(f"truncated transaction: {n_out} outputs do not fit")
        outputs = []
        for i in range(n_out):
            if pos + 9 > n:
                raise DecodeError(f"truncated transaction in output {i}")
            value = _U64.unpack_from(data, pos)[0]
            slen, pos = decode_compact_size(data, pos + 8)
            end = pos + slen
            if end > n:
                raise DecodeError(f"truncated transaction in output {i} script_pubkey")
            outputs.append(TxOut(value, data[pos:end]))
            pos = end

        witnesses: list[tuple[bytes, ...]] = [()] * n_in
        if segwit:
            any_witness = False
            for i in range(n_in):
                n_items, pos = decode_compact_size(data, pos)
                if n_items > n - pos:
                    raise DecodeError(f"truncated transaction in witness {i}")
                items = []
                for _ in range(n_items):
                    ilen, pos = decode_compact_size(data, pos)
                    end = pos + ilen
                    if end > n:
                        raise DecodeError(f"truncated transaction in witness {i}")
                    items.append(data[pos:end])
                    pos = end
                if items:
                    any_witness = True
                witnesses[i] = tuple(items)
            if not any_witness:
                raise DecodeError("segwit marker present but every witness is empty")

        if pos + 4 > n:
            raise DecodeError("truncated transaction: missing locktime")
        locktime = _U32.unpack_from(data, pos)[0]
        pos += 4
        if pos != n:
            raise DecodeError(f"{n - pos} trailing bytes after the transaction")
        inputs = tuple(
            TxIn(prevout, script_sig, sequence, witnesses[i])
            for i, (prevout, script_sig, sequence) in enumerate(prevouts)
        )
        tx = cls(version, inputs, tuple(outputs), locktime)
        # the caller's bytes are the canonical encoding: seed the cache
        tx.__dict__["_witness_bytes" if segwit else "_legacy_bytes"] = data
        return tx

    # -- ids and sizes -------------------------------------------------------------------

    @_cached
    def _txid(self) -> bytes:
        return sha256d(self._legacy_bytes)

    def txid(self) -> bytes:
        """The txid in internal byte order (what an OutPoint holds)."""
        return self._txid

    def txid_hex(self) -> str:
        """The txid in display order (as bitcoind prints it)."""
        return self._txid[::-1].hex()

    def wtxid(self) -> bytes:
        """The BIP 141 wtxid (internal order); equals the txid when there is no witness."""
        return sha256d(self._witness_bytes)

    def outpoint(self, vout: int) -> OutPoint:
        """The OutPoint that spends this transaction's output ``vout``."""
        if not 0 <= vout < len(self.outputs):
            raise IndexError(f"transaction has no output {vout}")
        return OutPoint(self._txid, vout)

    def base_size(self) -> int:
        return len(self._legacy_bytes)

    def weight(self) -> int:
        """BIP 141 weight: base size * 3 + total size."""
        return len(self._legacy_bytes) * 3 + len(self._witness_bytes)

    def vsize(self) -> int:
        """Virtual size: weight / 4, rounded up."""
        return (self.weight() + 3) // 4

    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prevout.is_null()

    # -- values ------------------------------------------------------------------------------

    def output_value(self) -> int:
        return sum(o.value_sat for o in self.outputs)

    def fee(self, input_values_sat: Sequence[int]) -> int:
        """``sum(inputs) - sum(outputs)``, given the value of each spent output in input order."""
        if len(input_values_sat) != len(self.inputs):
            raise ValueError(
                f"need {len(self.inputs)} input values, got {len(input_values_sat)}"
            )
        return sum(input_values_sat) - self.output_value()

    # -- modified copies --------------------------------------------------------------------

    def _with_inputs(self, inputs: tuple[TxIn, ...], same_legacy: bool) -> Transaction:
        """A copy with ``inputs``; ``same_legacy``: they differ from ours in witnesses only, so
        the legacy serialization and the txid already computed carry over."""
        if type(self) is not Transaction:
            return replace(self, inputs=inputs)
        tx = Transaction(self.version, inputs, self.outputs, self.locktime)
        if same_legacy:
            mine, theirs = self.__dict__, tx.__dict__
            for name in _LEGACY_CACHES:
                if name in mine:
                    theirs[name] = mine[name]
        return tx

    def with_witness(self, input_index: int, witness: Iterable[bytes]) -> Transaction:
        """A copy with input ``input_index``'s witness set."""
        inputs = list(self.inputs)
        old = inputs[input_index]
        inputs[input_index] = new = old.with_witness(witness)
        return self._with_inputs(tuple(inputs), type(old) is TxIn and type(new) is TxIn)

    def with_witnesses(self, witnesses: Sequence[Iterable[bytes]]) -> Transaction:
        """A copy with every input's witness set (one entry per input)."""
        if len(witnesses) != len(self.inputs):
            raise ValueError(f"need {len(self.inputs)} witnesses, got {len(witnesses)}")
        inputs = tuple(txin.with_witness(w) for txin, w in zip(self.inputs, witnesses))
        return self._with_inputs(inputs, all(type(i) is TxIn for i in self.inputs + inputs))

    def with_script_sig(self, input_index: int, script_sig: bytes) -> Transaction:
        inputs = list(self.inputs)
        inputs[input_index] = replace(inputs[input_index], script_sig=script_sig)
        return replace(self, inputs=tuple(inputs))

    def without_witnesses(self) -> Transaction:
        return replace(self, inputs=tuple(replace(i, witness=()) for i in self.inputs))


#: cached values that depend on everything but the witnesses
_LEGACY_CACHES = ("_inputs_bytes", "_outputs_bytes", "_legacy_bytes", "_txid")


# ---------------------------------------------------------------------------------------------
# Fee rates

Rate = Union[int, float, "Decimal", "Fraction"]


def _exact(rate: Rate) -> int | Decimal | Fraction:
    # floats are taken at their shortest decimal repr (0.1 means 1/10, not 0.1000000000000000055)
    if isinstance(rate, float):
        from fractions import Fraction

        return Fraction(repr(rate))
    return rate


def fee_for_weight(weight: int, feerate_per_kw: int) -> int:
    """Fee for ``weight`` units at ``feerate_per_kw`` (sat per 1000 weight), rounded down
    as BOLT 3 does: ``feerate_per_kw * weight // 1000``."""
    return feerate_per_kw * weight // 1000


def relay_fee_for(tx: Transaction, feerate_per_kw: int) -> int:
    """Fee for an on-chain transaction of ours (sweeps, justice) at ``feerate_per_kw``, rounded up
    on its vsize, so its effective sat/vB (what bitcoind checks against relay fees) is never below
    the rate. BOLT 3 commitment fees use :func:`fee_for_weight` instead."""
    return -(-tx.vsize() * feerate_per_kw // 250)


def fee_for_vsize(vsize: int, sat_per_vbyte: Rate) -> int:
    """Fee for ``vsize`` virtual bytes at ``sat_per_vbyte``, rounded up (as bitcoind does)."""
    return math.ceil(_exact(sat_per_vbyte) * vsize)


def sat_per_vbyte_to_per_kw(sat_per_vbyte: Rate) -> int:
    """Convert sat/vB to sat per 1000 weight units (1 sat/vB = 250 sat/kw), rounded up."""
    return math.ceil(_exact(sat_per_vbyte) * 250)


def per_kw_to_sat_per_vbyte(feerate_per_kw: int) -> Fraction:
    """Convert sat per 1000 weight units to sat/vB, exactly (a Fraction; float() it to print)."""
    from fractions import Fraction

    return Fraction(feerate_per_kw, 250)


def feerate_per_kw(fee_sat: int, weight: int) -> int:
    """The fee rate in sat/kw that ``fee_sat`` pays for ``weight`` (rounded down)."""
    return fee_sat * 1000 // weight


def feerate_sat_per_vbyte(fee_sat: int, vsize: int) -> Fraction:
    """The fee rate in sat/vB that ``fee_sat`` pays for ``vsize``, exactly."""
    from fractions import Fraction

    return Fraction(fee_sat, vsize)

