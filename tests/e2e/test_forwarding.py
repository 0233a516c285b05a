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
from tests.e2e.procs import one_line_error, out
from tests.e2e.test_channels import (  # noqa: F401 - nodes is a fixture
    SEEDS,
    TO_SELF_DELAY,
    balances,
    channel,
    nodes,
    settled,
    wait,
)


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

    # A pays C's invoice over B (C's hint: B, the private channel, with B's policy from its
    # channel_update to C: the defaults 1000 msat + 1 ppm, delta 34)
    _peer_update_at(nodes, "c", bc["short_channel_id"], fee_base_msat=1000)
    inv = nodes.json("c", "invoice", "create", "50000sat")
    dec = bolt11.decode(inv["bolt11"], network_hint="regtest")
    (hop,) = dec.route_hints[0]
    assert hop.pubkey.hex() == nodes.id["b"] and str(ShortChannelId(hop.short_channel_id)) == bc["short_channel_id"]
    p = nodes.json("a", "pay", inv["bolt11"])
    fee = hop.fee_base_msat + 50_000_000 * hop.fee_proportional_millionths // 1_000_000
    assert (hop.fee_base_msat, hop.fee_proportional_millionths, hop.cltv_expiry_delta) == (1000, 1, 34)
    assert p["status"] == "succeeded" and p["fee_msat"] == fee == 1050 and p["destination"] == nodes.id["c"]
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == inv["payment_hash"]
    settled(nodes, "a", "b"), settled(nodes, "b", "c"), settled(nodes, "c", "b")
    assert balances(nodes, "a", "b") == (ab0[0] - 50_001_050, ab0[1] + 50_001_050)
    assert balances(nodes, "b", "c") == (bc0[0] - 50_000_000, bc0[1] + 50_000_000)
    assert wait(lambda: nodes.json("c", "invoice", "list", "--status", "paid"), what="C paid")[0]["payment_hash"] == inv["payment_hash"]
    (f,) = nodes.json("b", "forwards")
    assert f["status"] == "settled" and f["fee_msat"] == 1050 and f["in_msat"] == 50_001_050 and f["out_msat"] == 50_000_000
    assert f["out_short_channel_id"] == bc["short_channel_id"] and f["in_short_channel_id"] == channel(nodes, "b", "a")["short_channel_id"]

    # failures at B: unknown next channel (the hint's channel left out: no route is left)
    scid = hop.short_channel_id
    o = _fails(nodes, _invoice(nodes, None, RouteHintHop(hop.pubkey, scid + 1, 1000, 10, 34)), "unknown_next_peer", "b")
    assert [a["failure"] for a in o["attempts"]] == ["unknown_next_peer"]
    # a stale hint's fee and cltv policy: B refuses with its channel_update, A retries with that
    # policy (BOLT 4), B forwards, and C, who does not know the payment hash, ends the payment
    unknown = "incorrect_or_unknown_payment_details"
    for stale, name in ((RouteHintHop(hop.pubkey, scid, 0, 0, 34), "fee_insufficient"),
                        (RouteHintHop(hop.pubkey, scid, 1000, 1, 5), "incorrect_cltv_expiry")):
        o = _fails(nodes, _invoice(nodes, "c", stale), unknown, "c")
        first, second = o["attempts"]
        assert (first["failure"], first["erring_node"], first["erring_channel"]) == (name, nodes.id["b"], bc["short_channel_id"])
        assert "policy of the failure's channel_update" in first["narrowed"]
        assert (second["failure"], second["erring_node"]) == (unknown, nodes.id["c"])
        assert second["fee_msat"] == 1000 + 10 and second["hops"][0]["cltv_expiry"] - second["hops"][1]["cltv_expiry"] == 34
    # C does not know the payment hash: the failure comes back wrapped by B, from hop 1
    o = _fails(nodes, _invoice(nodes, "c", hop), unknown, "c")
    assert o["failure_hop"] == 1 and len(o["attempts"]) == 1
    settled(nodes, "a", "b"), settled(nodes, "b", "c")
    assert balances(nodes, "a", "b") == (ab0[0] - 50_001_050, ab0[1] + 50_001_050)
    fw = nodes.json("b", "forwards")
    assert [x["status"] for x in fw] == ["settled", "local_failed", "local_failed", "failed", "local_failed", "failed", "failed"]
    assert [x["failure"] for x in fw[1:3]] + [fw[4]["failure"]] == ["unknown_next_peer", "fee_insufficient", "incorrect_cltv_expiry"]
    assert sum(x["fee_msat"] for x in fw) == 1050

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
    wait(lambda: len(fw := nodes.json("b", "forwards")) == 8 and fw[-1]["status"] == "offered", what="forward offered")
    wait(lambda: channel(nodes, "c", "b")["pending_htlcs"] == 1, what="HTLC at C")
    nodes.stop("b"), nodes.stop("c")
    nodes.start("c"), nodes.start("b")
    fw = wait(lambda: (x := nodes.json("b", "forwards"))[-1]["status"] == "settled" and x, timeout=30, what="settled after restart")
    assert fw[-1]["fee_msat"] == 1000 + 20_000_000 * 1 // 1_000_000
    settled(nodes, "a", "b"), settled(nodes, "b", "c")
    total = 50_001_050 + 20_000_000 + fw[-1]["fee_msat"]
    assert balances(nodes, "a", "b") == (ab0[0] - total, ab0[1] + total)
    assert balances(nodes, "b", "c") == (bc0[0] - 70_000_000, bc0[1] + 70_000_000)


def _start_conf(nodes, name, extra):
    """Start ``name`` as nodes.start does, with ``extra`` lines in its lncli.conf."""
    d = nodes.dir(name)
    d.mkdir(exist_ok=True)
    (d / "lncli.conf").write_text(f"to-self-delay={TO_SELF_DELAY}\nmin-depth=2\n{extra}")
    info = out(nodes(name, "node", "start", "--daemon", "--listen", f"127.0.0.1:{nodes.port.get(name, 0)}",
                     "--poll-interval", "0.05", "--dev-seed", SEEDS[name]))
    nodes.port[name] = int(info["uris"][0].rsplit(":", 1)[1])
    nodes.id[name] = info["node_id"]
    nodes.running.add(name)


def _peer_update_at(nodes, name, scid, **want):
    """``name``'s kept private channel_update for ``scid`` once it says ``want``."""
    def got():
        for u in nodes.json(name, "graph")["private_updates"]:
            if u["short_channel_id"] == scid and all(u[k] == v for k, v in want.items()):
                return u
        return None
    return wait(got, what=f"{name} has the update {want}")


def _hint(nodes, inv):
    (hop,) = bolt11.decode(inv["bolt11"], network_hint="regtest").route_hints[0]
    return hop


def _failed_payment(nodes, bolt, name, *, retried=False):
    """A pays ``bolt``; its first part fails at B with ``name`` (the failed part as A's
    listpayments has it is returned). ``retried``: A then retries with the failure's
    channel_update (BOLT 4) and the payment succeeds; else it ends there."""
    from lncli.rpc.client import call

    p = nodes("a", "pay", bolt, check=False)
    ph = bolt11.decode(bolt, network_hint="regtest").payment_hash.hex()
    rows = call(nodes.dir("a") / "regtest", "listpayments", datadir=nodes.dir("a"), payment_hash=ph)
    if retried:
        assert p.returncode == 0, p.stderr
        o = out(p)
        assert o["status"] == "succeeded" and [a["status"] for a in o["attempts"]] == ["failed", "succeeded"], o
        assert "policy of the failure's channel_update" in o["attempts"][0]["narrowed"]
        assert [r["status"] for r in rows] == ["failed", "succeeded"]
    else:
        assert p.returncode == 1 and name in p.stderr, p.stderr
        assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "failed" and row["failure"] == name and row["failing_node"] == nodes.id["b"], row
    return row


def test_policy_from_conf_setchannel_and_failures_with_the_channel_update(nodes):
    """B's policy comes from lncli.conf, setchannel changes it at run time; A paying C's invoice
    made before the change (a stale route hint) fails at B with the BOLT 4 code and B's new
    channel_update, and A's retry with that update pays (or, below B's new minimum, finds no
    route); an invoice made after it pays; the policy survives B's restart."""
    nodes.start("a")
    _start_conf(nodes, "b", "fee-base=2000\nfee-ppm=5\ncltv-delta=40\nhtlc-minimum=1sat\n")
    nodes.start("c")
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--private", "--no-wait")
    nodes("a", "mine", "2")
    for x, y in ("ab", "ba", "bc", "cb"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")
    bc = channel(nodes, "b", "c")["short_channel_id"]

    # lncli.conf's policy, in B's channel_update to C and so in C's route hint
    u = _peer_update_at(nodes, "c", bc, fee_base_msat=2000)
    assert (u["fee_proportional_millionths"], u["cltv_expiry_delta"], u["htlc_minimum_msat"]) == (5, 40, 1000)
    inv = nodes.json("c", "invoice", "create", "50000sat")
    hop = _hint(nodes, inv)
    assert (hop.fee_base_msat, hop.fee_proportional_millionths, hop.cltv_expiry_delta) == (2000, 5, 40)
    p = nodes.json("a", "pay", inv["bolt11"])
    assert p["status"] == "succeeded" and p["fee_msat"] == 2000 + 250

    # setchannel raises the fee at once (--enforce-delay 0); an invoice made before it is stale
    stale = nodes.json("c", "invoice", "create", "20000sat")
    pol = nodes.json("b", "setchannel", bc, "--fee-base", "3000", "--fee-ppm", "200", "--enforce-delay", "0")
    assert pol["short_channel_id"] == bc and pol["peer_id"] == nodes.id["c"] and pol["changed"]
    assert (pol["fee_base_msat"], pol["fee_proportional_millionths"], pol["cltv_expiry_delta"]) == (3000, 200, 40)
    assert pol["htlc_minimum_msat"] == 1000 and pol["htlc_maximum_msat"] == 300_000_000  # bounded by the capacity
    assert pol["channel_update"]["fee_base_msat"] == 3000 and pol["channel_update"]["short_channel_id"] == bc
    row = _failed_payment(nodes, stale["bolt11"], "fee_insufficient", retried=True)
    assert row["failure_code"] == 0x1000 | 12
    upd = row["failure_channel_update"]
    assert upd["signature_valid"] and upd["short_channel_id"] == bc and not upd["disabled"]
    assert (upd["fee_base_msat"], upd["fee_proportional_millionths"], upd["cltv_expiry_delta"]) == (3000, 200, 40)
    assert upd["timestamp"] == pol["channel_update"]["timestamp"]  # the current one, not a new one

    # the cltv delta: the same, with incorrect_cltv_expiry
    _peer_update_at(nodes, "c", bc, fee_base_msat=3000)
    stale = nodes.json("c", "invoice", "create", "20000sat")
    assert _hint(nodes, stale).fee_base_msat == 3000
    pol = nodes.json("b", "setchannel", bc, "--cltv-delta", "60", "--enforce-delay", "0")
    assert (pol["fee_base_msat"], pol["cltv_expiry_delta"]) == (3000, 60)
    row = _failed_payment(nodes, stale["bolt11"], "incorrect_cltv_expiry", retried=True)
    assert row["failure_code"] == 0x1000 | 13 and row["failure_channel_update"]["cltv_expiry_delta"] == 60

    # below the minimum: amount_below_minimum; nothing changes: no new channel_update
    pol = nodes.json("b", "setchannel", bc, "--htlc-minimum", "30000sat", "--enforce-delay", "0")
    _peer_update_at(nodes, "c", bc, htlc_minimum_msat=30_000_000)
    small = nodes.json("c", "invoice", "create", "20000sat")
    row = _failed_payment(nodes, small["bolt11"], "amount_below_minimum")
    assert row["failure_channel_update"]["htlc_minimum_msat"] == 30_000_000
    pol = nodes.json("b", "setchannel", bc, "--htlc-minimum", "1sat", "--enforce-delay", "0")
    again = nodes.json("b", "setchannel", bc)
    assert not again["changed"] and again["channel_update"] is None and again["htlc_minimum_msat"] == 1000

    # refusals: one line, exit 1, nothing changed
    for args, what in ((("1x1x1", "--fee-base", "1"), "no channel with short_channel_id"),
                       ((bc, "--cltv-delta", "0"), "cltv_expiry_delta 0"),
                       ((bc, "--fee-base", "lots"), "--fee-base"),
                       ((bc, "--htlc-minimum", "2000", "--htlc-maximum", "1000"), "below htlc_minimum_msat")):
        assert what in one_line_error(nodes("b", "setchannel", *args, check=False), 1)
    assert nodes.json("b", "setchannel", bc)["cltv_expiry_delta"] == 60

    # a fresh invoice carries the new policy and pays it
    _peer_update_at(nodes, "c", bc, cltv_expiry_delta=60, htlc_minimum_msat=1000)
    fresh = nodes.json("c", "invoice", "create", "20000sat")
    p = nodes.json("a", "pay", fresh["bolt11"])
    assert p["status"] == "succeeded" and p["fee_msat"] == 3000 + 20_000_000 * 200 // 1_000_000

    # without --enforce-delay the old policy is still accepted for 10 minutes (BOLT 7)
    old = nodes.json("c", "invoice", "create", "10000sat")
    nodes.json("b", "setchannel", bc, "--fee-base", "9000")
    p = nodes.json("a", "pay", old["bolt11"])
    assert p["status"] == "succeeded" and p["fee_msat"] == 3000 + 2000

    # the policy survives B's restart (the grace too)
    nodes.stop("b")
    _start_conf(nodes, "b", "fee-base=2000\nfee-ppm=5\ncltv-delta=40\nhtlc-minimum=1sat\n")
    wait(lambda: channel(nodes, "b", "c")["active"] and channel(nodes, "a", "b")["active"], what="b back")
    again = nodes.json("b", "setchannel", bc)
    assert (again["fee_base_msat"], again["fee_proportional_millionths"], again["cltv_expiry_delta"]) == (9000, 200, 60)
    assert again["previous_accepted_until"] is not None

    # C gone: channel_disabled, with an update that says so
    later = nodes.json("c", "invoice", "create", "10000sat")
    nodes.stop("c")
    wait(lambda: not channel(nodes, "b", "c")["active"], what="b sees c gone")
    row = _failed_payment(nodes, later["bolt11"], "channel_disabled")
    assert row["failure_code"] == 0x1000 | 20 and row["failure_channel_update"]["disabled"]

    # B's forwards: each with its fee and outcome
    fw = nodes.json("b", "forwards")
    assert [x["status"] for x in fw] == ["settled", "local_failed", "settled", "local_failed", "settled", "local_failed",
                                         "settled", "settled", "local_failed"]
    assert [x["failure"] for x in fw if x["status"] == "local_failed"] == [
        "fee_insufficient", "incorrect_cltv_expiry", "amount_below_minimum", "channel_disabled"]
    assert [x["failure_code"] for x in fw if x["status"] == "local_failed"] == [0x100c, 0x100d, 0x100b, 0x1014]
    # the retries over a stale hint pay the new fee: 3000 + 200 ppm of 20,000 sat
    assert [x["fee_msat"] for x in fw] == [2250, 0, 7000, 0, 7000, 0, 7000, 5000, 0]
    assert all(x["out_short_channel_id"] == bc for x in fw)


def test_the_payer_retries_with_the_channel_update_of_a_failure(nodes):
    """A pays C over D and B on a route from its graph and C's route hint for the private B-C
    channel; the hint is stale (B raised its fee after C made the invoice): B fails the first try
    with fee_insufficient and its new channel_update, and A retries the same payment with that
    update (BOLT 4: for this payment only) and pays B's new fee."""
    from lncli.rpc.client import call

    for name in "abcd":
        nodes.start(name)
    for name in "adb":
        nodes(name, "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("d"), "--persist")
    nodes("d", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["d"], "400000", "--no-wait")
    nodes.json("d", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--private", "--no-wait")
    nodes("a", "mine", "6")
    for x, y in ("ad", "da", "db", "bd", "bc", "cb"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")
    db = channel(nodes, "d", "b")["short_channel_id"]
    bc = channel(nodes, "b", "c")["short_channel_id"]
    wait(lambda: any(c["short_channel_id"] == db and c["source"] == nodes.id["d"] for c in nodes.json("a", "graph")["channels"]),
         timeout=30, what="a's graph has d->b")
    _peer_update_at(nodes, "c", bc, fee_base_msat=1000)
    stale = nodes.json("c", "invoice", "create", "50000sat")
    assert _hint(nodes, stale).fee_base_msat == 1000
    pol = nodes.json("b", "setchannel", bc, "--fee-base", "4000", "--fee-ppm", "20", "--enforce-delay", "0")
    assert pol["fee_base_msat"] == 4000

    p = call(nodes.dir("a") / "regtest", "pay", datadir=nodes.dir("a"), timeout=90, bolt11=stale["bolt11"], wait=60)
    assert p["status"] == "succeeded", p
    first, second = p["attempts"]
    assert first["status"] == "failed" and first["failure"] == "fee_insufficient"
    assert first["channels"] == second["channels"] == [channel(nodes, "a", "d")["short_channel_id"], db, bc]
    b_fee = 4000 + 50_000_000 * 20 // 1_000_000
    d_fee = 1000 + (50_000_000 + b_fee) * 1 // 1_000_000
    assert second["fee_msat"] == p["fee_msat"] == b_fee + d_fee and first["fee_msat"] < p["fee_msat"]
    # the update was for this payment only: A's graph and private updates know nothing of B-C
    g = nodes.json("a", "graph")
    assert not any(c["short_channel_id"] == bc for c in g["channels"]) and not g["private_updates"]
    fw = nodes.json("b", "forwards")
    assert [(x["status"], x["failure"], x["fee_msat"]) for x in fw] == [
        ("local_failed", "fee_insufficient", 0), ("settled", None, b_fee)]
