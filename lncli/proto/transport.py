"""BOLT 8 encrypted and authenticated transport (Noise_XK_secp256k1_ChaChaPoly_SHA256), sans-IO.

Three parts, none of which touches a socket, the clock or a random source:

* The handshake. ``Initiator(local_static_key, remote_static_pubkey, ephemeral_key)`` and
  ``Responder(local_static_key, ephemeral_key)`` are state objects that produce and consume the
  three acts (50, 50 and 66 bytes)::

      act1 = initiator.act_one()
      act2 = responder.read_act_one(act1)
      act3, transport_i = initiator.read_act_two(act2)
      transport_r = responder.read_act_three(act3)     # transport_r.remote_static_pubkey

  Every check the spec asks for (exact length, version byte 0, public key parse, MAC) raises a
  ``HandshakeError`` whose ``code`` is the spec's error name (``ACT2_BAD_TAG``...).

* ``CipherState``: one direction's key (``sk`` or ``rk``), chaining key ``ck`` and nonce. Keys
  rotate after 1000 uses: ``ck, k = HKDF(ck, k)`` and the nonce restarts at 0.

* ``Transport``: the framing of the finished session. ``encrypt_message(m)`` gives the 18-byte
  encrypted length (2 bytes + MAC) followed by the encrypted body and its MAC. Reading works in
  either of two ways, which must not be mixed mid-message:

  - ``feed(chunk) -> list[bytes]`` accepts any segmentation of the stream;
    ``bytes_needed`` says how many more bytes the next step needs.
  - ``decrypt_length(header18) -> int`` then ``decrypt_body(body_and_mac) -> bytes``, for a
    reader that can read exact sizes (asyncio ``readexactly(18)`` then ``readexactly(n + 16)``).

A failed MAC leaves the receive direction unusable (its nonce is out of step with the peer), so
every later read raises too.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha256

from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from lncli.errors import DecodeError, InputError

__all__ = [
    "ACT_ONE_SIZE",
    "ACT_TWO_SIZE",
    "ACT_THREE_SIZE",
    "MAC_SIZE",
    "HEADER_SIZE",
    "MAX_MESSAGE_SIZE",
    "KEY_ROTATION_INTERVAL",
    "TransportError",
    "HandshakeError",
    "InvalidKeyError",
    "MessageTooLongError",
    "hkdf",
    "ecdh",
    "public_key",
    "CipherState",
    "Transport",
    "Initiator",
    "Responder",
]

PROTOCOL_NAME = b"Noise_XK_secp256k1_ChaChaPoly_SHA256"
PROLOGUE = b"lightning"
HANDSHAKE_VERSION = 0

ACT_ONE_SIZE = 50  # version (1) + ephemeral pubkey (33) + MAC (16)
ACT_TWO_SIZE = 50
ACT_THREE_SIZE = 66  # version (1) + encrypted static pubkey (33 + 16) + MAC (16)
MAC_SIZE = 16
HEADER_SIZE = 2 + MAC_SIZE
MAX_MESSAGE_SIZE = 0xFFFF
KEY_ROTATION_INTERVAL = 1000

_ZERO_KEY = b""  # HKDF(ck, zero): the spec's "zero" is a zero-length input key material
_H_PROTOCOL = sha256(PROTOCOL_NAME).digest()  # initial h and ck
_H_PROLOGUE = sha256(_H_PROTOCOL + PROLOGUE).digest()

# ChaCha20-Poly1305 nonce: 4 zero bytes then the 64-bit counter, little-endian. The counter never
# reaches KEY_ROTATION_INTERVAL (the key rotates first), so every nonce in use is in this table.
_NONCES = tuple(b"\x00\x00\x00\x00" + i.to_bytes(8, "little") for i in range(KEY_ROTATION_INTERVAL))

# HMAC-SHA256 with a 32-byte key: the key zero-padded to the 64-byte block, XORed with the pads.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_PAD_I = b"\x36" * 32
_PAD_O = b"\x5c" * 32
_sha256 = sha256

_CTX = _GLOBAL_CONTEXT.ctx
_EC_COMPRESSED = _lib.SECP256K1_EC_COMPRESSED
_NULL = _ffi.NULL


class TransportError(DecodeError):
    """Bytes from the peer that fail BOLT 8 (bad MAC, wrong size) or a misuse of the session.

    When ``Transport.feed`` fails, ``messages`` holds the messages that chunk completed before
    the bad part (authentic, e.g. a peer's last ``error``); otherwise it is empty.
    """

    messages: list[bytes] = []


class HandshakeError(TransportError):
    """A handshake act failed; ``code`` is the spec's name for the failure (``ACT1_BAD_TAG``...)."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class InvalidKeyError(TransportError):
    """A private key outside [1, n-1] or a public key that is not a compressed curve point."""


class MessageTooLongError(InputError, ValueError):
    """A plaintext above 65535 bytes cannot be framed."""


# --- primitives -----------------------------------------------------------------------------------


def hkdf(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """The spec's ``HKDF(salt, ikm)``: RFC 5869 HKDF-SHA256, empty info, two 32-byte outputs.

    HMAC-SHA256 is spelled out with hashlib (salt and PRK are always 32 bytes, so each key is
    just XORed with the pads), which is about twice as fast as ``hmac.digest`` here.
    """
    if len(salt) != 32:
        raise ValueError("BOLT 8 HKDF salt (a chaining key) must be 32 bytes")
    inner = _sha256(salt.translate(_IPAD) + _PAD_I + ikm).digest()
    prk = _sha256(salt.translate(_OPAD) + _PAD_O + inner).digest()
    inner = prk.translate(_IPAD) + _PAD_I
    outer = prk.translate(_OPAD) + _PAD_O
    first = _sha256(outer + _sha256(inner + b"\x01").digest()).digest()
    return first, _sha256(outer + _sha256(inner + first + b"\x02").digest()).digest()


def _check_private_key(secret: bytes, what: str) -> bytes:
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        raise InvalidKeyError(f"{what} must be 32 bytes")
    secret = bytes(secret)
    if not _lib.secp256k1_ec_seckey_verify(_CTX, secret):
        raise InvalidKeyError(f"{what} is not a valid secp256k1 private key (zero or >= n)")
    return secret


def _parse_point(data: bytes):
    """A 33-byte compressed public key as a libsecp256k1 point, or None if it is not one."""
    if len(data) != 33 or data[0] not in (2, 3):
        return None
    point = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_parse(_CTX, point, data, 33):
        return None
    return point


def _public_key_of(secret: bytes) -> bytes:
    point = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_create(_CTX, point, secret):
        raise InvalidKeyError("not a valid secp256k1 private key")
    out = _ffi.new("unsigned char[33]")
    size = _ffi.new("size_t *", 33)
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, point, _EC_COMPRESSED)
    return _ffi.buffer(out, 33)[:]


@lru_cache(maxsize=8)
def _static_public_key(secret: bytes) -> bytes:
    # A node handshakes with the same static key again and again: derive its public key once.
    return _public_key_of(secret)


def _ecdh(secret: bytes, point) -> bytes:
    # libsecp256k1's default ECDH hash is SHA256(compressed shared point), exactly BOLT 8's ECDH.
    out = _ffi.new("unsigned char[32]")
    if not _lib.secp256k1_ecdh(_CTX, out, point, secret, _NULL, _NULL):
        raise InvalidKeyError("ECDH failed: invalid private key")
    return _ffi.buffer(out, 32)[:]


def public_key(private_key: bytes) -> bytes:
    """The 33-byte compressed public key of a 32-byte private key."""
    return _public_key_of(_check_private_key(private_key, "private key"))


def ecdh(private_key: bytes, public_key: bytes) -> bytes:
    """BOLT 8 ``ECDH(k, rk)``: SHA256 of the compressed point ``k * rk`` (constant time in k)."""
    point = _parse_point(bytes(public_key))
    if point is None:
        raise InvalidKeyError("public key is not a valid compressed secp256k1 point")
    return _ecdh(_check_private_key(private_key, "private key"), point)


def _encrypt_with_ad(key: bytes, nonce: int, ad: bytes, plaintext: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_NONCES[nonce], plaintext, ad)


# --- the session ----------------------------------------------------------------------------------


class CipherState:
    """One direction of a session: ``key`` (sk or rk), chaining key ``ck`` and ``nonce``.

    Each encryption or decryption uses the current nonce and then increments it; when it reaches
    1000 the key rotates: ``ck, key = HKDF(ck, key)`` and the nonce goes back to 0.
    """

    __slots__ = ("key", "ck", "nonce", "_aead")

    def __init__(self, key: bytes, ck: bytes, nonce: int = 0):
        if len(key) != 32 or len(ck) != 32:
            raise ValueError("key and ck must be 32 bytes")
        if not 0 <= nonce < KEY_ROTATION_INTERVAL:
            raise ValueError(f"nonce must be in [0, {KEY_ROTATION_INTERVAL})")
        self.key = bytes(key)
        self.ck = bytes(ck)
        self.nonce = nonce
        self._aead = ChaCha20Poly1305(self.key)

    def __repr__(self) -> str:  # keys are secrets: show only where we are
        return f"CipherState(nonce={self.nonce})"

    def _rotate(self) -> None:
        self.ck, self.key = hkdf(self.ck, self.key)
        self.nonce = 0
        self._aead = ChaCha20Poly1305(self.key)

    def encrypt_with_ad(self, ad: bytes | None, plaintext: bytes) -> bytes:
        n = self.nonce
        ciphertext = self._aead.encrypt(_NONCES[n], plaintext, ad)
        n += 1
        if n == KEY_ROTATION_INTERVAL:
            self._rotate()
        else:
            self.nonce = n
        return ciphertext

    def decrypt_with_ad(self, ad: bytes | None, ciphertext: bytes) -> bytes:
        """Decrypt and authenticate; raises TransportError (the nonce is then not advanced)."""
        n = self.nonce
        try:
            plaintext = self._aead.decrypt(_NONCES[n], ciphertext, ad)
        except InvalidTag:
            raise TransportError(f"bad MAC on an encrypted message part (nonce {n})") from None
        n += 1
        if n == KEY_ROTATION_INTERVAL:
            self._rotate()
        else:
            self.nonce = n
        return plaintext


_READ_HEADER = 0
_READ_BODY = 1
_BROKEN = 2


class Transport:
    """A finished BOLT 8 session: frames outgoing messages and reads incoming ones.

    ``send`` and ``receive`` are the two CipherStates (``sk`` and ``rk``); ``remote_static_pubkey``
    is the peer's node id.
    """

    __slots__ = ("send", "receive", "remote_static_pubkey", "_buf", "_need", "_state")

    def __init__(self, sk: bytes, rk: bytes, ck: bytes, remote_static_pubkey: bytes):
        self.send = CipherState(sk, ck)
        self.receive = CipherState(rk, ck)
        self.remote_static_pubkey = remote_static_pubkey
        self._buf = bytearray()
        self._need = HEADER_SIZE
        self._state = _READ_HEADER

    def __repr__(self) -> str:
        return (
            f"Transport(remote_static_pubkey={self.remote_static_pubkey.hex()}, "
            f"send={self.send!r}, receive={self.receive!r})"
        )

    @property
    def sk(self) -> bytes:
        return self.send.key

    @property
    def rk(self) -> bytes:
        return self.receive.key

    # --- writing ---

    def encrypt_message(self, plaintext: bytes) -> bytes:
        """Frame one message: encrypted 2-byte length + MAC (18 bytes), then body + MAC."""
        size = len(plaintext)
        if size > MAX_MESSAGE_SIZE:
            raise MessageTooLongError(
                f"message of {size} bytes exceeds the BOLT 8 maximum of {MAX_MESSAGE_SIZE}"
            )
        s = self.send
        n = s.nonce
        if n < KEY_ROTATION_INTERVAL - 2:
            aead = s._aead
            header = aead.encrypt(_NONCES[n], size.to_bytes(2, "big"), None)
            s.nonce = n + 2
            return header + aead.encrypt(_NONCES[n + 1], plaintext, None)
        header = s.encrypt_with_ad(None, size.to_bytes(2, "big"))
        return header + s.encrypt_with_ad(None, plaintext)

    # --- reading, one step at a time ---

    @property
    def bytes_needed(self) -> int:
        """How many more bytes ``feed`` needs before it can decrypt the next part (at least 1)."""
        return max(self._need - len(self._buf), 1)

    @property
    def next_part_size(self) -> int:
        """Size of the next part on the wire: 18 (a length header) or the body length + 16."""
        return self._need

    def _check_usable(self) -> None:
        if self._state == _BROKEN:
            raise TransportError("the receive side of this session failed earlier and is unusable")

    def _open_header(self, header: bytes) -> int:
        try:
            plain = self.receive.decrypt_with_ad(None, header)
        except TransportError:
            self._state = _BROKEN
            raise TransportError("bad MAC on the encrypted message length") from None
        length = int.from_bytes(plain, "big")
        self._need = length + MAC_SIZE
        self._state = _READ_BODY
        return length

    def _open_body(self, body: bytes) -> bytes:
        try:
            plain = self.receive.decrypt_with_ad(None, body)
        except TransportError:
            self._state = _BROKEN
            raise TransportError("bad MAC on the encrypted message body") from None
        self._need = HEADER_SIZE
        self._state = _READ_HEADER
        return plain

    def decrypt_length(self, header: bytes) -> int:
        """Decrypt an 18-byte length header; returns the body length (read that + 16 next)."""
        self._check_usable()
        if self._state != _READ_HEADER or self._buf:
            raise TransportError("decrypt_length called while a message body is expected")
        if len(header) != HEADER_SIZE:
            raise TransportError(
                f"message length header must be {HEADER_SIZE} bytes, got {len(header)}"
            )
        return self._open_header(header)

    def decrypt_body(self, body: bytes) -> bytes:
        """Decrypt the body + 16-byte MAC announced by the last ``decrypt_length``."""
        self._check_usable()
        if self._state != _READ_BODY or self._buf:
            raise TransportError("decrypt_body called before decrypt_length")
        if len(body) != self._need:
            raise TransportError(
                f"message body must be {self._need} bytes (length + MAC), got {len(body)}"
            )
        return self._open_body(body)

    # --- reading, any segmentation ---

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the stream; returns the messages completed by them (maybe none)."""
        state = self._state
        if state == _BROKEN:
            self._check_usable()
        need = self._need
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < need:
                return []
            data = bytes(buf)
            buf.clear()
        elif len(data) < need:
            buf += data
            return []
        messages = []
        r = self.receive
        pos = 0
        end = len(data)
        while end - pos >= need:
            n = r.nonce
            try:
                plain = r._aead.decrypt(_NONCES[n], data[pos : pos + need], None)
            except InvalidTag:
                self._state = _BROKEN
                part = "length" if state == _READ_HEADER else "body"
                err = TransportError(f"bad MAC on the encrypted message {part}")
                err.messages = messages
                raise err from None
            pos += need
            if n == KEY_ROTATION_INTERVAL - 1:
                r._rotate()
            else:
                r.nonce = n + 1
            if state == _READ_HEADER:
                need = int.from_bytes(plain, "big") + MAC_SIZE
                state = _READ_BODY
            else:
                messages.append(plain)
                need = HEADER_SIZE
                state = _READ_HEADER
        if pos < end:
            buf += data[pos:]
        self._need = need
        self._state = state
        return messages


# --- the handshake --------------------------------------------------------------------------------


def _mix_hash(h: bytes, data: bytes) -> bytes:
    return sha256(h + data).digest()


def _split_act(act: bytes, size: int, number: int) -> bytes:
    if not isinstance(act, (bytes, bytearray, memoryview)):
        raise HandshakeError(f"ACT{number}_READ_FAILED", f"act {number} must be bytes")
    act = bytes(act)
    if len(act) != size:
        raise HandshakeError(
            f"ACT{number}_READ_FAILED", f"act {number} must be {size} bytes, got {len(act)}"
        )
    if act[0] != HANDSHAKE_VERSION:
        raise HandshakeError(
            f"ACT{number}_BAD_VERSION",
            f"act {number} has handshake version {act[0]}, only {HANDSHAKE_VERSION} is known",
        )
    return act


def _out_of_order(expected: str) -> HandshakeError:
    return HandshakeError("OUT_OF_ORDER", f"handshake step out of order, expected {expected}")


class Initiator:
    """The side that connects: knows the responder's node id in advance.

    ``act_one()`` then ``read_act_two(act2) -> (act3, Transport)``.
    """

    __slots__ = ("_s", "_rs", "_rs_point", "_e", "_h", "_ck", "_step")

    def __init__(self, local_static_key: bytes, remote_static_pubkey: bytes, ephemeral_key: bytes):
        self._s = _check_private_key(local_static_key, "local static key")
        self._e = _check_private_key(ephemeral_key, "ephemeral key")
        rs = bytes(remote_static_pubkey)
        point = _parse_point(rs)
        if point is None:
            raise InvalidKeyError("remote static pubkey is not a valid compressed secp256k1 point")
        self._rs = rs
        self._rs_point = point
        self._h = _mix_hash(_H_PROLOGUE, rs)
        self._ck = _H_PROTOCOL
        self._step = 1

    def act_one(self) -> bytes:
        """Act one: ``0 || e.pub || MAC`` (50 bytes), binding the responder's static key."""
        if self._step != 1:
            raise _out_of_order("read_act_two" if self._step == 2 else "nothing: handshake done")
        e_pub = _public_key_of(self._e)
        h = _mix_hash(self._h, e_pub)
        self._ck, temp_k1 = hkdf(self._ck, _ecdh(self._e, self._rs_point))  # es
        c = _encrypt_with_ad(temp_k1, 0, h, b"")
        self._h = _mix_hash(h, c)
        self._step = 2
        return b"\x00" + e_pub + c

    def read_act_two(self, act_two: bytes) -> tuple[bytes, Transport]:
        """Check act two (50 bytes); return act three (66 bytes) and the session."""
        if self._step != 2:
            raise _out_of_order("act_one" if self._step == 1 else "nothing: handshake done")
        act = _split_act(act_two, ACT_TWO_SIZE, 2)
        re = act[1:34]
        re_point = _parse_point(re)
        if re_point is None:
            raise HandshakeError("ACT2_BAD_PUBKEY", "act two ephemeral key is not a valid point")
        h = _mix_hash(self._h, re)
        ck, temp_k2 = hkdf(self._ck, _ecdh(self._e, re_point))  # ee
        c = act[34:]
        aead = ChaCha20Poly1305(temp_k2)
        try:
            aead.decrypt(_NONCES[0], c, h)
        except InvalidTag:
            raise HandshakeError("ACT2_BAD_TAG", "act two MAC check failed") from None
        h = _mix_hash(h, c)
        # Act three.
        c = aead.encrypt(_NONCES[1], _static_public_key(self._s), h)
        h = _mix_hash(h, c)
        ck, temp_k3 = hkdf(ck, _ecdh(self._s, re_point))  # se
        t = _encrypt_with_ad(temp_k3, 0, h, b"")
        sk, rk = hkdf(ck, _ZERO_KEY)
        self._step = 3
        self._h = h
        self._ck = ck
        return b"\x00" + c + t, Transport(sk, rk, ck, self._rs)


class Responder:
    """The side that accepts: learns the initiator's node id from act three.

    ``read_act_one(act1) -> act2`` then ``read_act_three(act3) -> Transport``.
    """

    __slots__ = ("_s", "_e", "_h", "_ck", "_temp_k2", "_step", "remote_static_pubkey")

    def __init__(self, local_static_key: bytes, ephemeral_key: bytes):
        self._s = _check_private_key(local_static_key, "local static key")
        self._e = _check_private_key(ephemeral_key, "ephemeral key")
        self._h = _mix_hash(_H_PROLOGUE, _static_public_key(self._s))
        self._ck = _H_PROTOCOL
        self._temp_k2 = b""
        self._step = 1
        self.remote_static_pubkey: bytes | None = None

    def read_act_one(self, act_one: bytes) -> bytes:
        """Check act one (50 bytes); return act two (50 bytes)."""
        if self._step != 1:
            raise _out_of_order("read_act_three" if self._step == 2 else "nothing: handshake done")
        act = _split_act(act_one, ACT_ONE_SIZE, 1)
        re = act[1:34]
        re_point = _parse_point(re)
        if re_point is None:
            raise HandshakeError("ACT1_BAD_PUBKEY", "act one ephemeral key is not a valid point")
        h = _mix_hash(self._h, re)
        ck, temp_k1 = hkdf(self._ck, _ecdh(self._s, re_point))  # es
        c = act[34:]
        try:
            ChaCha20Poly1305(temp_k1).decrypt(_NONCES[0], c, h)
        except InvalidTag:
            raise HandshakeError(
                "ACT1_BAD_TAG", "act one MAC check failed (the initiator has the wrong node id?)"
            ) from None
        h = _mix_hash(h, c)
        # Act two.
        e_pub = _public_key_of(self._e)
        h = _mix_hash(h, e_pub)
        ck, temp_k2 = hkdf(ck, _ecdh(self._e, re_point))  # ee
        c = _encrypt_with_ad(temp_k2, 0, h, b"")
        self._h = _mix_hash(h, c)
        self._ck = ck
        self._temp_k2 = temp_k2
        self._step = 2
        return b"\x00" + e_pub + c

    def read_act_three(self, act_three: bytes) -> Transport:
        """Check act three (66 bytes); return the session (``remote_static_pubkey`` set)."""
        if self._step != 2:
            raise _out_of_order("read_act_one" if self._step == 1 else "nothing: handshake done")
        act = _split_act(act_three, ACT_THREE_SIZE, 3)
        c = act[1:50]
        t = act[50:]
        h = self._h
        try:
            rs = ChaCha20Poly1305(self._temp_k2).decrypt(_NONCES[1], c, h)
        except InvalidTag:
            raise HandshakeError(
                "ACT3_BAD_CIPHERTEXT", "act three encrypted static key MAC check failed"
            ) from None
        rs_point = _parse_point(rs)
        if rs_point is None:
            raise HandshakeError("ACT3_BAD_PUBKEY", "act three static key is not a valid point")
        h = _mix_hash(h, c)
        ck, temp_k3 = hkdf(self._ck, _ecdh(self._e, rs_point))  # se
        try:
            ChaCha20Poly1305(temp_k3).decrypt(_NONCES[0], t, h)
        except InvalidTag:
            raise HandshakeError("ACT3_BAD_TAG", "act three MAC check failed") from None
        rk, sk = hkdf(ck, _ZERO_KEY)
        self._h = h
        self._ck = ck
        self._step = 3
        self.remote_static_pubkey = rs
        return Transport(sk, rk, ck, rs)
