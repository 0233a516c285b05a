"""Our holder commitment is signed lazily: the channel hands the monitor the unsigned commitment
and HTLC txs with the counterparty's signatures, and the monitor signs them when it needs them.

The reference for every signed tx is the channel's eager signing
(``Channel.latest_holder_commitment``, what the monitor updates carried before): the monitor's
txs must be byte-identical. Updates and snapshots written in the old form (signed txs, no
``remote_signature``) must still load and work."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lncli.channel import events as ev
from lncli.channel.channel import ProtocolError
from lncli.errors import RefusedError
from lncli.monitor import monitor as mon
from lncli.monitor import record as monrec
from lncli.monitor.store import MonitorStore
from lncli.proto.wire import decode_message
from tests.channel.harness import ONION, OTHER, A, B, Pair, phash, preimage
from tests.monitor.chainpair import DEST, ChainPair, Runner, new_chain, of_type


def _eager(channel) -> ev.LatestHolderCommitment:
    """The update as the channel wrote it before lazy signing (update_id, number filled later)."""
    tx, htlc_txs = channel.latest_holder_commitment()
    return ev.LatestHolderCommitment(0, channel.local_ctn, tx, htlc_txs)


def _old_form(u: ev.LatestHolderCommitment, eager: ev.LatestHolderCommitment) -> ev.LatestHolderCommitment:
    """``u`` as the earlier code wrote it: JSON without ``remote_signature``, signed txs; loaded back."""
    d = monrec.update_to_json(dataclasses.replace(eager, update_id=u.update_id))
    del d["remote_signature"]
    assert all(h["local_signature"] is not None for h in d["htlc_txs"])
    back = monrec.update_from_json(json.loads(json.dumps(d)))
    assert back.remote_signature is None
    return back


def assert_same_as_eager(m: mon.ChannelMonitor, u: ev.LatestHolderCommitment, eager: ev.LatestHolderCommitment) -> set:
    """The monitor's signed ``u`` equals the eager txs byte for byte; returns the kinds of HTLC
    txs seen."""
    # what the channel hands over: unsigned, same txids, the counterparty's signatures
    assert u.remote_signature is not None and not any(i.witness for i in u.tx.inputs)
    assert u.tx.txid() == eager.tx.txid() and u.commitment_number == eager.commitment_number
    assert len(u.htlc_txs) == len(eager.htlc_txs)
    for h in u.htlc_txs:
        assert h.local_signature is None and not h.complete and not h.tx.inputs[0].witness
    signed = m.signed_holder(u)
    assert signed.tx.to_hex() == eager.tx.to_hex()
    kinds = set()
    assert signed.remote_signature is None
    assert m.signed_holder(u) is signed  # signed once
    for s, e in zip(signed.htlc_txs, eager.htlc_txs):
        assert (s.htlc_id, s.offered, s.payment_hash, s.cltv_expiry) == (e.htlc_id, e.offered, e.payment_hash, e.cltv_expiry)
        assert (s.witness_script, s.remote_signature, s.local_signature) == (e.witness_script, e.remote_signature, e.local_signature)
        kinds.add(("timeout" if e.offered else "success", e.complete))
        if e.complete:  # HTLC-timeout, or HTLC-success whose preimage the channel knew
            assert m._complete_success(s).to_hex() == e.tx.to_hex()
        else:  # HTLC-success without its preimage: unsigned, as before
            assert not s.complete and s.tx.to_hex() == e.tx.to_hex()
            assert m._complete_success(s) is None
    # the same from an old-form update (the eager txs as they are) and through a snapshot
    old = _old_form(u, eager)
    assert m.signed_holder(old) is old
    back = mon.ChannelMonitor.from_record(json.loads(m.to_record_text()), m.secrets)
    assert back.signed_holder().to_json() == m.signed_holder().to_json()
    return kinds


class CheckedPair(Pair):
    """A Pair whose every LatestHolderCommitment is checked against the eager signing, on a
    monitor per side fed every update."""

    def __init__(self, **kw):
        self.monitors: dict[str, mon.ChannelMonitor] = {}
        self.checked = {A: 0, B: 0}
        self.htlcs_checked = 0
        self.kinds = set()
        super().__init__(**kw)

    def apply(self, side, out):
        out = super().apply(side, out)
        for u in out.monitor_updates:
            if isinstance(u, ev.ChannelSetup):
                self.monitors[side] = mon.ChannelMonitor(u.channel_id, self.ch[side].secrets)
            self.monitors[side].apply(u)
            if isinstance(u, ev.LatestHolderCommitment):
                self.kinds |= assert_same_as_eager(self.monitors[side], u, _eager(self.ch[side]))
                self.checked[side] += 1
                self.htlcs_checked += len(u.htlc_txs)
        return out


@pytest.mark.parametrize("anchors", [False, True])
@pytest.mark.parametrize("opener", [A, B])
def test_signed_txs_are_the_eager_ones_over_a_channel_life(anchors, opener):
    p = CheckedPair(anchors=anchors, opener=opener, push_msat=300_000_000)
    p.lock_in()
    o, a = opener, OTHER[opener]
    # HTLCs both ways, one of them dust (trimmed), several commitments in flight
    p.call(o, "add_htlc", 40_000_000, phash(1), 600, ONION)
    p.call(a, "add_htlc", 30_000_000, phash(2), 610, ONION)
    p.call(o, "add_htlc", 1_000_000, phash(3), 620, ONION)
    p.flush()
    # fulfilled but the removal not yet committed: the HTLC-success is complete (preimage known)
    p.call(a, "fulfill_htlc", 0, preimage(1))
    p.call(o, "add_htlc", 20_000_000, phash(4), 630, ONION)
    p.call(o, "send_commitment")
    p.step(a)  # the add; then a's new commitment still has HTLC 0, whose preimage a knows
    p.flush()
    p.call(o, "fulfill_htlc", 0, preimage(2))
    p.call(a, "fail_htlc", 1, b"\x00" * 32)
    p.flush()
    p.call(o, "update_fee", 3000)
    p.call(a, "add_htlc", 25_000_000, phash(5), 640, ONION)
    p.flush()
    for side in (A, B):
        p.drop(side)
    p.reconnect()
    p.flush()
    assert p.checked[A] >= 6 and p.checked[B] >= 6 and p.htlcs_checked >= 10
    assert p.kinds == {("timeout", True), ("success", True), ("success", False)}


def test_force_close_broadcasts_the_eager_commitment():
    p = CheckedPair(push_msat=300_000_000)
    p.lock_in()
    p.call(A, "add_htlc", 40_000_000, phash(1), 600, ONION)
    p.flush()
    out = p.call(A, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    m = p.monitors[A]
    (b,) = of_type(m.plan(100), mon.Broadcast)
    assert b.tx.to_hex() == bc.tx.to_hex()
    (timeout,) = m.signed_holder().htlc_txs
    assert timeout.tx.to_hex() == bc.htlc_txs[0].tx.to_hex()


# ------------------------------------------------------------------ a bad counterparty signature


def _forged(der: bytes) -> bytes:
    """Another valid DER signature (a different s): well-formed, does not verify."""
    from lncli.bitcoin.ecdsa import compact_to_der, der_to_compact

    c = bytearray(der_to_compact(der))
    c[-1] ^= 1
    return compact_to_der(bytes(c))


def test_a_bad_counterparty_signature_is_not_signed_or_broadcast():
    p = CheckedPair(push_msat=300_000_000)
    p.lock_in()
    p.call(A, "add_htlc", 40_000_000, phash(1), 600, ONION)
    p.flush()
    m = p.monitors[A]
    good = m.holder
    bad_commitment = dataclasses.replace(good, remote_signature=_forged(good.remote_signature))
    with pytest.raises(RefusedError, match="signature of our commitment"):
        m.signed_holder(bad_commitment)
    (h,) = good.htlc_txs
    bad_htlc = dataclasses.replace(good, htlc_txs=(dataclasses.replace(h, remote_signature=_forged(h.remote_signature)),))
    with pytest.raises(RefusedError, match="signature of HTLC 0"):
        m.signed_holder(bad_htlc)
    # a monitor whose latest holder update carries a bad signature broadcasts nothing invalid
    bad = mon.ChannelMonitor(m.channel_id, m.secrets)
    for u in p.monitor[A]:
        bad.apply(bad_commitment if u is good else u)
    bad.apply(ev.ChannelForceClosed(bad.latest_update_id + 1, good.commitment_number))
    assert not of_type(bad.plan(100), mon.Broadcast)


def test_the_channel_refuses_a_bad_htlc_signature():
    p = Pair()
    p.lock_in()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.step(B)
    p.call(A, "send_commitment")
    data = bytearray(p.queue[B].pop(0))
    assert int.from_bytes(data[98:100], "big") == 1  # one htlc_signature
    data[100 + 40] ^= 1
    before, n = p.ch[B].to_record(), len(p.monitor[B])
    with pytest.raises(ProtocolError, match="signature"):
        p.ch[B].handle(decode_message(bytes(data)))
    assert p.ch[B].to_record() == before and len(p.monitor[B]) == n


# ------------------------------------------------------------------ old updates and snapshots, on chain


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


class OldFormPair(ChainPair):
    """Also keeps, per side, every update as the earlier code wrote it (signed, old JSON)."""

    def apply(self, side, out):
        out = super().apply(side, out)
        old = self.__dict__.setdefault("old", {A: [], B: []})
        for u in out.monitor_updates:
            if isinstance(u, ev.LatestHolderCommitment):
                u = _old_form(u, _eager(self.ch[side]))
            old[side].append(u)
        return out


@pytest.mark.parametrize("anchors", [False, True])
def test_old_form_updates_and_snapshot_force_close_alike(chain, tmp_path, anchors):
    """Two monitors of A's channel, one fed the new (unsigned) updates, one the old-form ones
    through an old-form snapshot and old update rows in a store, do the same on chain."""
    p = OldFormPair(chain, push_msat=300_000_000, anchors=anchors)
    tip = chain.tip()[0]
    p.call(A, "add_htlc", 40_000_000, phash(1), tip + 30, ONION)
    p.call(B, "add_htlc", 30_000_000, phash(2), tip + 40, ONION)
    p.flush()
    p.call(A, "fulfill_htlc", 0, preimage(2))
    # with anchors the zero-fee HTLC txs need fee bumping (not done here): the mempool refuses them
    r = Runner(chain, p, sides=(A,), strict=not anchors)
    out = p.call(A, "force_close")
    (bc,) = of_type(out.events, ev.BroadcastCommitment)
    r.sync_updates()
    # the old-form monitor: a snapshot (old JSON, no remote_signature) of the first half, old rows after
    old = p.old[A]
    cut = len(old) // 2
    m = mon.ChannelMonitor(p.ch[A].channel_id, p.ch[A].secrets, destination_script=DEST[A])
    for u in old[:cut]:
        m.apply(u)
    record = m.to_record()
    for k in ("holder", "prev_holder"):
        if record[k] is not None:
            record[k].pop("remote_signature")
    store = MonitorStore(tmp_path / "old.sqlite3")
    store.conn.execute(
        "INSERT INTO monitor_channels(channel_id, record, snapshot_update_id) VALUES (?, ?, ?)",
        (m.channel_id, json.dumps(record), m.latest_update_id),
    )
    for u in old[cut:]:
        d = monrec.update_to_json(u)
        if isinstance(u, ev.LatestHolderCommitment):
            d.pop("remote_signature")
        store.insert_body(store.conn, m.channel_id, u.update_id, json.dumps(d))
    store.conn.commit()
    om = store.load(m.channel_id, p.ch[A].secrets)
    store.close()
    assert om.holder.remote_signature is None and om.latest_update_id == r.monitors[A].latest_update_id
    om.best_height = r.height

    def same(acts, old_acts):
        def key(a):
            return (type(a).__name__, getattr(a, "reason", None), a.tx.to_hex() if hasattr(a, "tx") else repr(a))
        assert [key(a) for a in acts] == [key(a) for a in old_acts]

    reasons = set()
    while not r.monitors[A].is_resolved and r.height < tip + 60:
        before = len(r.actions[A])
        r.mine()
        for h in range(om.best_height + 1, r.height + 1):
            old_acts = om.block_connected(chain.block_at(h), h)
            same([a for hh, a in r.actions[A][before:] if hh == h], old_acts)
            reasons |= {a.reason for a in of_type(old_acts, mon.Broadcast)}
    assert om.is_resolved == r.monitors[A].is_resolved == (not anchors)
    assert "our latest commitment (force close)" in r.accepted[A]
    assert any("HTLC-success" in k for k in reasons) and any("HTLC-timeout" in k for k in reasons)
    if not anchors:
        assert any("HTLC-success" in k for k in r.accepted[A]) and any("HTLC-timeout" in k for k in r.accepted[A])
    (spent,) = of_type([a for _, a in r.actions[A]], mon.FundingSpent)
    assert spent.txid == bc.tx.txid()
