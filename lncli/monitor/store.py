"""Persistence of channel monitors: a snapshot per channel plus the updates applied since.

Tables of the ``monitor`` component in ``DATADIR/NETWORK/node.sqlite3`` (``lncli.store.db``):

* ``monitor_channels``: one row per channel, its :meth:`ChannelMonitor.to_record` snapshot (JSON,
  no secrets), the ``update_id`` the snapshot includes, and whether the channel is resolved;
* ``monitor_updates``: the ``MonitorUpdate`` records applied after the snapshot (JSON), and for a
  while some that it includes (ignored when loading, see below). Each row's integer key is the
  channel's ``num`` (in ``monitor_channels``) shifted by 40 bits, plus the ``update_id``: a plain
  rowid table, so the few updates each channel write appends go at the right end of one b-tree
  (about two pages fewer per write than a WITHOUT ROWID table keyed by channel_id and update_id,
  whose leaf splits rewrite three siblings).

:meth:`MonitorStore.apply` writes an update (committed, ``synchronous=FULL``) *before* applying
it, so the channel code can persist-then-send: once ``apply`` returns, a crash cannot lose it.
The ``*_in`` methods (:meth:`MonitorStore.apply_in`, ``add_in``, ``save_in``) write inside the
caller's open transaction on the shared connection instead, so the node commits a channel's
state and its monitor updates in one transaction (one disk sync) before sending anything.
Loading takes the snapshot and replays the later updates. :meth:`MonitorStore.save` writes a new
snapshot (after blocks, and every ``compact_every`` updates or, once the monitor holds more
revoked commitments and preimages than that, every as many updates as it holds) and drops the
updates it includes. A snapshot that :meth:`MonitorStore.apply_in` takes in a channel's
transaction leaves those to the following ``apply_in`` calls, ``TRIM_STEP`` at a time, each
bounded by the snapshot row in its own statement (so one payment's transaction never deletes
thousands of rows), and text is cached so a snapshot does not re-encode the whole history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from lncli.errors import RefusedError
from lncli.monitor.monitor import ChannelMonitor
from lncli.monitor.record import update_body, update_from_json
from lncli.store.db import IntegrityError, migrate, open_db, transaction

__all__ = ["COMPONENT", "MIGRATIONS", "DB_NAME", "MonitorStore", "monitor_db_path"]

COMPONENT = "monitor"
DB_NAME = "node.sqlite3"
MIGRATIONS = [
    """CREATE TABLE monitor_channels (
        channel_id BLOB PRIMARY KEY,
        record TEXT NOT NULL,
        snapshot_update_id INTEGER NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE monitor_updates (
        channel_id BLOB NOT NULL,
        update_id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (channel_id, update_id)
    ) WITHOUT ROWID""",
    """ALTER TABLE monitor_channels ADD COLUMN num INTEGER;
    UPDATE monitor_channels SET num = rowid;
    CREATE UNIQUE INDEX monitor_channels_num ON monitor_channels(num);
    CREATE TABLE monitor_updates_keyed (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
    INSERT INTO monitor_updates_keyed(id, body)
        SELECT (c.num << 40) | u.update_id, u.body FROM monitor_updates u JOIN monitor_channels c ON c.channel_id = u.channel_id;
    DROP TABLE monitor_updates;
    ALTER TABLE monitor_updates_keyed RENAME TO monitor_updates""",
]

#: update_ids below 2**40 fit beside the channel's number in a row key
_ID_BITS = 40
_ID_LIMIT = 1 << _ID_BITS


#: updates below a snapshot that one apply_in drops (a snapshot in a channel's transaction leaves
#: them: dropping them all there made that transaction slow)
TRIM_STEP = 16
_TRIM_SQL = f"""DELETE FROM monitor_updates WHERE id IN (
    SELECT id FROM monitor_updates WHERE id >= ?
        AND id <= ? + (SELECT snapshot_update_id FROM monitor_channels WHERE channel_id=?)
    ORDER BY id LIMIT {TRIM_STEP})"""


def monitor_db_path(datadir: Path | str, network: str) -> Path:
    """``DATADIR/NETWORK/node.sqlite3``."""
    return Path(datadir) / network / DB_NAME


class MonitorStore:
    """Monitors and their updates in SQLite. ``db`` is a path or an open connection (from
    ``lncli.store.db.open_db``; the monitor schema is then migrated into it)."""

    def __init__(self, db, *, compact_every: int = 100):
        if isinstance(db, (str, Path)):
            self.conn = open_db(db, {COMPONENT: MIGRATIONS})
            self._own = True
        else:
            self.conn = db
            migrate(db, COMPONENT, MIGRATIONS)
            self._own = False
        self.compact_every = compact_every
        self._since_snapshot: dict[bytes, int] = {}
        # channels whose snapshot (taken in a channel's transaction) may still have updates below it
        # on disk: apply_in drops a few at a time instead of all at once in that transaction
        self._stale: set[bytes] = set()
        self._nums: dict[bytes, int] = {}  # channel_id -> num (monitor_channels)

    def close(self) -> None:
        if self._own:
            self.conn.close()

    # -- writing -----------------------------------------------------------------------------

    def add(self, monitor: ChannelMonitor) -> None:
        """Store a new monitor (RefusedError if the channel already has one)."""
        with transaction(self.conn):
            self.add_in(self.conn, monitor)

    def add_in(self, conn, monitor: ChannelMonitor) -> None:
        """:meth:`add` inside the caller's open transaction on this store's connection."""
        try:
            conn.execute(
                "INSERT INTO monitor_channels(channel_id, record, snapshot_update_id, num) "
                "VALUES (?, ?, ?, (SELECT COALESCE(MAX(num), 0) + 1 FROM monitor_channels))",
                (monitor.channel_id, monitor.to_record_text(), monitor.latest_update_id),
            )
        except IntegrityError:
            raise RefusedError(f"channel {monitor.channel_id.hex()} already has a monitor") from None
        self._since_snapshot[monitor.channel_id] = 0
        self._nums.pop(bytes(monitor.channel_id), None)  # read back in this transaction when needed

    def _base(self, conn, channel_id: bytes) -> int:
        """The first row key of ``channel_id``'s updates (its ``num`` << 40; a row another writer
        added without a ``num`` gets the next one)."""
        channel_id = bytes(channel_id)
        num = self._nums.get(channel_id)
        if num is None:
            row = conn.execute("SELECT num FROM monitor_channels WHERE channel_id=?", (channel_id,)).fetchone()
            if row is None:
                raise RefusedError(f"channel {channel_id.hex()} has no stored monitor")
            num = row[0]
            if num is None:
                conn.execute(
                    "UPDATE monitor_channels SET num = (SELECT COALESCE(MAX(num), 0) + 1 FROM monitor_channels) "
                    "WHERE channel_id=?",
                    (channel_id,),
                )
                num = conn.execute("SELECT num FROM monitor_channels WHERE channel_id=?", (channel_id,)).fetchone()[0]
            self._nums[channel_id] = num
        return num << _ID_BITS

    def insert_body(self, conn, channel_id: bytes, update_id: int, body: str) -> None:
        """Write one update's JSON ``body`` (IntegrityError if ``update_id`` is already there)."""
        if not 0 <= update_id < _ID_LIMIT:
            raise RefusedError(f"monitor update id {update_id} out of range")
        conn.execute("INSERT INTO monitor_updates(id, body) VALUES (?, ?)", (self._base(conn, channel_id) | update_id, body))

    def update_ids(self, channel_id: bytes) -> list[int]:
        """The update_ids stored for ``channel_id``, in order."""
        base = self._base(self.conn, channel_id)
        rows = self.conn.execute("SELECT id FROM monitor_updates WHERE id >= ? AND id < ? ORDER BY id", (base, base + _ID_LIMIT))
        return [r[0] - base for r in rows]

    def apply(self, monitor: ChannelMonitor, update) -> None:
        """Check ``update`` (MonitorUpdateError if refused: nothing written), persist it, then
        apply it to ``monitor``."""
        monitor.check_update(update)
        with transaction(self.conn):
            self._insert_update(self.conn, monitor, update)
        monitor.apply(update)
        self._count(self.conn, monitor, own_transaction=True)

    def apply_in(self, conn, monitor: ChannelMonitor, update) -> None:
        """Apply ``update`` to ``monitor`` and write it (with a new snapshot every
        ``compact_every`` updates) in the caller's open transaction on this store's connection, so
        one transaction and one disk sync cover the channel state and its monitor updates.
        MonitorUpdateError if refused (nothing applied or written). If that transaction does not
        commit, the caller must :meth:`load` the monitor again (memory is then ahead of disk)."""
        monitor.apply(update)  # checks first; refused: unchanged
        self._insert_update(conn, monitor, update)
        if monitor.channel_id in self._stale:
            self._trim_some(conn, monitor.channel_id)
        self._count(conn, monitor, own_transaction=False)

    def _trim_some(self, conn, channel_id: bytes) -> None:
        """Drop up to ``TRIM_STEP`` updates that the channel's snapshot includes. The bound is read
        from the snapshot row in the same statement, so this only ever drops updates that the
        snapshot visible to this transaction covers (a rolled-back snapshot protects its updates)."""
        base = self._base(conn, channel_id)
        cur = conn.execute(_TRIM_SQL, (base, base, channel_id))
        if cur.rowcount < TRIM_STEP:
            self._stale.discard(channel_id)

    def _insert_update(self, conn, monitor: ChannelMonitor, update) -> None:
        self.insert_body(conn, monitor.channel_id, update.update_id, update_body(update))

    def _count(self, conn, monitor: ChannelMonitor, own_transaction: bool) -> None:
        n = self._since_snapshot.get(monitor.channel_id, 0) + 1
        self._since_snapshot[monitor.channel_id] = n
        # A snapshot grows with the channel's history (revoked commitments with HTLCs, preimages):
        # taking one every max(compact_every, its size) updates keeps the cost per update flat.
        if n >= self.compact_every and n >= len(monitor.counterparty) + len(monitor.preimages):
            if own_transaction:
                self.save(monitor)
            else:  # the channel's transaction: the updates it covers go TRIM_STEP at a time
                self._snapshot_in(conn, monitor)
                self._stale.add(monitor.channel_id)

    def apply_all(self, monitor: ChannelMonitor, updates: Iterable) -> None:
        for u in updates:
            self.apply(monitor, u)

    def save(self, monitor: ChannelMonitor) -> None:
        """Write a new snapshot of ``monitor`` and drop the updates it includes."""
        with transaction(self.conn):
            self.save_in(self.conn, monitor)

    def save_in(self, conn, monitor: ChannelMonitor) -> None:
        """:meth:`save` inside the caller's open transaction on this store's connection."""
        self._snapshot_in(conn, monitor)
        self._stale.discard(monitor.channel_id)
        base = self._base(conn, monitor.channel_id)
        conn.execute("DELETE FROM monitor_updates WHERE id >= ? AND id <= ?", (base, base + monitor.latest_update_id))

    def _snapshot_in(self, conn, monitor: ChannelMonitor) -> None:
        cur = conn.execute(
            "UPDATE monitor_channels SET record=?, snapshot_update_id=? WHERE channel_id=?",
            (monitor.to_record_text(), monitor.latest_update_id, monitor.channel_id),
        )
        if cur.rowcount == 0:
            raise RefusedError(f"channel {monitor.channel_id.hex()} has no stored monitor")
        self._since_snapshot[monitor.channel_id] = 0

    def mark_resolved(self, monitor: ChannelMonitor) -> None:
        self.save(monitor)
        with transaction(self.conn):
            self.conn.execute("UPDATE monitor_channels SET resolved=1 WHERE channel_id=?", (monitor.channel_id,))

    # -- reading -----------------------------------------------------------------------------

    def channel_ids(self, include_resolved: bool = False) -> list[bytes]:
        sql = "SELECT channel_id FROM monitor_channels"
        if not include_resolved:
            sql += " WHERE resolved=0"
        return [bytes(r[0]) for r in self.conn.execute(sql + " ORDER BY channel_id")]

    def load(self, channel_id: bytes, secrets) -> ChannelMonitor:
        """The monitor of ``channel_id``: its snapshot with the later updates replayed."""
        row = self.conn.execute(
            "SELECT record FROM monitor_channels WHERE channel_id=?", (bytes(channel_id),)
        ).fetchone()
        if row is None:
            raise RefusedError(f"no monitor for channel {bytes(channel_id).hex()}")
        monitor = ChannelMonitor.from_record(json.loads(row[0]), secrets)
        self._nums.pop(bytes(channel_id), None)  # as on disk now (after a rolled-back transaction too)
        base = self._base(self.conn, channel_id)
        rows = self.conn.execute(
            "SELECT body FROM monitor_updates WHERE id > ? AND id < ? ORDER BY id",
            (base + monitor.latest_update_id, base + _ID_LIMIT),
        ).fetchall()
        for (body,) in rows:
            monitor.apply(update_from_json(json.loads(body)))
        self._since_snapshot[monitor.channel_id] = len(rows)
        self._stale.add(monitor.channel_id)  # a snapshot's updates not all dropped yet (apply_in checks)
        return monitor

    def load_all(self, secrets_for_channel: Callable[[bytes], object], include_resolved: bool = False) -> list[ChannelMonitor]:
        return [self.load(cid, secrets_for_channel(cid)) for cid in self.channel_ids(include_resolved)]
