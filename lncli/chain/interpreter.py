"""A compact Bitcoin Script interpreter: segwit v0 (P2WPKH, P2WSH), P2SH-wrapped segwit, legacy
P2PKH/bare scripts, with bitcoind's consensus and standardness (policy) flags.

``verify_input(tx, index, script_pubkey, amount_sat, flags)`` returns nothing on success and
raises :class:`ScriptError` otherwise. ``ScriptError.reason`` is bitcoind's text for the error
(``ScriptErrorString``), e.g. ``Script failed an OP_EQUALVERIFY operation``.

Flags follow bitcoind: :data:`MANDATORY_FLAGS` are the consensus rules, :data:`STANDARD_FLAGS`
adds the relay policy (LOW_S, STRICTENC, MINIMALDATA, MINIMALIF, NULLFAIL, CLEANSTACK,
WITNESS_PUBKEYTYPE, discouraged NOPs and witness versions). :func:`verify_input_policy` runs the
standard flags and, on failure, the mandatory ones, to tell a consensus failure from a policy-only
one (``ScriptError.mandatory``; bitcoind v29.1+ words both ``mempool-script-verify-flag-failed``).

Taproot (witness v1) spending is not implemented: it is refused as non-standard.
"""

from __future__ import annotations

import hashlib

from coincurve import PublicKey

from lncli.bitcoin.ecdsa import CURVE_ORDER, encode_der_signature, is_strict_der
from lncli.bitcoin.script import P2A_SCRIPT, encode_script_num, ripemd160
from lncli.bitcoin.sighash import SighashCache, legacy_sighash
from lncli.bitcoin.tx import Transaction
from lncli.errors import LncliError

__all__ = [
    "ScriptError",
    "verify_input",
    "verify_input_policy",
    "eval_script",
    "SpendContext",
    "MANDATORY_FLAGS",
    "STANDARD_FLAGS",
    "VERIFY_P2SH",
    "VERIFY_STRICTENC",
    "VERIFY_DERSIG",
    "VERIFY_LOW_S",
    "VERIFY_NULLDUMMY",
    "VERIFY_SIGPUSHONLY",
    "VERIFY_MINIMALDATA",
    "VERIFY_DISCOURAGE_UPGRADABLE_NOPS",
    "VERIFY_CLEANSTACK",
    "VERIFY_CHECKLOCKTIMEVERIFY",
    "VERIFY_CHECKSEQUENCEVERIFY",
    "VERIFY_WITNESS",
    "VERIFY_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM",
    "VERIFY_MINIMALIF",
    "VERIFY_NULLFAIL",
    "VERIFY_WITNESS_PUBKEYTYPE",
]

# --------------------------------------------------------------------------------------------
# Flags (bitcoind's SCRIPT_VERIFY_* values)

VERIFY_P2SH = 1 << 0
VERIFY_STRICTENC = 1 << 1
VERIFY_DERSIG = 1 << 2
VERIFY_LOW_S = 1 << 3
VERIFY_NULLDUMMY = 1 << 4
VERIFY_SIGPUSHONLY = 1 << 5
VERIFY_MINIMALDATA = 1 << 6
VERIFY_DISCOURAGE_UPGRADABLE_NOPS = 1 << 7
VERIFY_CLEANSTACK = 1 << 8
VERIFY_CHECKLOCKTIMEVERIFY = 1 << 9
VERIFY_CHECKSEQUENCEVERIFY = 1 << 10
VERIFY_WITNESS = 1 << 11
VERIFY_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM = 1 << 12
VERIFY_MINIMALIF = 1 << 13
VERIFY_NULLFAIL = 1 << 14
VERIFY_WITNESS_PUBKEYTYPE = 1 << 15

MANDATORY_FLAGS = (
    VERIFY_P2SH
    | VERIFY_DERSIG
    | VERIFY_NULLDUMMY
    | VERIFY_CHECKLOCKTIMEVERIFY
    | VERIFY_CHECKSEQUENCEVERIFY
    | VERIFY_WITNESS
)
STANDARD_FLAGS = (
    MANDATORY_FLAGS
    | VERIFY_STRICTENC
    | VERIFY_LOW_S
    | VERIFY_MINIMALDATA
    | VERIFY_DISCOURAGE_UPGRADABLE_NOPS
    | VERIFY_CLEANSTACK
    | VERIFY_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM
    | VERIFY_MINIMALIF
    | VERIFY_NULLFAIL
    | VERIFY_WITNESS_PUBKEYTYPE
)

# --------------------------------------------------------------------------------------------
# Errors (bitcoind's ScriptErrorString texts)

EVAL_FALSE = "Script evaluated without error but finished with a false/empty top stack element"
E_VERIFY = "Script failed an OP_VERIFY operation"
E_EQUALVERIFY = "Script failed an OP_EQUALVERIFY operation"
E_CHECKMULTISIGVERIFY = "Script failed an OP_CHECKMULTISIGVERIFY operation"
E_CHECKSIGVERIFY = "Script failed an OP_CHECKSIGVERIFY operation"
E_NUMEQUALVERIFY = "Script failed an OP_NUMEQUALVERIFY operation"
E_SCRIPT_SIZE = "Script is too big"
E_PUSH_SIZE = "Push value size limit exceeded"
E_OP_COUNT = "Operation limit exceeded"
E_STACK_SIZE = "Stack size limit exceeded"
E_SIG_COUNT = "Signature count negative or greater than pubkey count"
E_PUBKEY_COUNT = "Pubkey count negative or limit exceeded"
E_BAD_OPCODE = "Opcode missing or not understood"
E_DISABLED_OPCODE = "Attempted to use a disabled opcode"
E_INVALID_STACK = "Operation not valid with the current stack size"
E_INVALID_ALTSTACK = "Operation not valid with the current altstack size"
E_OP_RETURN = "OP_RETURN was encountered"
E_UNBALANCED_CONDITIONAL = "Invalid OP_IF construction"
E_NEGATIVE_LOCKTIME = "Negative locktime"
E_UNSATISFIED_LOCKTIME = "Locktime requirement not satisfied"
E_SIG_HASHTYPE = "Signature hash type missing or not understood"
E_SIG_DER = "Non-canonical DER signature"
E_MINIMALDATA = "Data push larger than necessary"
E_SIG_PUSHONLY = "Only push operators allowed in signatures"
E_SIG_HIGH_S = "Non-canonical signature: S value is unnecessarily high"
E_SIG_NULLDUMMY = "Dummy CHECKMULTISIG argument must be zero"
E_MINIMALIF = "OP_IF/NOTIF argument must be minimal"
E_SIG_NULLFAIL = "Signature must be zero for failed CHECK(MULTI)SIG operation"
E_DISCOURAGE_NOPS = "NOPx reserved for soft-fork upgrades"
E_DISCOURAGE_WITNESS = "Witness version reserved for soft-fork upgrades"
E_PUBKEYTYPE = "Public key is neither compressed or uncompressed"
E_CLEANSTACK = "Stack size must be exactly one after execution"
E_WITNESS_WRONG_LENGTH = "Witness program has incorrect length"
E_WITNESS_EMPTY = "Witness program was passed an empty witness"
E_WITNESS_MISMATCH = "Witness program hash mismatch"
E_WITNESS_MALLEATED = "Witness requires empty scriptSig"
E_WITNESS_MALLEATED_P2SH = "Witness requires only-redeemscript scriptSig"
E_WITNESS_UNEXPECTED = "Witness provided for non-witness script"
E_WITNESS_PUBKEYTYPE = "Using non-compressed keys in segwit"
E_UNKNOWN = "unknown error"  # what bitcoind reports for a bad script number (scriptnum_error)
E_TAPROOT = "Taproot spending is not supported by the embedded chain"


class ScriptError(LncliError):
    """A script failed. ``reason`` is bitcoind's text; ``mandatory`` is set by
    :func:`verify_input_policy` (True: breaks consensus; False: only relay policy)."""

    def __init__(self, reason: str, mandatory: bool | None = None):
        self.reason = reason
        self.mandatory = mandatory
        super().__init__(reason)

    @property
    def bitcoind_reason(self) -> str:
        """The start of the mempool reject reason bitcoind (v29.1+) gives for this failure, whether
        a consensus or only a policy flag failed (``lncli.chain.validation.check_scripts`` adds
        bitcoind's ``, input N of TXID (wtxid WTXID), spending TXID:N``)."""
        return f"mempool-script-verify-flag-failed ({self.reason})"


# --------------------------------------------------------------------------------------------
# Limits

MAX_SCRIPT_SIZE = 10_000
MAX_ELEMENT_SIZE = 520
MAX_OPS = 201
MAX_STACK = 1000
MAX_PUBKEYS = 20
LOCKTIME_THRESHOLD = 500_000_000
SEQ_DISABLE = 1 << 31
SEQ_TYPE = 1 << 22
SEQ_MASK = 0x0000FFFF
SEQUENCE_FINAL = 0xFFFFFFFF

SIGVERSION_BASE = 0
SIGVERSION_WITNESS_V0 = 1

_HALF_ORDER = CURVE_ORDER // 2
_TRUE = b"\x01"
_FALSE = b""
_DISABLED = frozenset((0x7E, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86, 0x8D, 0x8E, 0x95, 0x96, 0x97, 0x98, 0x99))


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _hash160(b: bytes) -> bytes:
    return ripemd160(hashlib.sha256(b).digest())


def _cast_bool(v: bytes) -> bool:
    for i, c in enumerate(v):
        if c:
            return not (i == len(v) - 1 and c == 0x80)
    return False


def _num(v: bytes, require_minimal: bool, max_size: int = 4) -> int:
    if len(v) > max_size:
        raise ScriptError(E_UNKNOWN)
    if not v:
        return 0
    if require_minimal and not (v[-1] & 0x7F) and (len(v) == 1 or not (v[-2] & 0x80)):
        raise ScriptError(E_UNKNOWN)
    n = int.from_bytes(v, "little")
    if v[-1] & 0x80:
        return -(n & ~(0x80 << (8 * (len(v) - 1))))
    return n


def _minimal_push(op: int, data: bytes) -> bool:
    n = len(data)
    if n == 0:
        return op == 0
    if n == 1 and (1 <= data[0] <= 16 or data[0] == 0x81):
        return False
    if n <= 75:
        return op == n
    if n <= 255:
        return op == 0x4C
    if n <= 65535:
        return op == 0x4D
    return True


def _valid_sig_encoding(sig: bytes) -> bool:
    # BIP 66 on the DER part (the last byte is the sighash type)
    return 9 <= len(sig) <= 73 and is_strict_der(sig[:-1])


def _is_low_s(sig: bytes) -> bool:
    der = sig[:-1]
    len_r = der[3]
    s = int.from_bytes(der[6 + len_r :], "big")
    return s <= _HALF_ORDER


def _pubkey_encoding_ok(pk: bytes) -> bool:
    n = len(pk)
    if n == 33:
        return pk[0] in (2, 3)
    if n == 65:
        return pk[0] == 4
    return False


# --------------------------------------------------------------------------------------------
# Spending context


class SpendContext:
    """What signature and lock checks need to know about the spending input."""

    __slots__ = ("tx", "index", "amount", "cache", "_pubkeys")

    def __init__(self, tx: Transaction, index: int, amount_sat: int, cache: SighashCache | None = None):
        self.tx = tx
        self.index = index
        self.amount = amount_sat
        self.cache = cache if cache is not None else SighashCache(tx)

    def sighash(self, script_code: bytes, hashtype: int, sigversion: int) -> bytes:
        if sigversion == SIGVERSION_WITNESS_V0:
            return self.cache.segwit_v0(self.index, script_code, self.amount, hashtype)
        return legacy_sighash(self.tx, self.index, script_code, hashtype)

    def check_sig(self, sig: bytes, pubkey: bytes, script_code: bytes, sigversion: int) -> bool:
        if not sig:
            return False
        hashtype = sig[-1]
        der = sig[:-1]
        if not is_strict_der(der):
            # lax DER parsing is only reachable without DERSIG (never on segwit / our flags)
            return False
        len_r = der[3]
        r = int.from_bytes(der[4 : 4 + len_r], "big")
        s = int.from_bytes(der[6 + len_r :], "big")
        if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
            return False
        if s > _HALF_ORDER:  # consensus accepts high S: libsecp256k1 verifies the normalized form
            der = encode_der_signature(r, CURVE_ORDER - s)
        msg = self.sighash(script_code, hashtype, sigversion)
        try:
            return PublicKey(pubkey).verify(der, msg, hasher=None)
        except Exception:  # invalid public key
            return False

    def check_locktime(self, n: int) -> bool:
        tx_lock = self.tx.locktime
        if not ((tx_lock < LOCKTIME_THRESHOLD and n < LOCKTIME_THRESHOLD) or (tx_lock >= LOCKTIME_THRESHOLD and n >= LOCKTIME_THRESHOLD)):
            return False
        if n > tx_lock:
            return False
        if self.tx.inputs[self.index].sequence == SEQUENCE_FINAL:
            return False
        return True

    def check_sequence(self, n: int) -> bool:
        tx_seq = self.tx.inputs[self.index].sequence
        if self.tx.version < 2:
            return False
        if tx_seq & SEQ_DISABLE:
            return False
        mask = SEQ_TYPE | SEQ_MASK
        tx_masked = tx_seq & mask
        n_masked = n & mask
        if not ((tx_masked < SEQ_TYPE and n_masked < SEQ_TYPE) or (tx_masked >= SEQ_TYPE and n_masked >= SEQ_TYPE)):
            return False
        return n_masked <= tx_masked


# --------------------------------------------------------------------------------------------
# Script execution


def _ops(script: bytes):
    """Yield (opcode, data|None, end offset); raise ScriptError(BAD_OPCODE) on a truncated push."""
    n = len(script)
    pos = 0
    while pos < n:
        op = script[pos]
        pos += 1
        if op > 0x4E:
            yield op, None, pos
            continue
        if op < 0x4C:
            size = op
        else:
            width = 1 if op == 0x4C else 2 if op == 0x4D else 4
            if pos + width > n:
                raise ScriptError(E_BAD_OPCODE)
            size = int.from_bytes(script[pos : pos + width], "little")
            pos += width
        end = pos + size
        if end > n:
            raise ScriptError(E_BAD_OPCODE)
        yield op, script[pos:end], end
        pos = end


def eval_script(stack: list[bytes], script: bytes, flags: int, ctx: SpendContext | None, sigversion: int = SIGVERSION_WITNESS_V0) -> None:
    """Run ``script`` on ``stack`` (modified in place). Raises ScriptError. ``ctx`` may be None
    for scripts without signature or lock checks (they then fail as if unsatisfied)."""
    if len(script) > MAX_SCRIPT_SIZE:
        raise ScriptError(E_SCRIPT_SIZE)
    minimal = bool(flags & VERIFY_MINIMALDATA)
    alt: list[bytes] = []
    vexec: list[bool] = []
    n_false = 0  # number of False entries in vexec
    op_count = 0
    code_start = 0  # script code begins after the last executed OP_CODESEPARATOR
    S = stack

    def pop() -> bytes:
        if not S:
            raise ScriptError(E_INVALID_STACK)
        return S.pop()

    def popnum() -> int:
        if not S:
            raise ScriptError(E_INVALID_STACK)
        return _num(S.pop(), minimal)

    for op, data, end in _ops(script):
        fexec = n_false == 0
        if data is not None:
            if len(data) > MAX_ELEMENT_SIZE:
                raise ScriptError(E_PUSH_SIZE)
            if fexec:
                if minimal and not _minimal_push(op, data):
                    raise ScriptError(E_MINIMALDATA)
                S.append(data)
                if len(S) + len(alt) > MAX_STACK:
                    raise ScriptError(E_STACK_SIZE)
            continue
        if op > 0x60:
            op_count += 1
            if op_count > MAX_OPS:
                raise ScriptError(E_OP_COUNT)
        if op in _DISABLED:
            raise ScriptError(E_DISABLED_OPCODE)
        if not fexec and not (0x63 <= op <= 0x68):
            continue

        if op == 0x4F or 0x51 <= op <= 0x60:  # OP_1NEGATE, OP_1..OP_16
            S.append(encode_script_num(op - 0x50))
        elif op == 0x61 or op == 0xB0 or 0xB3 <= op <= 0xB9:  # NOP, NOP1, NOP4..NOP10
            if op != 0x61 and flags & VERIFY_DISCOURAGE_UPGRADABLE_NOPS:
                raise ScriptError(E_DISCOURAGE_NOPS)
        elif op == 0x63 or op == 0x64:  # IF / NOTIF
            value = False
            if fexec:
                if not S:
                    raise ScriptError(E_UNBALANCED_CONDITIONAL)
                top = S[-1]
                if sigversion == SIGVERSION_WITNESS_V0 and flags & VERIFY_MINIMALIF:
                    if len(top) > 1 or (len(top) == 1 and top[0] != 1):
                        raise ScriptError(E_MINIMALIF)
                value = _cast_bool(top)
                if op == 0x64:
                    value = not value
                S.pop()
            vexec.append(value)
            if not value:
                n_false += 1
        elif op == 0x67:  # ELSE
            if not vexec:
                raise ScriptError(E_UNBALANCED_CONDITIONAL)
            v = vexec[-1]
            n_false += 1 if v else -1
            vexec[-1] = not v
        elif op == 0x68:  # ENDIF
            if not vexec:
                raise ScriptError(E_UNBALANCED_CONDITIONAL)
            if not vexec.pop():
                n_false -= 1
        elif op == 0x69:  # VERIFY
            if not _cast_bool(pop()):
                raise ScriptError(E_VERIFY)
        elif op == 0x6A:
            raise ScriptError(E_OP_RETURN)
        elif op == 0x6B:  # TOALTSTACK
            alt.append(pop())
        elif op == 0x6C:  # FROMALTSTACK
            if not alt:
                raise ScriptError(E_INVALID_ALTSTACK)
            S.append(alt.pop())
        elif op == 0x6D:  # 2DROP
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            del S[-2:]
        elif op == 0x6E:  # 2DUP
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            S.extend(S[-2:])
        elif op == 0x6F:  # 3DUP
            if len(S) < 3:
                raise ScriptError(E_INVALID_STACK)
            S.extend(S[-3:])
        elif op == 0x70:  # 2OVER
            if len(S) < 4:
                raise ScriptError(E_INVALID_STACK)
            S.extend(S[-4:-2])
        elif op == 0x71:  # 2ROT
            if len(S) < 6:
                raise ScriptError(E_INVALID_STACK)
            a, b = S[-6], S[-5]
            del S[-6:-4]
            S.extend((a, b))
        elif op == 0x72:  # 2SWAP
            if len(S) < 4:
                raise ScriptError(E_INVALID_STACK)
            S[-4], S[-3], S[-2], S[-1] = S[-2], S[-1], S[-4], S[-3]
        elif op == 0x73:  # IFDUP
            if not S:
                raise ScriptError(E_INVALID_STACK)
            if _cast_bool(S[-1]):
                S.append(S[-1])
        elif op == 0x74:  # DEPTH
            S.append(encode_script_num(len(S)))
        elif op == 0x75:  # DROP
            pop()
        elif op == 0x76:  # DUP
            if not S:
                raise ScriptError(E_INVALID_STACK)
            S.append(S[-1])
        elif op == 0x77:  # NIP
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            del S[-2]
        elif op == 0x78:  # OVER
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            S.append(S[-2])
        elif op == 0x79 or op == 0x7A:  # PICK / ROLL
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            n = popnum()
            if n < 0 or n >= len(S):
                raise ScriptError(E_INVALID_STACK)
            v = S[-n - 1]
            if op == 0x7A:
                del S[-n - 1]
            S.append(v)
        elif op == 0x7B:  # ROT
            if len(S) < 3:
                raise ScriptError(E_INVALID_STACK)
            S.append(S.pop(-3))
        elif op == 0x7C:  # SWAP
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            S[-1], S[-2] = S[-2], S[-1]
        elif op == 0x7D:  # TUCK
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            S.insert(-2, S[-1])
        elif op == 0x82:  # SIZE
            if not S:
                raise ScriptError(E_INVALID_STACK)
            S.append(encode_script_num(len(S[-1])))
        elif op == 0x87 or op == 0x88:  # EQUAL / EQUALVERIFY
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            b = S.pop()
            a = S.pop()
            if op == 0x87:
                S.append(_TRUE if a == b else _FALSE)
            elif a != b:
                raise ScriptError(E_EQUALVERIFY)
        elif 0x8B <= op <= 0x92:  # unary arithmetic
            if not S:
                raise ScriptError(E_INVALID_STACK)
            a = popnum()
            if op == 0x8B:
                r = a + 1
            elif op == 0x8C:
                r = a - 1
            elif op == 0x8F:
                r = -a
            elif op == 0x90:
                r = abs(a)
            elif op == 0x91:
                r = int(a == 0)
            elif op == 0x92:
                r = int(a != 0)
            else:  # 2MUL/2DIV are disabled (caught above)
                raise ScriptError(E_BAD_OPCODE)
            S.append(encode_script_num(r))
        elif 0x93 <= op <= 0xA4:  # binary arithmetic
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            b = popnum()
            a = popnum()
            if op == 0x93:
                r = a + b
            elif op == 0x94:
                r = a - b
            elif op == 0x9A:
                r = int(a != 0 and b != 0)
            elif op == 0x9B:
                r = int(a != 0 or b != 0)
            elif op == 0x9C or op == 0x9D:
                r = int(a == b)
            elif op == 0x9E:
                r = int(a != b)
            elif op == 0x9F:
                r = int(a < b)
            elif op == 0xA0:
                r = int(a > b)
            elif op == 0xA1:
                r = int(a <= b)
            elif op == 0xA2:
                r = int(a >= b)
            elif op == 0xA3:
                r = min(a, b)
            elif op == 0xA4:
                r = max(a, b)
            else:
                raise ScriptError(E_BAD_OPCODE)
            if op == 0x9D:
                if not r:
                    raise ScriptError(E_NUMEQUALVERIFY)
            else:
                S.append(encode_script_num(r))
        elif op == 0xA5:  # WITHIN
            if len(S) < 3:
                raise ScriptError(E_INVALID_STACK)
            hi = popnum()
            lo = popnum()
            x = popnum()
            S.append(_TRUE if lo <= x < hi else _FALSE)
        elif 0xA6 <= op <= 0xAA:  # hashes
            v = pop()
            if op == 0xA6:
                S.append(ripemd160(v))
            elif op == 0xA7:
                S.append(hashlib.sha1(v).digest())
            elif op == 0xA8:
                S.append(_sha256(v))
            elif op == 0xA9:
                S.append(_hash160(v))
            else:
                S.append(_sha256(_sha256(v)))
        elif op == 0xAB:  # CODESEPARATOR
            code_start = end
        elif op == 0xAC or op == 0xAD:  # CHECKSIG(VERIFY)
            if len(S) < 2:
                raise ScriptError(E_INVALID_STACK)
            pubkey = S.pop()
            sig = S.pop()
            ok = _checksig(sig, pubkey, script[code_start:], flags, ctx, sigversion)
            if op == 0xAC:
                S.append(_TRUE if ok else _FALSE)
            elif not ok:
                raise ScriptError(E_CHECKSIGVERIFY)
        elif op == 0xAE or op == 0xAF:  # CHECKMULTISIG(VERIFY)
            ok, op_count = _checkmultisig(S, script[code_start:], flags, ctx, sigversion, op_count)
            if op == 0xAE:
                S.append(_TRUE if ok else _FALSE)
            elif not ok:
                raise ScriptError(E_CHECKMULTISIGVERIFY)
        elif op == 0xB1:  # CHECKLOCKTIMEVERIFY
            if not flags & VERIFY_CHECKLOCKTIMEVERIFY:
                if flags & VERIFY_DISCOURAGE_UPGRADABLE_NOPS:
                    raise ScriptError(E_DISCOURAGE_NOPS)
                continue
            if not S:
                raise ScriptError(E_INVALID_STACK)
            n = _num(S[-1], minimal, 5)
            if n < 0:
                raise ScriptError(E_NEGATIVE_LOCKTIME)
            if ctx is None or not ctx.check_locktime(n):
                raise ScriptError(E_UNSATISFIED_LOCKTIME)
        elif op == 0xB2:  # CHECKSEQUENCEVERIFY
            if not flags & VERIFY_CHECKSEQUENCEVERIFY:
                if flags & VERIFY_DISCOURAGE_UPGRADABLE_NOPS:
                    raise ScriptError(E_DISCOURAGE_NOPS)
                continue
            if not S:
                raise ScriptError(E_INVALID_STACK)
            n = _num(S[-1], minimal, 5)
            if n < 0:
                raise ScriptError(E_NEGATIVE_LOCKTIME)
            if n & SEQ_DISABLE:
                continue  # disabled: behaves as a NOP
            if ctx is None or not ctx.check_sequence(n):
                raise ScriptError(E_UNSATISFIED_LOCKTIME)
        else:
            # OP_RESERVED, OP_VER, OP_VERIF, OP_VERNOTIF, OP_RESERVED1/2, OP_CHECKSIGADD, 0xbb+
            raise ScriptError(E_BAD_OPCODE)

        if len(S) + len(alt) > MAX_STACK:
            raise ScriptError(E_STACK_SIZE)

    if vexec:
        raise ScriptError(E_UNBALANCED_CONDITIONAL)


def _check_sig_encoding(sig: bytes, flags: int) -> None:
    if not sig:
        return
    if flags & (VERIFY_DERSIG | VERIFY_LOW_S | VERIFY_STRICTENC) and not _valid_sig_encoding(sig):
        raise ScriptError(E_SIG_DER)
    if flags & VERIFY_LOW_S and not _is_low_s(sig):
        raise ScriptError(E_SIG_HIGH_S)
    if flags & VERIFY_STRICTENC and not 1 <= (sig[-1] & 0x7F) <= 3:
        raise ScriptError(E_SIG_HASHTYPE)


def _check_pubkey_encoding(pk: bytes, flags: int, sigversion: int) -> None:
    if flags & VERIFY_STRICTENC and not _pubkey_encoding_ok(pk):
        raise ScriptError(E_PUBKEYTYPE)
    if flags & VERIFY_WITNESS_PUBKEYTYPE and sigversion == SIGVERSION_WITNESS_V0 and not (len(pk) == 33 and pk[0] in (2, 3)):
        raise ScriptError(E_WITNESS_PUBKEYTYPE)


def _checksig(sig: bytes, pubkey: bytes, code: bytes, flags: int, ctx: SpendContext | None, sigversion: int) -> bool:
    _check_sig_encoding(sig, flags)
    _check_pubkey_encoding(pubkey, flags, sigversion)
    ok = bool(sig) and ctx is not None and ctx.check_sig(sig, pubkey, code, sigversion)
    if not ok and sig and flags & VERIFY_NULLFAIL:
        raise ScriptError(E_SIG_NULLFAIL)
    return ok


def _checkmultisig(S: list[bytes], code: bytes, flags: int, ctx: SpendContext | None, sigversion: int, op_count: int) -> tuple[bool, int]:
    minimal = bool(flags & VERIFY_MINIMALDATA)
    i = 1
    if len(S) < i:
        raise ScriptError(E_INVALID_STACK)
    n_keys = _num(S[-i], minimal)
    if n_keys < 0 or n_keys > MAX_PUBKEYS:
        raise ScriptError(E_PUBKEY_COUNT)
    op_count += n_keys
    if op_count > MAX_OPS:
        raise ScriptError(E_OP_COUNT)
    ikey = i + 1
    ikey2 = n_keys + 2  # for NULLFAIL
    i += 1 + n_keys
    if len(S) < i:
        raise ScriptError(E_INVALID_STACK)
    n_sigs = _num(S[-i], minimal)
    if n_sigs < 0 or n_sigs > n_keys:
        raise ScriptError(E_SIG_COUNT)
    isig = i + 1
    i += 1 + n_sigs
    if len(S) < i:
        raise ScriptError(E_INVALID_STACK)
    ok = True
    while ok and n_sigs > 0:
        sig = S[-isig]
        pk = S[-ikey]
        _check_sig_encoding(sig, flags)
        _check_pubkey_encoding(pk, flags, sigversion)
        if sig and ctx is not None and ctx.check_sig(sig, pk, code, sigversion):
            isig += 1
            n_sigs -= 1
        ikey += 1
        n_keys -= 1
        if n_sigs > n_keys:
            ok = False
    # clean up, checking NULLFAIL on the signatures
    while i > 1:
        i -= 1
        if not ok and flags & VERIFY_NULLFAIL and ikey2 == 0 and S[-1]:
            raise ScriptError(E_SIG_NULLFAIL)
        if ikey2 > 0:
            ikey2 -= 1
        S.pop()
    # the extra (dummy) element
    if not S:
        raise ScriptError(E_INVALID_STACK)
    if flags & VERIFY_NULLDUMMY and S[-1]:
        raise ScriptError(E_SIG_NULLDUMMY)
    S.pop()
    return ok, op_count


# --------------------------------------------------------------------------------------------
# Spending an output


def _witness_program(spk: bytes) -> tuple[int, bytes] | None:
    n = len(spk)
    if not 4 <= n <= 42:
        return None
    op = spk[0]
    if op != 0 and not 0x51 <= op <= 0x60:
        return None
    if spk[1] + 2 != n:
        return None
    return (op - 0x50 if op else 0), spk[2:]


def _push_only(script: bytes) -> bool:
    for op, _d, _e in _ops(script):
        if op > 0x60:
            return False
    return True


def _verify_witness_program(version: int, program: bytes, witness: tuple[bytes, ...], flags: int, ctx: SpendContext, is_p2sh: bool) -> None:
    if version == 0:
        if len(program) == 32:
            if not witness:
                raise ScriptError(E_WITNESS_EMPTY)
            script = witness[-1]
            stack = list(witness[:-1])
            if _sha256(script) != program:
                raise ScriptError(E_WITNESS_MISMATCH)
        elif len(program) == 20:
            if len(witness) != 2:
                raise ScriptError(E_WITNESS_MISMATCH)
            script = b"\x76\xa9\x14" + program + b"\x88\xac"
            stack = list(witness)
        else:
            raise ScriptError(E_WITNESS_WRONG_LENGTH)
        if len(stack) > MAX_STACK:
            raise ScriptError(E_STACK_SIZE)
        for item in stack:
            if len(item) > MAX_ELEMENT_SIZE:
                raise ScriptError(E_PUSH_SIZE)
        eval_script(stack, script, flags, ctx, SIGVERSION_WITNESS_V0)
        if len(stack) != 1:
            raise ScriptError(E_CLEANSTACK)
        if not _cast_bool(stack[-1]):
            raise ScriptError(EVAL_FALSE)
        return
    if version == 1 and len(program) == 32 and not is_p2sh:
        raise ScriptError(E_TAPROOT)
    if version == 1 and program == P2A_SCRIPT[2:] and not is_p2sh:
        return  # pay-to-anchor: anyone can spend (policy wants an empty witness; not enforced)
    if flags & VERIFY_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM:
        raise ScriptError(E_DISCOURAGE_WITNESS)


def verify_input(
    tx: Transaction,
    index: int,
    script_pubkey: bytes,
    amount_sat: int,
    flags: int = STANDARD_FLAGS,
    cache: SighashCache | None = None,
) -> None:
    """Check that input ``index`` of ``tx`` may spend an output (``script_pubkey``,
    ``amount_sat``) under ``flags``. Raises ScriptError with bitcoind's reason."""
    txin = tx.inputs[index]
    ctx = SpendContext(tx, index, amount_sat, cache)
    witness = txin.witness
    script_sig = txin.script_sig
    if flags & VERIFY_SIGPUSHONLY and not _push_only(script_sig):
        raise ScriptError(E_SIG_PUSHONLY)

    wp = _witness_program(script_pubkey) if flags & VERIFY_WITNESS else None
    if wp is not None and not script_sig:
        # native segwit: skip evaluating the (empty) scriptSig and the program itself
        _verify_witness_program(wp[0], wp[1], witness, flags, ctx, False)
        return
    if wp is not None:
        raise ScriptError(E_WITNESS_MALLEATED)

    stack: list[bytes] = []
    eval_script(stack, script_sig, flags, ctx, SIGVERSION_BASE)
    stack_copy = list(stack) if flags & VERIFY_P2SH else []
    eval_script(stack, script_pubkey, flags, ctx, SIGVERSION_BASE)
    if not stack or not _cast_bool(stack[-1]):
        raise ScriptError(EVAL_FALSE)

    had_witness = False
    is_p2sh = len(script_pubkey) == 23 and script_pubkey[0] == 0xA9 and script_pubkey[1] == 0x14 and script_pubkey[22] == 0x87
    if flags & VERIFY_P2SH and is_p2sh:
        if not _push_only(script_sig):
            raise ScriptError(E_SIG_PUSHONLY)
        stack = stack_copy
        if not stack:
            raise ScriptError(EVAL_FALSE)
        redeem = stack.pop()
        eval_script(stack, redeem, flags, ctx, SIGVERSION_BASE)
        if not stack or not _cast_bool(stack[-1]):
            raise ScriptError(EVAL_FALSE)
        wp = _witness_program(redeem) if flags & VERIFY_WITNESS else None
        if wp is not None:
            if script_sig != bytes((len(redeem),)) + redeem:
                raise ScriptError(E_WITNESS_MALLEATED_P2SH)
            had_witness = True
            _verify_witness_program(wp[0], wp[1], witness, flags, ctx, True)
            stack = [_TRUE]

    if flags & VERIFY_CLEANSTACK and len(stack) != 1:
        raise ScriptError(E_CLEANSTACK)
    if flags & VERIFY_WITNESS and not had_witness and witness:
        raise ScriptError(E_WITNESS_UNEXPECTED)


def verify_input_policy(
    tx: Transaction,
    index: int,
    script_pubkey: bytes,
    amount_sat: int,
    cache: SighashCache | None = None,
) -> None:
    """Verify with the standard flags; on failure find out whether the consensus rules alone
    also fail. As in bitcoind, the reason is the standard-flags failure's; ``mandatory`` tells
    whether the consensus-only check failed too."""
    try:
        verify_input(tx, index, script_pubkey, amount_sat, STANDARD_FLAGS, cache)
    except ScriptError as err:
        try:
            verify_input(tx, index, script_pubkey, amount_sat, MANDATORY_FLAGS, cache)
        except ScriptError:
            err.mandatory = True
        else:
            err.mandatory = False
        raise err from None
