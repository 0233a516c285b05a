"""How each HTLC we offered ended on chain (lncli/monitor/htlc_resolution.py): claimed with its
preimage by the counterparty (their HTLC-success tx on their commitment; their preimage spend on
ours), or timed out by us (our HTLC-timeout tx; our timeout spend on their commitment) and
reported only once deep enough; HTLCs without an output; reported again after a reload."""

from __future__ import annotations

import pytest

from lncli.channel import events as ev
from lncli.monitor import monitor as mon
from tests.channel.harness import ONION, A, B, phash, preimage
from tests.monitor.chainpair import ChainPair, Runner, new_chain, of_type


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


def pair(chain, b_knows_preimage: bool):
    """A offers HTLC 0 (40k sat, preimage 1, expiry tip+30) and HTLC 1 (dust: 1 sat, preimage 3,
    expiry tip+30); B offers HTLC 0 (30k sat, preimage 2, tip+40). Neither fulfill is delivered."""
    p = ChainPair(chain, push_msat=300_000_000)
    tip = chain.tip()[0]
    p.call(A, "add_htlc", 40_000_000, phash(1), tip + 30, ONION)
    p.call(A, "add_htlc", 1_000, phash(3), tip + 30, ONION)
    p.call(B, "add_htlc", 30_000_000, phash(2), tip + 40, ONION)
    p.flush()
    if b_knows_preimage:
        p.call(B, "fulfill_htlc", 0, preimage(1))
    return p, tip


def reports(r, side):
    return [(h, a) for h, a in r.actions[side] if isinstance(a, mon.OfferedHtlcResolved)]


def test_their_htlc_success_tx_reports_the_preimage_at_once(chain):
    p, _tip = pair(chain, b_knows_preimage=True)
    r = Runner(chain, p, sides=(A, B))
    out = p.call(B, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    r.sync_updates()
    r.mine()  # B's monitor asks for its commitment
    r.mine()  # which confirms
    conf = r.height
    assert "our HTLC-success tx of HTLC 0" in r.accepted[B]
    r.mine()  # B's HTLC-success tx: A learns the preimage from its witness, at one confirmation
    got = {a.htlc_id: (h, a) for h, a in reports(r, A)}
    h, a = got[0]
    assert h == conf + 1 and a.payment_hash == phash(1) and a.payment_preimage == preimage(1) and not a.timed_out
    assert a.txid != bc.tx.txid()  # the HTLC-success tx, not the commitment
    # the dust HTLC (no output on B's commitment): failed once the commitment is 6 deep
    assert 1 not in got
    r.mine(3)
    assert 1 not in {a.htlc_id for _, a in reports(r, A)}
    r.mine(1)
    (dust,) = [(h, a) for h, a in reports(r, A) if a.htlc_id == 1]
    assert dust[0] == conf + 5 and dust[1].timed_out and dust[1].txid == bc.tx.txid()
    r.mine_until_resolved(A)
    assert sorted(a.htlc_id for _, a in reports(r, A)) == [0, 1]  # each reported once



def test_their_preimage_spend_on_our_commitment(chain):
    p, _tip = pair(chain, b_knows_preimage=True)
    r = Runner(chain, p, sides=(A, B))
    out = p.call(A, "force_close")
    (ac,) = of_type(out.events, ev.BroadcastCommitment)
    r.sync_updates()
    r.mine()  # the monitor asks for A's commitment
    r.mine()  # A's commitment confirms; B claims HTLC 0 straight from it with the preimage
    assert "claim HTLC 0 they offered, with its preimage" in r.accepted[B]
    r.mine()
    (h, a), = [(h, a) for h, a in reports(r, A) if a.htlc_id == 0]
    assert a.payment_preimage == preimage(1) and h == r.height
    spender = chain.get_transaction(a.txid).tx
    assert spender.inputs[0].prevout.txid == ac.tx.txid()
    r.mine_until_resolved(A)
    assert not any("HTLC-timeout tx of HTLC 0" in k for k in r.accepted[A])


@pytest.mark.parametrize("closer", [A, B])
def test_timeout_reported_once_deep_enough(chain, closer):
    """A's HTLC 0 times out on chain: our HTLC-timeout tx (A closes) or our timeout spend of the
    output on B's commitment (B closes, B's monitor not running): reported 6 confirmations
    after that tx, not before, and again by a monitor reloaded from its record."""
    p, tip = pair(chain, b_knows_preimage=False)
    r = Runner(chain, p, sides=(A,))
    out = p.call(closer, "force_close")
    if closer == B:
        chain.broadcast(of_type(out.events, ev.BroadcastCommitment)[0].tx)
    r.sync_updates()
    while r.height < tip + 30:
        r.mine()
    assert not [a for _, a in reports(r, A) if a.htlc_id == 0]
    r.mine()  # the timeout claim confirms at tip + 31
    name = (f"our HTLC-timeout tx of HTLC 0 (cltv_expiry {tip + 30})" if closer == A
            else "time out our HTLC 0 on their commitment")
    assert r.accepted[A][name] == tip + 30
    r.mine(4)
    assert not [a for _, a in reports(r, A) if a.htlc_id == 0]
    # a monitor reloaded from its record now (a restart) has told nothing yet
    reloaded = mon.ChannelMonitor.from_record(r.monitors[A].to_record(), p.ch[A].secrets)
    r.mine()
    (h, a), = [(h, a) for h, a in reports(r, A) if a.htlc_id == 0]
    assert h == tip + 36 and a.timed_out and a.payment_hash == phash(1)
    assert chain.get_transaction(a.txid).confirmations == 6
    again = [x for x in reloaded.block_connected(chain.block_at(r.height), r.height) if isinstance(x, mon.OfferedHtlcResolved)]
    assert {x.htlc_id for x in again} == {0, 1}  # the dust HTLC 1 was told before; told again after the reload
    r.mine(12)  # (B's HTLC stays unresolved: A has no preimage and B is not running to time it out)
    assert sorted(a.htlc_id for _, a in reports(r, A)) == [0, 1]


def test_revoked_commitment_htlc_taken_by_justice(chain):
    """B publishes a revoked commitment on which A's HTLC 0 was still pending (it was fulfilled
    off chain since): A's justice tx takes the output, and A reports it without a preimage once
    deep enough (a forward already settled with the preimage ignores it)."""
    from tests.monitor.test_monitor import revoked_pair

    p, _tip, old, _ = revoked_pair(chain)
    r = Runner(chain, p, sides=(A,))
    chain.broadcast(old)
    r.mine()
    conf = r.height
    assert any(k.startswith("justice tx: revoked commitment") for k in r.accepted[A])
    r.mine(5)  # the justice tx confirmed at conf + 1: 5 confirmations
    assert reports(r, A) == []
    r.mine()
    ((h, a),) = reports(r, A)
    assert a.htlc_id == 0 and a.timed_out and h == conf + 6
    assert chain.get_transaction(a.txid).tx.inputs[0].prevout.txid == old.txid()
