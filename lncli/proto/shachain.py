"""BOLT 3 "Per-commitment Secret Requirements": the shachain.

Generation: ``generate_from_seed(seed, I)`` walks the 48 bits of the index ``I`` from bit 47
down to bit 0; for every set bit it flips that bit of the running 32-byte value (bit ``B`` is
bit ``B % 8`` of byte ``B // 8``) and hashes it with SHA256.

Index convention: the first commitment (commitment number 0) uses index 2^48-1 and every later
commitment counts down, so commitment number ``n`` uses index ``2^48 - 1 - n``
(:func:`commitment_index`, :func:`per_commitment_secret`).

Storage: a receiver keeps at most 49 secrets, one per "position" (the number of trailing zero
bits of the index; 48 for index 0). A secret at position ``b`` derives every secret whose index
equals its own in all bits above ``b``. :class:`RevocationStore` implements the spec's
``insert_secret`` check (a new secret must derive all stored secrets at lower positions) and
refuses any index other than the next one in the countdown.
"""

from __future__ import annotations

from hashlib import sha256

from lncli.errors import DecodeError

__all__ = [
    "INDEX_MAX",
    "RevocationStore",
    "ShachainError",
    "commitment_index",
    "derive_secret",
    "generate_from_seed",
    "per_commitment_secret",
    "where_to_put_secret",
]

#: Largest 48-bit index; the index of commitment number 0.
INDEX_MAX = (1 << 48) - 1
_STORE_VERSION = 1
_NUM_POSITIONS = 49


class ShachainError(DecodeError):
    """A per-commitment secret that does not fit the shachain, or a bad stored chain."""


def _check_index(index: int, what: str = "shachain index") -> None:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= INDEX_MAX:
        raise ShachainError(f"{what} {index!r} is not a 48-bit unsigned integer")


def _check_secret(secret: bytes, what: str = "secret") -> None:
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        raise ShachainError(f"{what} must be 32 bytes")


def _walk(value: bytes, high: int, low: int, index: int) -> bytes:
    """Walk bits ``high-1`` .. ``low`` of ``index`` from the 32-byte ``value``. Bit ``B`` of the
    value (bit ``B % 8`` of byte ``B // 8``) is bit ``B`` of it read as a little-endian number,
    so flipping it is one XOR; only the set bits of the index are visited."""
    m = (index & ((1 << high) - 1)) >> low << low
    from_bytes = int.from_bytes
    while m:
        b = m.bit_length() - 1
        m ^= 1 << b
        value = sha256((from_bytes(value, "little") ^ (1 << b)).to_bytes(32, "little")).digest()
    return value


def derive_secret(base: bytes, bits: int, index: int) -> bytes:
    """Walk bits ``bits-1`` .. 0 of ``index`` from ``base`` (the spec's ``derive_secret``)."""
    if len(base) == 32 and 0 <= bits <= 256:
        return _walk(bytes(base), bits, 0, index)
    value = bytearray(base)  # the spec's loop as written, for other lengths
    for b in range(bits - 1, -1, -1):
        if (index >> b) & 1:
            value[b >> 3] ^= 1 << (b & 7)
            value[:] = sha256(value).digest()
    return bytes(value)


# generate_from_seed walks 48 bits, one SHA256 per set bit. Consecutive commitments share the upper
# bits of their index, so the values after bits 47..24 and 47..8 are kept per (seed, upper bits):
# a new secret then costs at most 8 hashes (plus 16 every 256 commitments). The seed's owner
# could derive every one of these values anyway; the caches only hold what it already had.
_UPPER: dict[tuple[bytes, int], bytes] = {}  # (seed, index >> 24) -> value after bits 47..24
_MIDDLE: dict[tuple[bytes, int], bytes] = {}  # (seed, index >> 8) -> value after bits 47..8
_CACHE_MAX = 512


def _from_seed_cached(seed: bytes, index: int) -> bytes:
    key = (seed, index >> 8)
    middle = _MIDDLE.get(key)
    if middle is None:
        upper_key = (seed, index >> 24)
        upper = _UPPER.get(upper_key)
        if upper is None:
            upper = _walk(seed, 48, 24, index)
            if len(_UPPER) >= _CACHE_MAX:
                _UPPER.clear()
            _UPPER[upper_key] = upper
        middle = _walk(upper, 24, 8, index)
        if len(_MIDDLE) >= _CACHE_MAX:
            _MIDDLE.clear()
        _MIDDLE[key] = middle
    return _walk(middle, 8, 0, index)


def generate_from_seed(seed: bytes, index: int) -> bytes:
    """The spec's ``generate_from_seed(seed, I)`` for a 48-bit index ``I``."""
    _check_secret(seed, "seed")
    _check_index(index)
    return _from_seed_cached(bytes(seed), index)


def commitment_index(commitment_number: int) -> int:
    """Shachain index of ``commitment_number``: 2^48-1 for the first commitment, counting down."""
    _check_index(commitment_number, "commitment number")
    return INDEX_MAX - commitment_number


def per_commitment_secret(seed: bytes, commitment_number: int) -> bytes:
    """``per_commitment_secret`` of commitment number ``commitment_number`` (0 = first)."""
    return generate_from_seed(seed, commitment_index(commitment_number))


def where_to_put_secret(index: int) -> int:
    """Storage position of ``index``: its number of trailing zero bits (48 for index 0)."""
    if index == 0:
        return 48
    return (index & -index).bit_length() - 1


def _expected_index(position: int, lowest: int) -> int | None:
    """After inserting indices 2^48-1 down to ``lowest``, the index held at ``position``:
    the smallest index >= ``lowest`` with exactly ``position`` trailing zeros (or None)."""
    if position == 48:
        return 0 if lowest == 0 else None
    step = 1 << (position + 1)
    half = 1 << position
    k = max(0, -(-(lowest - half) // step))
    candidate = k * step + half
    return candidate if candidate <= INDEX_MAX else None


class RevocationStore:
    """Compact receiver storage for the counterparty's per-commitment secrets (<= 49 entries).

    Secrets must be inserted in the BOLT order: index 2^48-1 first, then 2^48-2, and so on
    (:attr:`next_index`). ``insert_secret`` raises :class:`ShachainError` if the index is not
    the next one or the secret does not derive the secrets already held (the spec's check).
    """

    __slots__ = ("_known", "_next_index")

    def __init__(self) -> None:
        # position -> (index, secret)
        self._known: list[tuple[int, bytes] | None] = [None] * _NUM_POSITIONS
        # -1 once index 0 has been stored (the chain is complete)
        self._next_index = INDEX_MAX

    # -- state ---------------------------------------------------------------------------

    @property
    def next_index(self) -> int:
        """The index the next ``insert_secret`` must use (-1 if the chain is complete)."""
        return self._next_index

    @property
    def next_commitment_number(self) -> int:
        """Commitment number whose secret is expected next (= number of secrets received)."""
        return INDEX_MAX - self._next_index

    def __len__(self) -> int:
        """Number of secrets held (at most 49), not the number received."""
        return sum(1 for e in self._known if e is not None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RevocationStore):
            return NotImplemented
        return self._next_index == other._next_index and self._known == other._known

    def __repr__(self) -> str:
        return f"RevocationStore(next_commitment_number={self.next_commitment_number}, held={len(self)})"

    # -- the spec's operations -----------------------------------------------------------

    def insert_secret(self, secret: bytes, index: int) -> None:
        """Store ``secret`` for shachain ``index`` after checking it against the stored ones."""
        _check_secret(secret)
        _check_index(index)
        if index != self._next_index:
            if self._next_index < 0:
                raise ShachainError("the shachain is complete: every index has been received")
            raise ShachainError(
                f"expected the secret for index {self._next_index} "
                f"(commitment {self.next_commitment_number}), got index {index}"
            )
        secret = bytes(secret)
        position = where_to_put_secret(index)
        for b in range(position):
            entry = self._known[b]
            if entry is None:
                continue
            old_index, old_secret = entry
            if derive_secret(secret, position, old_index) != old_secret:
                raise ShachainError(
                    f"secret for index {index} does not derive the stored secret for index {old_index}"
                )
        self._known[position] = (index, secret)
        self._next_index = index - 1

    def insert_commitment_secret(self, secret: bytes, commitment_number: int) -> None:
        """``insert_secret`` by commitment number (0 = first commitment)."""
        self.insert_secret(secret, commitment_index(commitment_number))

    def get_secret(self, index: int) -> bytes:
        """The secret for shachain ``index``; :class:`ShachainError` if it was never received."""
        _check_index(index)
        for position, entry in enumerate(self._known):
            if entry is None:
                continue
            stored_index, stored_secret = entry
            if (index >> position) << position == stored_index:
                return derive_secret(stored_secret, position, index)
        raise ShachainError(f"no secret for index {index} has been received")

    def get_commitment_secret(self, commitment_number: int) -> bytes:
        """``get_secret`` by commitment number (0 = first commitment)."""
        return self.get_secret(commitment_index(commitment_number))

    # -- persistence ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``version (1) || number received (u64 BE) || held secrets (32 bytes each, by position)``.

        Which positions are held (and with which index) follows from the number received, so
        the encoding is canonical.
        """
        received = self.next_commitment_number
        out = bytearray([_STORE_VERSION])
        out += received.to_bytes(8, "big")
        for entry in self._known:
            if entry is not None:
                out += entry[1]
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> RevocationStore:
        """Inverse of :meth:`to_bytes`; checks the layout and that the secrets are consistent."""
        if not isinstance(data, (bytes, bytearray)):
            raise ShachainError("revocation store must be bytes")
        data = bytes(data)
        if len(data) < 9:
            raise ShachainError(f"revocation store too short: {len(data)} bytes, need at least 9")
        if data[0] != _STORE_VERSION:
            raise ShachainError(f"unknown revocation store version {data[0]}")
        received = int.from_bytes(data[1:9], "big")
        if received > INDEX_MAX + 1:
            raise ShachainError(f"revocation store claims {received} secrets, more than 2^48")
        store = cls()
        store._next_index = INDEX_MAX - received
        positions: list[tuple[int, int]] = []
        if received:
            lowest = store._next_index + 1
            for position in range(_NUM_POSITIONS):
                idx = _expected_index(position, lowest)
                if idx is not None:
                    positions.append((position, idx))
        expected_len = 9 + 32 * len(positions)
        if len(data) != expected_len:
            raise ShachainError(
                f"revocation store of {received} secrets must be {expected_len} bytes, got {len(data)}"
            )
        for n, (position, idx) in enumerate(positions):
            start = 9 + 32 * n
            store._known[position] = (idx, data[start : start + 32])
        # Every pair the spec's insert would have checked must still be consistent.
        for hi, (hi_pos, hi_idx) in enumerate(positions):
            hi_secret = data[9 + 32 * hi : 9 + 32 * hi + 32]
            for lo, (_lo_pos, lo_idx) in enumerate(positions[:hi]):
                if (lo_idx >> hi_pos) << hi_pos != hi_idx:
                    continue
                if derive_secret(hi_secret, hi_pos, lo_idx) != data[9 + 32 * lo : 9 + 32 * lo + 32]:
                    raise ShachainError(
                        f"revocation store is inconsistent: secret for index {hi_idx} "
                        f"does not derive the secret for index {lo_idx}"
                    )
        return store
