"""Recognise the ways a user writes a channel identifier and describe it in every form.

Shared by ``channel-id`` and, later, every command that takes CHANNEL (close, channels, ...).
"""

from __future__ import annotations

from lncli.errors import InputError


def describe(text: str, vout: int | None = None) -> dict:
    from lncli.proto import scid as scid_mod

    text = text.strip()
    if vout is not None:
        text = f"{text}:{vout}"
    ref = scid_mod.parse_channel_ref(text, ("channel_id", "short_channel_id", "outpoint"))
    if ref.kind == "outpoint":
        txid, n = ref.value
        if not 0 <= n <= 0xFFFF:
            raise InputError(f"funding output index {n} out of range: a channel_id holds 0..65535")
        txid_hex = txid[::-1].hex()
        return {
            "funding_txid": txid_hex,
            "funding_output_index": n,
            "funding_outpoint": f"{txid_hex}:{n}",
            "channel_id": scid_mod.channel_id(txid, n).hex(),
        }
    if ref.kind == "channel_id":
        raise InputError(
            "that looks like a channel_id or txid: a channel_id cannot be turned back into an outpoint; "
            "give the funding outpoint as TXID:VOUT"
        )
    s = ref.value
    return {
        "short_channel_id": str(s),
        "short_channel_id_u64": str(s.to_int()),
        "short_channel_id_hex": s.to_bytes().hex(),
        "block_height": s.block,
        "transaction_index": s.txindex,
        "output_index": s.output,
    }
