"""Matching a parsed channel reference against channels (lncli.channel.reference)."""

from __future__ import annotations

from types import SimpleNamespace

from lncli.channel.reference import match_channel, parse_channel_ref
from lncli.proto.scid import ShortChannelId

TXID_INTERNAL = bytes(range(32))
TXID_DISPLAY = TXID_INTERNAL[::-1].hex()


def _ch(n: int, scid: ShortChannelId | None):
    return SimpleNamespace(
        channel_id=bytes([n]) * 32,
        temporary_channel_id=bytes([n + 100]) * 32,
        funding_txid=TXID_INTERNAL if n else None,
        funding_output_index=n,
        short_channel_id=scid,
    )


CHANNELS = [_ch(0, None), _ch(1, ShortChannelId(100, 2, 1)), _ch(2, ShortChannelId(100, 3, 2))]


def test_each_kind():
    a, b, c = CHANNELS
    assert match_channel(parse_channel_ref(b.channel_id.hex()), CHANNELS) is b
    assert match_channel(parse_channel_ref(c.temporary_channel_id.hex()), CHANNELS) is c
    for form in ("100x3x2", "100:3:2", str(int(ShortChannelId(100, 3, 2))), hex(ShortChannelId(100, 3, 2))):
        assert match_channel(parse_channel_ref(form), CHANNELS) is c
    assert match_channel(parse_channel_ref(f"{TXID_DISPLAY}:1"), CHANNELS) is b
    assert match_channel(parse_channel_ref(f"{TXID_DISPLAY}:0"), CHANNELS) is None  # channel 0 has no funding tx
    assert match_channel(parse_channel_ref("1x1x1"), CHANNELS) is None
    assert match_channel(parse_channel_ref("02" + "11" * 32), CHANNELS) is None  # a peer: the caller's business


def test_key():
    entries = [SimpleNamespace(channel=ch) for ch in CHANNELS]
    assert match_channel(parse_channel_ref("100x2x1"), entries, key=lambda e: e.channel) is entries[1]
