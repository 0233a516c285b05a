"""What this node says about itself in ``init``: its feature bits and the chains it serves.

The one place the advertised feature set lives; the channel code extends :data:`INIT_FEATURES`
(``payment_secret``, ``option_channel_type``... once they are implemented) and nothing else.
"""

from __future__ import annotations

from lncli.proto.features import Features, UnknownRequiredFeature, check_known

# Only what this node implements today. Optional (odd) bits:
# option_data_loss_protect: channel_reestablish carries and checks the last secret and point.
# option_static_remotekey: the only commitment format our channels use.
# option_channel_type: open_channel/accept_channel carry channel_type (required by us).
# basic_mpp: we pay in parts, and hold received parts until their total arrives (node/payments.py).
# Required (even) bits, as BOLT 9 assumes them of every node:
# var_onion_optin: TLV hop payloads are what our onion code builds and reads.
# payment_secret: our invoices carry one and the final hop checks it.
INIT_FEATURES: Features = Features.from_names(
    "option_data_loss_protect", "option_static_remotekey", "option_channel_type", "basic_mpp"
) | Features.from_names("var_onion_optin", "payment_secret", required=True)

# Genesis block hashes in display order; chain_hash on the wire is the internal (reversed) order.
_GENESIS_DISPLAY = {
    "mainnet": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "testnet": "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    "signet": "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    "regtest": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
}
CHAIN_HASHES: dict[str, bytes] = {net: bytes.fromhex(h)[::-1] for net, h in _GENESIS_DISPLAY.items()}


def chain_hash(network: str) -> bytes:
    return CHAIN_HASHES[network]


def check_peer_features(features: Features) -> None:
    """Raise UnknownRequiredFeature if the peer requires an even bit we do not understand in init."""
    check_known(features, context="I")


__all__ = ["INIT_FEATURES", "CHAIN_HASHES", "chain_hash", "check_peer_features", "UnknownRequiredFeature"]
