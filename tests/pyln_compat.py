"""pyln-proto, the test-only cross-check, run against whatever cryptography a fresh install resolves.

pyln-proto 25.12.1 XORs its onion streams in place with ``encryptor.update_into(buf, buf)``.
cryptography 51 refuses overlapping buffers (``ValueError: data and buf must not overlap``), so on
a fresh install the cross-check itself breaks, not lncli (whose streams use ``update``).
``patch_pyln_onion()`` swaps pyln's helper for one with the same effect (the ChaCha20 stream of
``key``, nonce 0, XORed into ``dest``) that copies first. It only patches when the installed
cryptography needs it, so the cross-check runs pyln's own code wherever it can.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms


def overlapping_update_into_refused() -> bool:
    enc = Cipher(algorithms.ChaCha20(b"\x00" * 32, b"\x00" * 16), None).encryptor()
    buf = bytearray(64)
    try:
        enc.update_into(buf, buf)
    except ValueError:
        return True
    return False


def _chacha20_stream_copying(key: bytes, dest) -> None:
    enc = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), None).encryptor()
    dest[:] = enc.update(bytes(dest))


def patch_pyln_onion():
    """Import pyln.proto.onion, patched if needed; returns the module."""
    from pyln.proto import onion

    if overlapping_update_into_refused():
        onion.chacha20_stream = _chacha20_stream_copying
    return onion
