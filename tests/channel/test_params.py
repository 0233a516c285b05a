"""BOLT 2 checks of open_channel / accept_channel; each refusal has a clear message."""

from __future__ import annotations

import hashlib

import pytest

from lncli.channel.channel import Channel
from lncli.channel.keys import ChannelSecrets
from lncli.channel.params import ChannelConfig, ChannelError, LocalPolicy, default_config
from lncli.channel.state import TRANSITIONS, ChannelState, check_transition
from lncli.errors import RefusedError
from lncli.proto.features import Features
from lncli.proto.wire import decode_message, encode_message
from tests.channel.harness import CHAIN

SEED_A = hashlib.sha256(b"a").digest()
SEED_B = hashlib.sha256(b"b").digest()


def opener(**kw):
    args = dict(
        channel_seed=SEED_A,
        temporary_channel_id=bytes(32),
        chain_hash=CHAIN,
        funding_satoshis=1_000_000,
        feerate_per_kw=2500,
        anchors=False,
    )
    args.update(kw)
    return Channel.new_outbound(**args)


def tweak(msg, **changes):
    f = msg.fields()
    f.update(changes)
    return decode_message(encode_message(msg.name, **f))


def accept(open_msg, **kw):
    args = dict(channel_seed=SEED_B, chain_hash=CHAIN, feerate_estimate_per_kw=2500)
    args.update(kw)
    return Channel.from_open_channel(open_msg, **args)


def test_defaults():
    cfg = default_config(1_000_000)
    assert cfg.dust_limit_satoshis == 546 and cfg.channel_reserve_satoshis == 10_000
    assert cfg.to_self_delay == 144 and cfg.max_accepted_htlcs == 483 and cfg.htlc_minimum_msat == 1
    assert default_config(30_000).channel_reserve_satoshis == 546  # 1% but at least the dust limit
    assert ChannelConfig.from_json(cfg.to_json()) == cfg
    assert issubclass(ChannelError, RefusedError)


OPEN_REFUSALS = [
    (dict(chain_hash=bytes(32)), "chain_hash"),
    (dict(funding_satoshis=1 << 24), "option_support_large_channel"),
    (dict(funding_satoshis=10_000), "too small"),
    (dict(push_msat=1_000_000_001), "push_msat"),
    (dict(to_self_delay=5000), "to_self_delay 5000 is unreasonably large"),
    (dict(max_accepted_htlcs=484), "max_accepted_htlcs 484 is greater than 483"),
    (dict(max_accepted_htlcs=1), "max_accepted_htlcs 1 is too small"),
    (dict(dust_limit_satoshis=353), "dust_limit_satoshis 353 is below 354"),
    (dict(dust_limit_satoshis=15_000), "greater than channel_reserve_satoshis"),
    (dict(dust_limit_satoshis=50_000, channel_reserve_satoshis=60_000), "dust_limit_satoshis 50000 is too large"),
    (dict(channel_reserve_satoshis=500_000), "channel_reserve_satoshis 500000 is too large"),
    (dict(channel_reserve_satoshis=400, dust_limit_satoshis=354), "less than our dust_limit_satoshis"),
    (dict(feerate_per_kw=100), "below the relay floor"),
    (dict(feerate_per_kw=200_000), "unreasonably high"),
    (dict(htlc_minimum_msat=10**9), "htlc_minimum_msat"),
    (dict(max_htlc_value_in_flight_msat=1), "max_htlc_value_in_flight_msat"),
    (dict(funding_pubkey=b"\x02" + bytes(32)), "funding_pubkey is not a valid"),
    (dict(push_msat=1_000_000_000), "initial commitment fee"),
    (dict(tlvs={}), "channel_type is required"),
    (dict(tlvs={"channel_type": {"type": Features.from_bits([12, 22, 46]).to_bytes()}}), "unsupported channel_type"),
    (dict(tlvs={"channel_type": {"type": Features.from_bits([14]).to_bytes()}}), "unsupported channel_type"),
]


@pytest.mark.parametrize("changes,message", OPEN_REFUSALS)
def test_open_channel_refusals(changes, message):
    _, msg = opener()
    with pytest.raises(ChannelError, match=message):
        accept(tweak(msg, **changes))


def test_open_channel_large_and_anchors_policy():
    _, msg = opener(funding_satoshis=(1 << 24) + 5, policy=LocalPolicy(large_channels=True))
    accept(msg, policy=LocalPolicy(large_channels=True))
    _, msg = opener(anchors=True)
    with pytest.raises(ChannelError, match="anchors is not supported"):
        accept(msg, policy=LocalPolicy(anchors=False))
    _, msg = opener(feerate_per_kw=253)
    with pytest.raises(ChannelError, match="unreasonably low"):
        accept(msg, feerate_estimate_per_kw=10_000)
    # with anchors a low feerate is acceptable (CPFP can bump it)
    _, msg = opener(anchors=True, feerate_per_kw=253)
    accept(msg, feerate_estimate_per_kw=10_000)


def test_accepter_adapts_reserve_and_dust_to_the_opener():
    _, msg = opener()
    msg = tweak(msg, dust_limit_satoshis=12_000, channel_reserve_satoshis=12_000)
    ch, acc = accept(msg, policy=LocalPolicy(max_dust_limit_satoshis=20_000))
    assert acc.channel_reserve_satoshis >= 12_000  # our reserve >= their dust limit
    assert acc.dust_limit_satoshis <= 12_000  # our dust limit <= their reserve


ACCEPT_REFUSALS = [
    (dict(minimum_depth=1000), "minimum_depth 1000 is unreasonably large"),
    (dict(to_self_delay=3000), "to_self_delay 3000"),
    (dict(channel_reserve_satoshis=500, dust_limit_satoshis=354), "less than our dust_limit_satoshis"),
    (dict(dust_limit_satoshis=11_000, channel_reserve_satoshis=11_000), "our channel_reserve_satoshis 10000 is less than their"),
    (dict(tlvs={"channel_type": {"type": Features.from_bits([12, 22]).to_bytes()}}), "differs from the one we sent"),
    (dict(tlvs={}), "no channel_type"),
    (dict(max_accepted_htlcs=500), "greater than 483"),
]


@pytest.mark.parametrize("changes,message", ACCEPT_REFUSALS)
def test_accept_channel_refusals(changes, message):
    ch, msg = opener()
    _, acc = accept(msg)
    with pytest.raises(ChannelError, match=message):
        ch.on_accept_channel(tweak(acc, **changes))


def test_opener_checks_its_own_request():
    with pytest.raises(ChannelError, match="large_channel"):
        opener(funding_satoshis=1 << 24)
    with pytest.raises(ChannelError, match="push"):
        opener(push_msat=2_000_000_000)
    with pytest.raises(ChannelError, match="feerate"):
        opener(feerate_per_kw=10)
    with pytest.raises(ChannelError, match="fee"):
        opener(funding_satoshis=1000, feerate_per_kw=2500)


def test_error_message_for_the_peer():
    ch, msg = opener()
    err = ch.error_message(ChannelError("nope"))
    assert err.name == "error" and err.data == b"nope" and err.channel_id == bytes(32)


# ----------------------------------------------------------------------------- keys, states


def test_channel_secrets_are_deterministic_and_distinct():
    s1, s2 = ChannelSecrets.from_seed(SEED_A), ChannelSecrets.from_seed(SEED_A)
    assert s1 == s2 and s1.basepoints() == s2.basepoints()
    secrets = {
        s1.funding_privkey, s1.revocation_basepoint_secret, s1.payment_basepoint_secret,
        s1.delayed_payment_basepoint_secret, s1.htlc_basepoint_secret, s1.shachain_seed,
    }
    assert len(secrets) == 6
    assert ChannelSecrets.from_seed(SEED_B).funding_pubkey != s1.funding_pubkey
    from lncli.proto.keys import per_commitment_point
    from lncli.proto.shachain import per_commitment_secret

    assert s1.per_commitment_secret(5) == per_commitment_secret(s1.shachain_seed, 5)
    assert s1.per_commitment_point(5) == per_commitment_point(s1.per_commitment_secret(5))
    with pytest.raises(ValueError):
        ChannelSecrets.from_seed(b"short")


def test_state_transitions_table():
    S = ChannelState
    check_transition(S.NORMAL, S.SHUTDOWN)
    check_transition(S.NORMAL, S.NORMAL)
    with pytest.raises(ValueError, match="NORMAL -> AWAITING_ACCEPT"):
        check_transition(S.NORMAL, S.AWAITING_ACCEPT)
    with pytest.raises(ValueError):
        check_transition(S.AWAITING_FUNDING_SIGNED, S.FORCE_CLOSING)  # nothing to broadcast yet
    assert all(new != S.AWAITING_ACCEPT for _, new in TRANSITIONS)
    ch, _ = opener()
    with pytest.raises(ValueError):
        ch.set_state(S.NORMAL)
