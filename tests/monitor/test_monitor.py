"""ChannelMonitor against real channels (tests/channel/harness.py) and the embedded chain,
which validates scripts, CSV/CLTV and BIP 68 like bitcoind."""

from __future__ import annotations

import pytest

from lncli.bitcoin.tx import OutPoint
from lncli.chain.interface import TxRejected
from lncli.channel import events as ev
from lncli.monitor import monitor as mon
from tests.channel.harness import A, B, ONION, phash, preimage, script_for
from tests.monitor.chainpair import DELAY, DEST, ChainPair, Runner, new_chain, of_type, received_at


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


def htlc_pair(chain, **kw) -> tuple[ChainPair, int]:
    """A pays B 300k sat at open; A offers HTLC 0 (40k sat, preimage 1) expiring at tip+30,
    B offers HTLC 0 (30k sat, preimage 2) expiring at tip+40; A knows preimage 2."""
    p = ChainPair(chain, push_msat=300_000_000, **kw)
    tip = chain.tip()[0]
    p.call(A, "add_htlc", 40_000_000, phash(1), tip + 30, ONION)
    p.call(B, "add_htlc", 30_000_000, phash(2), tip + 40, ONION)
    p.flush()
    p.call(A, "fulfill_htlc", 0, preimage(2))  # not delivered: the HTLC stays on both commitments
    return p, tip


def spends_of(chain, tx, from_height):
    """{vout: spending tx} for tx's outputs, scanning from ``from_height``."""
    from lncli.chain.scan import SpendEvent, scan_blocks

    ops = [OutPoint(tx.txid(), v) for v in range(len(tx.outputs))]
    return {e.outpoint.vout: e.tx for e in scan_blocks(chain, from_height, chain.tip()[0], (), ops) if isinstance(e, SpendEvent)}


# ------------------------------------------------------------------ (a) our commitment


def test_holder_force_close_sweeps_to_local_and_htlcs(chain):
    p, tip = htlc_pair(chain)
    r = Runner(chain, p, sides=(A,))
    out = p.call(A, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    r.sync_updates()
    r.mine()  # the monitor asks for the commitment; the runner broadcasts it
    assert "our latest commitment (force close)" in r.accepted[A]
    r.mine()
    m = r.monitors[A]
    conf_height = r.height
    (spent,) = of_type([a for _, a in r.actions[A]], mon.FundingSpent)
    assert spent.kind == mon.HOLDER_COMMITMENT and spent.txid == bc.tx.txid() and spent.height == conf_height
    # HTLC-success right away (A knows preimage 2); to_local and HTLC-timeout wait
    assert any("HTLC-success" in k for k in r.accepted[A])
    waits = {a.reason: a.height for h, a in r.actions[A] if h == conf_height and isinstance(a, mon.WaitUntil)}
    assert waits["to_local of our commitment: to_self_delay of %d blocks" % DELAY] == conf_height + DELAY - 1
    assert waits["our HTLC-timeout tx of HTLC 0: cltv_expiry"] == tip + 30
    # the sweep of to_local one block early is non-BIP68-final
    sweep = of_type(m.plan(conf_height + DELAY - 1), mon.Broadcast)
    (early,) = [a.tx for a in sweep if a.reason == "sweep to_local of our commitment"]
    with pytest.raises(TxRejected, match="non-BIP68-final"):
        chain.broadcast(early)
    # the HTLC-timeout before its cltv_expiry is non-final
    (timeout,) = [h.tx for h in bc.htlc_txs if h.offered]
    with pytest.raises(TxRejected, match="non-final"):
        chain.broadcast(timeout)
    end = r.mine_until_resolved(A)
    assert r.accepted[A]["sweep to_local of our commitment"] == conf_height + DELAY - 1
    assert r.accepted[A]["our HTLC-timeout tx of HTLC 0 (cltv_expiry %d)" % (tip + 30)] == tip + 30
    # every output of A's commitment (to_local, both HTLCs) ended at A's destination
    spends = spends_of(chain, bc.tx, conf_height)
    assert len(spends) == 3  # to_remote (B's) stays unspent here: B's monitor is not running
    got = received_at(chain, DEST[A], conf_height)
    to_local_and_htlcs = sum(bc.tx.outputs[v].value_sat for v in spends)
    # fees: two HTLC txs at 2500 sat/kw (~3.4k sat) and three small sweeps
    assert to_local_and_htlcs - 8000 < got < to_local_and_htlcs
    (res,) = of_type([a for _, a in r.actions[A]], mon.Resolved)
    assert res.kind == mon.HOLDER_COMMITMENT and res.height == end
