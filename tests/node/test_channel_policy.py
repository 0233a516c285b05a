"""Our per-channel forwarding policy (lncli/node/channel_policy.py): lncli.conf's defaults,
setchannel's changes stored across a reopen, the previous policy's window, the channel's bounds;
and offering a forward's outgoing HTLC on a real channel (lncli/node/forwarding.py)."""

from __future__ import annotations

import pytest

from lncli.channel.events import Outcome
from lncli.config import Config, policy_options
from lncli.errors import InputError
from lncli.node.channel_policy import ChannelPolicies
from lncli.node.forwarding import offer_outgoing
from lncli.proto.forwarding import ForwardFailure, Policy
from lncli.store.db import open_db
from tests.channel.harness import ONION, A, normal_pair, phash

CID = bytes(range(32))


def conf(**kv) -> Config:
    return Config({k.replace("_", "-"): [v] for k, v in kv.items()})


def test_defaults_and_lncli_conf(tmp_path):
    db = open_db(tmp_path / "n.sqlite3", {})
    assert ChannelPolicies(db).policy(CID) == Policy(1000, 1, 34, 0, None)
    c = conf(fee_base="2000", fee_ppm="5", cltv_delta="40", htlc_minimum="2sat", htlc_maximum="1000000")
    assert policy_options(c) == {"fee_base_msat": 2000, "fee_proportional_millionths": 5, "cltv_expiry_delta": 40,
                                 "htlc_minimum_msat": 2000, "htlc_maximum_msat": 1_000_000}
    assert ChannelPolicies(db, c).policy(CID) == Policy(2000, 5, 40, 2000, 1_000_000)
    # the keys' former names still count; the new ones win
    old = Config({"fee-base-msat": ["7"], "fee-per-millionth": ["8"], "cltv-expiry-delta": ["50"]})
    assert ChannelPolicies(db, old).default == Policy(7, 8, 50)
    both = Config({"fee-base-msat": ["7"], "fee-base": ["9"]})
    assert ChannelPolicies(db, both).default.fee_base_msat == 9


@pytest.mark.parametrize(("kv", "match"), [
    ({"fee_base": "-1"}, "not an amount"),
    ({"fee_ppm": "x"}, "not a whole number"),
    ({"cltv_delta": "0"}, "cltv_expiry_delta 0"),
    ({"htlc_minimum": "10", "htlc_maximum": "9"}, "below htlc_minimum_msat"),
])
def test_bad_lncli_conf_policies_are_refused(tmp_path, kv, match):
    db = open_db(tmp_path / "n.sqlite3", {})
    with pytest.raises(InputError, match=match):
        ChannelPolicies(db, conf(**kv))


def test_set_is_stored_and_keeps_the_previous_policy_for_its_window(tmp_path):
    path = tmp_path / "n.sqlite3"
    pols = ChannelPolicies(open_db(path, {}), conf(fee_base="2000"))
    new = pols.set(CID, {"fee_base_msat": 3000, "cltv_expiry_delta": 60, "fee_proportional_millionths": None}, 600, now=1000)
    assert new == Policy(3000, 1, 60)
    assert pols.previous(CID, now=1599) == Policy(2000, 1, 34) and pols.previous_until(CID, now=1599) == 1600
    assert pols.previous(CID, now=1600) is None
    assert pols.policy(bytes(32)) == Policy(2000, 1, 34)  # other channels keep the default
    # a reopen (a restart) has it all; a changed lncli.conf moves the fields setchannel did not set
    again = ChannelPolicies(open_db(path, {}), conf(fee_base="5000", fee_ppm="9"))
    assert again.policy(CID) == Policy(3000, 9, 60) and again.previous(CID, now=1200) == Policy(2000, 1, 34)
    # nothing changes: the window stays; enforce_delay 0: no window
    assert again.set(CID, {}, 0, now=1300) == Policy(3000, 9, 60) and again.previous(CID, now=1300) is not None
    again.set(CID, {"fee_base_msat": 1}, 0, now=1300)
    assert again.previous(CID, now=1300) is None


@pytest.mark.parametrize(("changes", "delay", "match"), [
    ({"fee": 1}, 600, "unknown policy field"),
    ({"fee_base_msat": "1"}, 600, "whole number"),
    ({"fee_base_msat": True}, 600, "whole number"),
    ({"cltv_expiry_delta": 2017}, 600, "cltv_expiry_delta 2017"),
    ({"fee_proportional_millionths": 1 << 32}, 600, "not a u32"),
    ({"htlc_maximum_msat": 0}, 600, "positive"),
    ({}, -1, "enforce_delay"),
])
def test_set_refusals_change_nothing(tmp_path, changes, delay, match):
    pols = ChannelPolicies(open_db(tmp_path / "n.sqlite3", {}))
    with pytest.raises(InputError, match=match):
        pols.set(CID, changes, delay)
    assert pols.policy(CID) == pols.default


class _Entry:
    """What ChannelPolicies.effective reads of a channel's entry: its id and Channel."""

    def __init__(self, channel):
        self.channel, self.channel_id = channel, channel.channel_id


def test_effective_is_bounded_by_the_channel(tmp_path):
    p = normal_pair(funding=1_000_000, push_msat=10_000_000)
    ch = p.ch[A]
    e = _Entry(ch)
    pols = ChannelPolicies(open_db(tmp_path / "n.sqlite3", {}))
    peer_min, cap = ch.remote_config.htlc_minimum_msat, min(1_000_000_000, ch.remote_config.max_htlc_value_in_flight_msat)
    assert pols.effective(e) == Policy(1000, 1, 34, max(1, peer_min), cap)
    pols.set(e.channel_id, {"htlc_minimum_msat": 5000, "htlc_maximum_msat": 10**15})
    assert pols.effective(e) == Policy(1000, 1, 34, 5000, cap)


def test_offer_outgoing_refuses_with_temporary_channel_failure():
    p = normal_pair(push_msat=10_000_000)
    a = p.ch[A]
    assert isinstance(offer_outgoing(a, 1000, phash(1), 500, ONION), Outcome)
    # beyond the balance (the reserve)
    assert offer_outgoing(a, 990_000_000, phash(2), 500, ONION) == ForwardFailure("temporary_channel_failure")
    # the peer's max_accepted_htlcs
    a.remote_config = a.remote_config.__class__(**{**a.remote_config.to_json(), "max_accepted_htlcs": 2})
    assert isinstance(offer_outgoing(a, 1000, phash(3), 500, ONION), Outcome)
    assert offer_outgoing(a, 1000, phash(4), 500, ONION) == ForwardFailure("temporary_channel_failure")
    # the peer's max_htlc_value_in_flight_msat
    b = normal_pair(push_msat=10_000_000).ch[A]
    b.remote_config = b.remote_config.__class__(**{**b.remote_config.to_json(), "max_htlc_value_in_flight_msat": 5000})
    assert isinstance(offer_outgoing(b, 5000, phash(5), 500, ONION), Outcome)
    assert offer_outgoing(b, 1, phash(6), 500, ONION) == ForwardFailure("temporary_channel_failure")
