"""BIP 32 hierarchical deterministic keys (private and public derivation, xprv/xpub encoding).

Pure: seeds and keys are parameters. ``master_key(seed)`` gives the root; ``derive_path(key,
"m/84'/1'/0'/0/5")`` walks a path (``'`` or ``h`` marks a hardened step). Checked against the
BIP 32 test vectors (tests/wallet/test_bip32.py).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey

from lncli.bitcoin.address import base58check_decode, base58check_encode
from lncli.bitcoin.ecdsa import CURVE_ORDER
from lncli.bitcoin.script import hash160
from lncli.errors import DecodeError, InputError

HARDENED = 0x80000000

# version bytes: (private, public)
VERSIONS = {
    "mainnet": (0x0488ADE4, 0x0488B21E),  # xprv / xpub
    "testnet": (0x04358394, 0x043587CF),  # tprv / tpub (also signet and regtest)
}
_VERSION_LOOKUP = {v: (net, i == 0) for net, pair in VERSIONS.items() for i, v in enumerate(pair)}


@dataclass(frozen=True)
class ExtendedKey:
    """An extended key. ``privkey`` is None for a public-only (neutered) key."""

    chain_code: bytes
    pubkey: bytes  # 33-byte compressed
    privkey: bytes | None = None
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0

    @property
    def is_private(self) -> bool:
        return self.privkey is not None

    @property
    def fingerprint(self) -> bytes:
        return hash160(self.pubkey)[:4]

    def neuter(self) -> ExtendedKey:
        return ExtendedKey(self.chain_code, self.pubkey, None, self.depth, self.parent_fingerprint, self.child_number)

    def child(self, index: int) -> ExtendedKey:
        """CKDpriv for a private key, CKDpub for a public one (hardened needs the private key)."""
        if not 0 <= index <= 0xFFFFFFFF:
            raise InputError(f"BIP32 child index out of range: {index}")
        if index >= HARDENED:
            if self.privkey is None:
                raise InputError("cannot derive a hardened child from a public key")
            data = b"\x00" + self.privkey + index.to_bytes(4, "big")
        else:
            data = self.pubkey + index.to_bytes(4, "big")
        digest = hmac.new(self.chain_code, data, hashlib.sha512).digest()
        il, ir = digest[:32], digest[32:]
        il_int = int.from_bytes(il, "big")
        if il_int >= CURVE_ORDER:
            raise ValueError("invalid BIP32 child (I_L >= n); use the next index")  # probability ~2^-127
        if self.privkey is not None:
            k = (il_int + int.from_bytes(self.privkey, "big")) % CURVE_ORDER
            if k == 0:
                raise ValueError("invalid BIP32 child (k = 0); use the next index")
            priv = k.to_bytes(32, "big")
            pub = PrivateKey(priv).public_key.format(compressed=True)
        else:
            priv = None
            pub = PublicKey(self.pubkey).add(il).format(compressed=True)
        return ExtendedKey(ir, pub, priv, self.depth + 1, self.fingerprint, index)

    def serialize(self, network: str = "mainnet", private: bool | None = None) -> str:
        """Base58check xprv/xpub (tprv/tpub off mainnet)."""
        private = self.is_private if private is None else private
        if private and self.privkey is None:
            raise InputError("a public extended key has no private serialization")
        pair = VERSIONS["mainnet" if network in ("mainnet", "bitcoin", "main") else "testnet"]
        version = pair[0] if private else pair[1]
        keydata = b"\x00" + self.privkey if private else self.pubkey
        payload = (
            struct.pack(">I", version)
            + bytes((self.depth,))
            + self.parent_fingerprint
            + struct.pack(">I", self.child_number)
            + self.chain_code
            + keydata
        )
        return base58check_encode(payload)


def master_key(seed: bytes) -> ExtendedKey:
    """The master key of ``seed`` (16 to 64 bytes): HMAC-SHA512 keyed with "Bitcoin seed"."""
    if not 16 <= len(seed) <= 64:
        raise InputError(f"a BIP32 seed is 16 to 64 bytes, got {len(seed)}")
    digest = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    il, ir = digest[:32], digest[32:]
    if not 0 < int.from_bytes(il, "big") < CURVE_ORDER:
        raise ValueError("invalid BIP32 master key for this seed")
    return ExtendedKey(ir, PrivateKey(il).public_key.format(compressed=True), il)


def parse_path(path: str) -> list[int]:
    """``m/84'/1'/0'/0/5`` -> child indexes (``'``, ``h`` or ``H`` mark hardened)."""
    parts = path.strip().split("/")
    if not parts or parts[0] not in ("m", "M"):
        raise InputError(f"a BIP32 path starts with m/: {path!r}")
    out = []
    for p in parts[1:]:
        hardened = p[-1:] in ("'", "h", "H")
        num = p[:-1] if hardened else p
        if not num.isdigit() or int(num) >= HARDENED:
            raise InputError(f"bad BIP32 path element {p!r} in {path!r}")
        out.append(int(num) + (HARDENED if hardened else 0))
    return out


def derive_path(key: ExtendedKey, path: str | list[int]) -> ExtendedKey:
    for index in parse_path(path) if isinstance(path, str) else path:
        key = key.child(index)
    return key


def parse_extended_key(text: str) -> tuple[ExtendedKey, str]:
    """Decode an xprv/xpub/tprv/tpub; returns ``(key, "mainnet" | "testnet")``. DecodeError if bad."""
    payload = base58check_decode(text.strip())
    if len(payload) != 78:
        raise DecodeError(f"an extended key is 78 bytes, got {len(payload)}")
    version = int.from_bytes(payload[:4], "big")
    if version not in _VERSION_LOOKUP:
        raise DecodeError(f"unknown extended key version 0x{version:08x}")
    net, private = _VERSION_LOOKUP[version]
    depth, fpr, child = payload[4], payload[5:9], int.from_bytes(payload[9:13], "big")
    chain_code, keydata = payload[13:45], payload[45:]
    if private:
        if keydata[0] != 0 or not 0 < int.from_bytes(keydata[1:], "big") < CURVE_ORDER:
            raise DecodeError("invalid private key in extended key")
        priv = keydata[1:]
        pub = PrivateKey(priv).public_key.format(compressed=True)
    else:
        try:
            pub = PublicKey(keydata).format(compressed=True)
        except Exception:
            raise DecodeError("invalid public key in extended key") from None
        if keydata[0] not in (2, 3):
            raise DecodeError("invalid public key in extended key")
        priv = None
    if depth == 0 and (fpr != bytes(4) or child != 0):
        raise DecodeError("a depth-0 extended key must have a zero parent fingerprint and index")
    return ExtendedKey(chain_code, pub, priv, depth, fpr, child), net
