"""lncli.node.pay_session: how each BOLT 4 failure narrows one payment's graph, what is in flight,
the fee limit and its default.

The graph: we (A) have channels to B (scid 1) and D (scid 2); B->C over scid 3 (cheap) and D->C
over scid 4 (dearer); C is the payee. Node ids are real keys so that channel_updates verify."""

from __future__ import annotations

import dataclasses

import pytest

from lncli.bitcoin.ecdsa import pubkey_from_privkey, sign_compact
from lncli.node.pay_session import PaymentSession, default_max_fee_msat
from lncli.proto.gossip import ChannelUpdate
from lncli.proto.liquidity import Scorer
from lncli.proto.onion_failure import FAILURE_CODES
from lncli.proto.route_graph import direction_of
from lncli.proto.routing import Edge, LocalChannel, NoRouteError
from lncli.proto.scid import ShortChannelId

KEYS = {n: bytes([i + 1]) * 32 for i, n in enumerate("ABCD")}
A, B, C, D = (pubkey_from_privkey(KEYS[n]) for n in "ABCD")
FINAL = 1000
CODE = FAILURE_CODES
BC = (3, direction_of(B, C))  # the direction B -> C of channel 3
DC = (4, direction_of(D, C))


def edges(bc_capacity=None):
    return [
        Edge(B, C, 3, 1000, 1, 40, capacity_msat=bc_capacity),
        Edge(D, C, 4, 5000, 100, 40),
    ]


def ours(out_b=10**9, out_d=10**9):
    return [LocalChannel(B, 1, out_b), LocalChannel(D, 2, out_d)]


def session(**kw):
    return PaymentSession(edges(**kw), A, C, FINAL)


def via(route) -> bytes:
    return route.hops[0].node_id


def test_temporary_channel_failure_distrusts_that_direction_for_that_amount():
    s = session()
    r = s.next_route(500_000, ours())
    assert via(r) == B
    v = s.on_failure(r, CODE["temporary_channel_failure"], 0)
    assert v.retry and "carries less than 500000 msat" in v.narrowed
    assert s.bounds == {(3, B): 499_999} and not s.excluded
    assert via(s.next_route(500_000, ours())) == D  # B->C is distrusted for this amount
    assert via(s.next_route(499_999, ours())) == B  # but not for less


def test_node_failure_excludes_the_node_and_permanent_channel_failure_the_channel():
    for name, excluded in (("temporary_node_failure", B), ("permanent_node_failure", B),
                           ("required_node_feature_missing", B), ("permanent_channel_failure", BC),
                           ("unknown_next_peer", BC), ("channel_disabled", BC), ("expiry_too_far", BC),
                           ("invalid_onion_hmac", BC), ("required_channel_feature_missing", BC)):
        s = session()
        r = s.next_route(10_000, ours())
        v = s.on_failure(r, CODE[name], 0)
        assert v.retry and s.excluded == {excluded}, name
        assert via(s.next_route(10_000, ours())) == D, name


def test_final_node_perm_failures_end_the_payment():
    for name in ("incorrect_or_unknown_payment_details", "invalid_onion_payload", "permanent_node_failure"):
        s = session()
        r = s.next_route(10_000, ours())
        v = s.on_failure(r, CODE[name], len(r.hops) - 1)
        assert not v.retry and name in v.narrowed, name


def test_mpp_timeout_from_the_payee_retries_without_narrowing():
    s = session()
    r = s.next_route(10_000, ours())
    v = s.on_failure(r, CODE["mpp_timeout"], 1)
    assert v.retry and not s.excluded and not s.bounds and not s.in_flight


def test_final_node_saying_the_htlc_was_altered_excludes_the_hop_before_it():
    """final_incorrect_htlc_amount / final_incorrect_cltv_expiry: the node before the payee
    forwarded something other than the onion said (BOLT 4): it is left out and distrusted."""
    scorer = Scorer()
    s = PaymentSession(edges(), A, C, FINAL, scorer=scorer, now=lambda: 100.0)
    r = s.next_route(10_000, ours())
    v = s.on_failure(r, CODE["final_incorrect_htlc_amount"], 1)
    assert v.retry and s.excluded == {B} and B in scorer.nodes
    r2 = s.next_route(10_000, ours())
    assert via(r2) == D
    assert s.on_failure(r2, CODE["final_incorrect_cltv_expiry"], 1).retry and s.excluded == {B, D}
    with pytest.raises(NoRouteError):  # every way into the payee tried: nothing is left
        s.next_route(10_000, ours())


def test_a_direct_payee_refusing_ends_the_payment():
    s = PaymentSession([], A, B, FINAL)
    r = s.next_route(10_000, ours())
    assert len(r.hops) == 1
    assert not s.on_failure(r, CODE["temporary_node_failure"], 0).retry


def test_unreadable_failure_excludes_the_channels_after_ours():
    s = session()
    r = s.next_route(10_000, ours())
    v = s.on_failure(r, None, None)
    assert v.retry and s.excluded == {3}  # both directions: it is unknown who garbled it
    direct = PaymentSession([], A, B, FINAL)
    assert not direct.on_failure(direct.next_route(10_000, ours()), None, None).retry


def test_our_own_channel_refusing_bounds_it():
    s = session()
    r = s.next_route(500_000, ours())
    v = s.on_failure(r, CODE["temporary_channel_failure"], -1)
    assert v.retry and s.bounds == {(1, A): r.amount_msat - 1}
    assert via(s.next_route(500_000, ours())) == D


def _update(scid: int, signer: str, **policy) -> ChannelUpdate:
    u = ChannelUpdate(bytes(64), bytes(32), ShortChannelId(scid), 2, 1, 0, policy.get("cltv", 40), 0,
                      policy.get("base", 1000), policy.get("ppm", 1), 10**10)
    return dataclasses.replace(u, signature=sign_compact(KEYS[signer], u.signed_hash()))


def test_fee_insufficient_with_a_signed_update_uses_its_policy_once_then_excludes():
    s = session()
    r = s.next_route(1_000_000, ours())
    assert r.fee_msat == 1001
    v = s.on_failure(r, CODE["fee_insufficient"], 0, _update(3, "B", base=2000))
    assert v.retry and "policy" in v.narrowed and not s.excluded
    r2 = s.next_route(1_000_000, ours())
    assert via(r2) == B and r2.fee_msat == 2001  # the update's fee, for this payment only
    assert s.on_failure(r2, CODE["fee_insufficient"], 0, _update(3, "B", base=3000)).retry
    assert s.excluded == {3}  # tried once with the update already: excluded
    # an update signed by another node, or of another channel, is not used
    t = session()
    t.on_failure(t.next_route(1_000_000, ours()), CODE["fee_insufficient"], 0, _update(3, "D", base=2000))
    assert t.excluded == {3} and not t.policies
    u = session()
    u.on_failure(u.next_route(1_000_000, ours()), CODE["incorrect_cltv_expiry"], 0, _update(4, "B"))
    assert u.excluded == {3} and not u.policies
    # no update at all: excluded (BOLT 4 says the failure carries one)
    w = session()
    assert w.on_failure(w.next_route(1_000_000, ours()), CODE["fee_insufficient"], 0).retry and w.excluded == {BC}


def test_parts_in_flight_share_a_channel_direction_and_release_it():
    s = session(bc_capacity=100_000)
    r1 = s.next_route(60_000, ours())
    assert via(r1) == B and s.in_flight == {(3, B): 60_000}
    r2 = s.next_route(60_000, ours())
    assert via(r2) == D  # B->C has 40_000 left beside the first part
    s.release(r1)
    s.on_success(r2)
    assert s.in_flight == {}
    assert via(s.next_route(60_000, ours())) == B


def test_fee_limit_and_its_default():
    s = session()
    with pytest.raises(NoRouteError, match="more than the limit of 1000 msat"):
        s.next_route(1_000_000, ours(), max_fee_msat=1000)
    assert s.in_flight == {}  # nothing reserved by a refused search
    assert s.next_route(1_000_000, ours(), max_fee_msat=1001).fee_msat == 1001
    # Core Lightning's: 0.5% of the amount, 5000 msat exempt
    assert default_max_fee_msat(100_000) == 5000
    assert default_max_fee_msat(1_000_000) == 5000
    assert default_max_fee_msat(10_000_000) == 50_000
    assert default_max_fee_msat(10_000_000, 1.0) == 100_000


def test_retries_end_when_the_graph_is_exhausted_not_after_a_count():
    """Seven paths A -> Xi -> C, each failing for liquidity at Xi: seven routes, each avoiding the
    ones before, then no route (the pay loop has no attempt count; its timeout aside, this is
    what ends it)."""
    xs = [pubkey_from_privkey(bytes([0x40 + i]) * 32) for i in range(7)]
    s = PaymentSession([Edge(x, C, 10 + i, 1000 + i, 1, 40) for i, x in enumerate(xs)], A, C, FINAL)
    local = [LocalChannel(x, 100 + i, 10**9) for i, x in enumerate(xs)]
    tried = []
    while True:
        try:
            r = s.next_route(1_000_000, local)
        except NoRouteError:
            break
        tried.append(via(r))
        assert s.on_failure(r, CODE["temporary_channel_failure"], 0).retry
    assert tried == xs  # cheapest first, each once
    assert not s.in_flight


def test_the_scorer_learns_across_payments_and_forgets():
    """A temporary_channel_failure at B teaches the node's scorer that B -> C cannot carry the
    amount: the next payment (a new session with the same scorer) goes over D at once; two days
    later (eight half-lives) B -> C is tried again. A success teaches what passed."""
    scorer, clock = Scorer(), [1000.0]
    caps = [Edge(B, C, 3, 1000, 1, 40, capacity_msat=10**9), Edge(D, C, 4, 5000, 100, 40, capacity_msat=10**9)]

    def new():
        return PaymentSession(caps, A, C, FINAL, scorer=scorer, now=lambda: clock[0])

    s = new()
    r = s.next_route(500_000_000, ours())
    assert via(r) == B
    s.on_failure(r, CODE["temporary_channel_failure"], 0)
    assert scorer.view(clock[0]).probability(scorer_key(BC), 500_000_000, 10**9) == 0.0
    assert via(new().next_route(500_000_000, ours())) == D  # learnt, not per payment
    clock[0] += 48 * 3600  # eight half-lives: the bound has faded
    assert via(new().next_route(500_000_000, ours())) == B
    s = new()
    r = s.next_route(100_000_000, ours())
    s.on_success(r)
    lo, hi = scorer._current(scorer_key(BC), clock[0])
    assert hi is not None  # what went out is taken off what it could carry


def scorer_key(pair):
    from lncli.proto.route_graph import edge_key

    return edge_key(*pair)


def test_a_failure_update_must_be_newer_and_must_change_the_policy():
    """BOLT 4: apply the failure's channel_update only if it is more recent than the one the
    route used, and treat one that should not have caused the failure (the same policy) as
    invalid: the channel is then left out."""
    graph = [Edge(B, C, 3, 1000, 1, 40, timestamp=5000), Edge(D, C, 4, 5000, 100, 40)]
    old = _update(3, "B", base=2000)  # timestamp 2 (see _update): older than the route's
    s = PaymentSession(graph, A, C, FINAL)
    s.on_failure(s.next_route(1_000_000, ours()), CODE["fee_insufficient"], 0, old)
    assert s.excluded == {3} and not s.policies
    same = dataclasses.replace(_update(3, "B", base=1000), timestamp=6000)
    same = dataclasses.replace(same, signature=sign_compact(KEYS["B"], same.signed_hash()))
    t = PaymentSession(graph, A, C, FINAL)
    t.on_failure(t.next_route(1_000_000, ours()), CODE["fee_insufficient"], 0, same)
    assert t.excluded == {3} and not t.policies
    newer = dataclasses.replace(_update(3, "B", base=2000), timestamp=6000)
    newer = dataclasses.replace(newer, signature=sign_compact(KEYS["B"], newer.signed_hash()))
    u = PaymentSession(graph, A, C, FINAL)
    assert u.on_failure(u.next_route(1_000_000, ours()), CODE["fee_insufficient"], 0, newer).retry
    assert not u.excluded and u.policies[(3, B)].fee_base_msat == 2000 and u.policies[(3, B)].timestamp == 6000
