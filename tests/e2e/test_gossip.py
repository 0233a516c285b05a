"""End to end: BOLT 7 gossip between real node processes on a private embedded chain.

A opens a public channel to B, C connects to B; after 6 blocks both ends exchange
announcement_signatures, and every node's ``lncli graph`` shows the channel in both directions and
both nodes with their aliases (C by relay through B). A private channel B-C stays out of every graph;
B keeps C's channel_update for it.
"""

from __future__ import annotations

from tests.e2e.test_channels import nodes, wait  # noqa: F401 - the fixture


def _graph(nodes, name):
    return nodes.json(name, "graph")


def _complete(nodes, name, scid, ids):
    g = _graph(nodes, name)
    dirs = {c["direction"] for c in g["channels"] if c["short_channel_id"] == scid}
    named = {n["nodeid"] for n in g["nodes"] if n.get("alias")}
    return dirs == {0, 1} and set(ids) <= named and g


def test_public_channel_gossip(nodes):
    for name in "abc":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("c", "connect", nodes.uri("b"), "--persist")
    ch = nodes.json("a", "open", nodes.id["b"], "300000", "--no-wait")
    priv = nodes.json("b", "open", nodes.id["c"], "200000", "--private", "--no-wait")
    nodes("a", "mine", "2")
    wait(lambda: all(c["active"] for c in nodes.json("a", "channels")), what="a-b NORMAL")
    wait(lambda: all(c["active"] for c in nodes.json("c", "channels")), what="b-c NORMAL")
    scid = nodes.json("a", "channels")[0]["short_channel_id"]
    priv_scid = nodes.json("c", "channels")[0]["short_channel_id"]
    assert not _graph(nodes, "a")["channels"]  # not 6 deep yet
    nodes("a", "mine", "4")
    ids = [nodes.id["a"], nodes.id["b"]]
    for name in "abc":
        g = wait(lambda: _complete(nodes, name, scid, ids), timeout=30, what=f"{name} sees the a-b channel")
        rows = [c for c in g["channels"] if c["short_channel_id"] == scid]
        assert all(r["amount_msat"] == 300_000_000 and r["public"] for r in rows)
        mine = {r["source"]: r for r in rows}
        assert mine[nodes.id["a"]]["base_fee_millisatoshi"] == 1000 and mine[nodes.id["a"]]["delay"] == 34
        aliases = {n["nodeid"]: n["alias"] for n in g["nodes"] if "alias" in n}
        assert aliases[nodes.id["a"]] == f"lncli-{nodes.id['a'][2:10]}"
        assert all(c["short_channel_id"] != priv_scid for c in g["channels"])
        assert nodes.id["c"] not in {n["nodeid"] for n in g["nodes"]}
    # B holds C's channel_update for their private channel (route hints)
    wait(lambda: any(u["short_channel_id"] == priv_scid for u in _graph(nodes, "b")["private_updates"]),
         what="b has c's private channel_update")
    # the graph survives a restart
    nodes.stop("c")
    nodes.start("c")
    assert _complete(nodes, "c", scid, ids)
    del ch, priv
