"""End to end, four real node processes: retries driven by failures, and a multi-part payment.

    A ==(two channels, 250k sat each)== B --(800k sat, B's)-- C
    A --(300k sat, A's)-- D --(300k sat, C's: D has nothing to send to C)-- C

D asks less in fees for a small payment than B (D: 0 msat + 4800 ppm, B: 5000 msat + 1 ppm; enough
less to outweigh the scorer's liquidity penalty for D's smaller channel), so A's first route for
1000 sat goes over D, whose channel to C has no liquidity on D's side: D
fails it with temporary_channel_failure, A distrusts D->C for that amount and retries over B,
and ``pay`` lists both attempts. Then 300k sat: no channel of A carries it alone, and the
invoice offers basic_mpp, so A splits it into parts over its two channels to B; C holds the
first part until the total arrives and then settles both.
"""

from __future__ import annotations

import hashlib

import pytest

from lncli.rpc.client import call
from tests.e2e.test_channels import Nodes, settled, wait

SEEDS = {name: hashlib.sha256(b"e2e mpp " + name.encode()).hexdigest() for name in "abcd"}
FEES = {"b": "fee-base=5000\nfee-ppm=1\n", "d": "fee-base=0\nfee-ppm=4800\n"}


class Net(Nodes):
    def start(self, name):
        from tests.e2e.procs import lncli, out

        d = self.dir(name)
        d.mkdir(exist_ok=True)
        (d / "lncli.conf").write_text("to-self-delay=5\nmin-depth=2\n" + FEES.get(name, ""))
        info = out(lncli(self.env, d, "node", "start", "--daemon", "--listen", f"127.0.0.1:{self.port.get(name, 0)}",
                         "--poll-interval", "0.05", "--dev-seed", SEEDS[name]))
        self.port[name] = int(info["uris"][0].rsplit(":", 1)[1])
        self.id[name] = info["node_id"]
        self.running.add(name)
        return info


@pytest.fixture
def net(env, tmp_path):
    n = Net(env, tmp_path)
    yield n
    for name in list(n.running):
        n(name, "node", "stop", check=False)


def _chans(net, name, peer):
    return [c for c in net.json(name, "channels", "--peer", net.id[peer]) if c["state"] != "CLOSED"]


def _in_graph(net, name, scid, source):
    return any(c["short_channel_id"] == scid and c["source"] == source for c in net.json(name, "graph")["channels"])


def test_retry_after_a_failure_then_a_multi_part_payment(net):
    for name in "abcd":
        net.start(name)
    for name in "abc":
        net(name, "fund", "0.01btc")
    for x, y in ("ab", "bc", "ad", "cd"):
        net(x, "connect", net.uri(y), "--persist")
    for x, y, sat in (("a", "b", "250000"), ("a", "b", "250000"), ("a", "d", "300000")):
        net.json(x, "open", net.id[y], sat, "--no-wait")
        net("a", "mine", "1")  # the change confirmed: the wallet spends only confirmed coins
    net.json("b", "open", net.id["c"], "800000", "--no-wait")
    net.json("c", "open", net.id["d"], "300000", "--no-wait")
    net("a", "mine", "6")
    for x, y, n in (("a", "b", 2), ("b", "a", 2), ("b", "c", 1), ("c", "b", 1), ("a", "d", 1), ("d", "a", 1),
                    ("c", "d", 1), ("d", "c", 1)):
        wait(lambda x=x, y=y, n=n: len([c for c in _chans(net, x, y) if c["active"]]) == n, timeout=30,
             what=f"{x}-{y} NORMAL")
    bc, dc = _chans(net, "b", "c")[0]["short_channel_id"], _chans(net, "d", "c")[0]["short_channel_id"]
    wait(lambda: _in_graph(net, "a", bc, net.id["b"]) and _in_graph(net, "a", dc, net.id["d"]), timeout=60,
         what="a's graph has b->c and d->c")

    # (a) the first route fails for liquidity at D; the retry over B succeeds; both are listed
    inv = net.json("c", "invoice", "create", "1000sat")
    p = net.json("a", "pay", inv["bolt11"], "--max-fee", "10sat", "--max-cltv", "200")
    assert p["status"] == "succeeded" and p["fee_msat"] == 5001 and p["parts"] == 1, p
    first, second = p["attempts"]
    assert first["route"] == [net.id["d"], net.id["c"]] and first["status"] == "failed", first
    assert first["failure"] == "temporary_channel_failure" and first["erring_node"] == net.id["d"], first
    assert first["erring_channel"] == dc and "carries less than 1000000 msat" in first["narrowed"], first
    assert [h["node_id"] for h in first["hops"]] == first["route"] and first["hops"][0]["fee_msat"] == 4800, first
    assert second["route"] == [net.id["b"], net.id["c"]] and second["status"] == "succeeded", second
    assert second["hops"][0]["amount_msat"] == 1_005_001 and second["hops"][1]["amount_msat"] == 1_000_000, second
    assert p["route"] == second["route"]
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == inv["payment_hash"]
    # a fee limit below every route's fee: refused before anything is sent
    low = net.json("c", "invoice", "create", "1000sat")
    r = net("a", "pay", low["bolt11"], "--max-fee", "1sat", check=False)
    assert r.returncode == 1 and "more than the limit of 1000 msat" in r.stderr, r.stderr
    for x, y in ("ab", "ad", "bc"):
        settled(net, x, y)

    # (b) 300k sat: more than any one channel of A can send, so two parts over the two A-B channels
    outbound = sorted(c["local_balance_msat"] for c in _chans(net, "a", "b"))
    assert outbound[-1] < 300_000_000 < sum(outbound), outbound
    big = net.json("c", "invoice", "create", "300000sat")
    q = call(net.dir("a") / "regtest", "pay", datadir=net.dir("a"), timeout=120, bolt11=big["bolt11"], wait=90)
    assert q["status"] == "succeeded" and q["amount_msat"] == 300_000_000, q
    won = [t for t in q["attempts"] if t["status"] == "succeeded"]
    assert q["parts"] == len(won) >= 2 and sum(t["amount_msat"] for t in won) == 300_000_000, q["attempts"]
    assert {t["channels"][0] for t in won} == {c["short_channel_id"] for c in _chans(net, "a", "b")}, q["attempts"]
    assert q["fee_msat"] == sum(t["fee_msat"] for t in won)
    (paid,) = [i for i in net.json("c", "invoice", "list") if i["payment_hash"] == big["payment_hash"]]
    assert paid["status"] == "paid" and paid["amount_received_msat"] == 300_000_000, paid
    rows = [r for r in net.json("a", "listpayments") if r["payment_hash"] == big["payment_hash"]]
    assert len(rows) == len(q["attempts"]) and {r["total_msat"] for r in rows} == {300_000_000}, rows
    assert sorted(r["part"] for r in rows) == list(range(len(rows)))
    assert {r["status"] for r in rows if r["part"] in {t["part"] for t in won}} == {"succeeded"}
