"""MonitorStore: updates persisted before apply, snapshots, reopening; update/record decoders."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lncli.channel import events as ev
from lncli.errors import DecodeError, RefusedError
from lncli.monitor import monitor as mon
from lncli.monitor import record as monrec
from lncli.proto import commitment as bolt3
from lncli.monitor.store import MonitorStore, monitor_db_path
from tests.channel.harness import A, B
from tests.monitor.chainpair import DEST, Runner, new_chain, of_type
from tests.monitor.test_monitor import htlc_pair, revoked_pair


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


def test_store_round_trip_and_refusals(chain, tmp_path):
    p, tip, old, _ = revoked_pair(chain)
    path = monitor_db_path(tmp_path / "datadir", "regtest")
    store = MonitorStore(path, compact_every=5)
    cid = p.ch[A].channel_id
    m = mon.ChannelMonitor(cid, p.ch[A].secrets, destination_script=DEST[A])
    store.add(m)
    with pytest.raises(RefusedError, match="already has a monitor"):
        store.add(m)
    store.apply_all(m, p.monitor[A])
    with pytest.raises(mon.MonitorUpdateError):
        store.apply(m, p.monitor[A][-1])  # out of order: refused and not written
    store.close()
    assert path.exists()

    store = MonitorStore(path)
    (back,) = store.load_all(lambda c: p.ch[A].secrets)
    assert back.to_record() == m.to_record()
    rows = store.conn.execute("SELECT count(*) FROM monitor_updates").fetchone()[0]
    assert rows < 5  # compacted into snapshots every 5 updates
    # same behaviour after reopening: both monitors answer the revoked commitment alike
    chain.broadcast(old)
    chain.mine(1)
    block = chain.block_at(chain.tip()[0])
    acts_m = m.block_connected(block)
    acts_b = back.block_connected(block)
    assert [type(a) for a in acts_m] == [type(a) for a in acts_b]
    assert [a.tx.txid() for a in of_type(acts_m, mon.Broadcast)] == [a.tx.txid() for a in of_type(acts_b, mon.Broadcast)]
    store.save(back)
    store.mark_resolved(back)
    assert store.channel_ids() == [] and store.channel_ids(include_resolved=True) == [cid]
    again = store.load(cid, p.ch[A].secrets)
    assert again.to_record() == back.to_record()
    with pytest.raises(RefusedError, match="no monitor"):
        store.load(bytes(32), p.ch[A].secrets)
    store.close()


def test_updates_are_on_disk_when_apply_returns(chain, tmp_path):
    p, _ = htlc_pair(chain)
    path = tmp_path / "node.sqlite3"
    store = MonitorStore(path, compact_every=10_000)
    m = mon.ChannelMonitor(p.ch[A].channel_id, p.ch[A].secrets)
    store.add(m)
    for u in p.monitor[A]:
        store.apply(m, u)
        # another connection (as after a crash) already sees it
        other = MonitorStore(path)
        assert other.load(m.channel_id, p.ch[A].secrets).latest_update_id == u.update_id
        other.close()
    store.close()


def test_shares_a_connection(chain, tmp_path):
    from lncli.store.db import open_db

    conn = open_db(tmp_path / "node.sqlite3", {})
    store = MonitorStore(conn)
    assert conn.execute("SELECT version FROM schema_versions WHERE component='monitor'").fetchone()[0] == 2
    store.close()  # does not close a connection it was given
    conn.execute("SELECT 1")
    conn.close()


# ------------------------------------------------------------------ decoders

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["00", "ab" * 32, "02" + "11" * 32]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def real_updates(tmp_path_factory):
    chain = new_chain(tmp_path_factory.mktemp("c"))
    p = revoked_pair(chain)[0]
    p.call(A, "force_close")
    r = Runner(chain, p, sides=(A,))
    record = r.monitors[A].to_record()
    chain.close()
    return [monrec.update_to_json(u) for u in p.monitor[A]], record, p.ch[A].secrets


def _mutate(obj, data):
    """Replace one leaf (or drop one key) of a JSON structure."""
    if isinstance(obj, dict) and obj:
        k = data.draw(st.sampled_from(sorted(obj)))
        out = dict(obj)
        if data.draw(st.booleans()):
            del out[k]
        else:
            out[k] = _mutate(obj[k], data)
        return out
    if isinstance(obj, list) and obj:
        i = data.draw(st.integers(0, len(obj) - 1))
        out = list(obj)
        out[i] = _mutate(obj[i], data)
        return out
    return data.draw(_json)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decoders_raise_only_decode_error(real_updates, data):
    updates, record, secrets = real_updates
    u = _mutate(data.draw(st.sampled_from(updates)), data)
    try:
        monrec.update_from_json(u)
    except DecodeError:
        pass
    rec = _mutate(record, data) if data.draw(st.booleans()) else data.draw(_json)
    try:
        mon.ChannelMonitor.from_record(rec, secrets)
    except DecodeError:
        pass


def test_decoders_round_trip(real_updates):
    updates, record, secrets = real_updates
    for u in updates:
        assert monrec.update_to_json(monrec.update_from_json(json.loads(json.dumps(u)))) == u
    assert mon.ChannelMonitor.from_record(record, secrets).to_record() == record


# ------------------------------------------------------------------ fast text encoders


def _generic_body(u) -> str:
    return json.dumps(monrec.update_to_json(u), separators=(",", ":"))


@pytest.fixture(scope="module")
def real_objects(tmp_path_factory):
    """Both sides' monitor updates (objects) of a revoked pair that then force-closes, and the
    monitors fed with them (revoked commitments with HTLCs, preimages)."""
    chain = new_chain(tmp_path_factory.mktemp("c"))
    p = revoked_pair(chain)[0]
    p.call(A, "force_close")
    monitors = {}
    for side in (A, B):
        m = mon.ChannelMonitor(p.ch[side].channel_id, p.ch[side].secrets, destination_script=DEST[side])
        for u in p.monitor[side]:
            m.apply(u)
        monitors[side] = m
    chain.close()
    return p.monitor, monitors, {s: p.ch[s].secrets for s in (A, B)}


def test_update_body_is_the_generic_compact_json(real_objects):
    updates, _, _ = real_objects
    seen = set()
    for side in (A, B):
        for u in updates[side]:
            body = monrec.update_body(u)
            assert body == _generic_body(u)
            assert monrec.update_from_json(json.loads(body)) == u
            seen.add(type(u))
    assert seen == {ev.ChannelSetup, ev.LatestHolderCommitment, ev.LatestCounterpartyCommitment,
                    ev.CommitmentSecret, ev.PaymentPreimage, ev.ChannelForceClosed}


_bytes = st.binary(min_size=0, max_size=40)
_ints = st.integers(0, 2**64)
_htlcs = st.lists(st.builds(bolt3.Htlc, _ints, _ints, _bytes, _ints, st.booleans()), max_size=3).map(tuple)


def _updates(txs):
    tx = st.sampled_from(txs)
    opt_bytes = st.one_of(st.none(), _bytes)  # None: not signed yet (lazy), or written before it existed
    htlc_tx = st.builds(ev.HolderHtlcTx, _ints, st.booleans(), _bytes, _ints, tx, _bytes, _bytes, opt_bytes, st.booleans())
    return st.one_of(
        st.builds(ev.LatestHolderCommitment, _ints, _ints, tx, st.lists(htlc_tx, max_size=3).map(tuple), opt_bytes),
        st.builds(ev.LatestCounterpartyCommitment, _ints, _bytes, _ints, _bytes, _htlcs, _ints, _ints, _ints),
        st.builds(ev.CommitmentSecret, _ints, _ints, _bytes),
        st.builds(ev.PaymentPreimage, _ints, _bytes, _bytes),
        st.builds(ev.ChannelForceClosed, _ints, _ints),
    )


_odd = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=4),
                 st.binary(max_size=4).map(bytearray), st.lists(st.integers(), max_size=2).map(tuple))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_update_body_matches_generic_encoder(real_objects, data):
    """Random updates: the same text as the generic encoder and a round trip; a field of an
    unexpected type gives the same JSON value as the generic encoder (or its same error)."""
    updates, _, _ = real_objects
    txs = [u.tx for u in updates[A] + updates[B] if isinstance(u, ev.LatestHolderCommitment)]
    u = data.draw(_updates(txs))
    body = monrec.update_body(u)
    assert body == _generic_body(u)
    assert monrec.update_from_json(json.loads(body)) == u
    # one field replaced by a value of another type
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(u)]))
    odd = dataclasses.replace(u, **{name: data.draw(_odd)})
    try:
        expected = json.loads(_generic_body(odd))
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            monrec.update_body(odd)
    else:
        assert json.loads(monrec.update_body(odd)) == expected


def test_record_text_is_the_record(real_objects):
    updates, monitors, secrets = real_objects
    for side in (A, B):
        m = monitors[side]
        assert m.counterparty and m.preimages
        assert json.loads(m.to_record_text()) == m.to_record()
        assert json.loads(m.to_record_text()) == m.to_record()  # cached parts
        back = mon.ChannelMonitor.from_record(json.loads(m.to_record_text()), secrets[side])
        assert back.to_record() == m.to_record()
        # a changed preimage (never happens) is not served from the cache
        k = next(iter(back.preimages))
        back.to_record_text()
        back.preimages[k] = bytes(32)
        assert json.loads(back.to_record_text()) == back.to_record()
        back.preimages.clear()
        assert json.loads(back.to_record_text())["preimages"] == {}


def test_loads_rows_written_by_the_old_encoders(real_objects, tmp_path):
    """A snapshot and update bodies as the earlier code wrote them (``json.dumps`` of the dicts,
    default separators, the snapshot's preimages sorted) still load."""
    updates, _, secrets = real_objects
    us = updates[A]
    cut = len(us) // 2
    m = mon.ChannelMonitor(us[0].channel_id, secrets[A], destination_script=DEST[A])
    for u in us[:cut]:
        m.apply(u)
    store = MonitorStore(tmp_path / "node.sqlite3")
    store.conn.execute(
        "INSERT INTO monitor_channels(channel_id, record, snapshot_update_id) VALUES (?, ?, ?)",
        (m.channel_id, json.dumps(m.to_record()), m.latest_update_id),
    )
    for u in us[cut:]:
        store.insert_body(store.conn, m.channel_id, u.update_id, json.dumps(monrec.update_to_json(u)))
        m.apply(u)
    back = store.load(m.channel_id, secrets[A])
    assert back.to_record() == m.to_record()
    # and the new writer's rows load the same
    store.save(back)
    assert store.load(m.channel_id, secrets[A]).to_record() == m.to_record()
    store.close()


@settings(max_examples=100, deadline=None)
@given(c=st.builds(mon.CounterpartyCommitment, _ints, _bytes, _bytes, _htlcs, _ints), odd=_odd,
       name=st.sampled_from(["commitment_number", "txid", "per_commitment_point", "htlcs", "feerate_per_kw"]))
def test_counterparty_record_text_matches_generic_encoder(c, odd, name):
    assert c.record_text == json.dumps(monrec._counterparty_json(c), separators=(",", ":"))
    c = dataclasses.replace(c, **{name: odd})
    try:
        expected = json.loads(json.dumps(monrec._counterparty_json(c)))
    except (TypeError, ValueError, AttributeError) as e:
        with pytest.raises(type(e)):
            c.record_text
    else:
        assert json.loads(c.record_text) == expected


# ------------------------------------------------------------------ snapshots in a channel's transaction


def _rows(store, cid):
    return store.update_ids(cid)


def _snapshot_id(store, cid):
    return store.conn.execute("SELECT snapshot_update_id FROM monitor_channels WHERE channel_id=?", (cid,)).fetchone()[0]


def test_snapshot_in_a_transaction_drops_its_updates_a_few_at_a_time(real_objects, tmp_path):
    from lncli.monitor.store import TRIM_STEP
    from lncli.store.db import transaction

    updates, _, secrets = real_objects
    us = updates[A]
    cid = us[0].channel_id
    store = MonitorStore(tmp_path / "node.sqlite3", compact_every=3)
    m = mon.ChannelMonitor(cid, secrets[A], destination_script=DEST[A])
    with transaction(store.conn):
        store.add_in(store.conn, m)
    seen_partial = False
    for u in us:
        with transaction(store.conn):
            store.apply_in(store.conn, m, u)
        rows, snap = _rows(store, cid), _snapshot_id(store, cid)
        assert snap <= m.latest_update_id and len([r for r in rows if r <= snap]) <= TRIM_STEP
        assert [r for r in rows if r > snap] == [x.update_id for x in us if snap < x.update_id <= m.latest_update_id]
        seen_partial |= any(r <= snap for r in rows)
        assert MonitorStore(store.conn).load(cid, secrets[A]).to_record() == m.to_record()
    assert seen_partial or TRIM_STEP >= 3
    # a later snapshot in its own transaction drops everything it includes
    store.save(m)
    assert _rows(store, cid) == []
    store.close()


def test_trimming_respects_the_committed_snapshot(real_objects, tmp_path):
    """A snapshot rolled back with its transaction does not let later trims drop updates it
    covered; leftovers from an earlier run are dropped after loading."""
    from lncli.monitor.store import TRIM_STEP
    from lncli.store.db import transaction

    updates, _, secrets = real_objects
    us = updates[A]
    cid = us[0].channel_id
    path = tmp_path / "node.sqlite3"
    store = MonitorStore(path, compact_every=10_000)
    m = mon.ChannelMonitor(cid, secrets[A], destination_script=DEST[A])
    with transaction(store.conn):
        store.add_in(store.conn, m)
        for u in us[:-2]:
            store.apply_in(store.conn, m, u)
    committed = _snapshot_id(store, cid)
    store.compact_every = 1
    with pytest.raises(RuntimeError):
        with transaction(store.conn):
            store.apply_in(store.conn, m, us[-2])  # snapshot at us[-2], then rolled back
            assert _snapshot_id(store, cid) == us[-2].update_id and cid in store._stale
            raise RuntimeError("the channel's transaction fails")
    assert _snapshot_id(store, cid) == committed
    # the caller should reload; even if it does not, no update above the committed snapshot goes
    store.compact_every = 10_000
    with transaction(store.conn):
        store.apply_in(store.conn, m, us[-1])
    assert [r for r in _rows(store, cid) if r > committed] == [u.update_id for u in us[:-2] if u.update_id > committed] + [us[-1].update_id]
    store.close()

    # leftovers below a committed snapshot (a run that stopped before trimming them) go after a load
    store = MonitorStore(path)
    m = store.load(cid, secrets[A])
    with transaction(store.conn):
        store._snapshot_in(store.conn, m)
    store.close()
    store = MonitorStore(path)
    m = store.load(cid, secrets[A])
    assert len(_rows(store, cid)) == len(us) - 1  # all below the snapshot
    extra = ev.ChannelForceClosed(m.latest_update_id + 1, 0)
    for _ in range(len(us) // TRIM_STEP + 1):
        with transaction(store.conn):
            store.apply_in(store.conn, m, extra)
        extra = ev.ChannelForceClosed(extra.update_id + 1, 0)
    assert _rows(store, cid) == list(range(m.latest_update_id - len(us) // TRIM_STEP, m.latest_update_id + 1))
    assert MonitorStore(store.conn).load(cid, secrets[A]).to_record() == m.to_record()
    store.close()


def test_updates_of_the_first_schema_migrate_to_integer_keys(chain, tmp_path):
    """A datadir written with the first schema (updates keyed by channel_id and update_id) keeps
    every update of every channel when the table is rebuilt with integer keys; new channels get
    the next number, and an update id can still be stored only once."""
    from lncli.monitor.store import COMPONENT, MIGRATIONS
    from lncli.store.db import IntegrityError, open_db

    p, _tip, _old, _ = revoked_pair(chain)
    path = tmp_path / "node.sqlite3"
    db = open_db(path, {COMPONENT: MIGRATIONS[:1]})
    monitors = {}
    for side, fake in ((A, None), (B, b"\x77" * 32)):
        cid = fake or p.ch[side].channel_id
        ups = p.monitor[side]
        m = mon.ChannelMonitor(p.ch[side].channel_id, p.ch[side].secrets, destination_script=DEST[side])
        m.apply(ups[0])
        db.execute("INSERT INTO monitor_channels(channel_id, record, snapshot_update_id) VALUES (?, ?, ?)",
                   (cid, m.to_record_text(), m.latest_update_id))
        for u in ups[1:]:
            db.execute("INSERT INTO monitor_updates(channel_id, update_id, body) VALUES (?, ?, ?)",
                       (cid, u.update_id, monrec.update_body(u)))
            m.apply(u)
        monitors[cid] = (m, [u.update_id for u in ups[1:]], p.ch[side].secrets)
    db.close()
    store = MonitorStore(path)
    assert "monitor_updates_keyed" not in {r[0] for r in store.conn.execute("SELECT name FROM sqlite_schema")}
    for cid, (m, ids, secrets) in monitors.items():
        assert store.update_ids(cid) == ids
        assert store.load(cid, secrets).to_record() == m.to_record()
    cid, (m, ids, _secrets) = next(iter(monitors.items()))
    with pytest.raises(IntegrityError):
        store.insert_body(store.conn, cid, ids[0], "{}")
    new = mon.ChannelMonitor(b"\x55" * 32, p.ch[A].secrets)
    store.add(new)
    nums = [r[0] for r in store.conn.execute("SELECT num FROM monitor_channels ORDER BY num")]
    assert nums == [1, 2, 3]
    store.close()
