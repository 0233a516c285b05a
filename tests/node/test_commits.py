"""The write-before-send commit group (lncli.node.commits): commitment batching, an update sent
ahead of its write, and a failed write (through a store whose writes fail)."""

from __future__ import annotations

import asyncio
import json

import pytest

from lncli.channel.events import Outcome
from lncli.config import Config
from lncli.errors import LncliError
from lncli.node.commits import ChannelStore, CommitGroup
from lncli.node.node import Node
from lncli.proto.wire import default_schema
from tests.node.test_channels import chan, connect, fund_wallet, open_channel, run, settings, start, until


class FailingStore(ChannelStore):
    """A store whose every write fails, as a full or broken disk would."""

    def transaction(self):
        raise OSError("disk I/O error (test)")


@pytest.mark.parametrize("delay_ms", [0, 50])
def test_payments_in_a_row_with_and_without_commitment_batching(tmp_path, delay_ms):
    """pay answers with the verified preimage; with commit-delay the removal's commitment waits
    for the next payment (or the timer), without it it goes at once; either way every payment
    lands, is written as succeeded, and the channel settles with the right balances."""

    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        for n in (a, b):
            n.channels.commit_delay = delay_ms / 1000
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            await open_channel(a, b, 500_000)
            invoices = [b.invoices.create(1_000_000 + i, f"n{i}") for i in range(6)]
            pays = a.channels.payments
            results, sessions = [], []
            for inv in invoices:
                sessions.append(pays._sessions.get(b.node_id))
                results.append(await pays.pay(inv.bolt11))
            # after the first, each payment's onion came from a session made ahead (its first
            # hop's shared secret is the one the payment row keeps), each session used once
            assert sessions[0] is None and None not in sessions[1:]
            assert len({s.session_key for s in sessions[1:]}) == 5
            for inv, s in zip(invoices[1:], sessions[1:]):
                row = pays.db.execute("SELECT shared_secret FROM payments WHERE payment_hash=?", (inv.payment_hash,)).fetchone()
                assert bytes(row[0]) == s.first_secret
            assert pays._sessions[b.node_id].session_key not in {s.session_key for s in sessions[1:]}
            for inv, r in zip(invoices, results):
                assert r["status"] == "succeeded" and bytes.fromhex(r["payment_preimage"]) == inv.preimage
            e = next(iter(a.channels.by_id.values()))
            if delay_ms:
                # pay answered at the fulfill; the commitments for the last removal wait for
                # the timer (nothing follows them)
                await until(lambda: e.commit_timer is not None, timeout=2, what="the batched commitment")
                assert e.channel.only_settlements_pending()
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")
            assert e.commit_timer is None
            total = sum(1_000_000 + i for i in range(6))
            assert chan(b, a)["local_balance_msat"] == total
            assert [p["status"] for p in a.channels.payments.list()] == ["succeeded"] * 6
            # pay's answer (built before the write) is the row listpayments shows after it, plus
            # what only the payment as a whole has (its parts, its attempts)
            for r in results:
                assert r.pop("parts") == 1 and len(r.pop("attempts")) == 1
                (listed,) = a.channels.payments.list(bytes.fromhex(r["payment_hash"]))
                assert abs(listed.pop("completed_at") - r.pop("completed_at")) <= 1
                assert listed == r
            assert all(b.invoices.lookup(inv.payment_hash).paid_at is not None for inv in invoices)
        finally:
            await a.close()
            await b.close()

    run(main())


def test_commit_delay_setting(tmp_path):
    s = settings(tmp_path, "x")
    s.config = Config({"commit-delay": ["2000"]}, None)
    with pytest.raises(LncliError, match="commit-delay"):
        Node(s)


def test_an_add_goes_ahead_of_its_write_and_a_failed_write_drops_it(tmp_path):
    """pay sends update_add_htlc before the write that commits it: the payee gets it while the
    payer still writes (and writes nothing for it alone: an uncommitted update is not state).
    When that write fails, the connection drops, so the payee forgets the add as BOLT 2 asks,
    and after the reconnect both sides agree and the next payment goes through."""
    async def main():
        a, b = await start(tmp_path, "a"), await start(tmp_path, "b")
        try:
            await fund_wallet(a, 2_000_000)
            await connect(a, b)
            cid = await open_channel(a, b, 500_000)
            ea, eb = a.channels.by_id[cid], b.channels.by_id[cid]
            sent, seen = [], []
            peer_b = a.peers.get(b.node_id)
            send_many = peer_b.send_many

            def spy_send(messages):
                # what a had on disk when each of its messages went out
                names = [default_schema().by_number[int.from_bytes(m[:2], "big")].name for m in messages]
                sent.append((names, len(json.loads(ea.durable)["offered"])))
                return send_many(messages)

            peer_b.send_many = spy_send
            orig = b.channels.handle_message

            def spy(peer, msg):
                seen.append((msg.name, len(json.loads(eb.durable)["received"])))
                return orig(peer, msg)

            b.peers.handlers["update_add_htlc"] = b.peers.handlers["commitment_signed"] = spy
            inv = b.invoices.create(50_000, "ahead")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            # the add went out before a wrote it, its commitment_signed after
            assert sent[0] == (["update_add_htlc"], 0)
            assert sent[1] == (["commitment_signed"], 1)
            # b wrote nothing for the add alone: its commitment_signed found it still unwritten
            assert seen[:2] == [("update_add_htlc", 0), ("commitment_signed", 0)]
            del peer_b.send_many
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")

            # the write after an add that went ahead fails: the peer is dropped and forgets it
            store = a.channels.commits.store
            a.channels.commits.store = FailingStore(a.db)
            out = ea.channel.add_htlc(60_000, b"\x11" * 32, a.chain.height + 40, b"\x00" + b"\x02" * 1365)
            a.channels.send_ahead(ea, out)
            assert ea.sent_ahead and not out.messages
            a.channels.commit(ea, out)
            await until(lambda: not eb.reestablished or not ea.reestablished, what="the disconnect")
            a.channels.commits.store = store
            await until(lambda: ea.reestablished and eb.reestablished, what="reestablish")
            assert not ea.channel.offered and not eb.channel.received
            assert not ea.sent_ahead
            inv = b.invoices.create(70_000, "after")
            assert (await a.channels.payments.pay(inv.bolt11))["status"] == "succeeded"
            await until(lambda: chan(a, b)["pending_htlcs"] == 0 and chan(b, a)["pending_htlcs"] == 0, what="settled")
            assert chan(b, a)["local_balance_msat"] == 120_000
        finally:
            await a.close()
            await b.close()

    run(main())


class _Channel:
    """Just what the commit group reads of a channel that has nothing to sign."""

    channel_id = b"\x01" * 32
    state = type("State", (), {"value": "NORMAL"})()

    def record_json(self) -> str:
        return '{"n": 1}'


class RecordingStore:
    """A store (lncli.node.commits.Store) that keeps what it is asked to write."""

    def __init__(self):
        self.calls = []

    def transaction(self):
        from contextlib import contextmanager

        @contextmanager
        def tx():
            self.calls.append("begin")
            yield "conn"
            self.calls.append("commit")

        return tx()

    def write_record(self, conn, row_id, state, record, now):
        self.calls.append(("record", row_id, state, record))

    def write_row(self, conn, row_id, state, record, meta, now):
        self.calls.append(("row", row_id, state, record))

    def queue_monitor_updates(self, conn, channel_id, updates):
        self.calls.append(("queue", channel_id, len(updates)))

    def drop_queued(self, conn, channel_id, upto):
        self.calls.append(("drop", channel_id, upto))

    def queued_monitor_updates(self):
        return []


def _group(store):
    from lncli.node.entry import Entry

    sent, acted = [], []
    group = CommitGroup(store, send_to=lambda peer, messages: sent.append((peer, list(messages))), peer=lambda n: None,
                        act=lambda e, events: acted.append(e), is_current=lambda e: True)
    e = Entry(row_id=7, channel=_Channel(), peer=b"\x02" * 33)
    return group, e, sent, acted


def test_the_group_writes_before_it_sends_and_a_failed_write_sends_nothing():
    store = RecordingStore()
    group, e, sent, acted = _group(store)
    msg = default_schema().messages["ping"]
    # no running loop: written at once (the row with every column the first time, then the record)
    group.commit(e, Outcome(messages=["m1"]), extra=lambda conn: store.calls.append("extra"))
    assert store.calls == ["begin", ("row", 7, "NORMAL", '{"n": 1}'), "extra", "commit"]
    assert sent == [(e.peer, ["m1"])] and acted == [e] and e.durable == '{"n": 1}'
    store.calls.clear()
    group.commit(e, Outcome())
    assert store.calls == ["begin", ("record", 7, "NORMAL", '{"n": 1}'), "commit"]
    # a store whose writes fail (a channel not written yet): the error reaches the caller,
    # nothing is sent or acted on, nothing stays pending
    group, e, sent, acted = _group(FailingStore(None))
    with pytest.raises(OSError, match="disk I/O error"):
        group.commit(e, Outcome(messages=[msg]))
    assert sent == [] and acted == [] and e.durable == ""
    assert group._pending == []


def test_a_failed_write_in_the_loop_is_logged_and_nothing_is_sent():
    async def main():
        group, e, sent, acted = _group(FailingStore(None))
        group.commit(e, Outcome(messages=["m1"]))
        await asyncio.sleep(0)  # the group write runs at the loop's next iteration
        await asyncio.sleep(0)
        assert sent == [] and acted == []

    asyncio.run(main())
