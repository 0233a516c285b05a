"""SQLite storage: the only module that imports sqlite3.

Each component (wallet, node, channels, chain) owns its tables and declares them as an ordered list
of migrations; :func:`open_db` applies the ones not yet applied, each in its own transaction, and
records them in ``schema_versions``. Databases run in WAL mode with ``synchronous=FULL`` so a
committed transaction survives a crash (kill -9 or power loss), and with a busy timeout so several
processes can share one file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

Migrations = Sequence[str]

Connection = sqlite3.Connection
IntegrityError = sqlite3.IntegrityError
OperationalError = sqlite3.OperationalError


def open_db(path: Path | str, components: dict[str, Migrations], *, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating, mode 0600) the database at ``path`` and bring each component's schema up to date."""
    path = Path(path)
    new = not path.exists()
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for component, migrations in components.items():
        migrate(conn, component, migrations)
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: Migrations) -> None:
    with transaction(conn):
        row = conn.execute("SELECT version FROM schema_versions WHERE component=?", (component,)).fetchone()
        have = row[0] if row else 0
        if have > len(migrations):
            raise RuntimeError(
                f"the {component} schema in this datadir is version {have}, newer than this lncli knows "
                f"({len(migrations)}): upgrade lncli"
            )
        for version in range(have, len(migrations)):
            for statement in migrations[version].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions(component, version) VALUES(?, ?) "
            "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
            (component, len(migrations)),
        )


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """An atomic unit of work: committed whole on success, rolled back whole on any exception.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes never deadlock upgrading a
    read lock.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
