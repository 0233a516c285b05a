"""ChannelMonitor against real channels (tests/channel/harness.py) and the embedded chain,
which validates scripts, CSV/CLTV and BIP 68 like bitcoind."""

from __future__ import annotations

import pytest

from lncli.bitcoin.tx import OutPoint
from lncli.chain.interface import TxRejected
from lncli.channel import events as ev
from lncli.monitor import monitor as mon
from lncli.monitor import record as monrec
from tests.channel.harness import ONION, A, B, phash, preimage
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
    assert waits[f"to_local of our commitment: to_self_delay of {DELAY} blocks"] == conf_height + DELAY - 1
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
    assert r.accepted[A][f"our HTLC-timeout tx of HTLC 0 (cltv_expiry {tip + 30})"] == tip + 30
    # every output of A's commitment (to_local, both HTLCs) ended at A's destination
    spends = spends_of(chain, bc.tx, conf_height)
    assert len(spends) == 3  # to_remote (B's) stays unspent here: B's monitor is not running
    got = received_at(chain, DEST[A], conf_height)
    to_local_and_htlcs = sum(bc.tx.outputs[v].value_sat for v in spends)
    # fees: two HTLC txs at 2500 sat/kw (~3.4k sat) and three small sweeps
    assert to_local_and_htlcs - 8000 < got < to_local_and_htlcs
    (res,) = of_type([a for _, a in r.actions[A]], mon.Resolved)
    assert res.kind == mon.HOLDER_COMMITMENT and res.height == end


# ------------------------------------------------------------------ (b) their commitment


def all_spent_to(chain, tx, vouts, script, from_height) -> None:
    spends = spends_of(chain, tx, from_height)
    for v in vouts:
        assert v in spends, f"output {v} of {tx.txid_hex()} was not swept"
        assert [o.script_pubkey for o in spends[v].outputs] == [script]


@pytest.mark.parametrize("anchors", [False, True])
def test_counterparty_commitment_to_remote_and_htlcs(chain, anchors):
    p, tip = htlc_pair(chain, anchors=anchors)
    # without anchors B's monitor runs too (its zero-fee anchor HTLC txs would need fee bumping)
    r = Runner(chain, p, sides=(A,) if anchors else (A, B))
    out = p.call(B, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    chain.broadcast(bc.tx)
    r.sync_updates()
    r.mine()
    conf = r.height
    (spent,) = of_type([a for _, a in r.actions[A]], mon.FundingSpent)
    assert spent.kind == mon.COUNTERPARTY_COMMITMENT
    # to_remote and the HTLC B offered (A has the preimage) are claimed at once
    assert r.accepted[A]["sweep our to_remote"] == conf
    assert r.accepted[A]["claim HTLC 0 they offered, with its preimage"] == conf
    m = r.monitors[A]
    (early,) = [a.tx for a in of_type(m.plan(tip + 30), mon.Broadcast) if "time out our HTLC 0" in a.reason]
    with pytest.raises(TxRejected, match="non-final"):
        chain.broadcast(early)
    r.mine_until_resolved(A)
    assert r.accepted[A]["time out our HTLC 0 on their commitment"] == tip + 30
    c = p.ch[A]
    ours = [v for v, o in enumerate(bc.tx.outputs) if o.value_sat in (30_000, 40_000) or v == _to_remote_vout(bc.tx, c, anchors)]
    assert len(ours) == 3
    all_spent_to(chain, bc.tx, ours, DEST[A], conf)
    if not anchors:
        # B saw A take its offered HTLC with the preimage, and swept its own to_local
        r.mine_until_resolved(B)
        learned = of_type([a for _, a in r.actions[B]], mon.PreimageLearned)
        assert [(x.payment_hash, x.payment_preimage) for x in learned] == [(phash(2), preimage(2))]
        assert r.accepted[B]["sweep to_local of our commitment"] == conf + DELAY - 1
        assert not any("HTLC-timeout" in k for k in r.accepted[B])


def _to_remote_vout(tx, channel, anchors):
    from lncli.bitcoin.script import p2wsh_script
    from lncli.proto.scripts import to_remote_anchor_script, to_remote_script_pubkey

    pub = channel.secrets.payment_basepoint
    spk = p2wsh_script(to_remote_anchor_script(pub)) if anchors else to_remote_script_pubkey(pub, False)
    (v,) = [v for v, o in enumerate(tx.outputs) if o.script_pubkey == spk]
    return v


# ------------------------------------------------------------------ (c) revoked commitment


def revoked_pair(chain, anchors=False):
    """B's commitment with both HTLCs, then both HTLCs settled: that commitment is revoked."""
    p, tip = htlc_pair(chain, anchors=anchors)
    old_tx, old_htlc_txs = p.ch[B].latest_holder_commitment()
    p.call(B, "fulfill_htlc", 0, preimage(1))
    p.flush()
    p.check_agree()
    assert not p.ch[B].offered and not p.ch[B].received
    return p, tip, old_tx, old_htlc_txs


@pytest.mark.parametrize("anchors", [False, True])
def test_revoked_commitment_justice(chain, anchors):
    p, tip, old, _ = revoked_pair(chain, anchors)
    r = Runner(chain, p, sides=(A,))
    chain.broadcast(old)  # B cheats
    r.mine()
    conf = r.height
    (spent,) = of_type([a for _, a in r.actions[A]], mon.FundingSpent)
    assert spent.kind == mon.REVOKED_COMMITMENT
    (justice_reason,) = [k for k in r.accepted[A] if k.startswith("justice tx: revoked commitment")]
    assert r.accepted[A][justice_reason] == conf and "(3 outputs)" in justice_reason
    assert r.accepted[A]["sweep our to_remote"] == conf
    r.mine_until_resolved(A)
    # every output B had (to_local, both HTLCs) and our to_remote went to A's destination
    anchor_vouts = {v for v, o in enumerate(old.outputs) if o.value_sat == 330} if anchors else set()
    outputs = [v for v in range(len(old.outputs)) if v not in anchor_vouts]
    assert len(outputs) == 4
    all_spent_to(chain, old, outputs, DEST[A], conf)
    got = received_at(chain, DEST[A], conf)
    total = sum(old.outputs[v].value_sat for v in outputs)
    assert total - 6000 < got < total  # fees at 2500 sat/kw


def test_revoked_commitment_second_stage_justice(chain):
    p, tip, old, old_htlc_txs = revoked_pair(chain)
    r = Runner(chain, p, sides=(A,))
    r.muted.add(A)  # A is offline while B cheats
    chain.broadcast(old)
    r.mine()
    (timeout,) = [h.tx for h in old_htlc_txs if h.offered]  # B's HTLC-timeout, valid at tip + 40
    r.mine(tip + 40 - r.height)
    chain.broadcast(timeout)
    r.mine()
    second = r.height
    r.muted.clear()
    r.mine()  # A is back: justice for what is left of the commitment and for the HTLC tx output
    acc = r.accepted[A]
    (rest,) = [k for k in acc if k.startswith("justice tx: revoked commitment")]
    assert "(2 outputs)" in rest
    assert acc["justice tx: their second-stage HTLC tx"] == second + 1 < second + DELAY - 1
    r.mine_until_resolved(A)
    all_spent_to(chain, timeout, [0], DEST[A], second)


def test_penalty_helper_builds_the_same_justice(chain):
    from lncli.monitor.watcher import penalty_tx

    p, tip, old, _ = revoked_pair(chain)
    r = Runner(chain, p, sides=(A,))
    tx = penalty_tx(old.to_hex(), r.monitors[A])
    assert {i.prevout.txid for i in tx.inputs} == {old.txid()} and len(tx.inputs) == 3
    chain.broadcast(old)
    chain.broadcast(tx)
    chain.mine(1)
    assert chain.get_transaction(tx.txid()).confirmations == 1
    with pytest.raises(Exception, match="not a revoked commitment"):
        penalty_tx(p.ch[B].latest_holder_commitment()[0].to_hex(), r.monitors[A])


# ------------------------------------------------------------------ (d) cooperative close


def test_cooperative_close_is_resolved(chain):
    p = ChainPair(chain, push_msat=300_000_000)
    r = Runner(chain, p)
    p.ch[A].local_shutdown_script = DEST[A]
    p.ch[B].local_shutdown_script = DEST[B]
    p.call(A, "shutdown", feerate_per_kw=1000)
    p.flush()
    (closing,) = of_type(p.events[A], ev.BroadcastClosing)
    chain.broadcast(closing.tx)
    r.mine()
    conf = r.height
    for side in (A, B):
        (spent,) = of_type([a for _, a in r.actions[side]], mon.FundingSpent)
        assert spent.kind == mon.COOPERATIVE_CLOSE and spent.height == conf
        assert not r.accepted[side]
        assert r.mine_until_resolved(side) == conf + mon.ANTI_REORG_DELAY - 1


# ------------------------------------------------------------------ updates, records, reorgs


def fresh_monitor(p, side=A) -> mon.ChannelMonitor:
    return mon.ChannelMonitor(p.ch[side].channel_id, p.ch[side].secrets, destination_script=DEST[side])


def test_apply_refuses_out_of_order_and_bad_updates(chain):
    p, _ = htlc_pair(chain)
    ups = p.monitor[A]
    m = fresh_monitor(p)
    with pytest.raises(mon.MonitorUpdateError, match="before ChannelSetup"):
        m.apply(ups[1])
    m.apply(ups[0])
    with pytest.raises(mon.MonitorUpdateError, match="not after"):
        m.apply(ups[0])
    for u in ups[1:]:
        m.apply(u)
    before = m.to_record()
    with pytest.raises(mon.MonitorUpdateError, match="not after"):
        m.apply(ups[-2])
    n = m.latest_update_id
    with pytest.raises(mon.MonitorUpdateError, match="expected commitment"):
        m.apply(ev.CommitmentSecret(n + 1, m.revocations.next_commitment_number + 1, bytes(32)))
    with pytest.raises(mon.MonitorUpdateError, match="inconsistent|does not match"):
        m.apply(ev.CommitmentSecret(n + 1, m.revocations.next_commitment_number, b"\x01" * 32))
    with pytest.raises(mon.MonitorUpdateError, match="does not hash"):
        m.apply(ev.PaymentPreimage(n + 1, phash(1), preimage(2)))
    with pytest.raises(mon.MonitorUpdateError, match="already set up"):
        m.apply(ev.ChannelSetup(**{**ups[0].__dict__, "update_id": n + 1}))
    assert m.to_record() == before
    other = mon.ChannelMonitor(bytes(32), p.ch[A].secrets)
    with pytest.raises(mon.MonitorUpdateError, match="another channel"):
        other.apply(ups[0])
    wrong_keys = mon.ChannelMonitor(p.ch[A].channel_id, p.ch[B].secrets)
    with pytest.raises(mon.MonitorUpdateError, match="secrets"):
        wrong_keys.apply(ups[0])
    # gaps are fine, only the order matters
    m.apply(ev.PaymentPreimage(n + 10, phash(1), preimage(1)))
    assert m.latest_update_id == n + 10


def test_update_json_round_trip(chain):
    import json

    p = revoked_pair(chain)[0]
    p.call(A, "force_close")
    for side in (A, B):
        kinds = set()
        for u in p.monitor[side]:
            back = monrec.update_from_json(json.loads(json.dumps(monrec.update_to_json(u))))
            assert back == u
            kinds.add(type(u))
        assert len(kinds) >= 5


def test_record_round_trip_mid_close(chain):
    import json

    p, tip, old, _ = revoked_pair(chain)
    r = Runner(chain, p, sides=(A,))
    r.muted.add(A)
    chain.broadcast(old)
    r.mine(3)
    m = r.monitors[A]
    back = mon.ChannelMonitor.from_record(json.loads(json.dumps(m.to_record())), p.ch[A].secrets)
    assert back.to_record() == m.to_record()
    assert [(type(a), getattr(a, "reason", None)) for a in back.plan()] == [
        (type(a), getattr(a, "reason", None)) for a in m.plan()
    ]
    assert [a.tx.txid() for a in of_type(back.plan(), mon.Broadcast)] == [a.tx.txid() for a in of_type(m.plan(), mon.Broadcast)]


def test_reorg_undoes_the_funding_spend(chain):
    p, tip = htlc_pair(chain)
    r = Runner(chain, p, sides=(A,))
    p.call(A, "force_close")
    r.sync_updates()
    r.mine(2)
    m = r.monitors[A]
    conf = r.height
    assert m.funding_spend is not None
    block = chain.block_at(conf)
    # the same block again (another subscriber caught up): nothing happens
    assert m.block_connected(block, conf) == [] and m.funding_spend is not None
    m.block_disconnected(conf)
    assert m.funding_spend is None and m.best_height == conf - 1
    assert [a.reason for a in m.plan()] == ["our latest commitment (force close)"]
    # a different block at that height (same txs here, but another hash) redoes it
    from dataclasses import replace

    again = m.block_connected(replace(block, hash=bytes(32)), conf)
    assert of_type(again, mon.FundingSpent)
    # a reorg below the resolution height un-resolves
    r.mine_until_resolved(A)
    h = m.resolved_height
    m.block_disconnected(h)
    assert not m.is_resolved
    assert m.block_connected(chain.block_at(h), h)[-1] == mon.Resolved(mon.HOLDER_COMMITMENT, m.funding_spend.txid, h)


def test_previous_unrevoked_counterparty_commitment(chain):
    p, tip = htlc_pair(chain)
    r = Runner(chain, p, sides=(A,))
    p.call(A, "add_htlc", 20_000_000, phash(3), tip + 50, ONION)
    p.call(A, "send_commitment")  # A signs B's next commitment; B never gets it
    r.sync_updates()
    m = r.monitors[A]
    assert max(m.counterparty) == p.ch[B].local_ctn + 1
    out = p.call(B, "force_close")  # B's latest is the one before: not revoked
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    chain.broadcast(bc.tx)
    r.mine()
    conf = r.height
    (spent,) = of_type([a for _, a in r.actions[A]], mon.FundingSpent)
    assert spent.kind == mon.COUNTERPARTY_COMMITMENT
    assert r.accepted[A]["sweep our to_remote"] == conf
    assert r.accepted[A]["claim HTLC 0 they offered, with its preimage"] == conf
    r.mine_until_resolved(A)
    assert r.accepted[A]["time out our HTLC 0 on their commitment"] == tip + 30
    assert not any("HTLC 1" in k for k in r.accepted[A])  # HTLC 1 never made it to B's commitment
