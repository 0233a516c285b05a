"""The datadir seed: 32 random bytes in ``DATADIR/NETWORK/seed`` (mode 0600), made at first use.

Every secret of this datadir derives from it with a labelled HMAC-SHA256 (:func:`derive`): the node
key, the BIP32 wallet root, the channel base secrets. On regtest, a dev seed (hex, from
``--dev-seed`` or ``dev-seed=`` in the config) is written as the seed at first use, so tests and
walkthroughs are reproducible and the node, the wallet and the channels still share one seed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from lncli.errors import InputError

SEED_NAME = "seed"


def load_or_create_seed(netdir: Path, fixed: bytes | None = None) -> bytes:
    """The seed in ``netdir``, made at first use: random, or ``fixed`` (regtest walkthroughs).

    A ``fixed`` seed that differs from the one already in the datadir is refused: every key of the
    datadir (node, wallet, channels) comes from one seed, and a second one would strand funds.
    """
    path = Path(netdir) / SEED_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = fixed if fixed is not None else os.urandom(32)
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
    if fixed is not None and data != fixed:
        raise InputError(
            f"this datadir already has a different seed ({path}): use a fresh --datadir for another dev seed"
        )
    return data


def datadir_seed(env, dev_seed: str | None = None) -> bytes:
    """The seed of ``env``'s datadir. ``dev_seed`` (an option) or ``dev-seed=`` in the config fixes it
    on regtest only, written to the datadir at first use so that every later command agrees."""
    from lncli.errors import RefusedError

    text = dev_seed if dev_seed is not None else env.config.get("dev-seed")
    fixed = None
    if text is not None:
        if env.network != "regtest":
            raise RefusedError(f"a dev seed (--dev-seed, dev-seed=) is only allowed on regtest, not {env.network}")
        fixed = parse_fixed_seed(text)
    return load_or_create_seed(env.ensure_netdir(), fixed)


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
