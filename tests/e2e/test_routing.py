"""End to end: A pays C over B with no route hint, on a route found in A's gossip graph
(A-B and B-C public channels), paying B's published fee."""

from __future__ import annotations

import hashlib

from lncli.proto import invoice as bolt11
from lncli.rpc.client import call
from tests.e2e.test_channels import balances, channel, nodes, settled, wait  # noqa: F401 - nodes is a fixture


def _policy(nodes, name, scid, source):
    rows = [c for c in nodes.json(name, "graph")["channels"] if c["short_channel_id"] == scid and c["source"] == source]
    return rows[0] if rows else None


def test_pay_over_gossip_route(nodes):
    for name in "abc":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--no-wait")
    nodes("a", "mine", "6")
    for x, y in ("ab", "ba", "bc", "cb"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")
    bc = channel(nodes, "b", "c")
    assert not bc["private"]
    pol = wait(lambda: _policy(nodes, "a", bc["short_channel_id"], nodes.id["b"]), timeout=30, what="a's graph has b->c")
    ab0, bc0 = balances(nodes, "a", "b"), balances(nodes, "b", "c")

    inv = nodes.json("c", "invoice", "create", "50000sat")
    assert not bolt11.decode(inv["bolt11"], network_hint="regtest").route_hints
    # over RPC: the CLI's pay shows neither route nor attempts
    p = call(nodes.dir("a") / "regtest", "pay", datadir=nodes.dir("a"), timeout=90, bolt11=inv["bolt11"], wait=60)
    fee = pol["base_fee_millisatoshi"] + 50_000_000 * pol["fee_per_millionth"] // 1_000_000
    # lncli route asks the running node (getroute): our channel with its balance, then B's policy
    rt = nodes.json("a", "route", nodes.id["a"], nodes.id["c"], "50000sat")
    assert [h["short_channel_id"] for h in rt["hops"]] == [channel(nodes, "a", "b")["short_channel_id"], bc["short_channel_id"]]
    assert rt["fee_msat"] == fee and rt["hops"][0]["fee_msat"] == fee and rt["total_amount_msat"] == 50_000_000 + fee
    r = nodes("a", "route", nodes.id["a"], nodes.id["c"], "50000sat", "--exclude", nodes.id["b"], check=False)
    assert r.returncode == 1 and "no route" in r.stderr, r.stderr
    assert p["status"] == "succeeded" and p["fee_msat"] == fee and p["destination"] == nodes.id["c"], p
    assert p["route"] == [nodes.id["b"], nodes.id["c"]] and len(p["attempts"]) == 1
    assert p["attempts"][0]["channels"] == [channel(nodes, "a", "b")["short_channel_id"], bc["short_channel_id"]]
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == inv["payment_hash"]
    settled(nodes, "a", "b"), settled(nodes, "b", "c")
    assert balances(nodes, "a", "b") == (ab0[0] - 50_000_000 - fee, ab0[1] + 50_000_000 + fee)
    assert balances(nodes, "b", "c") == (bc0[0] - 50_000_000, bc0[1] + 50_000_000)
    (f,) = nodes.json("b", "forwards")
    assert f["status"] == "settled" and f["fee_msat"] == fee

    # an amount no channel of B towards C can carry: no route, a clear refusal
    big = nodes.json("c", "invoice", "create", "350000sat")
    r = nodes("a", "pay", big["bolt11"], check=False)
    assert r.returncode == 1 and "no route" in r.stderr, r.stderr

    # within the b->c channel's gossip limits but beyond B's balance: B fails it with a channel
    # failure, A excludes that channel, finds no other route and reports the attempt
    assert pol["htlc_maximum_msat"] >= 280_000_000
    mid = nodes.json("c", "invoice", "create", "280000sat")
    q = call(nodes.dir("a") / "regtest", "pay", datadir=nodes.dir("a"), timeout=90, bolt11=mid["bolt11"], wait=60)
    assert q["status"] == "failed" and q["failing_node"] == nodes.id["b"] and q["failure_hop"] == 0, q
    assert q["failure_code"] & 0x1000 and len(q["attempts"]) == 1 and q["attempts"][0]["status"] == "failed", q
