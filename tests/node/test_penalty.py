"""lncli.node.penalty: the justice tx for a revoked commitment from a datadir's channel records."""

from __future__ import annotations

import json

import pytest

from lncli.errors import InputError, RefusedError
from lncli.monitor.store import MonitorStore, monitor_db_path
from lncli.node import penalty as pen
from tests.channel.harness import A, B
from tests.monitor.chainpair import Runner, new_chain
from tests.monitor.test_monitor import revoked_pair


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


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
