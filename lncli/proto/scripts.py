"""BOLT 3 witness scripts: to_local, to_remote (anchors), offered/received HTLC, anchors,
and the HTLC-success/timeout output.

Every function returns the raw *witness script*; the output's scriptPubKey is
``p2wsh_script(witness_script)`` (except the plain P2WPKH ``to_remote`` without anchors, see
:func:`to_remote_script_pubkey`).

Naming follows the spec: "local" is the holder (broadcaster) of the commitment transaction,
"remote" its countersignatory. ``revocation_pubkey`` is the per-commitment revocation key that
the countersignatory can complete once the commitment is revoked.

``anchors`` selects the ``option_anchors`` variants: HTLC scripts gain ``1 OP_CHECKSEQUENCEVERIFY
OP_DROP`` in the non-revocation branches and to_remote becomes a P2WSH with a one-block CSV.
"""

from __future__ import annotations

import hashlib

from lncli.bitcoin.script import (
    OP_CHECKLOCKTIMEVERIFY,
    OP_CHECKMULTISIG,
    OP_CHECKSEQUENCEVERIFY,
    OP_CHECKSIG,
    OP_CHECKSIGVERIFY,
    OP_DROP,
    OP_DUP,
    OP_ELSE,
    OP_ENDIF,
    OP_EQUAL,
    OP_EQUALVERIFY,
    OP_HASH160,
    OP_IF,
    OP_IFDUP,
    OP_NOTIF,
    OP_SIZE,
    OP_SWAP,
    build_script,
    hash160,
    p2wpkh_script_for_pubkey,
    p2wsh_script,
    ripemd160,
)

__all__ = [
    "to_local_script",
    "htlc_tx_output_script",
    "to_remote_anchor_script",
    "to_remote_script_pubkey",
    "offered_htlc_script",
    "received_htlc_script",
    "anchor_script",
    "ANCHOR_CSV",
    "payment_hash_of",
]

#: anchor outputs become spendable by anyone after this many blocks
ANCHOR_CSV = 16



def _pubkey(value: bytes, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 33 or value[0] not in (2, 3):
        raise ValueError(f"{name} must be a 33-byte compressed public key")
    return bytes(value)


def _hash32(value: bytes, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return bytes(value)


def payment_hash_of(payment_preimage: bytes) -> bytes:
    """``SHA256(payment_preimage)``."""
    return hashlib.sha256(_hash32(payment_preimage, "payment_preimage")).digest()


def to_local_script(revocation_pubkey: bytes, to_self_delay: int, local_delayed_pubkey: bytes) -> bytes:
    """``OP_IF <revocationpubkey> OP_ELSE <to_self_delay> OP_CHECKSEQUENCEVERIFY OP_DROP
    <local_delayedpubkey> OP_ENDIF OP_CHECKSIG``."""
    if not 0 <= to_self_delay <= 0xFFFF:
        raise ValueError(f"to_self_delay must be a 16-bit value, got {to_self_delay}")
    return build_script(
        [
            OP_IF,
            _pubkey(revocation_pubkey, "revocation_pubkey"),
            OP_ELSE,
            to_self_delay,
            OP_CHECKSEQUENCEVERIFY,
            OP_DROP,
            _pubkey(local_delayed_pubkey, "local_delayed_pubkey"),
            OP_ENDIF,
            OP_CHECKSIG,
        ]
    )


def htlc_tx_output_script(revocation_pubkey: bytes, to_self_delay: int, local_delayed_pubkey: bytes) -> bytes:
    """The HTLC-success/HTLC-timeout output: the to_local form with the broadcaster's keys."""
    return to_local_script(revocation_pubkey, to_self_delay, local_delayed_pubkey)


def to_remote_anchor_script(remote_pubkey: bytes) -> bytes:
    """option_anchors to_remote: ``<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY``."""
    return build_script([_pubkey(remote_pubkey, "remote_pubkey"), OP_CHECKSIGVERIFY, 1, OP_CHECKSEQUENCEVERIFY])


def to_remote_script_pubkey(remote_pubkey: bytes, anchors: bool) -> bytes:
    """The to_remote scriptPubKey: P2WPKH of ``remote_pubkey`` (option_static_remotekey), or the
    P2WSH of :func:`to_remote_anchor_script` with option_anchors."""
    if anchors:
        return p2wsh_script(to_remote_anchor_script(remote_pubkey))
    return p2wpkh_script_for_pubkey(_pubkey(remote_pubkey, "remote_pubkey"))


def anchor_script(funding_pubkey: bytes) -> bytes:
    """``<funding_pubkey> OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF``."""
    return build_script(
        [_pubkey(funding_pubkey, "funding_pubkey"), OP_CHECKSIG, OP_IFDUP, OP_NOTIF, ANCHOR_CSV, OP_CHECKSEQUENCEVERIFY, OP_ENDIF]
    )


def _revocation_head(revocation_pubkey: bytes, remote_htlc_pubkey: bytes) -> list:
    return [
        OP_DUP,
        OP_HASH160,
        hash160(_pubkey(revocation_pubkey, "revocation_pubkey")),
        OP_EQUAL,
        OP_IF,
        OP_CHECKSIG,
        OP_ELSE,
        _pubkey(remote_htlc_pubkey, "remote_htlc_pubkey"),
        OP_SWAP,
        OP_SIZE,
        32,
        OP_EQUAL,
    ]


def _tail(anchors: bool) -> list:
    return [OP_ENDIF, 1, OP_CHECKSEQUENCEVERIFY, OP_DROP, OP_ENDIF] if anchors else [OP_ENDIF, OP_ENDIF]


def offered_htlc_script(
    revocation_pubkey: bytes,
    local_htlc_pubkey: bytes,
    remote_htlc_pubkey: bytes,
    payment_hash: bytes,
    anchors: bool,
) -> bytes:
    """Offered HTLC output: the revocation key spends at once; the remote node with the
    preimage; the local node through the (CLTV-locked) HTLC-timeout transaction."""
    ph = ripemd160(_hash32(payment_hash, "payment_hash"))
    return build_script(
        _revocation_head(revocation_pubkey, remote_htlc_pubkey)
        + [
            OP_NOTIF,
            OP_DROP,
            2,
            OP_SWAP,
            _pubkey(local_htlc_pubkey, "local_htlc_pubkey"),
            2,
            OP_CHECKMULTISIG,
            OP_ELSE,
            OP_HASH160,
            ph,
            OP_EQUALVERIFY,
            OP_CHECKSIG,
        ]
        + _tail(anchors)
    )


def received_htlc_script(
    revocation_pubkey: bytes,
    local_htlc_pubkey: bytes,
    remote_htlc_pubkey: bytes,
    payment_hash: bytes,
    cltv_expiry: int,
    anchors: bool,
) -> bytes:
    """Received HTLC output: the revocation key spends at once; the local node with the
    preimage through the HTLC-success transaction; the remote node after ``cltv_expiry``."""
    if not 0 <= cltv_expiry <= 0xFFFFFFFF:
        raise ValueError(f"cltv_expiry must be a 32-bit value, got {cltv_expiry}")
    ph = ripemd160(_hash32(payment_hash, "payment_hash"))
    return build_script(
        _revocation_head(revocation_pubkey, remote_htlc_pubkey)
        + [
            OP_IF,
            OP_HASH160,
            ph,
            OP_EQUALVERIFY,
            2,
            OP_SWAP,
            _pubkey(local_htlc_pubkey, "local_htlc_pubkey"),
            2,
            OP_CHECKMULTISIG,
            OP_ELSE,
            OP_DROP,
            cltv_expiry,
            OP_CHECKLOCKTIMEVERIFY,
            OP_DROP,
            OP_CHECKSIG,
        ]
        + _tail(anchors)
    )
