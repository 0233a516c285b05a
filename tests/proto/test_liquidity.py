"""lncli.proto.liquidity: the a-priori probability, learning from failures, passes and successes,
fading with the half-life, and what the search does with it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.proto.liquidity import HALF_LIFE_S, Scorer, success_probability
from lncli.proto.route_graph import edge_key
from lncli.proto.routing import Edge, NoRouteError, Route, RouteHop, find_route


def nid(c: str) -> bytes:
    return b"\x02" + c.encode().ljust(32, b"_")


def test_a_priori_is_uniform_over_the_capacity():
    assert success_probability(0, 1000) == 1.0
    assert success_probability(1001, 1000) == 0.0
    assert math.isclose(success_probability(500, 1000), 501 / 1001)
    assert success_probability(10**9, 0) == 1.0  # unknown capacity
    assert success_probability(300, 1000, lo=300) == 1.0 and success_probability(301, 1000, hi=300) == 0.0


def test_failure_then_fading():
    s = Scorer()
    s.record_failure(7, 0, 600, now=1000)
    v = s.view(1000)
    assert v.probability(edge_key(7, 0), 600, 1000) == 0.0 and v.penalty(edge_key(7, 0), 600, 1000) is None
    assert v.probability(edge_key(7, 0), 599, 1000) > 0.0
    assert v.probability(edge_key(7, 1), 600, 1000) == success_probability(600, 1000)  # the other direction
    # one half-life later the bound has doubled: 600 may pass again, less likely than a priori
    later = s.view(1000 + HALF_LIFE_S)
    p = later.probability(edge_key(7, 0), 600, 1000)
    assert 0.0 < p < success_probability(600, 1000)


def test_pass_and_success():
    s = Scorer()
    d = int(nid("B") > nid("C"))
    s.record_pass(7, d, 400, now=0)
    assert s.view(0).probability(edge_key(7, d), 400, 1000) == 1.0
    assert s.view(HALF_LIFE_S).known[edge_key(7, d)][0] == 200
    s.record_failure(7, d, 900, now=0)
    route = Route((RouteHop(nid("B"), 7, 400, 10), RouteHop(nid("C"), None, 400, 10)), 5, 401, 16, 1)
    s.record_success(route, now=0, source=nid("A"))
    # 400 moved over B->C (scid 7): what we knew B could send is 400 less
    assert (s.bounds[edge_key(7, d)].lo, s.bounds[edge_key(7, d)].hi) == (0, 499)


def test_node_failure_fades_and_round_trips():
    s = Scorer()
    s.record_node_failure(nid("X"), now=0)
    assert s.view(0).node_penalty[nid("X")] == 100_000
    assert s.view(HALF_LIFE_S).node_penalty[nid("X")] == 50_000
    s.record_failure(3, 1, 10, now=5)
    t = Scorer.from_json(s.to_json())
    assert t.bounds == s.bounds and t.nodes == s.nodes


def diamond():
    pol = dict(fee_base_msat=10, fee_proportional_millionths=0, cltv_expiry_delta=10, capacity_msat=10**6)
    return [Edge(nid("S"), nid("X"), 1, **pol), Edge(nid("X"), nid("T"), 2, **pol),
            Edge(nid("S"), nid("Y"), 3, **pol), Edge(nid("Y"), nid("T"), 4, **dict(pol, fee_base_msat=20))]


def test_search_learns_to_avoid_a_failed_channel():
    s = Scorer()
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, scorer=s.view(0)).channels == [1, 2]
    s.record_failure(2, int(nid("X") > nid("T")), 5000, now=0)
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, scorer=s.view(0)).channels == [3, 4]
    # a smaller amount may still pass (unlikely: X is a last resort); 5000 may not
    assert find_route(diamond(), nid("S"), nid("T"), 4000, 9, scorer=s.view(0), exclude={4}).channels == [1, 2]
    with pytest.raises(NoRouteError, match="enough capacity"):
        find_route(diamond(), nid("S"), nid("T"), 5000, 9, scorer=s.view(0), exclude={4})
    # and a day later the failure has faded enough to try X again
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, scorer=s.view(4 * HALF_LIFE_S)).channels == [1, 2]


def test_distrusted_node_is_avoided():
    s = Scorer()
    s.record_node_failure(nid("X"), now=0)
    assert find_route(diamond(), nid("S"), nid("T"), 5000, 9, scorer=s.view(0)).channels == [3, 4]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fail", "pass"]), st.integers(1, 10**6), st.integers(0, 10**5)), max_size=12),
       st.integers(1, 10**6), st.integers(0, 10**6))
def test_property_bounds_stay_ordered_and_probability_in_range(events, amount, later):
    s = Scorer()
    t = 0
    for kind, amt, dt in events:
        t += dt
        (s.record_failure if kind == "fail" else s.record_pass)(9, 0, amt, now=t)
        b = s.bounds[edge_key(9, 0)]
        assert b.lo >= 0 and (b.hi is None or b.lo <= b.hi)
        if kind == "fail":
            assert b.hi is not None and b.hi <= amt - 1 or amt == 0
        else:
            assert b.lo >= min(amt, b.hi if b.hi is not None else amt)
    v = s.view(t + later)
    p = v.probability(edge_key(9, 0), amount, 10**6)
    assert 0.0 <= p <= 1.0
    pen = v.penalty(edge_key(9, 0), amount, 10**6)
    assert (pen is None) == (p == 0.0) and (pen is None or pen >= v.base_penalty_msat)
    # forgetting never makes a known-good amount worse, nor a known-bad one better... over time
    # the probability moves towards the a-priori one
    far = s.view(t + later + 200 * HALF_LIFE_S).probability(edge_key(9, 0), amount, 10**6)
    assert math.isclose(far, success_probability(amount, 10**6), rel_tol=1e-3, abs_tol=1e-6)
