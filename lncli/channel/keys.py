"""Our secrets for one channel, derived from a 32-byte channel seed.

The node draws (or derives) one ``channel_seed`` per channel; everything else follows
deterministically, so the seed is all a channel record needs to keep:

* ``funding_privkey`` and the four basepoint secrets (``revocation_basepoint``,
  ``payment_basepoint``, ``delayed_payment_basepoint``, ``htlc_basepoint``) are
  ``HMAC-SHA256(channel_seed, label)`` for a fixed label each (re-hashed with a counter in the
  negligible case that the result is not a valid secp256k1 scalar);
* the shachain seed that gives ``per_commitment_secret`` for every commitment number (BOLT 3,
  "Per-commitment Secret Requirements") is derived the same way.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.proto import shachain
from lncli.proto.keys import per_commitment_point as _point_of

__all__ = ["ChannelSecrets"]

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _derive(seed: bytes, label: bytes) -> bytes:
    counter = 0
    while True:
        k = hmac.new(seed, b"lncli channel " + label + bytes([counter]), hashlib.sha256).digest()
        if 0 < int.from_bytes(k, "big") < _N:
            return k
        counter += 1  # pragma: no cover - probability ~2^-128


@dataclass(frozen=True)
class ChannelSecrets:
    """Funding key, basepoint secrets and shachain seed of our side of one channel."""

    channel_seed: bytes
    funding_privkey: bytes
    revocation_basepoint_secret: bytes
    payment_basepoint_secret: bytes
    delayed_payment_basepoint_secret: bytes
    htlc_basepoint_secret: bytes
    shachain_seed: bytes
    _points: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_seed(cls, channel_seed: bytes) -> ChannelSecrets:
        if not isinstance(channel_seed, (bytes, bytearray)) or len(channel_seed) != 32:
            raise ValueError("channel_seed must be 32 bytes")
        s = bytes(channel_seed)
        return cls(
            channel_seed=s,
            funding_privkey=_derive(s, b"funding"),
            revocation_basepoint_secret=_derive(s, b"revocation_basepoint"),
            payment_basepoint_secret=_derive(s, b"payment_basepoint"),
            delayed_payment_basepoint_secret=_derive(s, b"delayed_payment_basepoint"),
            htlc_basepoint_secret=_derive(s, b"htlc_basepoint"),
            shachain_seed=_derive(s, b"shachain_seed"),
        )

    # -- public keys -----------------------------------------------------------------------

    @property
    def funding_pubkey(self) -> bytes:
        return self._pub("funding_pubkey", self.funding_privkey)

    @property
    def revocation_basepoint(self) -> bytes:
        return self._pub("revocation_basepoint", self.revocation_basepoint_secret)

    @property
    def payment_basepoint(self) -> bytes:
        return self._pub("payment_basepoint", self.payment_basepoint_secret)

    @property
    def delayed_payment_basepoint(self) -> bytes:
        return self._pub("delayed_payment_basepoint", self.delayed_payment_basepoint_secret)

    @property
    def htlc_basepoint(self) -> bytes:
        return self._pub("htlc_basepoint", self.htlc_basepoint_secret)

    def _pub(self, name: str, secret: bytes) -> bytes:
        p = self._points.get(name)
        if p is None:
            p = self._points[name] = pubkey_from_privkey(secret)
        return p

    def basepoints(self):
        """Our public ``Basepoints`` (lncli.proto.commitment)."""
        from lncli.proto.commitment import Basepoints

        return Basepoints(
            funding_pubkey=self.funding_pubkey,
            revocation_basepoint=self.revocation_basepoint,
            payment_basepoint=self.payment_basepoint,
            delayed_payment_basepoint=self.delayed_payment_basepoint,
            htlc_basepoint=self.htlc_basepoint,
        )

    # -- per-commitment secrets ------------------------------------------------------------

    def per_commitment_secret(self, commitment_number: int) -> bytes:
        """``per_commitment_secret`` of our commitment number ``commitment_number`` (0 = first)."""
        key = ("secret", commitment_number)
        s = self._points.get(key)
        if s is None:
            if len(self._points) > 64:  # bounded: drop the oldest per-commitment entries, keep the basepoints
                for k in [k for k in self._points if isinstance(k, tuple)][:32]:
                    del self._points[k]
            s = self._points[key] = shachain.per_commitment_secret(self.shachain_seed, commitment_number)
        return s

    def per_commitment_point(self, commitment_number: int) -> bytes:
        key = ("point", commitment_number)
        p = self._points.get(key)
        if p is None:
            p = _point_of(self.per_commitment_secret(commitment_number))
            self._points[key] = p
        return p
