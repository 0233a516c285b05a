"""End to end: channels between real node processes driven by the CLI, on a private embedded chain.

fund -> connect -> open -> mine -> NORMAL both sides -> payments both ways -> failures ->
restart both nodes -> payments continue -> cooperative close -> wallets; and a force close
swept back into the wallet after to_self_delay.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.procs import ROOT, lncli, out  # noqa: F401 - re-exported to other e2e tests

SEEDS = {name: hashlib.sha256(b"e2e channels " + name.encode()).hexdigest() for name in "abcd"}
TO_SELF_DELAY = 5


class Nodes:
    def __init__(self, env, tmp_path):
        self.env, self.tmp = env, tmp_path
        self.port: dict[str, int] = {}
        self.id: dict[str, str] = {}
        self.running: set[str] = set()

    def dir(self, name):
        return self.tmp / name

    def start(self, name):
        d = self.dir(name)
        d.mkdir(exist_ok=True)
        (d / "lncli.conf").write_text(f"to-self-delay={TO_SELF_DELAY}\nmin-depth=2\n")
        port = self.port.get(name, 0)
        info = out(lncli(self.env, d, "node", "start", "--daemon", "--listen", f"127.0.0.1:{port}",
                         "--poll-interval", "0.05", "--dev-seed", SEEDS[name]))
        self.port[name] = int(info["uris"][0].rsplit(":", 1)[1])
        self.id[name] = info["node_id"]
        self.running.add(name)
        return info

    def stop(self, name):
        lncli(self.env, self.dir(name), "node", "stop")
        self.running.discard(name)

    def uri(self, name):
        return f"{self.id[name]}@127.0.0.1:{self.port[name]}"

    def __call__(self, name, *args, **kw):
        return lncli(self.env, self.dir(name), *args, **kw)

    def json(self, name, *args):
        return out(self(name, *args))


@pytest.fixture
def nodes(env, tmp_path):
    n = Nodes(env, tmp_path)
    yield n
    for name in list(n.running):
        n(name, "node", "stop", check=False)


def wait(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def channel(nodes, name, peer):
    rows = [c for c in nodes.json(name, "channels", "--peer", nodes.id[peer]) if c["state"] != "CLOSED"]
    return rows[0] if rows else None


def closed(nodes, name, cid):
    (c,) = nodes.json(name, "channels", "--channel", cid)
    return c


def balances(nodes, name, peer):
    c = channel(nodes, name, peer)
    return c["local_balance_msat"], c["remote_balance_msat"]


def pay(nodes, payer, payee, amount):
    inv = nodes.json(payee, "invoice", "create", amount)
    p = nodes.json(payer, "pay", inv["bolt11"])
    assert p["status"] == "succeeded" and p["fee_msat"] == 0
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == p["payment_hash"] == inv["payment_hash"]
    return p


def settled(nodes, name, peer):
    return wait(lambda: (c := channel(nodes, name, peer)) and c["pending_htlcs"] == 0 and c)


def test_channel_lifecycle(nodes):
    for name in "ab":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    # a channel the peer must accept; wait for it with --no-wait + mine
    ch = nodes.json("a", "open", nodes.id["b"], "400000", "--push", "20000sat", "--no-wait")
    assert ch["state"] == "AWAITING_LOCKIN" and ch["capacity_sat"] == 400_000 and ch["opener"] == "local"
    cid = ch["channel_id"]
    nodes("a", "mine", "2")
    a_ch = wait(lambda: (c := channel(nodes, "a", "b")) and c["active"] and c, what="a NORMAL")
    b_ch = wait(lambda: (c := channel(nodes, "b", "a")) and c["active"] and c, what="b NORMAL")
    assert a_ch["channel_id"] == b_ch["channel_id"] == cid
    assert a_ch["short_channel_id"] == b_ch["short_channel_id"] and a_ch["short_channel_id"].startswith(str(ch["confirmations"] or ""))
    assert a_ch["funding_outpoint"] == b_ch["funding_outpoint"] and a_ch["funding_outpoint"].startswith(a_ch["funding_txid"])
    assert (a_ch["local_balance_msat"], a_ch["remote_balance_msat"]) == (380_000_000, 20_000_000)
    assert (b_ch["local_balance_msat"], b_ch["remote_balance_msat"]) == (20_000_000, 380_000_000)
    assert a_ch["opener"] == "local" and b_ch["opener"] == "remote" and not a_ch["private"]
    # payments: balances move by exactly the amount, both ways
    pay(nodes, "a", "b", "1000sat")
    assert settled(nodes, "a", "b") and balances(nodes, "a", "b") == (379_000_000, 21_000_000)
    assert balances(nodes, "b", "a") == (21_000_000, 379_000_000)
    pay(nodes, "b", "a", "2500sat")
    pay(nodes, "a", "b", "777msat")
    inv = nodes.json("a", "invoice", "create", "any")
    p = nodes.json("b", "pay", inv["bolt11"], "--amount", "3000sat")
    assert p["amount_msat"] == 3_000_000
    settled(nodes, "a", "b"), settled(nodes, "b", "a")
    expect_a = 380_000_000 - 1_000_000 + 2_500_000 - 777 + 3_000_000
    assert balances(nodes, "a", "b") == (expect_a, 400_000_000 - expect_a)
    assert balances(nodes, "b", "a") == (400_000_000 - expect_a, expect_a)
    paid = nodes.json("b", "invoice", "list", "--status", "paid")
    assert len(paid) == 2 and all(i["payment_preimage"] for i in paid)
    # failures: an invoice signed with b's key that b never issued
    from lncli.proto import invoice as bolt11
    from lncli.wallet.seed import derive

    fake = bolt11.encode(
        privkey=derive(bytes.fromhex(SEEDS["b"]), "node key"), timestamp=int(time.time()),
        payment_hash=hashlib.sha256(b"nobody knows").digest(), payment_secret=bytes(32), network="regtest",
        amount_msat=5000, description="fake", min_final_cltv_expiry_delta=18, features=frozenset({8, 14}),
    )
    p = nodes("a", "pay", fake, check=False)
    assert p.returncode == 1 and "incorrect_or_unknown_payment_details" in p.stderr
    assert out(p)["status"] == "failed"
    big = nodes.json("b", "invoice", "create", "390000sat")
    p = nodes("a", "pay", big["bolt11"], check=False)
    assert p.returncode == 1 and "cannot pay" in p.stderr and "insufficient balance" in p.stderr
    short = nodes.json("b", "invoice", "create", "1sat", "--expiry", "1")
    time.sleep(1.1)
    p = nodes("a", "pay", short["bolt11"], check=False)
    assert p.returncode == 1 and "expired" in p.stderr
    p = nodes("a", "pay", nodes.json("a", "invoice", "create", "1sat")["bolt11"], check=False)
    assert p.returncode == 1 and "our own" in p.stderr
    assert balances(nodes, "a", "b") == (expect_a, 400_000_000 - expect_a)
    # restart both nodes: channels reestablish and payments continue
    nodes.stop("a"), nodes.stop("b")
    nodes.start("b"), nodes.start("a")
    wait(lambda: channel(nodes, "a", "b")["active"] and channel(nodes, "b", "a")["active"], what="reestablish")
    pay(nodes, "a", "b", "4000sat")
    expect_a -= 4_000_000
    assert settled(nodes, "a", "b") and balances(nodes, "a", "b") == (expect_a, 400_000_000 - expect_a)
    # cooperative close by short_channel_id
    before_b = nodes.json("b", "wallet", "balance")["total_sat"]
    c = nodes.json("a", "close", a_ch["short_channel_id"])
    assert c["state"] == "CLOSING" and c["closing_txid"]
    nodes("a", "mine", "1")
    wait(lambda: closed(nodes, "a", cid)["state"] == "CLOSED" and closed(nodes, "b", cid)["state"] == "CLOSED", what="CLOSED")
    after_b = wait(lambda: (v := nodes.json("b", "wallet", "balance")["total_sat"]) != before_b and v, what="b's wallet")
    assert after_b - before_b == (400_000_000 - expect_a) // 1000  # the opener paid the closing fee
    assert nodes.json("a", "node", "info")["num_channels"] == 0
    p = nodes("a", "close", cid, check=False)
    assert p.returncode == 1 and "already CLOSED" in p.stderr


def test_force_close_sweeps_to_wallet(nodes):
    for name in "ac":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("c"))
    # open and wait for channel_ready (the CLI waits while blocks are mined)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lncli", "--datadir", str(nodes.dir("a")), "open", nodes.id["c"], "300000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=nodes.env,
    )
    wait(lambda: channel(nodes, "a", "c"), what="open started")
    nodes("a", "mine", "2")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    ch = json.loads(stdout)
    assert ch["state"] == "NORMAL" and stderr == ""  # progress only on a TTY
    pay(nodes, "a", "c", "50000sat")
    settled(nodes, "a", "c")
    before = nodes.json("a", "wallet", "balance")
    c = nodes.json("a", "close", nodes.id["c"], "--force")
    assert c["state"] == "FORCE_CLOSING" and c["closing_txid"]
    nodes("a", "mine", "1")
    wait(lambda: channel(nodes, "c", "a")["state"] == "FORCE_CLOSING", what="c notices")
    # after to_self_delay the watcher sweeps a's to_local into its wallet
    nodes("a", "mine", str(TO_SELF_DELAY + 1))
    after = wait(lambda: (b := nodes.json("a", "wallet", "balance"))["total_sat"] > before["total_sat"] and b,
                 timeout=20, what="sweep")
    swept = after["total_sat"] - before["total_sat"]
    assert 240_000 < swept < 250_000  # 250000 sat minus the commitment and sweep fees


def test_kill9_during_payments_keeps_every_msat(nodes):
    """Kill -9 both nodes at random points while payments stream; after restarts the channel
    reestablishes, the two views agree, every payment is settled one way or the other, and
    balances add up to the capacity (nothing lost or created); no commitment reached the chain."""
    import random
    import signal
    import threading

    from lncli.rpc.client import RpcClient

    rng = random.Random(int(os.environ.get("LNCLI_TEST_SEED", "5")))
    for name in "ab":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    cid = nodes.json("a", "open", nodes.id["b"], "300000", "--no-wait")["channel_id"]
    nodes("a", "mine", "2")
    for x, y in (("a", "b"), ("b", "a")):
        wait(lambda: channel(nodes, x, y)["active"], what="NORMAL")
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            try:
                with RpcClient(nodes.dir("b") / "regtest", timeout=5) as b, RpcClient(nodes.dir("a") / "regtest", timeout=10) as a:
                    while not stop.is_set():
                        inv = b.call("invoice", amount_msat=rng.randrange(1000, 200_000))
                        a.call("pay", bolt11=inv["bolt11"], wait=3)
            except Exception:  # noqa: BLE001 - nodes die on purpose
                time.sleep(0.05)

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.2))
            victims = rng.choice([["a"], ["b"], ["a", "b"]])
            for v in victims:
                pid = nodes.json(v, "node", "info").get("pid")
                if pid is None:
                    pid = int((nodes.dir(v) / "regtest" / "lncli.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                nodes.running.discard(v)
            time.sleep(0.2)
            for v in victims:
                nodes.start(v)
            for x, y in (("a", "b"), ("b", "a")):
                wait(lambda: channel(nodes, x, y)["active"], timeout=20, what="reestablish after kill")
    finally:
        stop.set()
        t.join(15)
    for x, y in (("a", "b"), ("b", "a")):
        wait(lambda: channel(nodes, x, y)["active"], timeout=20, what="reestablish")
    wait(lambda: channel(nodes, "a", "b")["pending_htlcs"] == 0 and channel(nodes, "b", "a")["pending_htlcs"] == 0,
         timeout=20, what="HTLCs settled")
    a_local, a_remote = balances(nodes, "a", "b")
    b_local, b_remote = balances(nodes, "b", "a")
    assert a_local + a_remote == 300_000_000 and (b_local, b_remote) == (a_remote, a_local)
    with RpcClient(nodes.dir("a") / "regtest") as a:
        sent = a.call("listpayments")
    assert sent and all(p["status"] in ("succeeded", "failed") for p in sent), [p["status"] for p in sent]
    ok = sum(p["amount_msat"] for p in sent if p["status"] == "succeeded")
    print(f"{len(sent)} payments, {sum(p['status'] == 'failed' for p in sent)} failed")
    assert ok > 0 and a_remote == ok
    received = sum(i["amount_received_msat"] for i in nodes.json("b", "invoice", "list", "--status", "paid"))
    assert received == ok
    # nothing went to the chain: the funding output is unspent, no commitment was broadcast
    assert channel(nodes, "a", "b")["state"] == "NORMAL" and channel(nodes, "a", "b")["channel_id"] == cid
    assert nodes.json("a", "chain-status")["mempool_size"] == 0
