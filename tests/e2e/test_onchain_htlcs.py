"""End to end: A -> B -> C with three real node processes, a force close at each stage, and B
(the forwarding node) settling A's HTLC from what happened on chain (lncli/node/onchain_htlcs.py,
lncli/monitor/htlc_resolution.py, the BOLT 2 deadlines in lncli/channel/closing.py):

(a) C claims on chain: B is offline when C settles, C force-closes B-C and claims the HTLC with
    its HTLC-success tx; B comes back, reads the preimage off the chain and fulfils A's HTLC off
    chain: A's payment succeeds;
(b) C is offline, B force-closes B-C: B's HTLC-timeout tx confirms, and 6 blocks later B fails
    A's HTLC (permanent_channel_failure): A's payment fails cleanly;
(c) A goes offline after B learned the preimage: FULFILL_SAFETY_DELTA (18) blocks before the
    HTLC's cltv_expiry B goes on chain on A-B and claims it with its HTLC-success tx in time;
    A, back, learns the preimage from the chain: its payment succeeds.

C holds the HTLC with the regtest-only ``dev-hold-htlcs=1`` until the test is ready. Each test
checks B's money to the msat: B's wallet plus channel balances after = before + the forwarding
fee (if earned) - the on-chain fees B paid (read from the chain, tx by tx, back from B's new
wallet outputs to the commitment) - what BOLT 3 rounds off the commitment outputs (msat to sat).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from lncli.bitcoin.tx import OutPoint
from lncli.chain.embedded import EmbeddedChain
from lncli.node.channel_policy import FEE_BASE_MSAT, FEE_PROPORTIONAL_MILLIONTHS
from lncli.rpc.client import RpcClient
from tests.e2e.procs import out
from tests.e2e.test_channels import SEEDS, TO_SELF_DELAY, channel, nodes, wait  # noqa: F401 - nodes is a fixture

AMOUNT_MSAT = 20_000_000
CLTV_EXPIRY_DELTA = 34  # B's (the route hint's)
# B's default policy (channel_policy's defaults), which C's route hint carries once C has B's channel_update
FEE_MSAT = FEE_BASE_MSAT + AMOUNT_MSAT * FEE_PROPORTIONAL_MILLIONTHS // 1_000_000


@pytest.fixture
def chain(env):
    c = EmbeddedChain(Path(env["LNCLI_CHAINDIR"]) / "regtest", network="regtest")
    yield c
    c.close()


def start_holding(nodes, name):  # noqa: F811
    """Start ``name`` with dev-hold-htlcs=1: it neither fulfils nor fails incoming HTLCs."""
    d = nodes.dir(name)
    d.mkdir(exist_ok=True)
    (d / "lncli.conf").write_text(f"to-self-delay={TO_SELF_DELAY}\nmin-depth=2\ndev-hold-htlcs=1\n")
    info = out(nodes(name, "node", "start", "--daemon", "--listen", f"127.0.0.1:{nodes.port.get(name, 0)}",
                     "--poll-interval", "0.05", "--dev-seed", SEEDS[name]))
    nodes.port[name] = int(info["uris"][0].rsplit(":", 1)[1])
    nodes.id[name] = info["node_id"]
    nodes.running.add(name)


def rpc(nodes, name, method, **params):  # noqa: F811
    with RpcClient(nodes.dir(name) / "regtest", timeout=10) as c:
        return c.call(method, **params)


def setup(nodes):  # noqa: F811
    """A-B (A opens, 400k sat) and B-C (B opens, private, 300k sat); C holding HTLCs."""
    nodes.start("a"), nodes.start("b")
    start_holding(nodes, "c")
    nodes("a", "fund", "0.01btc")
    nodes("b", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    nodes("b", "connect", nodes.uri("c"), "--persist")
    nodes.json("a", "open", nodes.id["b"], "400000", "--no-wait")
    nodes.json("b", "open", nodes.id["c"], "300000", "--private", "--no-wait")
    nodes("a", "mine", "2")
    for x, y in ("ab", "ba", "bc", "cb"):
        wait(lambda x=x, y=y: (c := channel(nodes, x, y)) and c["active"], what=f"{x}-{y} NORMAL")


def held_payment(nodes):  # noqa: F811
    """A pays C; the HTLC reaches C, which holds it. Returns (payment_hash, A's payment row)."""
    bc = channel(nodes, "c", "b")["short_channel_id"]
    wait(lambda: any(u["short_channel_id"] == bc for u in nodes.json("c", "graph")["private_updates"]),
         what="C to hold B's channel_update for the private B-C channel (its route hint's policy)")
    inv = nodes.json("c", "invoice", "create", f"{AMOUNT_MSAT}msat")
    p = nodes("a", "pay", inv["bolt11"], "--timeout", "1", check=False)
    assert p.returncode == 1 and out(p)["status"] == "pending", p.stderr
    wait(lambda: channel(nodes, "c", "b")["pending_htlcs"] == 1, what="HTLC at C")
    (f,) = wait(lambda: (fw := nodes.json("b", "forwards")) and fw[-1]["status"] == "offered" and fw, what="forward")
    assert f["in_msat"] == AMOUNT_MSAT + FEE_MSAT and f["out_msat"] == AMOUNT_MSAT
    (row,) = rpc(nodes, "a", "listpayments", payment_hash=inv["payment_hash"])
    return inv["payment_hash"], row


def payment(nodes, name, payment_hash):  # noqa: F811
    (row,) = rpc(nodes, name, "listpayments", payment_hash=payment_hash)
    return row


def wallet_total(nodes, name):  # noqa: F811
    return nodes.json(name, "wallet", "balance")["total_sat"]


def holdings_msat(nodes, name):  # noqa: F811
    """``name``'s wallet plus the local balances of its channels not closed on chain."""
    chans = [c for c in nodes.json(name, "channels") if c["state"] == "NORMAL"]
    return wallet_total(nodes, name) * 1000 + sum(c["local_balance_msat"] for c in chans)


def utxos(nodes, name):  # noqa: F811
    return {r["outpoint"]: r["value_sat"] for r in nodes.json(name, "wallet", "utxos")}


def fee_of(chain, tx) -> int:
    spent = sum(chain.get_transaction(i.prevout.txid).tx.outputs[i.prevout.vout].value_sat for i in tx.inputs)
    return spent - sum(o.value_sat for o in tx.outputs)


def claims(chain, new_utxos, commitment_txid: bytes):
    """Walk back from each new wallet output to the commitment: (the fees of every tx on the way,
    the commitment outputs they spent). Fails if a new output does not come from the commitment
    within three transactions (second-stage HTLC tx, then its sweep)."""
    fees, reached, seen = 0, set(), set()

    def walk(txid: bytes, depth: int) -> None:
        nonlocal fees
        assert depth <= 3, "a new wallet output that does not come from the commitment"
        if txid in seen:
            return
        seen.add(txid)
        tx = chain.get_transaction(txid).tx
        fees += fee_of(chain, tx)
        for i in tx.inputs:
            if i.prevout.txid == commitment_txid:
                reached.add(i.prevout.vout)
            else:
                walk(i.prevout.txid, depth + 1)

    for o in new_utxos:
        walk(OutPoint.from_txid_hex(o.split(":")[0], 0).txid, 1)
    return fees, reached


def mine(nodes, n, by="b"):  # noqa: F811
    """Mine ``n`` blocks and wait until every running node has processed them."""
    h = nodes.json(by, "mine", str(n))["height"]
    for name in list(nodes.running):
        wait(lambda name=name: rpc(nodes, name, "getinfo")["block_height"] >= h, what=f"{name} at block {h}")
    time.sleep(0.3)  # the block's subscribers (channels, watcher) run after the height moves
    return h


def height(nodes, name="b"):  # noqa: F811
    return rpc(nodes, name, "getinfo")["block_height"]


def htlc_tx_in_mempool(chain, commitment_txid: bytes, success: bool):
    """The second-stage HTLC tx in the mempool spending the commitment: an HTLC-success tx (a
    32-byte preimage in its witness) or an HTLC-timeout tx (its locktime the cltv_expiry)."""
    for t in chain.mempool_txids():
        st = chain.get_transaction(t)
        if st is None or not any(i.prevout.txid == commitment_txid for i in st.tx.inputs):
            continue
        has_preimage = any(len(w) == 32 for i in st.tx.inputs for w in i.witness)
        if (has_preimage if success else st.tx.locktime > 0):
            return st.tx
    return None


def closed_channel(nodes, name, cid):  # noqa: F811
    (c,) = nodes.json(name, "channels", "--channel", cid)
    return c


def test_c_claims_on_chain_b_fulfils_a_off_chain(nodes, chain):  # noqa: F811
    setup(nodes)
    bc = channel(nodes, "b", "c")
    total0, utxos0 = holdings_msat(nodes, "b"), utxos(nodes, "b")
    ph, _ = held_payment(nodes)
    # B goes down; C, restarted without holding, settles the HTLC (the fulfill cannot reach B)
    nodes.stop("b"), nodes.stop("c")
    nodes.start("c")
    paid = wait(lambda: nodes.json("c", "invoice", "list", "--status", "paid"), what="C settled")
    assert paid[0]["payment_hash"] == ph
    # C force-closes B-C and claims the HTLC with its HTLC-success tx
    closing = nodes.json("c", "close", nodes.id["b"], "--force")
    commitment = bytes.fromhex(closing["closing_txid"])[::-1]
    wait(lambda: commitment in chain.mempool_txids(), what="C's commitment in the mempool")
    mine(nodes, 1, by="c")
    success = wait(lambda: htlc_tx_in_mempool(chain, commitment, success=True), timeout=20, what="C's HTLC-success tx")
    mine(nodes, 1, by="c")
    assert chain.get_transaction(success.txid()).confirmations == 1
    # B comes back: it reads the preimage in C's HTLC-success tx and fulfils A's HTLC off chain
    nodes.start("b")
    p = wait(lambda: (r := payment(nodes, "a", ph))["status"] == "succeeded" and r, timeout=30, what="A's payment")
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == ph
    (f,) = wait(lambda: (fw := nodes.json("b", "forwards"))[-1]["status"] == "settled" and fw, what="forward settled")
    assert f["fee_msat"] == FEE_MSAT
    wait(lambda: channel(nodes, "a", "b")["pending_htlcs"] == 0 and channel(nodes, "b", "a")["pending_htlcs"] == 0,
         what="A-B settled off chain")
    assert channel(nodes, "a", "b")["state"] == "NORMAL"  # no force close upstream
    # B's to_remote on C's commitment comes back to its wallet; B-C resolves
    mine(nodes, 6)
    wait(lambda: closed_channel(nodes, "b", bc["channel_id"])["state"] == "CLOSED", timeout=30, what="B-C resolved")
    new = {o: v for o, v in utxos(nodes, "b").items() if o not in utxos0}
    fees, reached = claims(chain, new, commitment)
    ctx = chain.get_transaction(commitment).tx
    commit_fee = bc["capacity_sat"] - sum(o.value_sat for o in ctx.outputs)  # B opened B-C: B pays it
    left_on_bc = bc["local_balance_msat"] - AMOUNT_MSAT  # B's side after the HTLC went to C
    assert sum(ctx.outputs[v].value_sat for v in reached) == left_on_bc // 1000 - commit_fee
    total1 = holdings_msat(nodes, "b")
    assert total1 == total0 + FEE_MSAT - 1000 * (commit_fee + fees) - left_on_bc % 1000


def test_timeout_on_chain_fails_a_cleanly(nodes, chain):  # noqa: F811
    setup(nodes)
    bc = channel(nodes, "b", "c")
    total0, utxos0 = holdings_msat(nodes, "b"), utxos(nodes, "b")
    ph, row = held_payment(nodes)
    out_cltv = row["cltv_expiry"] - CLTV_EXPIRY_DELTA
    nodes.stop("c")  # C is gone with the HTLC
    closing = nodes.json("b", "close", nodes.id["c"], "--force")
    commitment = bytes.fromhex(closing["closing_txid"])[::-1]
    wait(lambda: commitment in chain.mempool_txids(), what="B's commitment in the mempool")
    # up to the cltv_expiry: B's HTLC-timeout tx goes out (A's HTLC still pending)
    mine(nodes, out_cltv - height(nodes))
    timeout_tx = wait(lambda: htlc_tx_in_mempool(chain, commitment, success=False), timeout=20, what="B's HTLC-timeout tx")
    assert timeout_tx.locktime == out_cltv
    mine(nodes, 1)  # confirmed at out_cltv + 1
    mine(nodes, 4)
    assert payment(nodes, "a", ph)["status"] == "pending"  # 5 confirmations: not yet
    assert nodes.json("b", "forwards")[-1]["status"] == "offered"
    mine(nodes, 1)  # 6 confirmations (BOLT 5 "reasonable depth"): B fails A's HTLC
    p = wait(lambda: (r := payment(nodes, "a", ph))["status"] == "failed" and r, timeout=20, what="A's payment failed")
    assert p["failure"] == "permanent_channel_failure" and p["failing_node"] == nodes.id["b"]
    (f,) = nodes.json("b", "forwards")
    assert f["status"] == "failed" and f["failure"] == "timed out on chain" and f["fee_msat"] == 0
    wait(lambda: channel(nodes, "a", "b")["pending_htlcs"] == 0 and channel(nodes, "b", "a")["pending_htlcs"] == 0,
         what="A-B settled off chain")
    assert channel(nodes, "a", "b")["state"] == "NORMAL"
    # B's to_local and its HTLC-timeout output come back after to_self_delay; B-C resolves
    for _ in range(4):
        mine(nodes, TO_SELF_DELAY)
        if closed_channel(nodes, "b", bc["channel_id"])["state"] == "CLOSED":
            break
    wait(lambda: closed_channel(nodes, "b", bc["channel_id"])["state"] == "CLOSED", timeout=30, what="B-C resolved")
    new = {o: v for o, v in utxos(nodes, "b").items() if o not in utxos0}
    fees, reached = claims(chain, new, commitment)
    ctx = chain.get_transaction(commitment).tx
    commit_fee = bc["capacity_sat"] - sum(o.value_sat for o in ctx.outputs)
    left_on_bc = bc["local_balance_msat"] - AMOUNT_MSAT
    assert len(reached) == 2  # to_local and the HTLC
    assert sum(ctx.outputs[v].value_sat for v in reached) == left_on_bc // 1000 - commit_fee + AMOUNT_MSAT // 1000
    total1 = holdings_msat(nodes, "b")
    assert total1 == total0 - 1000 * (commit_fee + fees) - left_on_bc % 1000 - AMOUNT_MSAT % 1000


def test_upstream_offline_b_claims_on_chain_before_the_deadline(nodes, chain):  # noqa: F811
    from lncli.channel.closing import FULFILL_SAFETY_DELTA

    setup(nodes)
    ab = channel(nodes, "b", "a")
    total0, utxos0 = holdings_msat(nodes, "b"), utxos(nodes, "b")
    ph, row = held_payment(nodes)
    in_cltv = row["cltv_expiry"]
    # A goes offline; C, restarted without holding, settles: B learns the preimage, cannot pass it on
    nodes.stop("a"), nodes.stop("c")
    nodes.start("c")
    (f,) = wait(lambda: (fw := nodes.json("b", "forwards"))[-1]["status"] == "settled" and fw, timeout=20,
                what="B learned the preimage")
    wait(lambda: channel(nodes, "b", "c")["pending_htlcs"] == 0, what="B-C settled")
    assert channel(nodes, "b", "a")["pending_htlcs"] == 1  # A never took the fulfill
    # one block before the fulfillment deadline: still open; at it, B goes on chain
    mine(nodes, in_cltv - FULFILL_SAFETY_DELTA - 1 - height(nodes))
    assert channel(nodes, "b", "a")["state"] == "NORMAL"
    mine(nodes, 1)
    c = wait(lambda: (c := channel(nodes, "b", "a"))["state"] == "FORCE_CLOSING" and c, what="B force-closes A-B")
    assert "fulfilled" in c["close_reason"] and "cltv_expiry" in c["close_reason"]
    commitment = bytes.fromhex(c["closing_txid"])[::-1]
    wait(lambda: commitment in chain.mempool_txids(), what="B's commitment in the mempool")
    mine(nodes, 1)
    success = wait(lambda: htlc_tx_in_mempool(chain, commitment, success=True), timeout=20, what="B's HTLC-success tx")
    mine(nodes, 1)
    st = chain.get_transaction(success.txid())
    assert st.confirmations == 1 and height(nodes) < in_cltv  # claimed before A could time it out
    # B's to_local and its HTLC-success output come back after to_self_delay; A-B resolves
    for _ in range(4):
        mine(nodes, TO_SELF_DELAY)
        if closed_channel(nodes, "b", ab["channel_id"])["state"] == "CLOSED":
            break
    wait(lambda: closed_channel(nodes, "b", ab["channel_id"])["state"] == "CLOSED", timeout=30, what="A-B resolved")
    new = {o: v for o, v in utxos(nodes, "b").items() if o not in utxos0}
    fees, reached = claims(chain, new, commitment)
    ctx = chain.get_transaction(commitment).tx
    in_msat = AMOUNT_MSAT + FEE_MSAT
    # B had nothing on A-B but the HTLC (A opened it, no push; A paid the commitment fee)
    assert ab["local_balance_msat"] == 0 and len(reached) == 1
    assert sum(ctx.outputs[v].value_sat for v in reached) == ab["local_balance_msat"] // 1000 + in_msat // 1000
    total1 = holdings_msat(nodes, "b")
    assert total1 == total0 + FEE_MSAT - 1000 * fees - ab["local_balance_msat"] % 1000 - in_msat % 1000
    # A, back, reads the preimage in B's HTLC-success tx: its payment succeeded
    nodes.start("a")
    p = wait(lambda: (r := payment(nodes, "a", ph))["status"] == "succeeded" and r, timeout=30, what="A's payment")
    assert hashlib.sha256(bytes.fromhex(p["payment_preimage"])).hexdigest() == ph
