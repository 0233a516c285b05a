"""The channel_update in a BOLT 4 failure, at the payer (BOLT 4 "Receiving Failure Codes").

An intermediate hop that fails an HTLC with an UPDATE code may put its outgoing channel's
current ``channel_update`` in the failure. The origin node, "if UPDATE is set, AND the
channel_update is valid and more recent than the channel_update used to send the payment: MAY
consider the channel_update when calculating routes to retry the payment which failed", and
"MUST NOT expose the channel_update to third-parties in any other context, including applying
the channel_update to the local network graph". So:

- :func:`parse_failure_update` reads the field: the message with its 2-byte type 0x0102 (what
  BOLT 4 asked for from 2022 until the field became optional), or without it (older
  implementations); None when it is empty or unreadable;
- :func:`retry_index` gives a copy of the route index with that one edge changed, for the retries
  of the same payment only; the gossip graph is not touched.
"""

from __future__ import annotations

from dataclasses import replace

from lncli.errors import DecodeError
from lncli.proto import gossip as g
from lncli.proto.routing import Edge

__all__ = ["parse_failure_update", "retry_index"]


def parse_failure_update(raw: bytes | None) -> g.ChannelUpdate | None:
    raw = bytes(raw or b"")
    if not raw:
        return None
    for data in ((raw,) if raw[:2] == b"\x01\x02" else ()) + (b"\x01\x02" + raw,):
        try:
            return g.ChannelUpdate.from_bytes(data)
        except DecodeError:
            continue
    return None


def _edge_policy(e: Edge) -> tuple:
    return (e.fee_base_msat, e.fee_proportional_millionths, e.cltv_expiry_delta, e.htlc_minimum_msat, e.htlc_maximum_msat,
            e.disabled)


def retry_index(index: dict, graph: g.Graph | None, update: g.ChannelUpdate | None, erring_node: bytes,
                short_channel_id: int) -> dict | None:
    """``index`` (lncli.proto.routing.index_edges) with the edge ``short_channel_id`` out of
    ``erring_node`` under ``update``'s policy; None when the update is not for that channel, not
    signed by ``erring_node``, not more recent than the graph's update for that direction (when
    the graph has one), or changes nothing in the edge (so a retry never loops on one update)."""
    if update is None or int(update.short_channel_id) != int(short_channel_id) or not g.verify_channel_update(update, erring_node):
        return None
    if graph is not None:
        gc = graph.channels.get(update.short_channel_id)
        old = gc.updates[update.direction] if gc is not None else None
        if old is not None and update.timestamp <= old.timestamp:
            return None
    out: dict = {}
    changed = False
    for dest, edges in index.items():
        row = []
        for e in edges:
            if e.source == erring_node and int(e.short_channel_id) == int(short_channel_id):
                new = replace(e, fee_base_msat=update.fee_base_msat, fee_proportional_millionths=update.fee_proportional_millionths,
                              cltv_expiry_delta=update.cltv_expiry_delta, htlc_minimum_msat=update.htlc_minimum_msat,
                              htlc_maximum_msat=update.htlc_maximum_msat, disabled=update.disabled)
                changed = changed or _edge_policy(new) != _edge_policy(e)
                e = new
            row.append(e)
        out[dest] = row
    return out if changed else None
