"""The channel_update in a BOLT 4 failure at the payer (lncli/proto/failure_update.py): read with
or without its type, and considered only for the retries of that payment."""

from __future__ import annotations

import dataclasses
import hashlib

from lncli.bitcoin.ecdsa import pubkey_from_privkey, sign_compact
from lncli.proto import gossip as g
from lncli.proto.failure_update import parse_failure_update
from lncli.proto.routing import Edge, index_edges
from lncli.proto.scid import ShortChannelId

KEY_B = hashlib.sha256(b"B").digest()
B = pubkey_from_privkey(KEY_B)
OTHER = pubkey_from_privkey(hashlib.sha256(b"other").digest())
A, C = b"\x02" + bytes(32), b"\x03" + bytes(32)
SCID = ShortChannelId.from_parts(700, 1, 0)
CHAIN = hashlib.sha256(b"regtest").digest()


def update(timestamp=1000, *, key=KEY_B, base=3000, ppm=200, delta=60, direction=0, disabled=False) -> g.ChannelUpdate:
    u = g.ChannelUpdate(bytes(64), CHAIN, SCID, timestamp, g.MUST_BE_ONE, direction | (g.DISABLE if disabled else 0),
                        delta, 1000, base, ppm, 300_000_000)
    return dataclasses.replace(u, signature=sign_compact(key, u.signed_hash()))


def edges():
    return index_edges([Edge(A, B, 1, 0, 0, 10), Edge(B, C, int(SCID), 1000, 1, 34, 1000, 300_000_000)])


def test_parse_with_and_without_the_type():
    u = update()
    raw = u.to_bytes()
    assert raw[:2] == b"\x01\x02"
    assert parse_failure_update(raw) == u
    assert parse_failure_update(raw[2:]) == u  # older implementations: no type
    assert parse_failure_update(b"") is None and parse_failure_update(None) is None
    assert parse_failure_update(b"\x01\x02" + bytes(10)) is None
