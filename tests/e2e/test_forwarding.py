"""End to end: A -> B -> C with three real node processes, B forwarding over a private channel
whose route hint C's invoice carries; forwarding failures named at the right hop; B restarted
while a forward is in flight."""

from __future__ import annotations

import hashlib
import os
import time

from lncli.proto import invoice as bolt11
from lncli.proto.invoice import RouteHintHop
from lncli.proto.scid import ShortChannelId
from lncli.wallet.seed import derive
from tests.e2e.procs import out
from tests.e2e.test_channels import SEEDS, balances, channel, nodes, settled, wait  # noqa: F401 - nodes is a fixture


def _invoice(nodes, signer, hop, *, payment_hash=None, amount_msat=10_000_000):
    """An invoice signed with ``signer``'s node key (or a random key) carrying the hint ``hop``."""
    key = derive(bytes.fromhex(SEEDS[signer]), "node key") if signer else os.urandom(32)
    return bolt11.encode(
        privkey=key, timestamp=int(time.time()),
        payment_hash=payment_hash or hashlib.sha256(os.urandom(32)).digest(), payment_secret=os.urandom(32),
        network="regtest", amount_msat=amount_msat, description="test", min_final_cltv_expiry_delta=18,
        route_hints=((hop,),), features=frozenset({8, 14}),
    )


def _fails(nodes, bolt, name, at):
    p = nodes("a", "pay", bolt, check=False)
    assert p.returncode == 1 and name in p.stderr, p.stderr
    o = out(p)
    assert o["status"] == "failed" and o["failure"] == name and o["failing_node"] == nodes.id[at], o
    return o


def test_forward_over_route_hint(nodes):
    for name in "abc":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--private", "--no-wait")
    nodes("a", "mine", "2")
    for x, y in ("ab", "ba", "bc", "cb"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")
    bc = channel(nodes, "b", "c")
    assert bc["private"]
    ab0, bc0 = balances(nodes, "a", "b"), balances(nodes, "b", "c")

    # A pays C's invoice over B (C's hint: B, the private channel, 1000 msat + 10 ppm, delta 34)
    inv = nodes.json("c", "invoice", "create", "50000sat")
    dec = bolt11.decode(inv["bolt11"], network_hint="regtest")
    (hop,) = dec.route_hints[0]
    assert hop.pubkey.hex() == nodes.id["b"] and str(ShortChannelId(hop.short_channel_id)) == bc["short_channel_id"]
    p = nodes.json("a", "pay", inv["bolt11"])
    fee = hop.fee_base_msat + 50_000_000 * hop.fee_proportional_millionths // 1_000_000
    assert p["status"] == "succeeded" and p["fee_msat"] == fee == 1500 and p["destination"] == nodes.id["c"]
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == inv["payment_hash"]
    settled(nodes, "a", "b"), settled(nodes, "b", "c"), settled(nodes, "c", "b")
    assert balances(nodes, "a", "b") == (ab0[0] - 50_001_500, ab0[1] + 50_001_500)
    assert balances(nodes, "b", "c") == (bc0[0] - 50_000_000, bc0[1] + 50_000_000)
    assert wait(lambda: nodes.json("c", "invoice", "list", "--status", "paid"), what="C paid")[0]["payment_hash"] == inv["payment_hash"]
    (f,) = nodes.json("b", "forwards")
    assert f["status"] == "settled" and f["fee_msat"] == 1500 and f["in_msat"] == 50_001_500 and f["out_msat"] == 50_000_000
    assert f["out_short_channel_id"] == bc["short_channel_id"] and f["in_short_channel_id"] == channel(nodes, "b", "a")["short_channel_id"]

    # failures at B: unknown next channel, fee and cltv policy
    scid = hop.short_channel_id
    _fails(nodes, _invoice(nodes, None, RouteHintHop(hop.pubkey, scid + 1, 1000, 10, 34)), "unknown_next_peer", "b")
    _fails(nodes, _invoice(nodes, None, RouteHintHop(hop.pubkey, scid, 0, 0, 34)), "fee_insufficient", "b")
    _fails(nodes, _invoice(nodes, None, RouteHintHop(hop.pubkey, scid, 2000, 10, 5)), "incorrect_cltv_expiry", "b")
    # C does not know the payment hash: the failure comes back wrapped by B, from hop 1
    o = _fails(nodes, _invoice(nodes, "c", hop), "incorrect_or_unknown_payment_details", "c")
    assert o["failure_hop"] == 1
    settled(nodes, "a", "b"), settled(nodes, "b", "c")
    assert balances(nodes, "a", "b") == (ab0[0] - 50_001_500, ab0[1] + 50_001_500)
    fw = nodes.json("b", "forwards")
    assert [x["status"] for x in fw] == ["settled", "local_failed", "local_failed", "local_failed", "failed"]
    assert [x["failure"] for x in fw[1:4]] == ["unknown_next_peer", "fee_insufficient", "incorrect_cltv_expiry"]
    assert sum(x["fee_msat"] for x in fw) == 1500

    # B restarts between the add and the settle: C holds the HTLC (dev-hold-htlcs) while B goes
    # down and up; C restarted without holding settles it, and B settles back to A from its forwards row
    inv2 = nodes.json("c", "invoice", "create", "20000sat")
    nodes.stop("c")
    (nodes.dir("c") / "lncli.conf").write_text("to-self-delay=5\nmin-depth=2\ndev-hold-htlcs=1\n")
    nodes("c", "node", "start", "--daemon", "--listen", f"127.0.0.1:{nodes.port['c']}", "--poll-interval", "0.05",
          "--dev-seed", SEEDS["c"])
    nodes.running.add("c")
    wait(lambda: channel(nodes, "b", "c")["active"] and channel(nodes, "c", "b")["active"], what="b-c again")
    p = nodes("a", "pay", inv2["bolt11"], "--timeout", "2", check=False)
    assert p.returncode == 1 and out(p)["status"] == "pending", p.stderr
    wait(lambda: len(fw := nodes.json("b", "forwards")) == 6 and fw[-1]["status"] == "offered", what="forward offered")
    wait(lambda: channel(nodes, "c", "b")["pending_htlcs"] == 1, what="HTLC at C")
    nodes.stop("b"), nodes.stop("c")
    nodes.start("c"), nodes.start("b")
    fw = wait(lambda: (x := nodes.json("b", "forwards"))[-1]["status"] == "settled" and x, timeout=30, what="settled after restart")
    assert fw[-1]["fee_msat"] == 1000 + 20_000_000 * 10 // 1_000_000
    settled(nodes, "a", "b"), settled(nodes, "b", "c")
    total = 50_001_500 + 20_000_000 + fw[-1]["fee_msat"]
    assert balances(nodes, "a", "b") == (ab0[0] - total, ab0[1] + total)
    assert balances(nodes, "b", "c") == (bc0[0] - 70_000_000, bc0[1] + 70_000_000)
