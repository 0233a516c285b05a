"""End to end: a breach. A keeps one of its commitments (the regtest-only ``dev-commitment`` RPC),
pays B again so that commitment is revoked, then publishes it as a cheater would.

1. B's running node notices the revoked commitment in a block and broadcasts the justice tx on
   its own: B's wallet receives everything on that commitment minus the sweep fees, and A's
   delayed to_local output is gone.
2. With B's node stopped, ``lncli penalty`` explains A's commitments from B's datadir alone (the
   latest one not revoked, the old one revoked, with its secret and each output's claims) and
   builds the same kind of justice tx (by hex and by txid, ``--broadcast``), which the chain
   accepts; it explains a tx that spends no channel, and refuses to broadcast for a commitment
   that is not revoked, a tx that does not spend the named channel, an unknown channel.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lncli.bitcoin.tx import Transaction
from lncli.chain.embedded import EmbeddedChain
from lncli.rpc.client import RpcClient
from tests.e2e.test_channels import channel, nodes, pay, settled, wait  # noqa: F401 - fixtures

CAPACITY = 400_000
PUSH_SAT = 20_000


@pytest.fixture
def chain(env):  # noqa: F811 - the fixture imported above
    c = EmbeddedChain(Path(env["LNCLI_CHAINDIR"]) / "regtest", network="regtest")  # as default_chaindir()
    yield c
    c.close()


def dev_commitment(nodes, name, cid):  # noqa: F811
    with RpcClient(nodes.dir(name) / "regtest", timeout=10) as c:
        return c.call("dev-commitment", channel=cid)


def breach_setup(nodes):  # noqa: F811
    """A and B with a channel; A pays B twice; returns (channel_id, A's commitment between the two
    payments (revoked by the second), A's latest commitment (not revoked))."""
    for name in "ab":
        nodes.start(name)
    nodes("a", "fund", "0.01btc")
    nodes("a", "connect", nodes.uri("b"), "--persist")
    cid = nodes.json("a", "open", nodes.id["b"], str(CAPACITY), "--push", f"{PUSH_SAT}sat", "--no-wait")["channel_id"]
    nodes("a", "mine", "2")
    for x, y in (("a", "b"), ("b", "a")):
        wait(lambda: (c := channel(nodes, x, y)) and c["active"], what=f"{x} NORMAL")
    pay(nodes, "a", "b", "5000sat")
    settled(nodes, "a", "b"), settled(nodes, "b", "a")
    old = dev_commitment(nodes, "a", cid)
    pay(nodes, "a", "b", "7000sat")
    settled(nodes, "a", "b"), settled(nodes, "b", "a")
    latest = dev_commitment(nodes, "a", cid)
    assert latest["commitment_number"] > old["commitment_number"]
    assert old["channel_id"] == cid
    return cid, old, latest


def spenders_in_mempool(chain, txid: bytes) -> list[Transaction]:
    found = []
    for t in chain.mempool_txids():
        st = chain.get_transaction(t)
        if st is not None and any(i.prevout.txid == txid for i in st.tx.inputs):
            found.append(st.tx)
    return found


def fee(chain, tx: Transaction) -> int:
    total_in = sum(chain.get_transaction(i.prevout.txid).tx.outputs[i.prevout.vout].value_sat for i in tx.inputs)
    return total_in - sum(o.value_sat for o in tx.outputs)


def test_running_node_punishes_a_revoked_commitment(nodes, chain):  # noqa: F811
    cid, old, _latest = breach_setup(nodes)
    nodes.stop("a")  # the cheater goes quiet and publishes its old state
    before = nodes.json("b", "wallet", "balance")["total_sat"]
    revoked = Transaction.from_hex(old["hex"])
    chain.broadcast(revoked)
    nodes("b", "mine", "1")
    # B's watcher answers by itself: the justice tx (and the sweep of its own to_remote)
    claims = wait(lambda: (s := spenders_in_mempool(chain, revoked.txid())) and len({i.prevout for t in s for i in t.inputs
                  if i.prevout.txid == revoked.txid()}) == len(revoked.outputs) and s, timeout=20, what="justice tx")
    swept = {i.prevout.vout for t in claims for i in t.inputs if i.prevout.txid == revoked.txid()}
    assert swept == set(range(len(revoked.outputs)))  # to_local (A's) and to_remote (B's): nothing left to A
    nodes("b", "mine", "1")
    for t in claims:
        st = chain.get_transaction(t.txid())
        assert st is not None and st.confirmations >= 1
    fees = sum(fee(chain, t) for t in claims)
    on_commitment = sum(o.value_sat for o in revoked.outputs)
    after = wait(lambda: (v := nodes.json("b", "wallet", "balance")["total_sat"]) > before and v, timeout=20, what="B's wallet")
    assert after - before == on_commitment - fees
    assert after - before > CAPACITY - 5_000  # the whole channel, minus the commitment and sweep fees
    # A's delayed output is gone: spent by B's justice tx, confirmed
    (to_local,) = [t for t in claims if len(t.inputs) == 1 and t.inputs[0].witness[1] == b"\x01"]
    assert chain.get_transaction(to_local.txid()).confirmations >= 1
    c = wait(lambda: (c := channel(nodes, "b", "a")) and c["closing_txid"] == revoked.txid_hex() and c, what="B sees the breach")
    assert c["state"] in ("FORCE_CLOSING", "CLOSED")


def test_penalty_command_offline(nodes, chain):  # noqa: F811
    cid, old, latest = breach_setup(nodes)
    funding_txid = channel(nodes, "b", "a")["funding_txid"]
    nodes.stop("a"), nodes.stop("b")  # B is offline: only its datadir is left
    revoked = Transaction.from_hex(old["hex"])
    chain.broadcast(revoked)
    nodes("a", "mine", "1")
    # explained, exit 0, no justice tx: A's latest commitment (not revoked), the funding tx (no channel of B's)
    n = nodes.json("b", "penalty", latest["hex"])
    assert (n["kind"], n["owner"], n["revoked"], n["justice"], n["channel_id"]) == ("commitment", "remote", False, None, cid)
    assert n["commitment_number"] == latest["commitment_number"] and n["per_commitment_secret"] is None
    assert {o["type"] for o in n["outputs"]} == {"to_local", "to_remote"}
    p = nodes("b", "penalty", latest["hex"], "--broadcast", check=False)
    assert p.returncode == 1 and "this commitment has not been revoked: nothing to punish" in p.stderr
    funding_hex = chain.get_transaction(bytes.fromhex(funding_txid)[::-1]).tx.to_hex()
    f = nodes.json("b", "penalty", funding_hex)
    assert not f["spends_channel"] and f["kind"] == "unknown" and f["justice"] is None
    # refusals: a named channel the tx does not spend, an unknown channel
    p = nodes("b", "penalty", funding_hex, "--channel", cid, check=False)
    assert p.returncode == 1 and "does not spend this channel's funding output" in p.stderr
    p = nodes("b", "penalty", old["hex"], "--channel", os.urandom(32).hex(), check=False)
    assert p.returncode == 1 and "no channel with channel_id" in p.stderr
    # the revoked one, by hex, its channel found by its funding outpoint: printed, not broadcast
    j = nodes.json("b", "penalty", old["hex"])
    assert j["txid"] == revoked.txid_hex() and j["commitment_number"] == old["commitment_number"]
    assert (j["kind"], j["owner"], j["revoked"], j["channel_id"]) == ("commitment", "remote", True, cid)
    assert len(j["per_commitment_secret"]) == 64 and not j["broadcast"]
    by_type = {o["type"]: o for o in j["outputs"]}
    assert set(by_type) == {"to_local", "to_remote"}
    assert by_type["to_local"]["claim"][0] == {"who": "us", "how": "with the revocation key (justice)", "when": "now"}
    assert by_type["to_local"]["claim"][1]["who"] == "them" and "to_self_delay" in by_type["to_local"]["claim"][1]["when"]
    assert by_type["to_remote"]["claim"] == [{"who": "us", "how": "with the payment key (to_remote)", "when": "now"}]
    assert by_type["to_remote"]["amount_sat"] > PUSH_SAT
    js = j["justice"]
    assert [o["kind"] for o in js["swept"]] == ["to_local"]
    assert js["fee_sat"] > 0 and js["swept_sat"] - js["fee_sat"] == js["amount_sat"] and js["destination"].startswith("bcrt1")
    to_local_value = js["swept"][0]["value_sat"]
    assert to_local_value == by_type["to_local"]["amount_sat"] > CAPACITY - PUSH_SAT - 30_000
    assert chain.get_transaction(bytes.fromhex(js["txid"])[::-1]) is None
    # -H: the readable breakdown
    h = nodes("b", "-H", "penalty", old["hex"]).stdout
    assert "revoked commitment" in h and "justice transaction" in h and js["txid"] in h
    # the old form (CHANNEL TX), by txid, fetched from the chain, at 2 sat/vB, broadcast
    before = nodes.json("b", "wallet", "balance")["total_sat"]
    k = nodes.json("b", "penalty", cid, revoked.txid_hex(), "--feerate", "2", "--broadcast")
    kj = k["justice"]
    assert k["broadcast"] and kj["feerate_per_kw"] == 500 and kj["swept"] == js["swept"]
    assert 1.95 < kj["feerate"] < 2.05 and kj["fee_sat"] < js["fee_sat"]  # effective sat/vB (actual signature sizes)
    nodes("b", "mine", "1")
    st = chain.get_transaction(bytes.fromhex(kj["txid"])[::-1])
    assert st is not None and st.confirmations == 1
    assert Transaction.from_hex(kj["hex"]).inputs[0].prevout.txid == revoked.txid()
    after = wait(lambda: (v := nodes.json("b", "wallet", "balance")["total_sat"]) > before and v, what="B's wallet")
    assert after - before == kj["amount_sat"]  # to the wallet address the monitor holds
    # the cheater's output is gone: punishing again is refused by the chain
    p = nodes("b", "penalty", old["hex"], "--broadcast", check=False)
    assert p.returncode == 1 and "rejected" in p.stderr
