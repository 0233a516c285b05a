"""The checks at a forwarding hop (lncli/proto/forwarding.py): one test per BOLT 4 rule, each
failure's code and data, encoded as BOLT 4 lays it out."""

from __future__ import annotations

import pytest

from lncli.proto.forwarding import (
    EXPIRY_TOO_SOON,
    MAX_HTLC_CLTV,
    ForwardFailure,
    Policy,
    check_forward,
    update_field,
)
from lncli.proto.onion_failure import PERM, UPDATE, decode_failure_message, encode_failure_message

POL = Policy(fee_base_msat=1000, fee_proportional_millionths=100, cltv_expiry_delta=40,
             htlc_minimum_msat=5000, htlc_maximum_msat=1_000_000_000)
H = 800_000  # block height
AMT = 10_000_000
FEE = 1000 + AMT * 100 // 1_000_000  # 2000
OUT_CLTV = H + 100


def check(policy=POL, *, amount_in=AMT + FEE, cltv=OUT_CLTV + 40, amt=AMT, out_cltv=OUT_CLTV, height=H, **kw):
    return check_forward(policy, amount_in_msat=amount_in, cltv_expiry=cltv, amt_to_forward=amt,
                         outgoing_cltv_value=out_cltv, height=height, **kw)


def test_an_htlc_that_meets_the_policy_exactly_is_forwarded():
    assert FEE == 2000
    assert check() is None
    assert check(amt=5000, amount_in=5000 + 1000) is None  # at htlc_minimum_msat, its fee rounded down
    assert check(amt=1_000_000_000, amount_in=1_000_000_000 + 1000 + 100_000) is None  # at htlc_maximum_msat


def test_a_disabled_channel_is_channel_disabled_first():
    f = check(enabled=False, amount_in=0)  # also too little fee: channel_disabled is the first error
    assert f == ForwardFailure("channel_disabled", {"disabled_flags": 0})
    assert f.code == UPDATE | 20 and f.wants_update


def test_below_htlc_minimum_is_amount_below_minimum_with_the_outgoing_amount():
    f = check(amt=4999, amount_in=4999 + 10_000)
    assert f == ForwardFailure("amount_below_minimum", {"htlc_msat": 4999})
    assert f.code == UPDATE | 11 and f.wants_update


def test_above_htlc_maximum_is_temporary_channel_failure():
    f = check(amt=1_000_000_001, amount_in=2_000_000_000)
    assert f == ForwardFailure("temporary_channel_failure")
    assert f.code == UPDATE | 7 and f.wants_update
    assert check(Policy(1000, 100, 40), amt=10**12, amount_in=10**12 + 10**9) is None  # no maximum of its own


def test_one_msat_short_of_the_fee_is_fee_insufficient_with_the_incoming_amount():
    f = check(amount_in=AMT + FEE - 1)
    assert f == ForwardFailure("fee_insufficient", {"htlc_msat": AMT + FEE - 1})
    assert f.code == UPDATE | 12 and f.wants_update


def test_one_block_short_of_the_delta_is_incorrect_cltv_expiry_with_the_outgoing_cltv():
    f = check(cltv=OUT_CLTV + 39)
    # BOLT 4: "report the cltv_expiry of the outgoing HTLC"
    assert f == ForwardFailure("incorrect_cltv_expiry", {"cltv_expiry": OUT_CLTV})
    assert f.code == UPDATE | 13 and f.wants_update


def test_an_outgoing_expiry_too_near_is_expiry_too_soon():
    out = H + EXPIRY_TOO_SOON
    f = check(out_cltv=out, cltv=out + 40)
    assert f == ForwardFailure("expiry_too_soon") and f.code == UPDATE | 14 and f.wants_update
    assert check(out_cltv=out + 1, cltv=out + 41) is None


def test_an_outgoing_expiry_too_far_is_expiry_too_far_without_an_update():
    out = H + MAX_HTLC_CLTV
    assert check(out_cltv=out, cltv=out + 40) is None
    f = check(out_cltv=out + 1, cltv=out + 41)
    assert f == ForwardFailure("expiry_too_far") and f.code == 21 and not f.wants_update


def test_the_previous_policy_is_still_accepted_when_given():
    new = Policy(5000, 100, 80, 5000, 1_000_000_000)
    assert check(new).name == "fee_insufficient"
    assert check(new, previous=POL) is None  # within the 10 minutes of BOLT 7
    # the previous policy must be met as a whole: its fee with the new delta does not pass
    assert check(new, previous=Policy(1000, 100, 90), cltv=OUT_CLTV + 80).name == "fee_insufficient"
    # the amount limits are the new policy's only
    assert check(new, previous=POL, amt=4000, amount_in=10_000).name == "amount_below_minimum"


def test_bounded_keeps_the_channel_limits():
    p = Policy(1000, 1, 34, htlc_minimum_msat=0, htlc_maximum_msat=None)
    assert p.bounded(1000, 500_000_000) == Policy(1000, 1, 34, 1000, 500_000_000)
    q = Policy(1000, 1, 34, htlc_minimum_msat=2000, htlc_maximum_msat=10**12)
    assert q.bounded(1000, 500_000_000) == Policy(1000, 1, 34, 2000, 500_000_000)
    # a minimum above the channel's maximum: the maximum is raised to it (BOLT 7: max >= min)
    assert Policy(0, 0, 34, 10**9).bounded(1, 500_000_000).htlc_maximum_msat == 10**9


@pytest.mark.parametrize(("policy", "what"), [
    (Policy(-1, 0, 34), "fee_base_msat"),
    (Policy(1 << 32, 0, 34), "fee_base_msat"),
    (Policy(0, -1, 34), "fee_proportional_millionths"),
    (Policy(0, 0, 0), "cltv_expiry_delta"),
    (Policy(0, 0, 2017), "cltv_expiry_delta"),
    (Policy(0, 0, 34, -1), "htlc_minimum_msat"),
    (Policy(0, 0, 34, 0, 0), "htlc_maximum_msat"),
    (Policy(0, 0, 34, 10, 9), "below htlc_minimum_msat"),
])
def test_policy_problems(policy, what):
    (problem,) = policy.problems()
    assert what in problem
    assert Policy(0, 0, 34, 10, 10).problems() == []


def test_the_failure_message_carries_the_update_with_its_type():
    upd = b"\x01\x02" + bytes(range(128))
    f = check(amount_in=AMT)
    msg = encode_failure_message(f.name, {**f.fields, **update_field(upd)})
    # u16 code || u64 htlc_msat || u16 len || channel_update (0x0102 ...)
    assert msg[:2] == (UPDATE | 12).to_bytes(2, "big")
    assert msg[2:10] == AMT.to_bytes(8, "big") and msg[10:12] == len(upd).to_bytes(2, "big") and msg[12:] == upd
    code, fields, _ = decode_failure_message(msg)
    assert code == UPDATE | 12 and fields == {"htlc_msat": AMT, "channel_update": upd}
    # none: len 0 (BOLT 4 since the field became optional)
    assert encode_failure_message(f.name, {**f.fields, **update_field(None)})[10:] == b"\x00\x00"
    with pytest.raises(ValueError, match="0x0102"):
        update_field(bytes(130))
    assert not ForwardFailure("unknown_next_peer").wants_update and ForwardFailure("unknown_next_peer").code == PERM | 10
