"""lncli.proto.payment_failure: BOLT 4 failures mapped to exclusions, distrust and learning."""

from __future__ import annotations

from lncli.proto.liquidity import Scorer
from lncli.proto.onion_failure import FAILURE_CODES as F
from lncli.proto.payment_failure import apply_verdict, interpret_failure, route_directions
from lncli.proto.route_graph import direction_of, edge_key
from lncli.proto.routing import Edge, find_route


def nid(c: str) -> bytes:
    return b"\x02" + c.encode().ljust(32, b"_")


S, B, C, D = nid("S"), nid("B"), nid("C"), nid("D")


def line_route():
    pol = dict(fee_base_msat=100, fee_proportional_millionths=0, cltv_expiry_delta=10, capacity_msat=10**7)
    es = [Edge(S, B, 1, **pol), Edge(B, C, 2, **pol), Edge(C, D, 3, **pol)]
    return find_route(es, S, D, 5000, 9)


def test_route_directions():
    r = line_route()
    assert route_directions(r, S) == [(1, direction_of(S, B), 5200), (2, direction_of(B, C), 5100), (3, direction_of(C, D), 5000)]


def test_temporary_channel_failure_teaches_the_scorer():
    r = line_route()
    v = interpret_failure(r, S, 1, F["temporary_channel_failure"], b"\x01\x02upd")
    assert v.retry and not v.exclude and v.channel_update == b"\x01\x02upd"
    assert v.liquidity_failure == (3, direction_of(C, D), 5000)
    assert v.passed == ((1, direction_of(S, B), 5200), (2, direction_of(B, C), 5100))
    s, excl = Scorer(), set()
    apply_verdict(v, s, excl, now=0)
    assert s.view(0).probability(edge_key(3, direction_of(C, D)), 5000, 10**7) == 0.0
    assert s.view(0).probability(edge_key(2, direction_of(B, C)), 5100, 10**7) == 1.0
    # without a scorer the direction is left out instead
    apply_verdict(v, None, excl, now=0)
    assert excl == {(3, direction_of(C, D))}


def test_node_and_permanent_failures():
    r = line_route()
    v = interpret_failure(r, S, 0, F["temporary_node_failure"])
    assert v.exclude == {B} and v.distrust == (B,) and v.retry
    v = interpret_failure(r, S, 1, F["permanent_channel_failure"])
    assert v.exclude == {(3, direction_of(C, D))} and v.retry and not v.distrust
    v = interpret_failure(r, S, 0, F["unknown_next_peer"])
    assert v.exclude == {(2, direction_of(B, C))}
    v = interpret_failure(r, S, 0, F["invalid_onion_hmac"])  # C could not parse what B forwarded
    assert v.exclude == {(2, direction_of(B, C))} and v.distrust == (C,)


def test_policy_failures_retry_with_the_update():
    r = line_route()
    for name in ("fee_insufficient", "incorrect_cltv_expiry", "amount_below_minimum", "expiry_too_soon"):
        v = interpret_failure(r, S, 1, F[name], b"update")
        assert v.retry and not v.exclude and v.channel_update == b"update", name
        v = interpret_failure(r, S, 1, F[name], None)
        assert v.exclude == {(3, direction_of(C, D))}, name
    v = interpret_failure(r, S, 1, F["channel_disabled"], b"update")
    assert v.exclude == {(3, direction_of(C, D))} and v.channel_update == b"update"


def test_final_node():
    r = line_route()
    assert not interpret_failure(r, S, 2, F["incorrect_or_unknown_payment_details"]).retry
    assert interpret_failure(r, S, 2, F["mpp_timeout"]).retry
    v = interpret_failure(r, S, 2, F["final_incorrect_htlc_amount"])
    assert v.retry and v.exclude == {C} and v.distrust == (C,)


def test_unreadable_failure_distrusts_the_intermediate_nodes():
    v = interpret_failure(line_route(), S, None, None)
    assert v.retry and not v.exclude and v.distrust == (B, C)


def test_excluding_a_direction_reroutes():
    pol = dict(fee_base_msat=100, fee_proportional_millionths=0, cltv_expiry_delta=10)
    es = [Edge(S, B, 1, **pol), Edge(B, D, 2, **pol), Edge(S, C, 3, **pol), Edge(C, D, 4, **dict(pol, fee_base_msat=900))]
    r = find_route(es, S, D, 5000, 9)
    assert r.channels == [1, 2]
    v = interpret_failure(r, S, 0, F["permanent_channel_failure"])
    excl: set = set()
    apply_verdict(v, Scorer(), excl, now=0)
    assert find_route(es, S, D, 5000, 9, exclude=excl).channels == [3, 4]
