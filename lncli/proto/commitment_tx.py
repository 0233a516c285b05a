"""BOLT 3: the transactions of one commitment of a channel, from that channel's values.

:mod:`lncli.proto.commitment` builds a commitment or HTLC transaction from explicit
broadcaster/countersignatory values. Here is the step above it that a channel takes for every
commitment number: which side's dust limit and ``to_self_delay`` apply, which HTLCs the holder
offered, the keys for a ``per_commitment_point`` (derived fast, the same keys), and a
:class:`BuiltCommitment` that computes once what signing or checking the commitment needs.

Pure: plain values in (a channel passes itself as a :class:`ChannelView`), transactions out; no
I/O, clock or randomness. ``side`` is :data:`LOCAL` (the holder is us) or :data:`REMOTE`
(the holder is the peer), the same numbers as :mod:`lncli.channel.state`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _secp
from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.bitcoin.tx import OutPoint
from lncli.proto import commitment as bolt3
from lncli.proto.commitment import Basepoints, CommitmentTx, Htlc

__all__ = [
    "LOCAL",
    "REMOTE",
    "SideConfig",
    "HtlcView",
    "ChannelView",
    "commitment_keys",
    "build_commitment",
    "htlc_vouts",
    "htlc_tx",
    "BuiltCommitment",
]

#: the holder of the commitment is us / the peer (as lncli.channel.state.LOCAL, REMOTE)
LOCAL = 0
REMOTE = 1


class SideConfig(Protocol):
    """What one side asked for in open_channel / accept_channel (a ChannelConfig)."""

    dust_limit_satoshis: int
    to_self_delay: int


class HtlcView(Protocol):
    """One HTLC of the channel (an HtlcRecord); ``outbound``: we offered it."""

    htlc_id: int
    outbound: bool
    amount_msat: int
    payment_hash: bytes
    cltv_expiry: int


class ChannelView(Protocol):
    """The channel's values its commitments are built from (a Channel)."""

    funding_outpoint: OutPoint
    funding_satoshis: int
    local_config: SideConfig
    remote_config: SideConfig
    is_opener: bool
    anchors: bool
    obscure_factor: int


_PARSED: dict[bytes, object] = {}  # basepoints parsed once per process (a few per channel)
_CTX = _GLOBAL_CONTEXT.ctx
_COMPRESSED = _secp.SECP256K1_EC_COMPRESSED


def _parsed(point: bytes):
    """A fresh libsecp256k1 point (the tweaks change it in place) copied from the parsed
    basepoint; ValueError if ``point`` is not one."""
    p = _PARSED.get(point)
    if p is None:
        if len(_PARSED) > 1024:
            _PARSED.clear()
        p = _ffi.new("secp256k1_pubkey *")
        if not isinstance(point, bytes) or len(point) != 33 or not _secp.secp256k1_ec_pubkey_parse(_CTX, p, point, 33):
            raise ValueError("not a point")
        _PARSED[point] = p
    return _ffi.new("secp256k1_pubkey *", p[0])


def _format(p) -> bytes:
    out = _ffi.new("unsigned char[33]")
    size = _ffi.new("size_t *", 33)
    _secp.secp256k1_ec_pubkey_serialize(_CTX, out, size, p, _COMPRESSED)
    return _ffi.buffer(out, 33)[:]


def commitment_keys(pcp: bytes, broadcaster: Basepoints, countersignatory: Basepoints) -> bolt3.CommitmentKeys:
    """``bolt3.derive_commitment_keys`` with the basepoints parsed once and the
    per_commitment_point once per call, straight through libsecp256k1 (the same keys, from the
    same formulas); any bad input goes to ``bolt3.derive_commitment_keys`` for its error."""
    sha256 = hashlib.sha256
    pcp = bytes(pcp)
    lib = _secp
    try:
        point = _ffi.new("secp256k1_pubkey *")
        if len(pcp) != 33 or not lib.secp256k1_ec_pubkey_parse(_CTX, point, pcp, 33):
            raise ValueError("not a point")
        rb = countersignatory.revocation_basepoint
        base = _parsed(rb)
        total = _ffi.new("secp256k1_pubkey *")
        if not (
            lib.secp256k1_ec_pubkey_tweak_mul(_CTX, base, sha256(rb + pcp).digest())
            and lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, sha256(pcp + rb).digest())
            and lib.secp256k1_ec_pubkey_combine(_CTX, total, [base, point], 2)
        ):
            raise ValueError("revocation key derivation failed")
        revocation = _format(total)

        def tweaked(b: bytes) -> bytes:
            q = _parsed(b)
            if not lib.secp256k1_ec_pubkey_tweak_add(_CTX, q, sha256(pcp + b).digest()):
                raise ValueError("tweak failed")
            return _format(q)

        return bolt3.CommitmentKeys(
            per_commitment_point=pcp,
            revocation_pubkey=revocation,
            local_delayed_pubkey=tweaked(broadcaster.delayed_payment_basepoint),
            local_htlc_pubkey=tweaked(broadcaster.htlc_basepoint),
            remote_htlc_pubkey=tweaked(countersignatory.htlc_basepoint),
            remote_payment_pubkey=countersignatory.payment_basepoint,
            local_funding_pubkey=broadcaster.funding_pubkey,
            remote_funding_pubkey=countersignatory.funding_pubkey,
        )
    except Exception:  # noqa: BLE001 - the reference derivation raises the proper DecodeError
        return bolt3.derive_commitment_keys(pcp, broadcaster, countersignatory)


def build_commitment(
    ch: ChannelView, side: int, ctn: int, ours: int, theirs: int, live: Sequence[HtlcView], keys, feerate: int
) -> CommitmentTx:
    """Commitment ``ctn`` of ``side`` with our balance ``ours`` and theirs ``theirs`` (msat,
    before fees), the HTLCs ``live`` and the commitment ``keys`` of that side. A Channel binds
    this as its ``_build_commitment`` method (``ch`` is the channel)."""
    holder_is_us = side == LOCAL
    htlcs = [
        Htlc(r.htlc_id, r.amount_msat, r.payment_hash, r.cltv_expiry, r.outbound == holder_is_us) for r in live
    ]
    ctx = bolt3.build_commitment_tx(
        funding_outpoint=ch.funding_outpoint,
        funding_amount_sat=ch.funding_satoshis,
        keys=keys,
        to_local_msat=ours if holder_is_us else theirs,
        to_remote_msat=theirs if holder_is_us else ours,
        htlcs=htlcs,
        feerate_per_kw=feerate,
        dust_limit_sat=(ch.local_config if holder_is_us else ch.remote_config).dust_limit_satoshis,
        to_self_delay=(ch.remote_config if holder_is_us else ch.local_config).to_self_delay,
        local_is_opener=ch.is_opener == holder_is_us,
        anchors=ch.anchors,
        commitment_number=ctn,
        obscure_factor=ch.obscure_factor,
    )
    return ctx


def htlc_vouts(ctx) -> list[tuple[int, Htlc]]:
    """(vout, Htlc) of each HTLC output of the commitment ``ctx``, in output order."""
    return [(vout, o.htlc) for vout, o in enumerate(ctx.outputs) if o.htlc is not None]


def htlc_tx(ch: ChannelView, side: int, txid: bytes, vout: int, h, keys, feerate: int):
    """The unsigned HTLC-success/timeout tx spending output ``vout`` of ``side``'s
    commitment ``txid``: its to_self_delay is the one the other side asked of ``side``."""
    return bolt3.build_htlc_tx(
        commitment_txid=txid,
        vout=vout,
        htlc=h,
        keys=keys,
        to_self_delay=(ch.remote_config if side == LOCAL else ch.local_config).to_self_delay,
        feerate_per_kw=feerate,
        anchors=ch.anchors,
    )


class BuiltCommitment:
    """One commitment tx as a channel built it, with what signing or checking it needs, each
    computed once: the funding input's sighash, each HTLC output's HTLC tx and its sighash, and
    (their commitment) our signatures. Memory only."""

    __slots__ = ("ctx", "keys", "feerate", "cache", "_funding_sighash", "_htlcs", "sigs")

    def __init__(self, ctx, keys, feerate: int):
        self.ctx, self.keys, self.feerate = ctx, keys, feerate
        self.cache = SighashCache(ctx.tx)
        self._funding_sighash = None
        self._htlcs = None
        self.sigs = None

    def funding_sighash(self, funding_script: bytes, funding_satoshis: int) -> bytes:
        if self._funding_sighash is None:
            self._funding_sighash = self.cache.segwit_v0(0, funding_script, funding_satoshis, SIGHASH_ALL)
        return self._funding_sighash

    def htlc_txs(self, ch: ChannelView, side: int) -> list:
        """[(vout, Htlc, HTLC tx, its SighashCache, the sighash the remote signature covers)]."""
        if self._htlcs is None:
            ctx = self.ctx
            txid = ctx.tx.txid()
            sighash_type = bolt3.htlc_remote_sighash_type(ch.anchors)
            out = []
            for vout, h in htlc_vouts(ctx):
                htx = htlc_tx(ch, side, txid, vout, h, self.keys, self.feerate)
                hcache = SighashCache(htx)
                ws = ctx.outputs[vout].witness_script
                out.append((vout, h, htx, hcache, hcache.segwit_v0(0, ws, h.amount_sat, sighash_type)))
            self._htlcs = out
        return self._htlcs
