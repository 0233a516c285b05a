"""Match a parsed channel reference (:func:`lncli.proto.scid.parse_channel_ref`) against channels.

The channels are anything with a channel's identifying attributes (``channel_id``,
``temporary_channel_id``, ``funding_txid`` in internal byte order, ``funding_output_index``,
``short_channel_id``): :class:`lncli.channel.channel.Channel`. A ``node_id`` reference names a
peer, which a channel does not know: the caller matches it against its own peer table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from lncli.proto.scid import ChannelRef, parse_channel_ref

__all__ = ["ChannelRef", "match_channel", "parse_channel_ref"]

C = TypeVar("C")


def _matches(ref: ChannelRef, ch) -> bool:
    kind, value = ref.kind, ref.value
    if kind == "channel_id":
        return ch.channel_id == value or ch.temporary_channel_id == value
    if kind == "short_channel_id":
        return ch.short_channel_id is not None and int(ch.short_channel_id) == value
    if kind == "outpoint":
        txid, vout = value  # type: ignore[misc]
        return ch.funding_txid is not None and bytes(ch.funding_txid) == txid and ch.funding_output_index == vout
    return False


def match_channel(ref: ChannelRef, channels: Iterable[C], key=None) -> C | None:
    """The first of ``channels`` that ``ref`` (a channel_id, short_channel_id or funding
    outpoint) names, or None. ``key``: from an item to its channel, when the items are not
    channels themselves."""
    for item in channels:
        if _matches(ref, item if key is None else key(item)):
            return item
    return None
