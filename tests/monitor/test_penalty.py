"""lncli.monitor.penalty: the justice tx for a revoked commitment from a monitor or a datadir."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.tx import Transaction
from lncli.errors import InputError, RefusedError
from lncli.monitor import penalty as pen
from lncli.monitor.store import MonitorStore, monitor_db_path
from lncli.proto import justice
from tests.channel.harness import A, B
from tests.monitor.chainpair import DEST, Runner, new_chain
from tests.monitor.test_monitor import revoked_pair


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


def test_build_penalty_sweeps_every_revoked_output(chain):
    p, _tip, old, _ = revoked_pair(chain)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    pn = pen.build_penalty(m, old)
    assert pn.commitment_number < m.revocations.next_commitment_number
    kinds = sorted(o.kind for o in pn.swept)
    assert kinds == sorted([justice.TO_LOCAL, justice.OFFERED_HTLC, justice.RECEIVED_HTLC])
    assert {i.prevout for i in pn.tx.inputs} == {o.outpoint for o in pn.swept}
    assert pn.tx.outputs[0].script_pubkey == DEST[A] == pn.destination_script
    assert pn.fee_sat == pn.swept_sat - pn.tx.outputs[0].value_sat > 0
    assert pn.to_remote is not None and old.outputs[pn.to_remote[0].vout].value_sat == pn.to_remote[1]
    # the same tx the monitor (and so the watcher) builds
    assert pn.tx.to_hex() == m.build_justice_tx(old).to_hex()
    j = pn.to_json("regtest")
    assert j["revoked_txid"] == old.txid_hex() and j["txid"] == pn.tx.txid_hex()
    assert j["destination"].startswith("bcrt1") and j["fee_sat"] == pn.fee_sat and len(j["swept"]) == 3
    # the chain takes it
    chain.broadcast(old)
    chain.broadcast(pn.tx)
    chain.mine(1)
    assert chain.get_transaction(pn.tx.txid()).confirmations == 1


def test_build_penalty_fee_rate_and_destination(chain):
    p, _tip, old, _ = revoked_pair(chain)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    low = pen.build_penalty(m, old, feerate_per_kw=pen.feerate_per_kw_from_sat_per_vb(1))
    high = pen.build_penalty(m, old, feerate_per_kw=pen.feerate_per_kw_from_sat_per_vb(20), destination_script=DEST[B])
    assert low.feerate_per_kw == 253 and high.feerate_per_kw == 5000
    assert low.fee_sat < high.fee_sat and high.tx.outputs[0].script_pubkey == DEST[B]
    assert low.fee_sat / low.tx.vsize() > 0.99  # ~1 sat/vB (fees assume maximal signatures)
    for bad in (0, 0.5, float("nan"), 10_001):
        with pytest.raises(InputError):
            pen.feerate_per_kw_from_sat_per_vb(bad)


def test_build_penalty_refusals(chain):
    p, _tip, old, _ = revoked_pair(chain)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    latest_theirs = p.ch[B].latest_holder_commitment()[0]
    with pytest.raises(RefusedError, match="this commitment has not been revoked: nothing to punish"):
        pen.build_penalty(m, latest_theirs)
    ours = p.ch[A].latest_holder_commitment()[0]
    with pytest.raises(RefusedError, match="our own commitment"):
        pen.build_penalty(m, ours)
    with pytest.raises(RefusedError, match="does not spend this channel's funding output"):
        pen.build_penalty(m, p.funding_tx)
    m.destination_script = None
    with pytest.raises(RefusedError, match="--destination"):
        pen.build_penalty(m, old)


def test_parse_revoked_tx(chain):
    p, _tip, old, _ = revoked_pair(chain)
    assert pen.parse_revoked_tx(" " + old.to_hex() + "\n").txid() == old.txid()
    assert pen.parse_revoked_tx("0x" + old.to_hex()).txid() == old.txid()
    seen = []
    got = pen.parse_revoked_tx(old.txid_hex(), lambda t: seen.append(t) or old)
    assert got is old and seen == [old.txid()]
    with pytest.raises(InputError, match="does not know"):
        pen.parse_revoked_tx(old.txid_hex(), lambda t: None)
    with pytest.raises(InputError, match="chain backend"):
        pen.parse_revoked_tx(old.txid_hex())
    with pytest.raises(InputError, match="neither"):
        pen.parse_revoked_tx("zz")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(bytes.hex)))
def test_parse_revoked_tx_raises_only_input_errors(text):
    try:
        tx = pen.parse_revoked_tx(text, lambda t: None)
    except InputError:  # DecodeError included
        return
    assert isinstance(tx, Transaction)


def _datadir_with(tmp_path, p, m):
    """A datadir holding p.ch[A]'s channel record and its monitor, as a node writes them."""
    from lncli.node.channels import COMPONENT, MIGRATIONS
    from lncli.store.db import open_db, transaction

    path = monitor_db_path(tmp_path / "dd", "regtest")
    db = open_db(path, {COMPONENT: MIGRATIONS})
    ch = p.ch[A]
    with transaction(db):
        db.execute(
            "INSERT INTO channels(channel_id, temporary_channel_id, peer, state, record, created_at, updated_at) "
            "VALUES(?,?,?,?,?,0,0)",
            (ch.channel_id, ch.temporary_channel_id, "02" * 33, ch.state.value, json.dumps(ch.to_record())),
        )
    store = MonitorStore(db)
    store.add(m)
    store.save(m)
    db.close()
    return tmp_path / "dd"


def test_penalty_for_datadir(chain, tmp_path):
    p, _tip, old, _ = revoked_pair(chain)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    dd = _datadir_with(tmp_path, p, m)
    ch = p.ch[A]
    outpoint = f"{ch.funding_txid[::-1].hex()}:{ch.funding_output_index}"
    names = [ch.channel_id.hex(), outpoint]
    if ch.short_channel_id is not None:
        from lncli.proto.scid import ShortChannelId

        names += [str(ShortChannelId(ch.short_channel_id)), str(int(ch.short_channel_id))]
    for name in names:
        pn = pen.penalty_for_datadir(dd, "regtest", name, old)
        assert pn.tx.to_hex() == m.build_justice_tx(old).to_hex()
    with pytest.raises(InputError, match="no channel with channel_id"):
        pen.penalty_for_datadir(dd, "regtest", "11" * 32, old)
    with pytest.raises(InputError, match="no channel with short_channel_id"):
        pen.penalty_for_datadir(dd, "regtest", "1x2x3", old)
    with pytest.raises(InputError, match="not a channel_id"):
        pen.penalty_for_datadir(dd, "regtest", "what", old)
    with pytest.raises(InputError, match="no node database"):
        pen.penalty_for_datadir(tmp_path / "empty", "regtest", ch.channel_id.hex(), old)
    with pytest.raises(RefusedError, match="has not been revoked"):
        pen.penalty_for_datadir(dd, "regtest", ch.channel_id.hex(), p.ch[B].latest_holder_commitment()[0])
