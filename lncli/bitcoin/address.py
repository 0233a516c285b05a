"""Bitcoin addresses: segwit (BIP 173 bech32 for v0, BIP 350 bech32m for v1+) and base58check
P2PKH / P2SH, for mainnet, testnet, testnet4, signet and regtest.

``address_to_script(addr, network)`` gives the output script an address pays to, and raises
``WrongNetworkError`` (a DecodeError) naming the network when the address is valid but for a
different network. ``script_to_address(script, network)`` goes the other way.

Testnet, testnet4 and signet share the ``tb`` prefix and base58 versions; regtest uses ``bcrt``
for segwit but the testnet base58 versions, so an ``m…``/``n…``/``2…`` address is valid on all
four test networks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bech32 import CHARSET, bech32_hrp_expand, bech32_polymod, convertbits

from lncli.bitcoin.script import (
    classify,
    p2pkh_script,
    p2sh_script_from_hash,
    witness_program,
    witness_program_script,
)
from lncli.errors import DecodeError, InputError

__all__ = [
    "Network",
    "NETWORKS",
    "get_network",
    "WrongNetworkError",
    "encode_segwit_address",
    "decode_segwit_address",
    "bech32_encode",
    "bech32_decode",
    "base58_encode",
    "base58_decode",
    "base58check_encode",
    "base58check_decode",
    "DecodedAddress",
    "decode_address",
    "address_to_script",
    "script_to_address",
]


@dataclass(frozen=True)
class Network:
    name: str
    hrp: str
    p2pkh_version: int
    p2sh_version: int


NETWORKS: dict[str, Network] = {
    "bitcoin": Network("bitcoin", "bc", 0x00, 0x05),
    "testnet": Network("testnet", "tb", 0x6F, 0xC4),
    "testnet4": Network("testnet4", "tb", 0x6F, 0xC4),
    "signet": Network("signet", "tb", 0x6F, 0xC4),
    "regtest": Network("regtest", "bcrt", 0x6F, 0xC4),
}
_ALIASES = {"mainnet": "bitcoin", "main": "bitcoin", "test": "testnet", "testnet3": "testnet"}


def get_network(network: str | Network) -> Network:
    """Look up a network by name (bitcoin/mainnet, testnet, testnet4, signet, regtest)."""
    if isinstance(network, Network):
        return network
    key = network.lower()
    net = NETWORKS.get(_ALIASES.get(key, key))
    if net is None:
        raise InputError(
            f"unknown network {network!r}: expected one of {', '.join(NETWORKS)}"
        )
    return net


class WrongNetworkError(DecodeError):
    """A well-formed address of another network than the one asked for."""


# ---------------------------------------------------------------------------------------------
# bech32 / bech32m

BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}


def bech32_encode(hrp: str, data: list[int], bech32m: bool) -> str:
    """Encode 5-bit ``data`` under ``hrp`` with a bech32 (or bech32m) checksum."""
    const = BECH32M_CONST if bech32m else BECH32_CONST
    polymod = bech32_polymod(bech32_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def bech32_decode(text: str, max_length: int = 90) -> tuple[str, list[int], bool]:
    """Decode a bech32 or bech32m string into ``(hrp, data, is_bech32m)``.

    ``hrp`` is lower case, ``data`` the 5-bit values without checksum. Raises DecodeError.
    """
    if len(text) > max_length:
        raise DecodeError(f"bech32 string too long ({len(text)} > {max_length} characters)")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise DecodeError("bech32 string has a character outside the printable ASCII range")
    if text.lower() != text and text.upper() != text:
        raise DecodeError("bech32 string mixes upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 0:
        raise DecodeError("bech32 string has no '1' separator")
    if pos == 0:
        raise DecodeError("bech32 string has an empty human-readable part")
    if pos + 7 > len(text):
        raise DecodeError("bech32 checksum too short")
    hrp = text[:pos]
    try:
        data = [_CHARSET_REV[c] for c in text[pos + 1 :]]
    except KeyError as e:
        raise DecodeError(f"invalid bech32 data character {e.args[0]!r}") from None
    check = bech32_polymod(bech32_hrp_expand(hrp) + data)
    if check == BECH32_CONST:
        return hrp, data[:-6], False
    if check == BECH32M_CONST:
        return hrp, data[:-6], True
    raise DecodeError("invalid bech32 checksum")


def encode_segwit_address(hrp: str, version: int, program: bytes) -> str:
    """A segwit address: bech32 for version 0, bech32m for versions 1..16."""
    witness_program_script(version, program)  # validates version and program length
    if version == 0 and len(program) not in (20, 32):
        raise ValueError("a version 0 witness program must be 20 or 32 bytes")
    data = [version] + convertbits(program, 8, 5, True)
    return bech32_encode(hrp, data, bech32m=version != 0)


def decode_segwit_address(address: str) -> tuple[str, int, bytes]:
    """Decode any segwit address into ``(hrp, version, program)``. Raises DecodeError."""
    hrp, data, is_m = bech32_decode(address)
    if not data:
        raise DecodeError("segwit address has an empty data part")
    version = data[0]
    if version > 16:
        raise DecodeError(f"invalid witness version {version}")
    if is_m != (version != 0):
        want, got = ("bech32m", "bech32") if version else ("bech32", "bech32m")
        raise DecodeError(f"witness version {version} needs a {want} checksum, not {got}")
    decoded = convertbits(data[1:], 5, 8, False)
    if decoded is None:
        raise DecodeError("segwit address has invalid padding")
    program = bytes(decoded)
    if not 2 <= len(program) <= 40:
        raise DecodeError(f"witness program of {len(program)} bytes (must be 2..40)")
    if version == 0 and len(program) not in (20, 32):
        raise DecodeError(f"version 0 witness program of {len(program)} bytes (must be 20 or 32)")
    return hrp, version, program


# ---------------------------------------------------------------------------------------------
# base58check

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_REV = {c: i for i, c in enumerate(_B58)}


def base58_encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def base58_decode(text: str) -> bytes:
    """Raises DecodeError on a character outside the base58 alphabet."""
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_REV[c]
        except KeyError:
            raise DecodeError(f"invalid base58 character {c!r}") from None
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def base58check_encode(payload: bytes) -> str:
    return base58_encode(payload + _checksum(payload))


def base58check_decode(text: str) -> bytes:
    """The payload (version byte included) of a base58check string. Raises DecodeError."""
    if len(text) > 120:
        raise DecodeError("base58 string too long")
    raw = base58_decode(text)
    if len(raw) < 5:
        raise DecodeError("base58check string too short")
    payload, check = raw[:-4], raw[-4:]
    if _checksum(payload) != check:
        raise DecodeError("invalid base58check checksum")
    return payload


# ---------------------------------------------------------------------------------------------
# Addresses <-> scripts


@dataclass(frozen=True)
class DecodedAddress:
    """An address decoded without a network: the script it pays to and where it is valid."""

    script_pubkey: bytes
    kind: str  # "p2pkh", "p2sh", or classify()'s kind for segwit
    networks: tuple[str, ...]


def _networks_for_hrp(hrp: str) -> tuple[str, ...]:
    return tuple(n.name for n in NETWORKS.values() if n.hrp == hrp)


def decode_address(address: str) -> DecodedAddress:
    """Decode any address we know of. Raises DecodeError if it is not a valid address on
    some network."""
    address = address.strip()
    if not address:
        raise DecodeError("empty address")
    if "1" in address and address.lower().startswith(("bc1", "tb1", "bcrt1")):
        hrp, version, program = decode_segwit_address(address)
        networks = _networks_for_hrp(hrp)
        if not networks:
            raise DecodeError(f"unknown segwit address prefix {hrp!r}")
        script = witness_program_script(version, program)
        return DecodedAddress(script, classify(script)[0], networks)
    try:
        payload = base58check_decode(address)
    except DecodeError as e:
        # a bech32 string with an unknown human-readable part?
        try:
            hrp, _, _ = bech32_decode(address)
        except DecodeError:
            raise DecodeError(f"not a valid address: {e}") from None
        raise DecodeError(f"unknown segwit address prefix {hrp!r}") from None
    if len(payload) != 21:
        raise DecodeError(f"base58 address payload is {len(payload) - 1} bytes, not 20")
    version, h = payload[0], payload[1:]
    p2pkh = tuple(n.name for n in NETWORKS.values() if n.p2pkh_version == version)
    if p2pkh:
        return DecodedAddress(p2pkh_script(h), "p2pkh", p2pkh)
    p2sh = tuple(n.name for n in NETWORKS.values() if n.p2sh_version == version)
    if p2sh:
        return DecodedAddress(p2sh_script_from_hash(h), "p2sh", p2sh)
    raise DecodeError(f"unknown base58 address version 0x{version:02x}")


def address_to_script(address: str, network: str | Network) -> bytes:
    """The script_pubkey ``address`` pays to on ``network``.

    Raises DecodeError for malformed addresses, and WrongNetworkError (a DecodeError) when the
    address is valid for another network.
    """
    net = get_network(network)
    decoded = decode_address(address)
    if net.name not in decoded.networks:
        raise WrongNetworkError(
            f"address {address.strip()} is for {'/'.join(decoded.networks)}, not {net.name}"
        )
    return decoded.script_pubkey


def script_to_address(script_pubkey: bytes, network: str | Network) -> str:
    """The address of an output script on ``network``. Raises InputError for scripts without
    an address form (bare multisig, P2PK, OP_RETURN, non-standard)."""
    net = get_network(network)
    kind, payload = classify(script_pubkey)
    if kind == "p2pkh":
        return base58check_encode(bytes((net.p2pkh_version,)) + payload)
    if kind == "p2sh":
        return base58check_encode(bytes((net.p2sh_version,)) + payload)
    wp = witness_program(script_pubkey)
    if wp is not None and kind != "nonstandard":
        return encode_segwit_address(net.hrp, wp[0], wp[1])
    raise InputError(f"a {kind} output script has no address: {script_pubkey.hex()}")
