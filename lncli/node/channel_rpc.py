"""The channels' RPC methods: ``open``, ``listchannels``, ``close``, and the regtest-only
``dev-commitment`` and ``dev-setfeerate``."""

from __future__ import annotations

from lncli.errors import InputError, RefusedError
from lncli.node.channel_chain import FEERATE_FLOOR
from lncli.node.channels import ChannelManager


def register(registry, mgr: ChannelManager) -> None:
    from lncli.node.api import parse_node_id

    def _int(value, what: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{what} must be a whole number of at least {minimum}")
        return value

    async def open(node_id: str, amount_sat: int, push_msat: int = 0, private: bool = False, wait: float = 60.0) -> dict:
        nid = parse_node_id(node_id)
        amount_sat = _int(amount_sat, "amount_sat", 1)
        push_msat = _int(push_msat, "push_msat")
        if push_msat > amount_sat * 1000:
            raise InputError("the push amount cannot exceed the channel amount")
        e = await mgr.open(nid, amount_sat, push_msat, bool(private), float(wait))
        return mgr.describe(e)

    async def listchannels(peer: str | None = None, channel: str | None = None) -> list:
        if channel is not None:
            return [mgr.describe(mgr.find(channel))]
        return mgr.list(parse_node_id(peer) if peer is not None else None)

    async def close(channel: str, force: bool = False, wait: float = 30.0) -> dict:
        if not isinstance(channel, str):
            raise InputError("channel must be a channel_id, short_channel_id or peer id")
        return await mgr.close_channel(mgr.find(channel), bool(force), float(wait))

    async def dev_commitment(channel: str) -> dict:
        """DEV/TESTING ONLY (regtest): our latest holder commitment, fully signed, without
        broadcasting it or changing any state. Lets tests keep a commitment that later gets
        revoked and publish it as a cheater would (breach tests); refused off regtest."""
        if mgr.network != "regtest":
            raise RefusedError(f"dev-commitment is a testing RPC, regtest only (this node is on {mgr.network})")
        if not isinstance(channel, str):
            raise InputError("channel must be a channel_id, short_channel_id or peer id")
        e = mgr.find(channel)
        tx, _htlc_txs = e.channel.latest_holder_commitment()
        return {
            "channel_id": e.channel_id.hex(),
            "commitment_number": e.channel.local_ctn,
            "txid": tx.txid_hex(),
            "hex": tx.to_hex(),
        }

    registry.add("open", open)
    registry.add("listchannels", listchannels)
    registry.add("close", close)
    async def dev_setfeerate(feerate_per_kw: int | None = None) -> dict:
        """DEV/TESTING ONLY (regtest): use ``feerate_per_kw`` instead of the backend's estimate
        (None: back to the estimate) and update the fee of our channels at once."""
        if mgr.network != "regtest":
            raise RefusedError(f"dev-setfeerate is a testing RPC, regtest only (this node is on {mgr.network})")
        if feerate_per_kw is not None:
            feerate_per_kw = _int(feerate_per_kw, "feerate_per_kw", FEERATE_FLOOR)
        mgr.dev_feerate = feerate_per_kw
        if mgr.chain is not None or feerate_per_kw is not None:
            if feerate_per_kw is None:
                await mgr._refresh_feerate()
            else:
                mgr.feerate_per_kw = feerate_per_kw
        return {"feerate_per_kw": mgr.feerate_per_kw, "updated": mgr.update_fees()}

    registry.add("dev-commitment", dev_commitment)
    registry.add("dev-setfeerate", dev_setfeerate)


__all__ = ["register"]
