"""BOLT 3 commitment and HTLC transactions: keys, fees, trimming, output ordering, signing.

Perspective: a commitment transaction is *held* (and broadcast) by one side, "local" in the
spec's words; the other side, "remote", is its countersignatory. Every ``local_*`` name here
means the broadcaster, whichever peer that is. ``local_is_opener`` says whether the broadcaster
opened (funded) the channel, which decides who pays the fee and the anchors.

Channel types: ``option_static_remotekey`` is always assumed (to_remote pays the
countersignatory's ``payment_basepoint`` as is); ``anchors=True`` selects
``option_anchors_zero_fee_htlc_tx`` (two 330-sat anchors, CSV 1 on to_remote and HTLC outputs,
zero-fee HTLC transactions whose remote signature uses SIGHASH_SINGLE|ANYONECANPAY).
Legacy channels without static_remotekey are not supported.

Amounts: balances and HTLCs are in millisatoshi; outputs are their satoshi value rounded down.
The sub-satoshi remainders and trimmed outputs go to the miners.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from lncli.bitcoin.ecdsa import sign, verify, witness_signature
from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.bitcoin.sighash import SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_SINGLE, SighashCache
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.proto.keys import (
    commitment_locktime_sequence,
    derive_pubkey,
    derive_revocation_pubkey,
    obscured_to_locktime_sequence,
)
from lncli.proto.scripts import (
    anchor_script,
    htlc_tx_output_script,
    offered_htlc_script,
    payment_hash_of,
    received_htlc_script,
    to_local_script,
    to_remote_anchor_script,
    to_remote_script_pubkey,
)

__all__ = [
    "ANCHOR_OUTPUT_SAT",
    "COMMITMENT_WEIGHT",
    "COMMITMENT_WEIGHT_ANCHORS",
    "HTLC_OUTPUT_WEIGHT",
    "HTLC_TIMEOUT_WEIGHT",
    "HTLC_SUCCESS_WEIGHT",
    "Htlc",
    "Basepoints",
    "CommitmentKeys",
    "CommitmentOutput",
    "CommitmentTx",
    "derive_commitment_keys",
    "commitment_fee_sat",
    "htlc_timeout_fee_sat",
    "htlc_success_fee_sat",
    "is_trimmed",
    "untrimmed_htlcs",
    "htlc_witness_script",
    "build_commitment_tx",
    "funding_witness",
    "sign_input",
    "verify_input",
    "build_htlc_tx",
    "htlc_remote_sighash_type",
    "htlc_witness",
    "htlc_from_preimage",
]

#: value of each anchor output (option_anchors)
ANCHOR_OUTPUT_SAT = 330
#: expected weight of a commitment transaction without HTLC outputs
COMMITMENT_WEIGHT = 724
COMMITMENT_WEIGHT_ANCHORS = 1124
#: extra weight per untrimmed HTLC output
HTLC_OUTPUT_WEIGHT = 172
#: expected weights of the second-stage transactions (without option_anchors; with
#: option_anchors_zero_fee_htlc_tx they pay no fee)
HTLC_TIMEOUT_WEIGHT = 663
HTLC_SUCCESS_WEIGHT = 703

#: kinds of commitment outputs (CommitmentOutput.kind)
TO_LOCAL = "to_local"
TO_REMOTE = "to_remote"
LOCAL_ANCHOR = "local_anchor"
REMOTE_ANCHOR = "remote_anchor"
OFFERED_HTLC = "offered_htlc"
RECEIVED_HTLC = "received_htlc"

_HTLC_REMOTE_SIGHASH_ANCHORS = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Htlc:
    """An HTLC as seen on one commitment transaction. ``offered`` is True when the commitment's
    holder (broadcaster) offered it, i.e. the holder can time it out (HTLC-timeout); False when
    the holder received it and can claim it with the preimage (HTLC-success)."""

    htlc_id: int
    amount_msat: int
    payment_hash: bytes
    cltv_expiry: int
    offered: bool

    @property
    def amount_sat(self) -> int:
        return self.amount_msat // 1000


@dataclass(frozen=True)
class Basepoints:
    """One side's channel basepoints (from open_channel / accept_channel)."""

    funding_pubkey: bytes
    revocation_basepoint: bytes
    payment_basepoint: bytes
    delayed_payment_basepoint: bytes
    htlc_basepoint: bytes


@dataclass(frozen=True)
class CommitmentKeys:
    """The keys of one commitment transaction, named from its holder's (local's) side."""

    per_commitment_point: bytes
    revocation_pubkey: bytes
    local_delayed_pubkey: bytes
    local_htlc_pubkey: bytes
    remote_htlc_pubkey: bytes
    remote_payment_pubkey: bytes
    local_funding_pubkey: bytes
    remote_funding_pubkey: bytes


def derive_commitment_keys(
    per_commitment_point: bytes, broadcaster: Basepoints, countersignatory: Basepoints
) -> CommitmentKeys:
    """The keys of the broadcaster's commitment for ``per_commitment_point`` (the broadcaster's
    point). The revocation key comes from the countersignatory's revocation basepoint; to_remote
    pays the countersignatory's payment_basepoint unchanged (option_static_remotekey)."""
    pcp = per_commitment_point
    return CommitmentKeys(
        per_commitment_point=pcp,
        revocation_pubkey=derive_revocation_pubkey(countersignatory.revocation_basepoint, pcp),
        local_delayed_pubkey=derive_pubkey(broadcaster.delayed_payment_basepoint, pcp),
        local_htlc_pubkey=derive_pubkey(broadcaster.htlc_basepoint, pcp),
        remote_htlc_pubkey=derive_pubkey(countersignatory.htlc_basepoint, pcp),
        remote_payment_pubkey=countersignatory.payment_basepoint,
        local_funding_pubkey=broadcaster.funding_pubkey,
        remote_funding_pubkey=countersignatory.funding_pubkey,
    )


# ---------------------------------------------------------------------------------------------
# Fees and trimming


def commitment_fee_sat(feerate_per_kw: int, num_untrimmed_htlcs: int, anchors: bool) -> int:
    """The commitment's base fee: ``feerate_per_kw * weight // 1000`` with weight
    724 (1124 with anchors) + 172 per untrimmed HTLC. Anchor values are not included."""
    weight = (COMMITMENT_WEIGHT_ANCHORS if anchors else COMMITMENT_WEIGHT) + HTLC_OUTPUT_WEIGHT * num_untrimmed_htlcs
    return feerate_per_kw * weight // 1000


def htlc_timeout_fee_sat(feerate_per_kw: int, anchors: bool) -> int:
    """Fee of an HTLC-timeout transaction (zero with option_anchors_zero_fee_htlc_tx)."""
    return 0 if anchors else feerate_per_kw * HTLC_TIMEOUT_WEIGHT // 1000


def htlc_success_fee_sat(feerate_per_kw: int, anchors: bool) -> int:
    """Fee of an HTLC-success transaction (zero with option_anchors_zero_fee_htlc_tx)."""
    return 0 if anchors else feerate_per_kw * HTLC_SUCCESS_WEIGHT // 1000


def is_trimmed(htlc: Htlc, dust_limit_sat: int, feerate_per_kw: int, anchors: bool) -> bool:
    """True if the HTLC gets no output: its value minus the fee of its second-stage
    transaction is below the holder's dust limit. (A dust limit of 0, which BOLT 2 forbids,
    is treated as 1 so that no output or second-stage output is ever worth 0.)"""
    fee = htlc_timeout_fee_sat(feerate_per_kw, anchors) if htlc.offered else htlc_success_fee_sat(feerate_per_kw, anchors)
    return htlc.amount_msat // 1000 < max(dust_limit_sat, 1) + fee


def untrimmed_htlcs(htlcs: Iterable[Htlc], dust_limit_sat: int, feerate_per_kw: int, anchors: bool) -> list[Htlc]:
    return [h for h in htlcs if not is_trimmed(h, dust_limit_sat, feerate_per_kw, anchors)]


def htlc_witness_script(htlc: Htlc, keys: CommitmentKeys, anchors: bool) -> bytes:
    """The witness script of ``htlc``'s output on the commitment that ``keys`` describe."""
    if htlc.offered:
        return offered_htlc_script(
            keys.revocation_pubkey, keys.local_htlc_pubkey, keys.remote_htlc_pubkey, htlc.payment_hash, anchors
        )
    return received_htlc_script(
        keys.revocation_pubkey,
        keys.local_htlc_pubkey,
        keys.remote_htlc_pubkey,
        htlc.payment_hash,
        htlc.cltv_expiry,
        anchors,
    )


# ---------------------------------------------------------------------------------------------
# Commitment transaction


@dataclass(frozen=True)
class CommitmentOutput:
    """One output of a commitment transaction. ``witness_script`` is None for the P2WPKH
    to_remote of a channel without anchors; ``htlc`` is set for HTLC outputs."""

    kind: str
    value_sat: int
    script_pubkey: bytes
    witness_script: bytes | None
    htlc: Htlc | None = None


@dataclass(frozen=True)
class CommitmentTx:
    """An unsigned commitment transaction and what each output is.

    ``fee_sat`` is what the transaction actually pays (funding amount minus the outputs,
    so including trimmed HTLCs, trimmed balances and sub-satoshi remainders);
    ``base_fee_sat`` is :func:`commitment_fee_sat` for its untrimmed HTLCs.
    Vouts of absent outputs are None.

    HTLC ids: BOLT 2 numbers each side's offered HTLCs separately, so the same ``htlc_id``
    can appear once in each direction. ``htlc_outputs`` (htlc_id -> vout) merges both
    directions and is only unambiguous when ids do not collide; ``offered_htlc_outputs`` and
    ``received_htlc_outputs`` (offered/received by the holder) and :meth:`htlc_vout` always are.
    """

    tx: Transaction
    fee_sat: int
    base_fee_sat: int
    outputs: tuple[CommitmentOutput, ...]
    htlc_outputs: dict[int, int] = field(hash=False)
    to_local_vout: int | None
    to_remote_vout: int | None
    local_anchor_vout: int | None
    remote_anchor_vout: int | None
    trimmed_htlcs: tuple[Htlc, ...]
    offered_htlc_outputs: dict[int, int] = field(default_factory=dict, hash=False)
    received_htlc_outputs: dict[int, int] = field(default_factory=dict, hash=False)

    @property
    def txid(self) -> bytes:
        return self.tx.txid()

    def htlc_at(self, vout: int) -> Htlc | None:
        return self.outputs[vout].htlc

    def htlc_vout(self, htlc: Htlc) -> int | None:
        """The vout of ``htlc``'s output, None if it was trimmed (or is not on this tx)."""
        table = self.offered_htlc_outputs if htlc.offered else self.received_htlc_outputs
        return table.get(htlc.htlc_id)


# Output scripts by their inputs. The same commitment is built several times (signed, checked,
# watched) and its anchor and to_remote scripts stay the same for a channel's life, so the scripts
# are kept in small LRU caches (pure functions of public keys and numbers).


@lru_cache(maxsize=256)
def _to_local_output(revocation_pubkey: bytes, to_self_delay: int, local_delayed_pubkey: bytes) -> tuple[bytes, bytes]:
    ws = to_local_script(revocation_pubkey, to_self_delay, local_delayed_pubkey)
    return ws, p2wsh_script(ws)


@lru_cache(maxsize=256)
def _htlc_tx_output(revocation_pubkey: bytes, to_self_delay: int, local_delayed_pubkey: bytes) -> bytes:
    return p2wsh_script(htlc_tx_output_script(revocation_pubkey, to_self_delay, local_delayed_pubkey))


@lru_cache(maxsize=64)
def _to_remote_output(remote_payment_pubkey: bytes, anchors: bool) -> tuple[bytes | None, bytes]:
    ws = to_remote_anchor_script(remote_payment_pubkey) if anchors else None
    return ws, to_remote_script_pubkey(remote_payment_pubkey, anchors)


@lru_cache(maxsize=64)
def _anchor_output(funding_pubkey: bytes) -> tuple[bytes, bytes]:
    ws = anchor_script(funding_pubkey)
    return ws, p2wsh_script(ws)


@lru_cache(maxsize=1024)
def _htlc_output(
    offered: bool,
    revocation_pubkey: bytes,
    local_htlc_pubkey: bytes,
    remote_htlc_pubkey: bytes,
    payment_hash: bytes,
    cltv_expiry: int,
    anchors: bool,
) -> tuple[bytes, bytes]:
    if offered:
        ws = offered_htlc_script(revocation_pubkey, local_htlc_pubkey, remote_htlc_pubkey, payment_hash, anchors)
    else:
        ws = received_htlc_script(
            revocation_pubkey, local_htlc_pubkey, remote_htlc_pubkey, payment_hash, cltv_expiry, anchors
        )
    return ws, p2wsh_script(ws)


def _cached(fn, *args):
    """``fn(*args)`` through its cache; without it when an argument is unhashable (a bytearray)."""
    try:
        return fn(*args)
    except TypeError:
        return fn.__wrapped__(*args)


def _locktime_sequence(
    obscured_commitment_number: int | None, commitment_number: int | None, obscure_factor: int | None
) -> tuple[int, int]:
    if obscured_commitment_number is not None:
        if commitment_number is not None or obscure_factor is not None:
            raise ValueError("give obscured_commitment_number or (commitment_number, obscure_factor), not both")
        return obscured_to_locktime_sequence(obscured_commitment_number)
    if commitment_number is None or obscure_factor is None:
        raise ValueError("give obscured_commitment_number or both commitment_number and obscure_factor")
    return commitment_locktime_sequence(commitment_number, obscure_factor)


def build_commitment_tx(
    *,
    funding_outpoint: OutPoint,
    funding_amount_sat: int,
    keys: CommitmentKeys,
    to_local_msat: int,
    to_remote_msat: int,
    htlcs: Sequence[Htlc],
    feerate_per_kw: int,
    dust_limit_sat: int,
    to_self_delay: int,
    local_is_opener: bool,
    anchors: bool,
    obscured_commitment_number: int | None = None,
    commitment_number: int | None = None,
    obscure_factor: int | None = None,
) -> CommitmentTx:
    """Build the (unsigned) commitment transaction held by "local" (see the module doc).

    ``to_local_msat`` / ``to_remote_msat`` are the balances before the fee, anchors and
    in-flight HTLCs are taken out; they plus the HTLC amounts must make the funding amount.
    The base fee (and with anchors 2 x 330 sat) comes off the opener's balance, down to zero
    at most. Outputs below ``dust_limit_sat`` are trimmed; anchors are added for a side that
    has an output, or for both when any HTLC output remains. Outputs follow BIP 69 with HTLC
    outputs that are otherwise identical ordered by ``cltv_expiry``.
    """
    if to_local_msat < 0 or to_remote_msat < 0 or feerate_per_kw < 0 or dust_limit_sat < 0:
        raise ValueError("balances, feerate and dust limit must not be negative")
    for h in htlcs:
        if h.amount_msat <= 0:
            raise ValueError(f"HTLC {h.htlc_id} has a non-positive amount")
    total_msat = to_local_msat + to_remote_msat + sum(h.amount_msat for h in htlcs)
    if total_msat != funding_amount_sat * 1000:
        raise ValueError(
            f"balances and HTLCs add up to {total_msat} msat, the funding output holds {funding_amount_sat * 1000} msat"
        )
    locktime, sequence = _locktime_sequence(obscured_commitment_number, commitment_number, obscure_factor)

    # is_trimmed, with the two second-stage fees computed once
    dust = max(dust_limit_sat, 1)
    timeout_floor = dust + htlc_timeout_fee_sat(feerate_per_kw, anchors)
    success_floor = dust + htlc_success_fee_sat(feerate_per_kw, anchors)
    kept = [h for h in htlcs if h.amount_msat // 1000 >= (timeout_floor if h.offered else success_floor)]
    if len(kept) == len(htlcs):
        trimmed: tuple[Htlc, ...] = ()
    else:
        kept_ids = {id(h) for h in kept}
        trimmed = tuple(h for h in htlcs if id(h) not in kept_ids)
    base_fee = commitment_fee_sat(feerate_per_kw, len(kept), anchors)
    opener_cost_msat = (base_fee + (2 * ANCHOR_OUTPUT_SAT if anchors else 0)) * 1000
    if local_is_opener:
        to_local_msat = max(0, to_local_msat - opener_cost_msat)
    else:
        to_remote_msat = max(0, to_remote_msat - opener_cost_msat)
    to_local_sat = to_local_msat // 1000
    to_remote_sat = to_remote_msat // 1000

    # (sort key, output); the sort key is BIP 69 plus the cltv_expiry tie-break
    entries: list[tuple[tuple[int, bytes, int, int], CommitmentOutput]] = []
    add = entries.append

    has_to_local = to_local_sat >= dust_limit_sat and to_local_sat > 0
    has_to_remote = to_remote_sat >= dust_limit_sat and to_remote_sat > 0
    if has_to_local:
        ws, spk = _cached(_to_local_output, keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey)
        add(((to_local_sat, spk, 0, -1), CommitmentOutput(TO_LOCAL, to_local_sat, spk, ws)))
    if has_to_remote:
        ws, spk = _cached(_to_remote_output, keys.remote_payment_pubkey, anchors)
        add(((to_remote_sat, spk, 0, -1), CommitmentOutput(TO_REMOTE, to_remote_sat, spk, ws)))
    if anchors:
        if has_to_local or kept:
            ws, spk = _cached(_anchor_output, keys.local_funding_pubkey)
            add(((ANCHOR_OUTPUT_SAT, spk, 0, -1), CommitmentOutput(LOCAL_ANCHOR, ANCHOR_OUTPUT_SAT, spk, ws)))
        if has_to_remote or kept:
            ws, spk = _cached(_anchor_output, keys.remote_funding_pubkey)
            add(((ANCHOR_OUTPUT_SAT, spk, 0, -1), CommitmentOutput(REMOTE_ANCHOR, ANCHOR_OUTPUT_SAT, spk, ws)))
    for h in kept:
        offered = h.offered
        ws, spk = _cached(
            _htlc_output,
            bool(offered),
            keys.revocation_pubkey,
            keys.local_htlc_pubkey,
            keys.remote_htlc_pubkey,
            h.payment_hash,
            0 if offered else h.cltv_expiry,
            anchors,
        )
        value = h.amount_msat // 1000
        kind = OFFERED_HTLC if offered else RECEIVED_HTLC
        add(((value, spk, h.cltv_expiry, h.htlc_id), CommitmentOutput(kind, value, spk, ws, h)))

    entries.sort(key=lambda e: e[0])
    outputs = tuple(e[1] for e in entries)
    vouts: dict[str, int] = {}
    htlc_outputs: dict[int, int] = {}
    by_direction: dict[bool, dict[int, int]] = {True: {}, False: {}}
    for vout, out in enumerate(outputs):
        if out.htlc is not None:
            htlc_outputs[out.htlc.htlc_id] = vout
            by_direction[out.htlc.offered][out.htlc.htlc_id] = vout
        else:
            vouts[out.kind] = vout

    tx = Transaction(
        version=2,
        inputs=(TxIn(funding_outpoint, b"", sequence),),
        outputs=tuple(TxOut(o.value_sat, o.script_pubkey) for o in outputs),
        locktime=locktime,
    )
    return CommitmentTx(
        tx=tx,
        fee_sat=funding_amount_sat - sum(o.value_sat for o in outputs),
        base_fee_sat=base_fee,
        outputs=outputs,
        htlc_outputs=htlc_outputs,
        to_local_vout=vouts.get(TO_LOCAL),
        to_remote_vout=vouts.get(TO_REMOTE),
        local_anchor_vout=vouts.get(LOCAL_ANCHOR),
        remote_anchor_vout=vouts.get(REMOTE_ANCHOR),
        trimmed_htlcs=trimmed,
        offered_htlc_outputs=by_direction[True],
        received_htlc_outputs=by_direction[False],
    )


# ---------------------------------------------------------------------------------------------
# Signing


def funding_witness(
    sig_local_der: bytes, sig_remote_der: bytes, local_funding_pubkey: bytes, remote_funding_pubkey: bytes
) -> tuple[bytes, ...]:
    """The witness spending the 2-of-2 funding output: the CHECKMULTISIG dummy (empty), the two
    SIGHASH_ALL signatures in the script's (sorted pubkey) order, and the funding script."""
    script = funding_script(local_funding_pubkey, remote_funding_pubkey)
    local_item = witness_signature(sig_local_der, SIGHASH_ALL)
    remote_item = witness_signature(sig_remote_der, SIGHASH_ALL)
    if local_funding_pubkey <= remote_funding_pubkey:
        return (b"", local_item, remote_item, script)
    return (b"", remote_item, local_item, script)


def sign_input(
    tx: Transaction,
    input_index: int,
    witness_script: bytes,
    amount_sat: int,
    privkey: bytes,
    sighash_type: int = SIGHASH_ALL,
    *,
    cache: SighashCache | None = None,
) -> bytes:
    """BIP 143 signature (DER, low-S, RFC 6979; no sighash byte) of a P2WSH input."""
    sighash = (cache or SighashCache(tx)).segwit_v0(input_index, witness_script, amount_sat, sighash_type)
    return sign(privkey, sighash)


def verify_input(
    tx: Transaction,
    input_index: int,
    witness_script: bytes,
    amount_sat: int,
    pubkey: bytes,
    der_sig: bytes,
    sighash_type: int = SIGHASH_ALL,
    *,
    cache: SighashCache | None = None,
) -> bool:
    """Whether ``der_sig`` (no sighash byte) by ``pubkey`` signs input ``input_index``."""
    sighash = (cache or SighashCache(tx)).segwit_v0(input_index, witness_script, amount_sat, sighash_type)
    return verify(pubkey, sighash, der_sig)


# ---------------------------------------------------------------------------------------------
# HTLC-success / HTLC-timeout


def build_htlc_tx(
    *,
    commitment_txid: bytes,
    vout: int,
    htlc: Htlc,
    keys: CommitmentKeys,
    to_self_delay: int,
    feerate_per_kw: int,
    anchors: bool,
) -> Transaction:
    """The unsigned second-stage transaction of an HTLC output on the holder's commitment:
    HTLC-timeout for an offered HTLC (locktime ``cltv_expiry``), HTLC-success for a received
    one (locktime 0). ``commitment_txid`` is in internal byte order (``Transaction.txid()``).
    The output pays the to_local form (revocation key / delayed key after to_self_delay)."""
    if htlc.offered:
        fee, locktime = htlc_timeout_fee_sat(feerate_per_kw, anchors), htlc.cltv_expiry
    else:
        fee, locktime = htlc_success_fee_sat(feerate_per_kw, anchors), 0
    value = htlc.amount_msat // 1000 - fee
    if value < 0:
        raise ValueError(f"HTLC {htlc.htlc_id} cannot pay its second-stage fee (it should be trimmed)")
    out_script = _cached(_htlc_tx_output, keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey)
    return Transaction(
        version=2,
        inputs=(TxIn(OutPoint(commitment_txid, vout), b"", 1 if anchors else 0),),
        outputs=(TxOut(value, out_script),),
        locktime=locktime,
    )


def htlc_remote_sighash_type(anchors: bool) -> int:
    """The sighash type of the countersignatory's HTLC signature: SIGHASH_SINGLE|ANYONECANPAY
    with option_anchors (so fees can be added), SIGHASH_ALL otherwise. The holder signs ALL."""
    return _HTLC_REMOTE_SIGHASH_ANCHORS if anchors else SIGHASH_ALL


def htlc_witness(
    *,
    remote_sig_der: bytes,
    local_sig_der: bytes,
    witness_script: bytes,
    anchors: bool,
    payment_preimage: bytes | None = None,
) -> tuple[bytes, ...]:
    """Witness of an HTLC-success (``payment_preimage`` given) or HTLC-timeout (None)
    transaction: ``0 <remotehtlcsig> <localhtlcsig> <preimage or empty> <witness_script>``."""
    if payment_preimage is not None and len(payment_preimage) != 32:
        raise ValueError("payment_preimage must be 32 bytes")
    return (
        b"",
        witness_signature(remote_sig_der, htlc_remote_sighash_type(anchors)),
        witness_signature(local_sig_der, SIGHASH_ALL),
        payment_preimage if payment_preimage is not None else b"",
        witness_script,
    )


def htlc_from_preimage(htlc_id: int, amount_msat: int, payment_preimage: bytes, cltv_expiry: int, offered: bool) -> Htlc:
    """Convenience: an :class:`Htlc` whose payment_hash is ``SHA256(payment_preimage)``."""
    return Htlc(htlc_id, amount_msat, payment_hash_of(payment_preimage), cltv_expiry, offered)
