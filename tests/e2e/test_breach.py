"""End to end: a breach. A keeps one of its commitments (the regtest-only ``dev-commitment`` RPC),
pays B again so that commitment is revoked, then publishes it as a cheater would.

1. B's running node notices the revoked commitment in a block and broadcasts the justice tx on
   its own: B's wallet receives everything on that commitment minus the sweep fees, and A's
   delayed to_local output is gone.
2. With B's node stopped, ``lncli penalty`` builds the same kind of justice tx from B's datadir
   alone (by hex and by txid, ``--broadcast``), and the chain accepts it; and it refuses a
   commitment that is not revoked, a tx that does not spend the channel, an unknown channel.
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
    # refusals: not revoked, not this channel's, unknown channel
    p = nodes("b", "penalty", cid, latest["hex"], check=False)
    assert p.returncode == 1 and "this commitment has not been revoked: nothing to punish" in p.stderr
    funding_hex = chain.get_transaction(bytes.fromhex(funding_txid)[::-1]).tx.to_hex()
    p = nodes("b", "penalty", cid, funding_hex, check=False)
    assert p.returncode == 1 and "does not spend this channel's funding output" in p.stderr
    p = nodes("b", "penalty", os.urandom(32).hex(), old["hex"], check=False)
    assert p.returncode == 1 and "no channel with channel_id" in p.stderr
    # by hex: printed, not broadcast
    j = nodes.json("b", "penalty", cid, old["hex"])
    assert j["revoked_txid"] == revoked.txid_hex() and j["commitment_number"] == old["commitment_number"]
    assert [o["kind"] for o in j["swept"]] == ["to_local"] and not j["broadcast"]
    assert j["fee_sat"] > 0 and j["swept_sat"] - j["fee_sat"] == j["amount_sat"] and j["destination"].startswith("bcrt1")
    assert j["our_to_remote"]["value_sat"] > PUSH_SAT
    to_local_value = j["swept"][0]["value_sat"]
    assert to_local_value > CAPACITY - PUSH_SAT - 30_000
    assert chain.get_transaction(bytes.fromhex(j["txid"])[::-1]) is None
    # by txid, fetched from the chain, at 2 sat/vB, broadcast
    before = nodes.json("b", "wallet", "balance")["total_sat"]
    k = nodes.json("b", "penalty", cid, revoked.txid_hex(), "--feerate", "2", "--broadcast")
    assert k["broadcast"] and k["feerate_per_kw"] == 500 and k["swept"] == j["swept"]
    assert 1.95 < k["feerate"] < 2.05 and k["fee_sat"] < j["fee_sat"]  # effective sat/vB (actual signature sizes)
    nodes("b", "mine", "1")
    st = chain.get_transaction(bytes.fromhex(k["txid"])[::-1])
    assert st is not None and st.confirmations == 1
    assert Transaction.from_hex(k["hex"]).inputs[0].prevout.txid == revoked.txid()
    after = wait(lambda: (v := nodes.json("b", "wallet", "balance")["total_sat"]) > before and v, what="B's wallet")
    assert after - before == k["amount_sat"]  # to the wallet address the monitor holds
    # the cheater's output is gone: punishing again is refused by the chain
    p = nodes("b", "penalty", cid, old["hex"], "--broadcast", check=False)
    assert p.returncode == 1 and "rejected" in p.stderr
