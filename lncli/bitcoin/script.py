"""Bitcoin Script: opcodes, building and parsing scripts, numbers, standard output templates.

Opcodes are ``Opcode`` values (an ``int`` subclass), so ``build_script`` can tell an opcode from
a number: ``build_script([OP_2, key_a, key_b, OP_2, OP_CHECKMULTISIG])`` emits the opcodes as
they are, while ``build_script([144, OP_CHECKSEQUENCEVERIFY])`` pushes the *number* 144
minimally (``02 9000``). ``bytes`` items are pushed with the minimal push opcode.

``parse_script`` returns ``(opcode, data)`` pairs with plain ``int`` opcodes: ``data`` is the
pushed bytes for push opcodes (OP_0 and 0x01..OP_PUSHDATA4) and ``None`` for every other opcode
(including OP_1NEGATE and OP_1..OP_16, which push numbers, not data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Union

from lncli.errors import DecodeError

# ---------------------------------------------------------------------------------------------
# Hashes


_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


# RIPEMD-160 in pure Python, for OpenSSL 3 builds without the legacy provider (where
# hashlib.new("ripemd160") fails). Written from the algorithm's description; slow but rare.
_RMD_R = bytes.fromhex(
    "000102030405060708090a0b0c0d0e0f07040d010a060f030c000905020e0b08"
    "030a0e04090f0801020700060d0b050c01090b0a00080c040d03070f0e050602"
    "04000509070c020a0e0103080b060f0d"
)
_RMD_RP = bytes.fromhex(
    "050e070009020b040d060f08010a030c060b0307000d050a0e0f080c04090102"
    "0f050103070e06090b080c020a00040d08060401030b0f00050c020d09070a0e"
    "0c0f0a040105080706020d0e0003090b"
)
_RMD_S = bytes.fromhex(
    "0b0e0f0c050807090b0d0e0f060709080706080d0b09070f070c0f090b070d0c"
    "0b0d06070e090d0f0e080d06050c07050b0c0e0f0e0f0908090e05060806050c"
    "090f050b06080d0c050c0d0e0b080506"
)
_RMD_SP = bytes.fromhex(
    "0809090b0d0f0f050707080b0e0e0c06090d0f070c08090b07070c07060f0d0b"
    "09070f0b0806060e0c0d050e0d0d07050f05080b0e0e060e06090c090c050f08"
    "08050c090c050e06080d06050f0d0b0b"
)
_RMD_K = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_RMD_KP = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)
_M32 = 0xFFFFFFFF


def _rmd_f(j: int, x: int, y: int, z: int) -> int:
    if j < 16:
        return x ^ y ^ z
    if j < 32:
        return (x & y) | (~x & z)
    if j < 48:
        return ((x | ~y) ^ z) & _M32
    if j < 64:
        return (x & z) | (y & ~z)
    return (x ^ (y | ~z)) & _M32


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def _ripemd160_py(data: bytes) -> bytes:
    h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    msg = data + b"\x80" + bytes((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + 4 * i : off + 4 * i + 4], "little") for i in range(16)]
        a, b, c, d, e = h0, h1, h2, h3, h4
        ap, bp, cp, dp, ep = h0, h1, h2, h3, h4
        for j in range(80):
            t = _rol((a + _rmd_f(j, b, c, d) + x[_RMD_R[j]] + _RMD_K[j >> 4]) & _M32, _RMD_S[j])
            a, e, d, c, b = e, d, _rol(c, 10), b, (t + e) & _M32
            t = _rol(
                (ap + _rmd_f(79 - j, bp, cp, dp) + x[_RMD_RP[j]] + _RMD_KP[j >> 4]) & _M32,
                _RMD_SP[j],
            )
            ap, ep, dp, cp, bp = ep, dp, _rol(cp, 10), bp, (t + ep) & _M32
        h0, h1, h2, h3, h4 = (
            (h1 + c + dp) & _M32,
            (h2 + d + ep) & _M32,
            (h3 + e + ap) & _M32,
            (h4 + a + bp) & _M32,
            (h0 + b + cp) & _M32,
        )
    return b"".join(v.to_bytes(4, "little") for v in (h0, h1, h2, h3, h4))


def _ripemd160_hashlib(data: bytes) -> bytes:
    h = _RIPEMD160_EMPTY.copy()  # copying a fresh object is cheaper than hashlib.new's lookup
    h.update(data)
    return h.digest()


try:
    _RIPEMD160_EMPTY = hashlib.new("ripemd160")
    ripemd160 = _ripemd160_hashlib
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    ripemd160 = _ripemd160_py


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): the hash in P2PKH, P2WPKH and P2SH outputs."""
    return ripemd160(hashlib.sha256(data).digest())


# ---------------------------------------------------------------------------------------------
# Opcodes


class Opcode(int):
    """An opcode byte. Distinct from a plain int so ``build_script`` emits it as-is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return OPCODE_NAMES.get(int(self), f"OP_UNKNOWN_0x{int(self):02x}")

    __str__ = __repr__


OPCODE_NAMES: dict[int, str] = {}


def _op(name: str, value: int) -> Opcode:
    OPCODE_NAMES.setdefault(value, name)
    return Opcode(value)


# push value
OP_0 = OP_FALSE = _op("OP_0", 0x00)
OP_PUSHDATA1 = _op("OP_PUSHDATA1", 0x4C)
OP_PUSHDATA2 = _op("OP_PUSHDATA2", 0x4D)
OP_PUSHDATA4 = _op("OP_PUSHDATA4", 0x4E)
OP_1NEGATE = _op("OP_1NEGATE", 0x4F)
OP_RESERVED = _op("OP_RESERVED", 0x50)
OP_1 = OP_TRUE = _op("OP_1", 0x51)
OP_2 = _op("OP_2", 0x52)
OP_3 = _op("OP_3", 0x53)
OP_4 = _op("OP_4", 0x54)
OP_5 = _op("OP_5", 0x55)
OP_6 = _op("OP_6", 0x56)
OP_7 = _op("OP_7", 0x57)
OP_8 = _op("OP_8", 0x58)
OP_9 = _op("OP_9", 0x59)
OP_10 = _op("OP_10", 0x5A)
OP_11 = _op("OP_11", 0x5B)
OP_12 = _op("OP_12", 0x5C)
OP_13 = _op("OP_13", 0x5D)
OP_14 = _op("OP_14", 0x5E)
OP_15 = _op("OP_15", 0x5F)
OP_16 = _op("OP_16", 0x60)
# control
OP_NOP = _op("OP_NOP", 0x61)
OP_VER = _op("OP_VER", 0x62)
OP_IF = _op("OP_IF", 0x63)
OP_NOTIF = _op("OP_NOTIF", 0x64)
OP_VERIF = _op("OP_VERIF", 0x65)
OP_VERNOTIF = _op("OP_VERNOTIF", 0x66)
OP_ELSE = _op("OP_ELSE", 0x67)
OP_ENDIF = _op("OP_ENDIF", 0x68)
OP_VERIFY = _op("OP_VERIFY", 0x69)
OP_RETURN = _op("OP_RETURN", 0x6A)
# stack
OP_TOALTSTACK = _op("OP_TOALTSTACK", 0x6B)
OP_FROMALTSTACK = _op("OP_FROMALTSTACK", 0x6C)
OP_2DROP = _op("OP_2DROP", 0x6D)
OP_2DUP = _op("OP_2DUP", 0x6E)
OP_3DUP = _op("OP_3DUP", 0x6F)
OP_2OVER = _op("OP_2OVER", 0x70)
OP_2ROT = _op("OP_2ROT", 0x71)
OP_2SWAP = _op("OP_2SWAP", 0x72)
OP_IFDUP = _op("OP_IFDUP", 0x73)
OP_DEPTH = _op("OP_DEPTH", 0x74)
OP_DROP = _op("OP_DROP", 0x75)
OP_DUP = _op("OP_DUP", 0x76)
OP_NIP = _op("OP_NIP", 0x77)
OP_OVER = _op("OP_OVER", 0x78)
OP_PICK = _op("OP_PICK", 0x79)
OP_ROLL = _op("OP_ROLL", 0x7A)
OP_ROT = _op("OP_ROT", 0x7B)
OP_SWAP = _op("OP_SWAP", 0x7C)
OP_TUCK = _op("OP_TUCK", 0x7D)
# splice
OP_CAT = _op("OP_CAT", 0x7E)
OP_SUBSTR = _op("OP_SUBSTR", 0x7F)
OP_LEFT = _op("OP_LEFT", 0x80)
OP_RIGHT = _op("OP_RIGHT", 0x81)
OP_SIZE = _op("OP_SIZE", 0x82)
# bit logic
OP_INVERT = _op("OP_INVERT", 0x83)
OP_AND = _op("OP_AND", 0x84)
OP_OR = _op("OP_OR", 0x85)
OP_XOR = _op("OP_XOR", 0x86)
OP_EQUAL = _op("OP_EQUAL", 0x87)
OP_EQUALVERIFY = _op("OP_EQUALVERIFY", 0x88)
OP_RESERVED1 = _op("OP_RESERVED1", 0x89)
OP_RESERVED2 = _op("OP_RESERVED2", 0x8A)
# numeric
OP_1ADD = _op("OP_1ADD", 0x8B)
OP_1SUB = _op("OP_1SUB", 0x8C)
OP_2MUL = _op("OP_2MUL", 0x8D)
OP_2DIV = _op("OP_2DIV", 0x8E)
OP_NEGATE = _op("OP_NEGATE", 0x8F)
OP_ABS = _op("OP_ABS", 0x90)
OP_NOT = _op("OP_NOT", 0x91)
OP_0NOTEQUAL = _op("OP_0NOTEQUAL", 0x92)
OP_ADD = _op("OP_ADD", 0x93)
OP_SUB = _op("OP_SUB", 0x94)
OP_MUL = _op("OP_MUL", 0x95)
OP_DIV = _op("OP_DIV", 0x96)
OP_MOD = _op("OP_MOD", 0x97)
OP_LSHIFT = _op("OP_LSHIFT", 0x98)
OP_RSHIFT = _op("OP_RSHIFT", 0x99)
OP_BOOLAND = _op("OP_BOOLAND", 0x9A)
OP_BOOLOR = _op("OP_BOOLOR", 0x9B)
OP_NUMEQUAL = _op("OP_NUMEQUAL", 0x9C)
OP_NUMEQUALVERIFY = _op("OP_NUMEQUALVERIFY", 0x9D)
OP_NUMNOTEQUAL = _op("OP_NUMNOTEQUAL", 0x9E)
OP_LESSTHAN = _op("OP_LESSTHAN", 0x9F)
OP_GREATERTHAN = _op("OP_GREATERTHAN", 0xA0)
OP_LESSTHANOREQUAL = _op("OP_LESSTHANOREQUAL", 0xA1)
OP_GREATERTHANOREQUAL = _op("OP_GREATERTHANOREQUAL", 0xA2)
OP_MIN = _op("OP_MIN", 0xA3)
OP_MAX = _op("OP_MAX", 0xA4)
OP_WITHIN = _op("OP_WITHIN", 0xA5)
# crypto
OP_RIPEMD160 = _op("OP_RIPEMD160", 0xA6)
OP_SHA1 = _op("OP_SHA1", 0xA7)
OP_SHA256 = _op("OP_SHA256", 0xA8)
OP_HASH160 = _op("OP_HASH160", 0xA9)
OP_HASH256 = _op("OP_HASH256", 0xAA)
OP_CODESEPARATOR = _op("OP_CODESEPARATOR", 0xAB)
OP_CHECKSIG = _op("OP_CHECKSIG", 0xAC)
OP_CHECKSIGVERIFY = _op("OP_CHECKSIGVERIFY", 0xAD)
OP_CHECKMULTISIG = _op("OP_CHECKMULTISIG", 0xAE)
OP_CHECKMULTISIGVERIFY = _op("OP_CHECKMULTISIGVERIFY", 0xAF)
# expansion
OP_NOP1 = _op("OP_NOP1", 0xB0)
OP_CHECKLOCKTIMEVERIFY = OP_NOP2 = _op("OP_CHECKLOCKTIMEVERIFY", 0xB1)
OP_CHECKSEQUENCEVERIFY = OP_NOP3 = _op("OP_CHECKSEQUENCEVERIFY", 0xB2)
OP_NOP4 = _op("OP_NOP4", 0xB3)
OP_NOP5 = _op("OP_NOP5", 0xB4)
OP_NOP6 = _op("OP_NOP6", 0xB5)
OP_NOP7 = _op("OP_NOP7", 0xB6)
OP_NOP8 = _op("OP_NOP8", 0xB7)
OP_NOP9 = _op("OP_NOP9", 0xB8)
OP_NOP10 = _op("OP_NOP10", 0xB9)
OP_CHECKSIGADD = _op("OP_CHECKSIGADD", 0xBA)  # tapscript only
OP_INVALIDOPCODE = _op("OP_INVALIDOPCODE", 0xFF)

#: name -> opcode, including aliases (OP_FALSE, OP_TRUE, OP_NOP2, OP_NOP3)
OPCODES_BY_NAME: dict[str, Opcode] = {
    name: value for name, value in globals().items() if name.startswith("OP_")
}

#: OP_1 .. OP_16 by number
SMALL_INT_OPS: tuple[Opcode, ...] = tuple(Opcode(0x50 + n) for n in range(1, 17))


def small_int_opcode(n: int) -> Opcode:
    """The opcode that pushes ``n`` for 0 <= n <= 16 (OP_0, OP_1 .. OP_16)."""
    if n == 0:
        return OP_0
    if 1 <= n <= 16:
        return SMALL_INT_OPS[n - 1]
    raise ValueError(f"no small-integer opcode for {n}")


def decode_small_int_opcode(opcode: int) -> int | None:
    """The number OP_0 / OP_1NEGATE / OP_1..OP_16 push, or None for any other opcode."""
    if opcode == OP_0:
        return 0
    if opcode == OP_1NEGATE:
        return -1
    if OP_1 <= opcode <= OP_16:
        return opcode - 0x50
    return None


# ---------------------------------------------------------------------------------------------
# Script numbers (CScriptNum): little-endian sign-magnitude, minimal


def encode_script_num(n: int) -> bytes:
    """Minimal CScriptNum encoding of ``n`` (0 is the empty string)."""
    if n == 0:
        return b""
    neg = n < 0
    m = -n if neg else n
    out = bytearray(m.to_bytes((m.bit_length() + 7) // 8, "little"))
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes, max_size: int = 4, require_minimal: bool = True) -> int:
    """Decode a CScriptNum. Raises DecodeError when longer than ``max_size`` bytes (4 for
    arithmetic, 5 for CHECKLOCKTIMEVERIFY / CHECKSEQUENCEVERIFY) or, with ``require_minimal``,
    not minimally encoded."""
    if len(data) > max_size:
        raise DecodeError(f"script number is {len(data)} bytes, more than {max_size}")
    if not data:
        return 0
    if require_minimal and not (data[-1] & 0x7F):
        # the last byte only carries the sign: allowed only if the byte before needs its top bit
        if len(data) == 1 or not (data[-2] & 0x80):
            raise DecodeError(f"script number {data.hex()} is not minimally encoded")
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


# ---------------------------------------------------------------------------------------------
# Building


def push_data(data: bytes) -> bytes:
    """The minimal push of ``data`` (BIP 62 MINIMALDATA): OP_0 for empty, OP_1..OP_16 and
    OP_1NEGATE for the one-byte values they push, then direct pushes and OP_PUSHDATA1/2/4."""
    n = len(data)
    if n == 0:
        return b"\x00"
    if n == 1:
        b = data[0]
        if 1 <= b <= 16:
            return bytes((0x50 + b,))
        if b == 0x81:
            return b"\x4f"
    if n < OP_PUSHDATA1:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((OP_PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return b"\x4d" + n.to_bytes(2, "little") + data
    if n <= 0xFFFFFFFF:
        return b"\x4e" + n.to_bytes(4, "little") + data
    raise ValueError("push too large")


def push_int(n: int) -> bytes:
    """The minimal push of the number ``n``: OP_0, OP_1NEGATE, OP_1..OP_16 or a data push."""
    if n == 0:
        return b"\x00"
    if n == -1:
        return b"\x4f"
    if 1 <= n <= 16:
        return bytes((0x50 + n,))
    return push_data(encode_script_num(n))


ScriptItem = Union[Opcode, int, bytes]

#: push_int(n) for -1 <= n <= 16, indexed by n (index -1 is the last entry)
_SMALL_INT_PUSHES = tuple(push_int(n) for n in range(0, 17)) + (push_int(-1),)


def build_script(items: Iterable[ScriptItem]) -> bytes:
    """Assemble a script from ``Opcode`` values (emitted as-is), plain ints (pushed as minimal
    numbers) and bytes (pushed minimally)."""
    out = bytearray()
    append = out.append
    for item in items:
        # exact-type fast paths for the common items (opcodes, keys and hashes, small numbers);
        # subclasses and other types take the general branches below, with the same result
        t = type(item)
        if t is Opcode:
            append(item)
            continue
        if t is bytes:
            n = len(item)
            if 1 < n < 0x4C:  # a direct push: neither an OP_n/OP_1NEGATE byte nor OP_PUSHDATA
                append(n)
                out += item
            else:
                out += push_data(item)
            continue
        if t is int:
            out += _SMALL_INT_PUSHES[item] if -1 <= item <= 16 else push_int(item)
            continue
        if isinstance(item, Opcode):
            out.append(item)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            out += push_data(bytes(item))
        elif isinstance(item, int):
            out += push_int(item)
        else:
            raise TypeError(f"cannot put {type(item).__name__} in a script")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Parsing

ScriptOp = tuple[int, Union[bytes, None]]


def iter_script(script: bytes) -> Iterator[tuple[int, bytes | None, int]]:
    """Yield ``(opcode, data, end)`` for each operation, ``end`` being the offset just after it
    (what OP_CODESEPARATOR handling needs). Raises DecodeError on a truncated push."""
    n = len(script)
    pos = 0
    while pos < n:
        op = script[pos]
        pos += 1
        if op > OP_PUSHDATA4:
            yield op, None, pos
            continue
        if op < OP_PUSHDATA1:
            size = op
        else:
            width = 1 if op == OP_PUSHDATA1 else 2 if op == OP_PUSHDATA2 else 4
            if pos + width > n:
                raise DecodeError(f"truncated {OPCODE_NAMES[op]} length at byte {pos - 1}")
            size = int.from_bytes(script[pos : pos + width], "little")
            pos += width
        end = pos + size
        if end > n:
            raise DecodeError(
                f"truncated push at byte {pos - 1}: {size} bytes announced, {n - pos} left"
            )
        yield op, script[pos:end], end
        pos = end


def parse_script(script: bytes) -> list[ScriptOp]:
    """Split a script into ``(opcode, data)`` pairs. Raises DecodeError on a truncated push."""
    return [(op, data) for op, data, _ in iter_script(script)]


def is_push_only(script: bytes) -> bool:
    """True if the script only pushes (opcodes up to OP_16); False if it is malformed."""
    try:
        return all(op <= OP_16 and op != OP_RESERVED for op, _, _ in iter_script(script))
    except DecodeError:
        return False


def is_minimal_push(opcode: int, data: bytes) -> bool:
    """Whether ``data`` was pushed with the smallest possible opcode (MINIMALDATA)."""
    return push_data(data)[0] == opcode


def disassemble(script: bytes) -> str:
    """Human readable form: opcode names and hex pushes. Raises DecodeError if truncated."""
    parts = []
    for op, data in parse_script(script):
        if data is None:
            parts.append(OPCODE_NAMES.get(op, f"OP_UNKNOWN_0x{op:02x}"))
        elif op == OP_0:
            parts.append("OP_0")
        else:
            parts.append(data.hex())
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Standard templates


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


def p2pkh_script(pubkey_hash: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG (also the P2WPKH BIP 143 scriptCode)."""
    _check_len("pubkey_hash", pubkey_hash, 20)
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def p2sh_script_from_hash(script_hash: bytes) -> bytes:
    """OP_HASH160 <20> OP_EQUAL."""
    _check_len("script_hash", script_hash, 20)
    return b"\xa9\x14" + script_hash + b"\x87"


def p2sh_script(redeem_script: bytes) -> bytes:
    """The P2SH output paying to ``redeem_script`` (hashed with hash160)."""
    return p2sh_script_from_hash(hash160(redeem_script))


def witness_program_script(version: int, program: bytes) -> bytes:
    """OP_n <program>: a segwit output of any version (0..16) with a 2..40 byte program."""
    if not 0 <= version <= 16:
        raise ValueError(f"witness version must be 0..16, got {version}")
    if not 2 <= len(program) <= 40:
        raise ValueError(f"witness program must be 2..40 bytes, got {len(program)}")
    return bytes((0x50 + version if version else 0, len(program))) + program


def p2wpkh_script(pubkey_hash: bytes) -> bytes:
    """OP_0 <20-byte pubkey hash>."""
    _check_len("pubkey_hash", pubkey_hash, 20)
    return b"\x00\x14" + pubkey_hash


def p2wpkh_script_for_pubkey(pubkey: bytes) -> bytes:
    """OP_0 <hash160(pubkey)> (e.g. BOLT 3 to_remote with option_static_remotekey)."""
    return b"\x00\x14" + hash160(pubkey)


def p2wsh_script(witness_script: bytes) -> bytes:
    """OP_0 <sha256(witness_script)>."""
    return b"\x00\x20" + _sha256(witness_script).digest()


def p2tr_script(xonly_pubkey: bytes) -> bytes:
    """OP_1 <32-byte x-only output key>."""
    _check_len("xonly_pubkey", xonly_pubkey, 32)
    return b"\x51\x20" + xonly_pubkey


#: Pay-to-anchor (P2A), the keyless anchor output: OP_1 <0x4e73>
P2A_SCRIPT = b"\x51\x02\x4e\x73"


def op_return_script(data: bytes) -> bytes:
    """OP_RETURN <data> (a provably unspendable 'nulldata' output)."""
    return b"\x6a" + push_data(data)


def multisig_script(m: int, pubkeys: Iterable[bytes]) -> bytes:
    """OP_m <key>... OP_n OP_CHECKMULTISIG, keys in the given order."""
    keys = list(pubkeys)
    if not 1 <= m <= len(keys) <= 16:
        raise ValueError(f"bad multisig {m}-of-{len(keys)}")
    return build_script([small_int_opcode(m), *keys, small_int_opcode(len(keys)), OP_CHECKMULTISIG])


def multisig_2of2(pubkey1: bytes, pubkey2: bytes) -> bytes:
    """OP_2 <pubkey1> <pubkey2> OP_2 OP_CHECKMULTISIG, in the order given."""
    _check_len("pubkey1", pubkey1, 33)
    _check_len("pubkey2", pubkey2, 33)
    return b"\x52\x21" + pubkey1 + b"\x21" + pubkey2 + b"\x52\xae"


def funding_script(pubkey_a: bytes, pubkey_b: bytes) -> bytes:
    """The BOLT 3 funding output witness script: a 2-of-2 multisig of the two compressed
    funding pubkeys, the lexicographically lesser key first."""
    low, high = sorted((pubkey_a, pubkey_b))
    return multisig_2of2(low, high)


# ---------------------------------------------------------------------------------------------
# Classification


def witness_program(script_pubkey: bytes) -> tuple[int, bytes] | None:
    """``(version, program)`` if the script is a segwit output (BIP 141 form), else None."""
    n = len(script_pubkey)
    if not 4 <= n <= 42:
        return None
    op = script_pubkey[0]
    if op != 0 and not OP_1 <= op <= OP_16:
        return None
    if script_pubkey[1] + 2 != n:
        return None
    return (op - 0x50 if op else 0), script_pubkey[2:]


def classify(script_pubkey: bytes) -> tuple[str, bytes]:
    """Recognise a standard output script. Returns ``(kind, payload)``:

    - ``"p2pkh"`` / ``"p2sh"`` / ``"p2wpkh"``: the 20-byte hash
    - ``"p2wsh"``: the 32-byte script hash; ``"p2tr"``: the 32-byte x-only key
    - ``"p2a"``: the 2-byte program ``4e73``
    - ``"witness_unknown"``: the whole script (use ``witness_program`` for version/program)
    - ``"p2pk"``: the public key; ``"nulldata"``: the bytes after OP_RETURN
    - ``"multisig"``: the whole script (bare m-of-n CHECKMULTISIG)
    - ``"nonstandard"``: the whole script
    """
    s = script_pubkey
    n = len(s)
    if n == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac":
        return "p2pkh", s[3:23]
    if n == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87:
        return "p2sh", s[2:22]
    wp = witness_program(s)
    if wp is not None:
        version, program = wp
        if version == 0:
            if len(program) == 20:
                return "p2wpkh", program
            if len(program) == 32:
                return "p2wsh", program
            return "nonstandard", s
        if version == 1 and len(program) == 32:
            return "p2tr", program
        if s == P2A_SCRIPT:
            return "p2a", program
        return "witness_unknown", s
    if (n == 35 and s[0] == 33 or n == 67 and s[0] == 65) and s[-1] == OP_CHECKSIG:
        return "p2pk", s[1:-1]
    if n >= 1 and s[0] == OP_RETURN:
        if is_push_only(s[1:]):
            return "nulldata", s[1:]
        return "nonstandard", s
    if n >= 4 and s[-1] == OP_CHECKMULTISIG:
        try:
            ops = parse_script(s)
        except DecodeError:
            return "nonstandard", s
        m = decode_small_int_opcode(ops[0][0]) if ops[0][1] is None else None
        k = decode_small_int_opcode(ops[-2][0]) if ops[-2][1] is None else None
        keys = ops[1:-2]
        if (
            m and k and 1 <= m <= k == len(keys)
            and all(d is not None and len(d) in (33, 65) for _, d in keys)
        ):
            return "multisig", s
    return "nonstandard", s
