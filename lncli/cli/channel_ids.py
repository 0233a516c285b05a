"""Recognise the ways a user writes a channel identifier and describe it in every form.

Shared by ``channel-id`` and, later, every command that takes CHANNEL (close, channels, ...).
"""

from __future__ import annotations

import re

from lncli.errors import InputError

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def describe(text: str, vout: int | None = None) -> dict:
    from lncli.proto import scid as scid_mod

    text = text.strip()
    if vout is not None:
        text = f"{text}:{vout}"
    if ":" in text and len(text.split(":", 1)[0]) == 64:
        txid_hex, _, index = text.partition(":")
        if not _HEX64.match(txid_hex):
            raise InputError(f"funding txid {txid_hex!r} is not 64 hex characters")
        try:
            n = int(index, 10)
        except ValueError:
            raise InputError(f"funding output index {index!r} is not a number") from None
        if not 0 <= n <= 0xFFFF:
            raise InputError(f"funding output index {n} out of range: a channel_id holds 0..65535")
        cid = scid_mod.channel_id_from_outpoint(txid_hex.lower(), n)
        return {
            "funding_txid": txid_hex.lower(),
            "funding_output_index": n,
            "funding_outpoint": f"{txid_hex.lower()}:{n}",
            "channel_id": cid.hex(),
        }
    if _HEX64.match(text):
        raise InputError(
            "that looks like a channel_id or txid: a channel_id cannot be turned back into an outpoint; "
            "give the funding outpoint as TXID:VOUT"
        )
    if ("x" in text.lower() and not text.lower().startswith("0x")) or ":" in text:
        s = scid_mod.ShortChannelId.from_str(text)
    else:
        try:
            value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise InputError(
                f"{text!r} is neither TXID:VOUT nor a short_channel_id (BLOCKxTXxOUT, u64 or 0x-hex)"
            ) from None
        if not 0 <= value < 1 << 64:
            raise InputError(f"short_channel_id {value} does not fit in 64 bits")
        s = scid_mod.ShortChannelId.from_int(value)
    return {
        "short_channel_id": str(s),
        "short_channel_id_u64": str(s.to_int()),
        "short_channel_id_hex": s.to_bytes().hex(),
        "block_height": s.block,
        "transaction_index": s.txindex,
        "output_index": s.output,
    }
