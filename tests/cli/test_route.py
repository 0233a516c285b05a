"""`lncli route` offline (--graph) through the console script: CLN's regtest gossip_store (whose
policies the shared README lists) and the 1 MB mainnet sample; its errors; online without a node."""

from __future__ import annotations

import json

import pytest

from lncli.gossip.store import load_graph
from lncli.proto.gossip import fee_msat
from tests.conftest import DATA

STORE = str(DATA / "cln-regtest-gossip_store")
SAMPLE = DATA / "gossip_store-sample"
A = "0322884df2f998fd8029c371fde250c5baad605b2b078470f6e8149f8adb207266"
B = "036cc58b3fa5ccd0633a7d56a66204d857ab2b76db7d228bfe7507d84e239fb230"
C = "026113709907f0df7ca823fbc813e80d12d184d5b58ea6be561a32e6f8d1a52818"
D = "0237c4344f8a5885552b878d430520df6a44d62ba4b063ededefe68f260b566149"


def route(script_runner, *args, graph=STORE):
    extra = ["--graph", graph] if graph else []
    return script_runner.run(["lncli", "route", *args, *extra])


def test_direct_channel(script_runner):
    r = route(script_runner, A, C, "100000msat")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fee_msat"] == 0 and out["amount_msat"] == out["total_amount_msat"] == 100_000
    # A is node_id_2 of 103x4x0 (its key is the greater): direction 1
    assert out["hops"] == [{"node_id": C, "short_channel_id": "103x4x0", "direction": 1, "amount_msat": 100_000,
                            "fee_msat": 0, "cltv": 18}]


def test_exclude_channel_goes_over_b_paying_its_fee(script_runner):
    r = route(script_runner, A, C, "100000msat", "--exclude", "103x4x0")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # B's policy on 103x2x0 is 0 msat + 250 ppm, cltv delta 6 (CLN's regtest default)
    fee = fee_msat(100_000, 0, 250)
    assert fee == 25 and out["fee_msat"] == fee and out["cltv"] == 24
    assert [(h["node_id"], h["short_channel_id"], h["amount_msat"], h["fee_msat"], h["cltv"]) for h in out["hops"]] == [
        (B, "103x3x0", 100_025, 25, 24), (C, "103x2x0", 100_000, 0, 18)]
    # one direction excluded is enough; the other direction of 103x4x0 is C -> A
    assert json.loads(route(script_runner, A, C, "100000msat", "--exclude", "103x4x0/1").stdout)["fee_msat"] == 25
    assert json.loads(route(script_runner, A, C, "100000msat", "--exclude", "103x4x0/0").stdout)["fee_msat"] == 0


def test_human_table(script_runner):
    r = script_runner.run(["lncli", "-H", "route", A, C, "100000msat", "--graph", STORE, "--exclude", "103x4x0"])
    assert r.returncode == 0, r.stderr
    assert "103x3x0" in r.stdout and "103x2x0" in r.stdout and "{" not in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ((A, C, "100000msat", "--exclude", "103x4x0", "--exclude", B), "no route"),
        ((A, C, "100000msat", "--exclude", "103x4x0", "--max-fee", "24msat"), "fee above the limit: the cheapest route"),
        ((A, D, "1000msat"), "unknown node: the destination " + D),  # D's only channel is dying
        ((A, C, "1600000sat"), "no route with enough capacity"),  # 103x4x0 holds 1,500,000 sat
        ((A, C, "100000msat", "--exclude", "103x4x0", "--max-cltv", "5"), "within a cltv delta of 5"),
        ((A, "02" + "00" * 32, "1sat"), "unknown node"),
        ((A, "nothex", "1sat"), "DESTINATION must be a node id"),
        ((A, C, "1sat", "--exclude", "bogus"), "cannot exclude 'bogus'"),
    ],
)
def test_errors_name_what_is_missing(script_runner, args, message):
    r = route(script_runner, *args)
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.startswith("lncli: error: ") and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_unreadable_file(script_runner, tmp_path):
    bad = tmp_path / "store"
    bad.write_bytes(b"\x10" + b"\x00" * 5)
    r = route(script_runner, A, C, "1sat", graph=str(bad))
    assert r.returncode == 1 and "not a readable gossip_store" in r.stderr
    r = route(script_runner, A, C, "1sat", graph=str(tmp_path / "missing"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_online_without_a_node_is_unreachable(script_runner, tmp_path):
    r = script_runner.run(["lncli", "--datadir", str(tmp_path), "route", A, C, "1sat"])
    assert r.returncode == 3, r.stderr


@pytest.mark.skipif(not SAMPLE.exists(), reason="no gossip_store sample")
def test_mainnet_sample_route_follows_the_published_policies(script_runner):
    g = load_graph(SAMPLE.read_bytes(), verify=False)
    # the sample's channels are nearly all the busiest node's (compressed index 0, ACINQ's
    # place): between two of its peers the route goes through it
    ends = [(ch.announcement.node_id_1, ch.announcement.node_id_2) for ch in g.channels.values()]
    peers = sorted({n for e in ends for n in e} - {ends[0][0]} - {ends[0][1]})
    src, dst = peers[0], peers[-1]
    r = route(script_runner, src.hex(), dst.hex(), "10000sat", graph=str(SAMPLE))
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["hops"]) >= 2
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["source"] == src.hex() and out["destination"] == dst.hex() and out["amount_msat"] == 10_000_000
    policies = {}
    for ch in g.channels.values():
        for u in ch.updates:
            if u is not None:
                policies[(str(ch.announcement.short_channel_id), u.direction)] = u
    hops = out["hops"]
    for j, h in enumerate(hops):
        u = policies[(h["short_channel_id"], h["direction"])]
        assert not u.disabled and u.htlc_minimum_msat <= h["amount_msat"] <= u.htlc_maximum_msat
        if j + 1 < len(hops):  # this hop forwards over the next channel under that channel's policy
            nxt = policies[(hops[j + 1]["short_channel_id"], hops[j + 1]["direction"])]
            assert h["fee_msat"] == fee_msat(hops[j + 1]["amount_msat"], nxt.fee_base_msat, nxt.fee_proportional_millionths)
            assert h["cltv"] - hops[j + 1]["cltv"] == nxt.cltv_expiry_delta
    assert out["fee_msat"] == sum(h["fee_msat"] for h in hops) == out["total_amount_msat"] - 10_000_000
