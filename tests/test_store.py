import os
import stat

import pytest

from lncli.store.db import open_db, transaction
from lncli.wallet.seed import derive, load_or_create_seed


def test_migrations_apply_once_and_in_order(tmp_path):
    path = tmp_path / "x.sqlite3"
    m1 = ["CREATE TABLE a (x INTEGER)"]
    db = open_db(path, {"comp": m1})
    db.execute("INSERT INTO a VALUES (1)")
    db.close()
    db = open_db(path, {"comp": m1 + ["ALTER TABLE a ADD COLUMN y INTEGER DEFAULT 7"]})
    assert tuple(db.execute("SELECT x, y FROM a").fetchone()) == (1, 7)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_transaction_rolls_back_whole(tmp_path):
    db = open_db(tmp_path / "x.sqlite3", {"c": ["CREATE TABLE a (x INTEGER)"]})
    with pytest.raises(RuntimeError):
        with transaction(db):
            db.execute("INSERT INTO a VALUES (1)")
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM a").fetchone()[0] == 0


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "x.sqlite3"
    open_db(p, {"c": ["CREATE TABLE a (x)", "CREATE TABLE b (x)"]}).close()
    with pytest.raises(RuntimeError, match="upgrade lncli"):
        open_db(p, {"c": ["CREATE TABLE a (x)"]})


def test_seed_created_once_private(tmp_path):
    s1 = load_or_create_seed(tmp_path)
    s2 = load_or_create_seed(tmp_path)
    assert s1 == s2 and len(s1) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "seed").st_mode) == 0o600
    assert derive(s1, "node key") != derive(s1, "wallet")
