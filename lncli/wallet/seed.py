"""The datadir seed: 32 random bytes in ``DATADIR/NETWORK/seed`` (mode 0600), made at first use.

Every secret of this datadir derives from it with a labelled HMAC-SHA256 (:func:`derive`): the node
key, the BIP32 wallet root, the channel base secrets. On regtest, ``fixed_seed`` (hex, from an
option or the config) replaces the file so tests and walkthroughs are reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from lncli.errors import InputError

SEED_NAME = "seed"


def load_or_create_seed(netdir: Path) -> bytes:
    path = Path(netdir) / SEED_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = os.urandom(32)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, seed)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never overwrite a seed another process just made
        except FileExistsError:
            pass
        os.unlink(tmp)
        data = path.read_bytes()
    if len(data) != 32:
        raise InputError(f"{path} is not a 32-byte seed ({len(data)} bytes): restore it from a backup")
    return data


def derive(seed: bytes, label: str) -> bytes:
    """A 32-byte secret for one purpose, e.g. ``derive(seed, "node key")``."""
    return hmac.new(seed, b"lncli " + label.encode(), hashlib.sha256).digest()


def parse_fixed_seed(text: str) -> bytes:
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise InputError("the fixed seed must be 64 hex characters") from None
    if len(seed) != 32:
        raise InputError("the fixed seed must be 32 bytes (64 hex characters)")
    return seed
