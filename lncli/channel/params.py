"""Channel parameters: what we announce in open_channel / accept_channel, and every BOLT 2
check of what the peer announces.

Words as in BOLT 2: each side announces the limits it imposes on the *other* side.
``channel_reserve_satoshis`` in our message is what the peer must keep; ``to_self_delay`` in
our message is the delay the peer's own outputs get; ``dust_limit_satoshis`` is the dust
limit of our own commitment transactions.

A refusal raises :class:`ChannelError`; its message is what we put in the ``error`` sent to
the peer and show the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from lncli.errors import RefusedError
from lncli.proto.features import (
    CHANNEL_TYPE_ANCHORS,
    CHANNEL_TYPE_STATIC_REMOTEKEY,
    Features,
)

__all__ = [
    "ChannelError",
    "ChannelConfig",
    "LocalPolicy",
    "MAX_ACCEPTED_HTLCS_LIMIT",
    "MIN_DUST_LIMIT_SAT",
    "MAX_FUNDING_SAT_NO_LARGE",
    "default_config",
    "check_open_channel",
    "check_accept_channel",
    "channel_type_of",
]

#: BOLT 2: max_accepted_htlcs MUST NOT exceed 483 (fits a commitment tx in 400k weight).
MAX_ACCEPTED_HTLCS_LIMIT = 483
#: BOLT 2: dust_limit_satoshis below 354 makes outputs nonstandard (smallest P2WSH dust).
MIN_DUST_LIMIT_SAT = 354
#: Without option_support_large_channel, funding_satoshis MUST be below 2^24.
MAX_FUNDING_SAT_NO_LARGE = (1 << 24) - 1
#: Lowest feerate bitcoind relays (1 sat/vB).
FEERATE_FLOOR_PER_KW = 253


class ChannelError(RefusedError):
    """A refused channel operation. For peer violations, the text is what goes in ``error``."""


def _valid_point(p) -> bool:
    from lncli.bitcoin.ecdsa import is_valid_pubkey

    return isinstance(p, (bytes, bytearray)) and len(p) == 33 and is_valid_pubkey(bytes(p))


@dataclass(frozen=True)
class ChannelConfig:
    """The limits one side announces (the ``open_channel`` / ``accept_channel`` fields)."""

    dust_limit_satoshis: int
    max_htlc_value_in_flight_msat: int
    channel_reserve_satoshis: int
    htlc_minimum_msat: int
    to_self_delay: int
    max_accepted_htlcs: int

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}  # flat ints: asdict's deep copy is not needed

    @classmethod
    def from_json(cls, d: dict) -> ChannelConfig:
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__})

    @classmethod
    def from_message(cls, msg) -> ChannelConfig:
        return cls(**{k: int(msg[k]) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LocalPolicy:
    """What we accept from a peer, and what we announce. Regtest tests may lower the delays."""

    to_self_delay: int = 144
    minimum_depth: int = 3
    max_to_self_delay: int = 2016
    max_minimum_depth: int = 144
    min_funding_satoshis: int = 20_000
    large_channels: bool = False  # option_support_large_channel negotiated in init
    anchors: bool = True  # we offer / accept option_anchors (static_remotekey is always required)
    dust_limit_satoshis: int = 546
    max_dust_limit_satoshis: int = 20_000
    max_htlc_minimum_msat: int = 1_000_000
    min_max_accepted_htlcs: int = 5
    max_reserve_fraction: float = 0.2  # refuse a reserve above 20% of the channel
    feerate_tolerance: int = 10  # their feerate within [estimate / 10, estimate * 10]


def default_config(funding_satoshis: int, policy: LocalPolicy = LocalPolicy()) -> ChannelConfig:
    """Our announced config for a channel of ``funding_satoshis``: reserve 1% (>= dust)."""
    return ChannelConfig(
        dust_limit_satoshis=policy.dust_limit_satoshis,
        max_htlc_value_in_flight_msat=funding_satoshis * 1000,
        channel_reserve_satoshis=max(funding_satoshis // 100, policy.dust_limit_satoshis),
        htlc_minimum_msat=1,
        to_self_delay=policy.to_self_delay,
        max_accepted_htlcs=MAX_ACCEPTED_HTLCS_LIMIT,
    )


def channel_type_of(msg) -> Features | None:
    tlvs = msg.get("tlvs") or {}
    rec = tlvs.get("channel_type")
    if rec is None:
        return None
    return Features.from_bytes(rec["type"])


def _check_channel_type(ct: Features | None, policy: LocalPolicy) -> bool:
    """Return ``anchors`` for an acceptable channel_type; refuse the others."""
    if ct is None:
        raise ChannelError("channel_type is required (we support static_remotekey and anchors)")
    if ct == CHANNEL_TYPE_STATIC_REMOTEKEY:
        return False
    if ct == CHANNEL_TYPE_ANCHORS:
        if not policy.anchors:
            raise ChannelError("channel_type anchors is not supported here; use static_remotekey")
        return True
    raise ChannelError(
        f"unsupported channel_type (feature bits {ct.bits()}); we support static_remotekey and anchors"
    )


def _check_config(cfg: ChannelConfig, policy: LocalPolicy, funding_satoshis: int) -> None:
    """Checks common to open_channel and accept_channel (the sender's own limits)."""
    if cfg.to_self_delay > policy.max_to_self_delay:
        raise ChannelError(
            f"to_self_delay {cfg.to_self_delay} is unreasonably large (we accept at most {policy.max_to_self_delay})"
        )
    if cfg.max_accepted_htlcs > MAX_ACCEPTED_HTLCS_LIMIT:
        raise ChannelError(f"max_accepted_htlcs {cfg.max_accepted_htlcs} is greater than {MAX_ACCEPTED_HTLCS_LIMIT}")
    if cfg.max_accepted_htlcs < policy.min_max_accepted_htlcs:
        raise ChannelError(
            f"max_accepted_htlcs {cfg.max_accepted_htlcs} is too small (we need at least {policy.min_max_accepted_htlcs})"
        )
    if cfg.dust_limit_satoshis < MIN_DUST_LIMIT_SAT:
        raise ChannelError(f"dust_limit_satoshis {cfg.dust_limit_satoshis} is below {MIN_DUST_LIMIT_SAT}")
    if cfg.dust_limit_satoshis > policy.max_dust_limit_satoshis:
        raise ChannelError(
            f"dust_limit_satoshis {cfg.dust_limit_satoshis} is too large (we accept at most {policy.max_dust_limit_satoshis})"
        )
    if cfg.dust_limit_satoshis > cfg.channel_reserve_satoshis:
        raise ChannelError(
            f"dust_limit_satoshis {cfg.dust_limit_satoshis} is greater than channel_reserve_satoshis "
            f"{cfg.channel_reserve_satoshis}"
        )
    if cfg.channel_reserve_satoshis > funding_satoshis * policy.max_reserve_fraction:
        raise ChannelError(
            f"channel_reserve_satoshis {cfg.channel_reserve_satoshis} is too large for a channel of {funding_satoshis} sat"
        )
    if cfg.htlc_minimum_msat > policy.max_htlc_minimum_msat:
        raise ChannelError(f"htlc_minimum_msat {cfg.htlc_minimum_msat} is too large")
    if cfg.max_htlc_value_in_flight_msat < min(funding_satoshis * 1000, 10_000_000) // 10:
        raise ChannelError(f"max_htlc_value_in_flight_msat {cfg.max_htlc_value_in_flight_msat} is too small")


def _check_points(msg) -> None:
    for name in (
        "funding_pubkey",
        "revocation_basepoint",
        "payment_basepoint",
        "delayed_payment_basepoint",
        "htlc_basepoint",
        "first_per_commitment_point",
    ):
        if not _valid_point(msg[name]):
            raise ChannelError(f"{name} is not a valid compressed secp256k1 point")


def _check_feerate(feerate_per_kw: int, estimate_per_kw: int, anchors: bool, policy: LocalPolicy) -> None:
    if feerate_per_kw < FEERATE_FLOOR_PER_KW:
        raise ChannelError(f"feerate_per_kw {feerate_per_kw} is below the relay floor {FEERATE_FLOOR_PER_KW}")
    hi = max(estimate_per_kw, FEERATE_FLOOR_PER_KW) * policy.feerate_tolerance
    if feerate_per_kw > hi:
        raise ChannelError(f"feerate_per_kw {feerate_per_kw} is unreasonably high (our estimate is {estimate_per_kw})")
    # With anchors the commitment can be bumped by CPFP: a low feerate is fine.
    lo = estimate_per_kw // policy.feerate_tolerance
    if not anchors and feerate_per_kw < lo:
        raise ChannelError(f"feerate_per_kw {feerate_per_kw} is unreasonably low (our estimate is {estimate_per_kw})")


def check_open_channel(
    msg, *, chain_hash: bytes, policy: LocalPolicy, feerate_estimate_per_kw: int
) -> tuple[ChannelConfig, bool]:
    """Every BOLT 2 check of a received ``open_channel``.

    Returns the opener's ``ChannelConfig`` and whether the channel uses anchors.
    Raises ChannelError (refuse the channel) otherwise.
    """
    from lncli.proto.commitment import commitment_fee_sat

    if msg.chain_hash != chain_hash:
        raise ChannelError("open_channel chain_hash is not the chain we are on")
    funding = msg.funding_satoshis
    if funding >= 1 << 24 and not policy.large_channels:
        raise ChannelError(
            f"funding_satoshis {funding} needs option_support_large_channel (limit {MAX_FUNDING_SAT_NO_LARGE})"
        )
    if funding < policy.min_funding_satoshis:
        raise ChannelError(f"funding_satoshis {funding} is too small (we accept at least {policy.min_funding_satoshis})")
    if msg.push_msat > 1000 * funding:
        raise ChannelError(f"push_msat {msg.push_msat} is greater than funding_satoshis * 1000")
    anchors = _check_channel_type(channel_type_of(msg), policy)
    _check_points(msg)
    cfg = ChannelConfig.from_message(msg)
    _check_config(cfg, policy, funding)
    _check_feerate(msg.feerate_per_kw, feerate_estimate_per_kw, anchors, policy)
    ours = default_config(funding, policy)
    # Our reserve (what they must keep) must be >= their dust limit; adjust ours up if needed.
    if cfg.channel_reserve_satoshis < ours.dust_limit_satoshis:
        raise ChannelError(
            f"channel_reserve_satoshis {cfg.channel_reserve_satoshis} is less than our dust_limit_satoshis "
            f"{ours.dust_limit_satoshis}"
        )
    opener_msat = funding * 1000 - msg.push_msat
    fee_msat = commitment_fee_sat(msg.feerate_per_kw, 0, anchors) * 1000 + (660_000 if anchors else 0)
    if opener_msat < fee_msat:
        raise ChannelError(
            f"the opener cannot pay the initial commitment fee ({fee_msat // 1000} sat) out of its "
            f"{opener_msat // 1000} sat"
        )
    our_reserve = max(ours.channel_reserve_satoshis, cfg.dust_limit_satoshis)
    if (opener_msat - fee_msat) <= 1000 * our_reserve and msg.push_msat <= 1000 * cfg.channel_reserve_satoshis:
        raise ChannelError("both initial balances are at or below the channel reserve")
    return cfg, anchors


def check_accept_channel(
    msg, *, our_config: ChannelConfig, funding_satoshis: int, anchors: bool, policy: LocalPolicy
) -> ChannelConfig:
    """Every BOLT 2 check of a received ``accept_channel`` (we are the opener)."""
    ct = channel_type_of(msg)
    if ct is None:
        raise ChannelError("accept_channel has no channel_type (we set one in open_channel)")
    wanted = CHANNEL_TYPE_ANCHORS if anchors else CHANNEL_TYPE_STATIC_REMOTEKEY
    if ct != wanted:
        raise ChannelError(f"accept_channel channel_type (bits {ct.bits()}) differs from the one we sent")
    _check_points(msg)
    cfg = ChannelConfig.from_message(msg)
    _check_config(cfg, policy, funding_satoshis)
    if msg.minimum_depth > policy.max_minimum_depth:
        raise ChannelError(f"minimum_depth {msg.minimum_depth} is unreasonably large (we accept at most {policy.max_minimum_depth})")
    if cfg.channel_reserve_satoshis < our_config.dust_limit_satoshis:
        raise ChannelError(
            f"channel_reserve_satoshis {cfg.channel_reserve_satoshis} is less than our dust_limit_satoshis "
            f"{our_config.dust_limit_satoshis}"
        )
    if our_config.channel_reserve_satoshis < cfg.dust_limit_satoshis:
        raise ChannelError(
            f"our channel_reserve_satoshis {our_config.channel_reserve_satoshis} is less than their "
            f"dust_limit_satoshis {cfg.dust_limit_satoshis}"
        )
    return cfg
