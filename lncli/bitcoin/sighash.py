"""Signature hashes: BIP 143 (segwit v0) and the legacy (pre-segwit) algorithm.

``script_code`` arguments are the raw script bytes, *without* a length prefix:

- spending P2WSH: the witness script (from the last executed OP_CODESEPARATOR on, if any);
- spending P2WPKH: ``p2wpkh_script_code(pubkey_hash)``, i.e. the P2PKH script of the key hash.

For several signatures on one transaction, ``SighashCache(tx)`` computes hashPrevouts,
hashSequence and hashOutputs once and reuses them for every input.
"""

from __future__ import annotations

import hashlib
import struct

from lncli.bitcoin.script import OP_CODESEPARATOR, iter_script, p2pkh_script
from lncli.bitcoin.tx import Transaction, encode_compact_size

__all__ = [
    "SIGHASH_ALL",
    "SIGHASH_NONE",
    "SIGHASH_SINGLE",
    "SIGHASH_ANYONECANPAY",
    "SighashCache",
    "segwit_v0_sighash",
    "segwit_v0_preimage",
    "legacy_sighash",
    "p2wpkh_script_code",
]

SIGHASH_ALL = 0x01
SIGHASH_NONE = 0x02
SIGHASH_SINGLE = 0x03
SIGHASH_ANYONECANPAY = 0x80

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ZERO32 = bytes(32)
#: BIP 143 preimage, the part before scriptCode: nVersion, hashPrevouts, hashSequence, outpoint
_PREIMAGE_HEAD = struct.Struct("<I32s32s32sI")
#: ... and the part after it: amount, nSequence, hashOutputs, nLockTime, sighash type
_PREIMAGE_TAIL = struct.Struct("<QI32sII")
_sha256 = hashlib.sha256


def _sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def p2wpkh_script_code(pubkey_hash: bytes) -> bytes:
    """The BIP 143 scriptCode for spending a P2WPKH output (the P2PKH script of the hash)."""
    return p2pkh_script(pubkey_hash)


class SighashCache:
    """Per-transaction cache of the BIP 143 intermediate hashes.

    The transaction is immutable, so the cache stays valid for the object's lifetime.
    Witnesses do not affect any sighash, so one cache serves before and after signing.
    """

    __slots__ = ("tx", "_prevouts", "_sequence", "_outputs")

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._prevouts: bytes | None = None
        self._sequence: bytes | None = None
        self._outputs: bytes | None = None

    def hash_prevouts(self) -> bytes:
        if self._prevouts is None:
            self._prevouts = _sha256d(b"".join([i.prevout.to_bytes() for i in self.tx.inputs]))
        return self._prevouts

    def hash_sequence(self) -> bytes:
        if self._sequence is None:
            self._sequence = _sha256d(b"".join([_U32.pack(i.sequence) for i in self.tx.inputs]))
        return self._sequence

    def hash_outputs(self) -> bytes:
        if self._outputs is None:
            tx = self.tx
            # the outputs' serialization is shared with the txid's (cached on the Transaction)
            outputs = tx._outputs_bytes if type(tx) is Transaction else b"".join([o.to_bytes() for o in tx.outputs])
            self._outputs = _sha256d(outputs)
        return self._outputs

    def segwit_v0_preimage(
        self, input_index: int, script_code: bytes, amount_sat: int, sighash_type: int = SIGHASH_ALL
    ) -> bytes:
        """The BIP 143 message whose double SHA-256 is the signature hash."""
        tx = self.tx
        if not 0 <= input_index < len(tx.inputs):
            raise IndexError(f"input index {input_index} out of range ({len(tx.inputs)} inputs)")
        base = sighash_type & 0x1F
        anyone_can_pay = bool(sighash_type & SIGHASH_ANYONECANPAY)
        hash_prevouts = _ZERO32 if anyone_can_pay else self.hash_prevouts()
        if anyone_can_pay or base == SIGHASH_SINGLE or base == SIGHASH_NONE:
            hash_sequence = _ZERO32
        else:
            hash_sequence = self.hash_sequence()
        if base != SIGHASH_SINGLE and base != SIGHASH_NONE:
            hash_outputs = self.hash_outputs()
        elif base == SIGHASH_SINGLE and input_index < len(tx.outputs):
            hash_outputs = _sha256d(tx.outputs[input_index].to_bytes())
        else:
            hash_outputs = _ZERO32
        txin = tx.inputs[input_index]
        prevout = txin.prevout
        return b"".join(
            (
                _PREIMAGE_HEAD.pack(tx.version, hash_prevouts, hash_sequence, prevout.txid, prevout.vout),
                encode_compact_size(len(script_code)),
                script_code,
                _PREIMAGE_TAIL.pack(amount_sat, txin.sequence, hash_outputs, tx.locktime, sighash_type & 0xFFFFFFFF),
            )
        )

    def segwit_v0(
        self, input_index: int, script_code: bytes, amount_sat: int, sighash_type: int = SIGHASH_ALL
    ) -> bytes:
        """The BIP 143 signature hash (32 bytes, the message ECDSA signs)."""
        return _sha256d(self.segwit_v0_preimage(input_index, script_code, amount_sat, sighash_type))


def segwit_v0_sighash(
    tx: Transaction,
    input_index: int,
    script_code: bytes,
    amount_sat: int,
    sighash_type: int = SIGHASH_ALL,
) -> bytes:
    """BIP 143 signature hash for input ``input_index`` spending ``amount_sat`` under
    ``script_code``. For many inputs of one transaction, use ``SighashCache``."""
    return SighashCache(tx).segwit_v0(input_index, script_code, amount_sat, sighash_type)


def segwit_v0_preimage(
    tx: Transaction,
    input_index: int,
    script_code: bytes,
    amount_sat: int,
    sighash_type: int = SIGHASH_ALL,
) -> bytes:
    return SighashCache(tx).segwit_v0_preimage(input_index, script_code, amount_sat, sighash_type)


#: what the legacy algorithm "signs" for SIGHASH_SINGLE without a matching output (a known bug)
LEGACY_SIGHASH_SINGLE_BUG = (1).to_bytes(32, "little")


def _strip_codeseparators(script: bytes) -> bytes:
    if OP_CODESEPARATOR not in script:
        return script
    out = bytearray()
    start = 0
    for op, _data, end in iter_script(script):
        if op != OP_CODESEPARATOR:
            out += script[start:end]
        start = end
    return bytes(out)


def legacy_sighash(
    tx: Transaction, input_index: int, script_code: bytes, sighash_type: int = SIGHASH_ALL
) -> bytes:
    """The original (pre-segwit) signature hash, for P2PKH / P2SH / bare scripts.

    ``script_code`` is the script being executed (the previous output's script_pubkey, or the
    redeem script for P2SH), from the last executed OP_CODESEPARATOR on. OP_CODESEPARATORs are
    removed here; removing the signature itself (FindAndDelete) is left to the interpreter.
    SIGHASH_SINGLE with no matching output returns the historical value 1 (``0100..00``).
    Raises DecodeError if ``script_code`` has a truncated push and contains OP_CODESEPARATOR.
    """
    if not 0 <= input_index < len(tx.inputs):
        raise IndexError(f"input index {input_index} out of range ({len(tx.inputs)} inputs)")
    base = sighash_type & 0x1F
    anyone_can_pay = bool(sighash_type & SIGHASH_ANYONECANPAY)
    if base == SIGHASH_SINGLE and input_index >= len(tx.outputs):
        return LEGACY_SIGHASH_SINGLE_BUG
    code = _strip_codeseparators(script_code)

    ins = [(input_index, tx.inputs[input_index])] if anyone_can_pay else enumerate(tx.inputs)
    parts = [_U32.pack(tx.version), encode_compact_size(1 if anyone_can_pay else len(tx.inputs))]
    for i, txin in ins:
        parts.append(txin.prevout.to_bytes())
        if i == input_index:
            parts.append(encode_compact_size(len(code)) + code)
        else:
            parts.append(b"\x00")
        if i != input_index and base in (SIGHASH_NONE, SIGHASH_SINGLE):
            parts.append(b"\x00\x00\x00\x00")
        else:
            parts.append(_U32.pack(txin.sequence))
    if base == SIGHASH_NONE:
        parts.append(b"\x00")
    elif base == SIGHASH_SINGLE:
        parts.append(encode_compact_size(input_index + 1))
        blank = b"\xff" * 8 + b"\x00"  # value -1, empty script
        parts.extend(blank for _ in range(input_index))
        parts.append(tx.outputs[input_index].to_bytes())
    else:
        parts.append(encode_compact_size(len(tx.outputs)))
        parts.extend(o.to_bytes() for o in tx.outputs)
    parts.append(_U32.pack(tx.locktime))
    parts.append(_U32.pack(sighash_type & 0xFFFFFFFF))
    return _sha256d(b"".join(parts))
