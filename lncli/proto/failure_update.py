"""The channel_update in a BOLT 4 failure, at the payer (BOLT 4 "Receiving Failure Codes").

An intermediate hop that fails an HTLC with an UPDATE code may put its outgoing channel's
current ``channel_update`` in the failure. The origin node, "if UPDATE is set, AND the
channel_update is valid and more recent than the channel_update used to send the payment: MAY
consider the channel_update when calculating routes to retry the payment which failed", and
"MUST NOT expose the channel_update to third-parties in any other context, including applying
the channel_update to the local network graph". So:

:func:`parse_failure_update` reads the field: the message with its 2-byte type 0x0102 (what
BOLT 4 asked for from 2022 until the field became optional), or without it (older
implementations); None when it is empty or unreadable. The payment session
(lncli.node.pay_session) uses it for the retries of the same payment only; the gossip graph is
not touched.
"""

from __future__ import annotations

from lncli.errors import DecodeError
from lncli.proto import gossip as g

__all__ = ["parse_failure_update"]


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
