"""MonitorStore: updates persisted before apply, snapshots, reopening; update/record decoders."""

from __future__ import annotations

import json

import pytest

from lncli.channel import events as ev
from lncli.errors import RefusedError
from lncli.monitor import monitor as mon
from lncli.monitor import record as monrec
from lncli.monitor.store import MonitorStore, monitor_db_path
from tests.channel.harness import A, B
from tests.monitor.chainpair import DEST, new_chain, of_type
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


# ------------------------------------------------------------------ rows of earlier versions


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
