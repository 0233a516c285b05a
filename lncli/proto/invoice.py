"""BOLT 11: invoices (payment requests) for Lightning payments.

``decode(text)`` checks the bech32 checksum, the human-readable part (currency prefix and amount),
every tagged field and the signature, and returns a frozen :class:`Invoice`.
``encode(...)`` builds and signs an invoice; given the same inputs it always gives the same string
(libsecp256k1 signs with RFC 6979 nonces).

Reader rules chosen where the spec leaves room or has changed (see tests/proto/test_invoice.py):

* ``p``, ``h``, ``s`` or ``n`` with the wrong ``data_length`` fails the invoice (the current reader
  rule since lightning/bolts#1243; older text said to skip such fields).
* Without ``n`` the payee key is recovered with plain libsecp256k1 recovery, which accepts high-S
  signatures as they are (no normalisation). With ``n`` the signature must be low-S and verify.
* ``x``, ``c`` and ``9`` with a leading zero field element fail (the spec's SHOULD).
* An ``f`` field with an unknown version (19..31) is skipped and kept in ``unknown_fields``.
* When a field type appears more than once, the first one is used (the writer puts the preferred
  one first); ``f`` and ``r`` are lists.

The data part is handled as one big integer (5 bits per character), so fields are cut out with
shifts and masks; the bech32 checksum uses a table that consumes two characters per step.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from lncli.bitcoin.address import base58check_encode, encode_segwit_address, get_network
from lncli.errors import DecodeError, InputError
from lncli.proto.features import Features, feature_name
from lncli.proto.scid import ShortChannelId


class InvoiceError(DecodeError):
    """The text is not a valid BOLT 11 invoice."""


class InvoiceNetworkError(InvoiceError):
    """A valid invoice, but for another network than the one expected."""


# --------------------------------------------------------------------------------------------
# constants

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

#: currency prefix (after ``ln``) -> network name
NETWORKS = {"bc": "bitcoin", "tb": "testnet", "tbs": "signet", "bcrt": "regtest"}
_NETWORK_ALIASES = {"mainnet": "bitcoin", "main": "bitcoin", "bitcoin": "bitcoin", "testnet": "testnet",
                    "testnet3": "testnet", "signet": "signet", "regtest": "regtest"}
# longest first, so that lnbcrt is not read as lnbc + amount
_PREFIXES = (("lnbcrt", "bcrt"), ("lntbs", "tbs"), ("lnbc", "bc"), ("lntb", "tb"))
_ADDRESS_NETWORK = {currency: get_network(name) for currency, name in NETWORKS.items()}

# millisatoshi per unit of the amount, by multiplier letter ('' = whole bitcoin); p is handled apart
_MSAT_PER_UNIT = {"": 100_000_000_000, "m": 100_000_000, "u": 100_000, "n": 100}
_MAX_AMOUNT_DIGITS = 30
_U64_LIMIT = 1 << 64

DEFAULT_EXPIRY = 3600
DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA = 18


# tagged field types (the 5-bit value of the tag letter)
TAG_P, TAG_S, TAG_D, TAG_M, TAG_N, TAG_H = 1, 16, 13, 27, 19, 23
TAG_X, TAG_C, TAG_F, TAG_R, TAG_9 = 6, 24, 9, 3, 5
_FIXED_LENGTH = {TAG_P: (52, "p (payment_hash)"), TAG_S: (52, "s (payment_secret)"),
                 TAG_H: (52, "h (description_hash)"), TAG_N: (53, "n (payee pubkey)")}

_SIGNATURE_WORDS = 104  # 520 bits
_TIMESTAMP_WORDS = 7  # 35 bits
_CHECKSUM_WORDS = 6
_MIN_DATA_CHARS = _TIMESTAMP_WORDS + _SIGNATURE_WORDS + _CHECKSUM_WORDS
_MAX_FIELD_WORDS = 1023

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

_HOP = struct.Struct(">33sQIIH")  # pubkey, short_channel_id, fee_base, fee_proportional, cltv

# bytes.translate tables: character -> 5-bit value (0xff when not in the charset), and
# character -> the digit of the same value in Python's base-32 alphabet (0-9a-v), for int(x, 32).
_B32_DIGITS = "0123456789abcdefghijklmnopqrstuv"
_TO_VALUE = bytearray([0xFF]) * 256
_TO_DIGIT = bytearray(b"!") * 256
for _v, _ch in enumerate(CHARSET):
    _TO_VALUE[ord(_ch)] = _v
    _TO_DIGIT[ord(_ch)] = ord(_B32_DIGITS[_v])
_TO_VALUE = bytes(_TO_VALUE)
_TO_DIGIT = bytes(_TO_DIGIT)

# --------------------------------------------------------------------------------------------
# bech32 checksum, two characters per step

_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_T5 = [0] * 32
for _top in range(32):
    for _i in range(5):
        if (_top >> _i) & 1:
            _T5[_top] ^= _GEN[_i]
# Effect of shifting out the top 10 bits (two 5-bit steps) of the 30-bit state.
_T10 = [((_T5[_a] & 0x1FFFFFF) << 5) ^ _T5[_b ^ (_T5[_a] >> 25)] for _a in range(32) for _b in range(32)]
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3


def _polymod(values: bytes | list[int]) -> int:
    """The BIP 173 checksum polynomial over 5-bit values (same result as bech32.bech32_polymod)."""
    chk = 1
    t10 = _T10
    start = len(values) & 1
    if start:
        chk = ((chk & 0x1FFFFFF) << 5) ^ values[0] ^ _T5[chk >> 25]
    it = iter(values[start:])
    for v1, v2 in zip(it, it):
        chk = ((chk & 0xFFFFF) << 10) ^ (v1 << 5 | v2) ^ t10[chk >> 20]
    return chk


def _hrp_expand(hrp: str) -> bytes:
    raw = hrp.encode("ascii")
    return bytes(c >> 5 for c in raw) + b"\x00" + bytes(c & 31 for c in raw)


def _checksum(hrp: str, values: bytes, const: int) -> bytes:
    mod = _polymod(_hrp_expand(hrp) + values + b"\x00" * 6) ^ const
    return bytes((mod >> 5 * (5 - i)) & 31 for i in range(6))


def _to_words(data: bytes) -> bytes:
    """8-bit bytes -> 5-bit values, zero padded."""
    nbits = 8 * len(data)
    nwords = -(-nbits // 5)
    value = int.from_bytes(data, "big") << (5 * nwords - nbits)
    return _int_to_words(value, nwords)


def _int_to_words(value: int, nwords: int) -> bytes:
    return bytes((value >> 5 * (nwords - 1 - i)) & 31 for i in range(nwords))


# --------------------------------------------------------------------------------------------
# addresses (fallbacks)

def _fallback_problem(version: int, program: bytes) -> str | None:
    n = len(program)
    if version in (17, 18):
        return None if n == 20 else f"a version {version} fallback needs a 20-byte hash, not {n} bytes"
    if version == 0:
        return None if n in (20, 32) else f"a witness v0 fallback program must be 20 or 32 bytes, not {n}"
    if 1 <= version <= 16:
        return None if 2 <= n <= 40 else f"a witness v{version} fallback program must be 2..40 bytes, not {n}"
    return f"fallback version {version} is unknown"


def fallback_address(currency: str, version: int, program: bytes) -> str:
    """The on-chain address of a fallback (17 = P2PKH, 18 = P2SH, 0..16 = segwit) on ``currency``."""
    net = _ADDRESS_NETWORK[currency]
    if version == 17:
        return base58check_encode(bytes([net.p2pkh_version]) + program)
    if version == 18:
        return base58check_encode(bytes([net.p2sh_version]) + program)
    return encode_segwit_address(net.hrp, version, program)


# --------------------------------------------------------------------------------------------
# data classes


@dataclass(frozen=True)
class Fallback:
    """An ``f`` field: on-chain fallback. ``version`` 17 = P2PKH, 18 = P2SH, 0..16 = witness version."""

    version: int
    program: bytes
    address: str

    @property
    def kind(self) -> str:
        if self.version == 17:
            return "p2pkh"
        if self.version == 18:
            return "p2sh"
        if self.version == 0:
            return "p2wpkh" if len(self.program) == 20 else "p2wsh"
        if self.version == 1 and len(self.program) == 32:
            return "p2tr"
        return f"witness_v{self.version}"

    def to_json(self) -> dict:
        return {"address": self.address, "version": self.version, "type": self.kind,
                "program": self.program.hex()}


@dataclass(frozen=True)
class RouteHintHop:
    """One entry of an ``r`` field: the channel from ``pubkey`` towards the payee."""

    pubkey: bytes
    short_channel_id: int
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int

    def to_json(self) -> dict:
        return {"pubkey": self.pubkey.hex(), "short_channel_id": str(ShortChannelId.from_int(self.short_channel_id)),
                "fee_base_msat": self.fee_base_msat,
                "fee_proportional_millionths": self.fee_proportional_millionths,
                "cltv_expiry_delta": self.cltv_expiry_delta}


@dataclass(frozen=True)
class UnknownField:
    """A tagged field this reader does not interpret: its tag letter and its data as bech32 text."""

    tag: str
    data: str

    def to_json(self) -> dict:
        return {"tag": self.tag, "data": self.data, "data_length": len(self.data)}


@dataclass(frozen=True)
class Invoice:
    currency: str  # "bc", "tb", "tbs" or "bcrt" (the prefix after "ln")
    amount_msat: int | None
    timestamp: int
    payment_hash: bytes
    payment_secret: bytes
    description: str | None
    description_hash: bytes | None
    expiry: int
    min_final_cltv_expiry_delta: int
    fallbacks: tuple[Fallback, ...]
    route_hints: tuple[tuple[RouteHintHop, ...], ...]
    features: frozenset[int]
    payment_metadata: bytes | None
    payee: bytes  # 33-byte node id: from the n field, or recovered from the signature
    payee_in_invoice: bool  # True when an n field carried it
    signature: bytes  # 64 bytes r || s, as transmitted
    recovery_id: int
    unknown_fields: tuple[UnknownField, ...]

    @property
    def network(self) -> str:
        return NETWORKS[self.currency]

    @property
    def expires_at(self) -> int:
        return self.timestamp + self.expiry

    @property
    def feature_names(self) -> dict[int, str | None]:
        """Every set bit, with its BOLT 9 name (None for an unknown, necessarily odd, bit)."""
        return {bit: feature_name(bit) for bit in sorted(self.features)}

    def to_json(self) -> dict:
        return {
            "currency": self.currency,
            "network": self.network,
            "amount_msat": self.amount_msat,
            "timestamp": self.timestamp,
            "expiry": self.expiry,
            "expires_at": self.expires_at,
            "payment_hash": self.payment_hash.hex(),
            "payment_secret": self.payment_secret.hex(),
            "description": self.description,
            "description_hash": None if self.description_hash is None else self.description_hash.hex(),
            "min_final_cltv_expiry_delta": self.min_final_cltv_expiry_delta,
            "fallbacks": [f.to_json() for f in self.fallbacks],
            "route_hints": [[hop.to_json() for hop in route] for route in self.route_hints],
            "features": {str(bit): name for bit, name in self.feature_names.items()},
            "payment_metadata": None if self.payment_metadata is None else self.payment_metadata.hex(),
            "payee": self.payee.hex(),
            "payee_in_invoice": self.payee_in_invoice,
            "signature": self.signature.hex(),
            "recovery_id": self.recovery_id,
            "unknown_fields": [u.to_json() for u in self.unknown_fields],
            "signature_valid": True,
        }


# --------------------------------------------------------------------------------------------
# decoding


def _parse_hrp(hrp: str) -> tuple[str, int | None]:
    if not hrp.startswith("ln"):
        raise InvoiceError(f"not a Lightning invoice: the prefix {hrp!r} does not start with 'ln'")
    for prefix, currency in _PREFIXES:  # noqa: B007 - the match is used after the loop
        if hrp.startswith(prefix):
            rest = hrp[len(prefix):]
            if not rest or rest[0].isdigit():
                break
    else:
        raise InvoiceError(f"unknown currency prefix in {hrp!r} (known: lnbc, lntb, lntbs, lnbcrt)")
    if not rest:
        return currency, None
    multiplier = rest[-1] if not rest[-1].isdigit() else ""
    digits = rest[: len(rest) - len(multiplier)]
    if not (digits.isascii() and digits.isdigit()):
        raise InvoiceError(f"invalid amount {rest!r}: expected digits and an optional multiplier m/u/n/p")
    if multiplier and multiplier not in "munp":
        raise InvoiceError(f"invalid amount multiplier {multiplier!r} (must be m, u, n or p)")
    if digits[0] == "0":
        raise InvoiceError(f"invalid amount {rest!r}: must be a positive number without leading zeros")
    if len(digits) > _MAX_AMOUNT_DIGITS:
        raise InvoiceError(f"amount {rest!r} is too large")
    number = int(digits)
    if multiplier == "p":
        if number % 10:
            raise InvoiceError(f"amount {rest!r} has sub-millisatoshi precision (a p amount must end in 0)")
        msat = number // 10
    else:
        msat = number * _MSAT_PER_UNIT[multiplier]
    if msat >= _U64_LIMIT:
        raise InvoiceError(f"amount {rest!r} is too large")
    return currency, msat


def _expected_currency(network_hint: str) -> str:
    hint = network_hint.lower()
    if hint in NETWORKS:
        return hint
    if hint in _NETWORK_ALIASES:
        name = _NETWORK_ALIASES[hint]
        return next(c for c, n in NETWORKS.items() if n == name)
    raise InvoiceError(f"unknown network {network_hint!r} (bitcoin, testnet, signet, regtest)")


def _minimal_int(name: str, words: bytes, value: int) -> int:
    if words and words[0] == 0:
        raise InvoiceError(f"the {name} field is not minimally encoded (it starts with a zero)")
    if value >= _U64_LIMIT:
        raise InvoiceError(f"the {name} field is larger than 64 bits")
    return value


def decode(invoice: str, *, network_hint: str | None = None) -> Invoice:
    """Decode and verify a BOLT 11 invoice.

    ``network_hint`` (bitcoin/mainnet, testnet, signet, regtest, or a currency prefix like ``tb``),
    when given, makes an invoice for any other network fail with :class:`InvoiceNetworkError`.
    Raises :class:`InvoiceError` (a DecodeError) with the reason on any invalid input.
    """
    if not isinstance(invoice, str):
        raise InvoiceError("an invoice must be text")
    if invoice[:10].lower() == "lightning:":
        invoice = invoice[10:]
    if not invoice.isascii():
        raise InvoiceError("invalid character in invoice: only ASCII bech32 text is allowed")
    lower = invoice.lower()
    if lower != invoice and invoice.upper() != invoice:
        raise InvoiceError("malformed bech32: mixed upper and lower case")
    sep = lower.rfind("1")
    if sep < 1:
        raise InvoiceError("malformed bech32: no '1' separator after the prefix")
    hrp = lower[:sep]
    data = lower[sep + 1:].encode("ascii")
    for c in hrp:
        if not 33 <= ord(c) <= 126:
            raise InvoiceError(f"invalid character {c!r} in the invoice prefix")
    if len(data) < _MIN_DATA_CHARS:
        raise InvoiceError(f"invoice is too short: {len(data)} data characters, at least {_MIN_DATA_CHARS} needed "
                           "for timestamp, signature and checksum")
    values = data.translate(_TO_VALUE)
    if b"\xff" in values:
        bad = chr(data[values.index(b"\xff")])
        raise InvoiceError(f"invalid bech32 character {bad!r} in the data part")
    check = _polymod(_hrp_expand(hrp) + values)
    if check != _BECH32_CONST:
        if check == _BECH32M_CONST:
            raise InvoiceError("bad checksum: this is bech32m, invoices use bech32")
        raise InvoiceError("bad bech32 checksum")

    currency, amount_msat = _parse_hrp(hrp)
    if network_hint is not None:
        expected = _expected_currency(network_hint)
        if expected != currency:
            raise InvoiceNetworkError(
                f"the invoice is for {NETWORKS[currency]} (ln{currency}), not {NETWORKS[expected]}")

    nwords = len(values) - _CHECKSUM_WORDS
    big = int(data[:nwords].translate(_TO_DIGIT), 32)
    end = nwords - _SIGNATURE_WORDS
    timestamp = big >> 5 * (nwords - _TIMESTAMP_WORDS)

    payment_hash = payment_secret = description = description_hash = None
    payment_metadata = payee_n = expiry = min_cltv = features = None
    fallbacks: list[Fallback] = []
    route_hints: list[tuple[RouteHintHop, ...]] = []
    unknown: list[UnknownField] = []

    i = _TIMESTAMP_WORDS
    while i < end:
        if i + 3 > end:
            raise InvoiceError("truncated tagged field: header runs into the signature")
        tag = values[i]
        length = values[i + 1] << 5 | values[i + 2]
        i += 3
        stop = i + length
        if stop > end:
            raise InvoiceError(f"tagged field {CHARSET[tag]!r} of data_length {length} runs into the signature")
        nbits = 5 * length
        value = (big >> 5 * (nwords - stop)) & ((1 << nbits) - 1)
        nbytes = nbits >> 3
        fixed = _FIXED_LENGTH.get(tag)
        if fixed is not None:
            if length != fixed[0]:
                raise InvoiceError(f"{fixed[1]} field has data_length {length}, must be {fixed[0]}")
            raw = (value >> (nbits & 7)).to_bytes(nbytes, "big")
            if tag == TAG_P:
                payment_hash = payment_hash or raw
            elif tag == TAG_S:
                payment_secret = payment_secret or raw
            elif tag == TAG_H:
                description_hash = description_hash or raw
            elif payee_n is None:
                payee_n = raw
        elif tag == TAG_D:
            if description is None:
                try:
                    description = (value >> (nbits & 7)).to_bytes(nbytes, "big").decode("utf-8")
                except UnicodeDecodeError:
                    raise InvoiceError("d (description) field is not valid UTF-8") from None
        elif tag == TAG_X:
            if expiry is None:
                expiry = _minimal_int("x (expiry)", values[i:stop], value)
        elif tag == TAG_C:
            if min_cltv is None:
                min_cltv = _minimal_int("c (min_final_cltv_expiry_delta)", values[i:stop], value)
        elif tag == TAG_9:
            if features is None:
                if length and values[i] == 0:
                    raise InvoiceError("9 (features) field is not minimally encoded (it starts with a zero)")
                bits = []
                while value:
                    low = value & -value
                    bits.append(low.bit_length() - 1)
                    value ^= low
                features = frozenset(bits)
        elif tag == TAG_M:
            if payment_metadata is None:
                payment_metadata = (value >> (nbits & 7)).to_bytes(nbytes, "big")
        elif tag == TAG_F:
            if length == 0:
                raise InvoiceError("empty f (fallback) field")
            version = values[i]
            pbits = nbits - 5
            program = ((value & ((1 << pbits) - 1)) >> (pbits & 7)).to_bytes(pbits >> 3, "big")
            if version > 18:
                unknown.append(UnknownField("f", data[i:stop].decode()))
            else:
                problem = _fallback_problem(version, program)
                if problem:
                    raise InvoiceError(problem)
                fallbacks.append(Fallback(version, program, fallback_address(currency, version, program)))
        elif tag == TAG_R:
            if nbytes == 0 or nbytes % _HOP.size:
                raise InvoiceError(f"r (route hint) field of {nbytes} bytes is not a whole number of "
                                   f"{_HOP.size}-byte hops")
            raw = (value >> (nbits & 7)).to_bytes(nbytes, "big")
            route_hints.append(tuple(RouteHintHop(*hop) for hop in _HOP.iter_unpack(raw)))
        else:
            unknown.append(UnknownField(CHARSET[tag], data[i:stop].decode()))
        i = stop

    if payment_hash is None:
        raise InvoiceError("missing required p (payment_hash) field")
    if payment_secret is None:
        raise InvoiceError("missing required s (payment_secret) field")
    if description is None and description_hash is None:
        raise InvoiceError("missing description: an invoice needs a d or an h field")
    if description is not None and description_hash is not None:
        raise InvoiceError("an invoice must not have both a d (description) and an h (description_hash) field")
    features = features or frozenset()
    unknown_bits = Features.from_bits(features).unknown_required("9", None)
    if unknown_bits:
        raise InvoiceError(f"unknown required feature bit {unknown_bits[0]} in the 9 field")
    if features & {16, 17} and not features & {14, 15}:
        raise InvoiceError("feature basic_mpp is set without its dependency payment_secret")

    # signature: the 520 low bits; the signed message is the hrp and the rest, zero padded
    sig = (big & ((1 << 520) - 1)).to_bytes(65, "big")
    recovery_id = sig[64]
    if recovery_id > 3:
        raise InvoiceError(f"signature recovery id {recovery_id} is not in 0..3")
    mbits = 5 * end
    pad = -mbits & 7
    message = hrp.encode() + ((big >> 520) << pad).to_bytes((mbits + pad) >> 3, "big")
    digest = hashlib.sha256(message).digest()
    if payee_n is not None:
        if int.from_bytes(sig[32:64], "big") > _HALF_N:
            raise InvoiceError("non-canonical (high-S) signature with an n field: it must be low-S")
        try:
            key = PublicKey(payee_n)
        except Exception:
            raise InvoiceError("n (payee pubkey) field is not a valid public key") from None
        try:
            ok = key.verify(cdata_to_der(deserialize_compact(sig[:64])), digest, hasher=None)
        except Exception:
            ok = False
        if not ok:
            raise InvoiceError("signature does not verify against the n (payee pubkey) field")
        payee = payee_n
    else:
        try:
            payee = PublicKey.from_signature_and_message(sig, digest, hasher=None).format()
        except Exception:
            raise InvoiceError("signature is not recoverable: no public key matches it") from None

    return Invoice(
        currency=currency,
        amount_msat=amount_msat,
        timestamp=timestamp,
        payment_hash=payment_hash,
        payment_secret=payment_secret,
        description=description,
        description_hash=description_hash,
        expiry=DEFAULT_EXPIRY if expiry is None else expiry,
        min_final_cltv_expiry_delta=DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA if min_cltv is None else min_cltv,
        fallbacks=tuple(fallbacks),
        route_hints=tuple(route_hints),
        features=features,
        payment_metadata=payment_metadata,
        payee=payee,
        payee_in_invoice=payee_n is not None,
        signature=sig[:64],
        recovery_id=recovery_id,
        unknown_fields=tuple(unknown),
    )


# --------------------------------------------------------------------------------------------
# encoding


def amount_text(amount_msat: int) -> str:
    """The shortest HRP amount for ``amount_msat``: the largest multiplier that keeps an integer."""
    if amount_msat <= 0:
        raise InputError("an invoice amount must be positive (leave it out for 'any amount')")
    for letter, unit in _MSAT_PER_UNIT.items():
        if amount_msat % unit == 0:
            return f"{amount_msat // unit}{letter}"
    return f"{amount_msat * 10}p"


def _uint_words(value: int) -> bytes:
    """Minimal big-endian 5-bit words (no leading zero); 0 is the empty field."""
    nwords = -(-value.bit_length() // 5)
    return _int_to_words(value, nwords)


def encode(
    *,
    privkey: bytes,
    timestamp: int,
    payment_hash: bytes,
    payment_secret: bytes,
    network: str = "bitcoin",
    amount_msat: int | None = None,
    description: str | None = None,
    description_hash: bytes | None = None,
    expiry: int = DEFAULT_EXPIRY,
    min_final_cltv_expiry_delta: int = DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA,
    fallbacks: tuple = (),
    route_hints: tuple = (),
    features: frozenset[int] | set[int] = frozenset({8, 14}),
    payment_metadata: bytes | None = None,
    include_payee: bool = False,
    unknown_fields: tuple = (),
) -> str:
    """Build and sign a BOLT 11 invoice (lower case).

    Fields are written in the spec's order p, s, d, m, n, h, x, c, f, r, 9, then ``unknown_fields``;
    ``x`` only when ``expiry`` differs from the default 3600, ``c`` always (the writer MUST),
    ``9`` only when a bit is set. ``fallbacks`` holds :class:`Fallback` or ``(version, program)``;
    ``route_hints`` holds sequences of :class:`RouteHintHop`; ``unknown_fields`` holds
    :class:`UnknownField`. Deterministic: the same inputs give the same string.
    """
    currency = _expected_currency(network)
    hrp = "ln" + currency + ("" if amount_msat is None else amount_text(amount_msat))
    if not 0 <= timestamp < 1 << 35:
        raise InputError("timestamp must fit in 35 bits")
    if len(payment_hash) != 32 or len(payment_secret) != 32:
        raise InputError("payment_hash and payment_secret must be 32 bytes")
    if (description is None) == (description_hash is None):
        raise InputError("give exactly one of description and description_hash")
    if description_hash is not None and len(description_hash) != 32:
        raise InputError("description_hash must be 32 bytes")

    fields: list[tuple[int, bytes]] = [(TAG_P, _to_words(payment_hash)), (TAG_S, _to_words(payment_secret))]
    if description is not None:
        fields.append((TAG_D, _to_words(description.encode("utf-8"))))
    if payment_metadata is not None:
        fields.append((TAG_M, _to_words(payment_metadata)))
    try:
        signer = PrivateKey(privkey)
    except Exception:
        raise InputError("privkey must be a valid 32-byte secp256k1 secret key") from None
    if include_payee:
        fields.append((TAG_N, _to_words(signer.public_key.format())))
    if description_hash is not None:
        fields.append((TAG_H, _to_words(description_hash)))
    for name, value in (("expiry", expiry), ("min_final_cltv_expiry_delta", min_final_cltv_expiry_delta)):
        if not 0 <= value < _U64_LIMIT:
            raise InputError(f"{name} must be a non-negative 64-bit integer")
    if expiry != DEFAULT_EXPIRY:
        fields.append((TAG_X, _uint_words(expiry)))
    fields.append((TAG_C, _uint_words(min_final_cltv_expiry_delta)))
    for fb in fallbacks:
        version, program = (fb.version, fb.program) if isinstance(fb, Fallback) else fb
        problem = _fallback_problem(version, program)
        if problem:
            raise InputError(problem)
        fields.append((TAG_F, bytes([version]) + _to_words(program)))
    for route in route_hints:
        if not route:
            raise InputError("a route hint needs at least one hop")
        try:
            raw = b"".join(_HOP.pack(h.pubkey, h.short_channel_id, h.fee_base_msat,
                                     h.fee_proportional_millionths, h.cltv_expiry_delta) for h in route)
        except struct.error as e:
            raise InputError(f"route hint hop out of range: {e}") from None
        if any(len(h.pubkey) != 33 for h in route):
            raise InputError("a route hint pubkey must be 33 bytes")
        fields.append((TAG_R, _to_words(raw)))
    features = frozenset(features)
    if any(b < 0 for b in features):
        raise InputError("feature bits must be non-negative")
    if features:
        fields.append((TAG_9, _uint_words(sum(1 << b for b in features))))
    for u in unknown_fields:
        if len(u.tag) != 1 or u.tag not in CHARSET or any(c not in CHARSET for c in u.data):
            raise InputError(f"unknown field {u.tag!r}: tag and data must be lower-case bech32 characters")
        words = bytes(CHARSET.index(c) for c in u.data)
        fields.append((CHARSET.index(u.tag), words))

    parts = [_int_to_words(timestamp, _TIMESTAMP_WORDS)]
    for tag, words in fields:
        if len(words) > _MAX_FIELD_WORDS:
            raise InputError(f"field {CHARSET[tag]!r} is too long ({len(words)} > {_MAX_FIELD_WORDS} "
                             "5-bit words); use description_hash for long descriptions")
        parts.append(bytes([tag, len(words) >> 5, len(words) & 31]) + words)
    values = b"".join(parts)
    nbits = 5 * len(values)
    pad = -nbits & 7
    packed = int(values.translate(_TO_B32_FROM_VALUE), 32) if values else 0
    message = hrp.encode() + (packed << pad).to_bytes((nbits + pad) >> 3, "big")
    sig = signer.sign_recoverable(hashlib.sha256(message).digest(), hasher=None)
    values += _to_words(sig)
    values += _checksum(hrp, values, _BECH32_CONST)
    return hrp + "1" + values.translate(_VALUE_TO_CHAR).decode()


_TO_B32_FROM_VALUE = bytes(ord(_B32_DIGITS[v]) if v < 32 else 0 for v in range(256))
_VALUE_TO_CHAR = bytes(ord(CHARSET[v]) if v < 32 else 0 for v in range(256))
