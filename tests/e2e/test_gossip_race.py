"""End to end: gossip that reaches a node before it can check it is kept, not lost (issue 12).

As a new user did it: A and B funded, A->B and B->C opened with ``--no-wait`` at about the same
time, then ``mine 6``. Here A is held (SIGSTOP) while the blocks are mined, so B and C announce
B-C while A has neither seen the funding block nor got its own channel to B ready: B's
channel_announcement, channel_update and node_announcement for B-C wait in A's socket. When A
resumes it reads them before it has polled the new blocks. A must keep them, check them when the
blocks arrive, and then route over B-C: it pays C's invoice created with ``--no-route-hints``.
"""

from __future__ import annotations

import os
import signal

from lncli.node.daemon import lock_path
from tests.e2e.test_channels import channel, nodes, wait  # noqa: F401 - nodes is a fixture


def _directions(nodes, name, scid):
    return {c["source"] for c in nodes.json(name, "graph")["channels"] if c["short_channel_id"] == scid}


def test_gossip_before_the_block_is_kept(nodes):
    for name in "abc":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--no-wait")
    a_pid = int(lock_path(nodes.dir("a") / "regtest").read_text())
    os.kill(a_pid, signal.SIGSTOP)
    try:
        nodes("b", "mine", "6")
        wait(lambda: (c := channel(nodes, "b", "c")) and c["active"] and c, what="b-c NORMAL")
        bc = channel(nodes, "b", "c")["short_channel_id"]
        both = {nodes.id["b"], nodes.id["c"]}
        # B has announced B-C (and flooded it to A's socket) while A could not even read it
        wait(lambda: _directions(nodes, "b", bc) == both, timeout=30, what="b announced b-c")
        assert not channel(nodes, "b", "a")["active"]  # A->B is not ready yet
    finally:
        os.kill(a_pid, signal.SIGCONT)
    wait(lambda: _directions(nodes, "a", bc) == both, timeout=30, what="a learnt b-c in both directions")
    g = nodes.json("a", "graph")
    assert nodes.id["c"] in {n["nodeid"] for n in g["nodes"] if n.get("alias")}  # C's node_announcement too
    assert g["pending"] == {"channel_announcements": 0, "channel_updates": 0, "node_announcements": 0}, g["pending"]
    assert not g["dropped"], g["dropped"]
    for x, y in ("ab", "ba"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")
    inv = nodes.json("c", "invoice", "create", "50000sat", "--no-route-hints")
    p = nodes.json("a", "pay", inv["bolt11"])
    assert p["status"] == "succeeded" and p["destination"] == nodes.id["c"], p
