"""Penalty ("justice") transactions: sweeping a revoked commitment with the revocation key.

When the countersignatory of a commitment learns its ``per_commitment_secret`` (the holder
revealed it in ``revoke_and_ack``) and the holder still broadcasts it, the countersignatory
can take, at once and with the revocation private key alone:

- the to_local output: witness ``<revocationsig> 1 <to_local script>``;
- every offered/received HTLC output: witness ``<revocationsig> <revocationpubkey> <script>``;
- the output of an HTLC-success/timeout transaction the cheater already confirmed (it has the
  to_local form): witness ``<revocationsig> 1 <script>``.

The revocation private key is ``derive_revocation_privkey(revocation_basepoint_secret,
per_commitment_secret)``; ``revocation_basepoint_secret`` belongs to us, the countersignatory.

"Broadcaster" below is the cheating peer (holder of the revoked commitment) and
"countersignatory" is us. Everything is pure: the caller provides keys and the destination.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lncli.bitcoin.ecdsa import pubkey_from_privkey, witness_signature
from lncli.bitcoin.script import p2wsh_script
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut, relay_fee_for
from lncli.errors import RefusedError
from lncli.proto.commitment import (
    Basepoints,
    CommitmentKeys,
    Htlc,
    derive_commitment_keys,
    htlc_witness_script,
    sign_input,
)
from lncli.proto.keys import derive_revocation_privkey, per_commitment_point
from lncli.proto.scripts import htlc_tx_output_script, to_local_script

__all__ = [
    "RevokedOutput",
    "revocation_privkey",
    "find_revoked_outputs",
    "sweep_revoked_outputs",
    "build_justice_tx",
    "build_htlc_justice_tx",
    "JUSTICE_SEQUENCE",
]

#: input sequence of justice transactions: no relative lock, signals replaceability (BIP 125)
JUSTICE_SEQUENCE = 0xFFFFFFFD
#: a witness signature at its largest (72-byte DER + sighash byte), for fee estimation
_MAX_SIG_ITEM = 73

TO_LOCAL = "to_local"
OFFERED_HTLC = "offered_htlc"
RECEIVED_HTLC = "received_htlc"
HTLC_TX_OUTPUT = "htlc_tx_output"


@dataclass(frozen=True)
class RevokedOutput:
    """An output the revocation key can spend. ``kind`` is ``to_local``, ``offered_htlc``,
    ``received_htlc`` or ``htlc_tx_output`` (second stage, to_local form)."""

    outpoint: OutPoint
    amount_sat: int
    witness_script: bytes
    kind: str

    @property
    def uses_pubkey_witness(self) -> bool:
        """HTLC outputs take ``<sig> <revocationpubkey>``; the to_local forms ``<sig> 1``."""
        return self.kind in (OFFERED_HTLC, RECEIVED_HTLC)


def revocation_privkey(per_commitment_secret: bytes, revocation_basepoint_secret: bytes) -> bytes:
    """The revocation private key of the commitment whose secret has been revealed."""
    return derive_revocation_privkey(revocation_basepoint_secret, per_commitment_secret)


def _keys(
    per_commitment_secret: bytes,
    revocation_basepoint_secret: bytes,
    broadcaster: Basepoints,
    countersignatory: Basepoints,
) -> tuple[CommitmentKeys, bytes]:
    if pubkey_from_privkey(revocation_basepoint_secret) != countersignatory.revocation_basepoint:
        raise ValueError("revocation_basepoint_secret does not match the countersignatory's revocation_basepoint")
    keys = derive_commitment_keys(per_commitment_point(per_commitment_secret), broadcaster, countersignatory)
    priv = revocation_privkey(per_commitment_secret, revocation_basepoint_secret)
    if pubkey_from_privkey(priv) != keys.revocation_pubkey:  # cannot happen with consistent inputs
        raise ValueError("derived revocation private key does not match the revocation pubkey")
    return keys, priv


def find_revoked_outputs(
    commitment_tx: Transaction,
    keys: CommitmentKeys,
    htlcs: Sequence[Htlc],
    to_self_delay: int,
    anchors: bool,
) -> list[RevokedOutput]:
    """The outputs of ``commitment_tx`` (the broadcaster's commitment described by ``keys``)
    that the revocation key can spend: to_local, and every HTLC output among ``htlcs`` (the
    HTLCs of that commitment from the broadcaster's side) that is present. In vout order."""
    wanted: dict[bytes, tuple[bytes, str]] = {}
    ws = to_local_script(keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey)
    wanted[p2wsh_script(ws)] = (ws, TO_LOCAL)
    for h in htlcs:
        ws = htlc_witness_script(h, keys, anchors)
        wanted[p2wsh_script(ws)] = (ws, OFFERED_HTLC if h.offered else RECEIVED_HTLC)
    txid = commitment_tx.txid()
    found = []
    for vout, out in enumerate(commitment_tx.outputs):
        hit = wanted.get(out.script_pubkey)
        if hit is not None:
            found.append(RevokedOutput(OutPoint(txid, vout), out.value_sat, hit[0], hit[1]))
    return found


def _witness(out: RevokedOutput, sig_item: bytes, revocation_pubkey: bytes) -> tuple[bytes, ...]:
    second = revocation_pubkey if out.uses_pubkey_witness else b"\x01"
    return (sig_item, second, out.witness_script)


def sweep_revoked_outputs(
    outputs: Sequence[RevokedOutput],
    revocation_privkey: bytes,
    *,
    feerate_per_kw: int,
    destination_script: bytes,
    locktime: int = 0,
    min_output_sat: int = 330,
) -> Transaction:
    """One signed transaction spending all ``outputs`` with the revocation key to
    ``destination_script``. The fee is ``feerate_per_kw`` times the weight with maximal
    signatures (rounded down). Raises RefusedError if nothing is left above ``min_output_sat``."""
    if not outputs:
        raise RefusedError("no revoked outputs to sweep")
    revocation_pubkey = pubkey_from_privkey(revocation_privkey)
    inputs = tuple(TxIn(o.outpoint, b"", JUSTICE_SEQUENCE) for o in outputs)
    total = sum(o.amount_sat for o in outputs)
    placeholder = b"\x00" * _MAX_SIG_ITEM
    draft = Transaction(
        version=2,
        inputs=tuple(i.with_witness(_witness(o, placeholder, revocation_pubkey)) for i, o in zip(inputs, outputs)),
        outputs=(TxOut(total, destination_script),),
        locktime=locktime,
    )
    fee = relay_fee_for(draft, feerate_per_kw)
    value = total - fee
    if value < min_output_sat:
        raise RefusedError(
            f"revoked outputs hold {total} sat; after a {fee} sat fee only {value} sat would be left"
        )
    unsigned = Transaction(version=2, inputs=inputs, outputs=(TxOut(value, destination_script),), locktime=locktime)
    cache = SighashCache(unsigned)
    witnesses = []
    for i, o in enumerate(outputs):
        sig = sign_input(unsigned, i, o.witness_script, o.amount_sat, revocation_privkey, cache=cache)
        witnesses.append(_witness(o, witness_signature(sig, SIGHASH_ALL), revocation_pubkey))
    return unsigned.with_witnesses(witnesses)


def build_justice_tx(
    *,
    revoked_commitment_tx: Transaction,
    per_commitment_secret: bytes,
    revocation_basepoint_secret: bytes,
    broadcaster: Basepoints,
    countersignatory: Basepoints,
    htlcs: Sequence[Htlc],
    to_self_delay: int,
    feerate_per_kw: int,
    destination_script: bytes,
    anchors: bool,
    locktime: int = 0,
) -> Transaction:
    """Sweep the revoked to_local output and every HTLC output of ``revoked_commitment_tx`` in
    one signed transaction.

    ``broadcaster`` holds the revoked commitment (the cheater) and ``countersignatory`` is us;
    ``revocation_basepoint_secret`` is our revocation basepoint's secret;
    ``per_commitment_secret`` is the secret the broadcaster revealed for that commitment;
    ``to_self_delay`` is the delay the broadcaster's to_local is under (the one we required);
    ``htlcs`` are that commitment's HTLCs from the broadcaster's side (offered = offered by
    the broadcaster). Raises RefusedError when nothing is found or worth sweeping.
    """
    keys, priv = _keys(per_commitment_secret, revocation_basepoint_secret, broadcaster, countersignatory)
    found = find_revoked_outputs(revoked_commitment_tx, keys, htlcs, to_self_delay, anchors)
    return sweep_revoked_outputs(
        found, priv, feerate_per_kw=feerate_per_kw, destination_script=destination_script, locktime=locktime
    )


def build_htlc_justice_tx(
    *,
    htlc_tx: Transaction,
    per_commitment_secret: bytes,
    revocation_basepoint_secret: bytes,
    broadcaster: Basepoints,
    countersignatory: Basepoints,
    to_self_delay: int,
    feerate_per_kw: int,
    destination_script: bytes,
    locktime: int = 0,
) -> Transaction:
    """Sweep the output of an HTLC-success/timeout transaction that spent an HTLC output of
    a revoked commitment (its output has the to_local form with the revoked keys).
    Raises RefusedError if ``htlc_tx`` has no such output."""
    keys, priv = _keys(per_commitment_secret, revocation_basepoint_secret, broadcaster, countersignatory)
    ws = htlc_tx_output_script(keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey)
    spk = p2wsh_script(ws)
    txid = htlc_tx.txid()
    found = [
        RevokedOutput(OutPoint(txid, vout), out.value_sat, ws, HTLC_TX_OUTPUT)
        for vout, out in enumerate(htlc_tx.outputs)
        if out.script_pubkey == spk
    ]
    return sweep_revoked_outputs(
        found, priv, feerate_per_kw=feerate_per_kw, destination_script=destination_script, locktime=locktime
    )
