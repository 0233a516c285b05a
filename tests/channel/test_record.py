"""The stored record (lncli/channel/record.py): ``to_record``/``from_record`` round trips, and
``Channel.record_json``: the exact text of ``json.dumps(to_record(), separators=(",", ":"))``
on the SAME channel object over a whole life (its caches must follow every change), and a
reload gives the same text again."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from lncli.channel.channel import Channel
from lncli.channel.state import ChannelState
from tests.channel.harness import ONION, A, B, Pair, normal_pair, phash, preimage, roundtrip, script_for


def _dumps(c: Channel) -> str:
    return json.dumps(c.to_record(), separators=(",", ":"))


def check(c: Channel) -> None:
    text = c.record_json()
    assert text == _dumps(c)
    back = Channel.from_record(json.loads(text))
    assert back.to_record() == c.to_record()
    assert back.record_json() == text


class CheckedPair(Pair):
    """No reload between steps (the caches live on), but every step checks record_json."""

    def __init__(self, **kw):
        self.checks = 0
        super().__init__(persist=False, **kw)

    def apply(self, side, out):
        out = super().apply(side, out)
        for c in self.ch.values():
            check(c)
            self.checks += 1
        return out


@pytest.mark.parametrize("anchors", [False, True])
def test_record_json_over_a_whole_life(anchors):
    p = CheckedPair(anchors=anchors, push_msat=300_000_000)
    p.lock_in()
    p.call(A, "funding_confirmed", 6, 0x6F0000000100)
    n = 0
    for how in ("fulfill", "fail", "fail_malformed", "fulfill"):
        for sender, recv in ((A, B), (B, A)):
            n += 1
            p.call(sender, "add_htlc", 5_000_000 + n, phash(n), 500 + n, bytes([n]) * 1366)
            n += 1
            p.call(sender, "add_htlc", 700_000, phash(n), 600, ONION)  # dust on some commitments
            p.flush()
            for hid in sorted(p.ch[recv].received):
                if how == "fulfill":
                    pre = {phash(i): preimage(i) for i in range(n + 1)}[p.ch[recv].received[hid].payment_hash]
                    p.call(recv, "fulfill_htlc", hid, pre)
                elif how == "fail":
                    p.call(recv, "fail_htlc", hid, b"\x02" * 200)
                else:
                    p.call(recv, "fail_malformed_htlc", hid, hashlib.sha256(ONION).digest(), 0xC005)
            p.flush()
        p.call(A, "update_fee", 3000 + n)
        p.flush()
    # a reconnect with updates in flight both ways (some are forgotten and resent)
    p.call(A, "add_htlc", 9_000_000, phash(100), 700, ONION)
    p.call(A, "send_commitment")
    p.call(B, "add_htlc", 8_000_000, phash(101), 700, ONION)
    p.drop(B)
    p.reconnect()
    p.flush()
    for c in p.ch.values():
        check(c)
    p.call(B, "fulfill_htlc", max(p.ch[B].received), preimage(100))
    p.call(A, "fulfill_htlc", max(p.ch[A].received), preimage(101))
    p.flush()
    # what the node changes directly
    p.ch[A].local_shutdown_script = script_for("A-close")
    p.ch[B].local_shutdown_script = script_for("B-close")
    check(p.ch[A])
    p.ch[A].data_loss = True
    check(p.ch[A])
    p.ch[A].data_loss = False
    p.call(A, "shutdown", feerate_per_kw=1000)
    p.flush()
    assert p.ch[A].state == p.ch[B].state == ChannelState.CLOSING
    p.ch[A].mark_closed()
    check(p.ch[A])
    assert p.checks > 100


def test_record_json_follows_replaced_and_mutated_fields():
    p = CheckedPair(push_msat=300_000_000)
    p.lock_in()
    c = p.ch[A]
    check(c)
    c.policy = dataclasses.replace(c.policy, max_reserve_fraction=0.25)
    check(c)
    c.policy = dataclasses.replace(c.policy, max_reserve_fraction=1)  # int, not 1.0: JSON differs
    check(c)
    c.local_config = dataclasses.replace(c.local_config, htlc_minimum_msat=7)
    check(c)
    c.remote_basepoints = dataclasses.replace(c.remote_basepoints, htlc_basepoint=c.secrets.htlc_basepoint)
    check(c)
    c.local_shutdown_script = bytearray(script_for("x"))
    check(c)
    c.local_shutdown_script[2] ^= 1  # changed in place: no stale cache
    check(c)
    c.local_shutdown_script = None
    c.short_channel_id = 12345
    check(c)
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    rec = c.offered[0]
    check(c)
    rec.onion_routing_packet = b"\x07" * 1366
    check(c)
    rec.amount_msat = 5_000_001
    check(c)
    rec.amount_msat = 5_000_000
    rec.onion_routing_packet = ONION
    check(c)
    assert rec.json_text() == json.dumps(rec.to_json(), separators=(",", ":"))


def test_old_record_loads_and_gives_the_same_text():
    """A record as written before record_json existed (json.dumps(to_record())) still loads,
    and record_json of the loaded channel is that record's compact text."""
    p = Pair(push_msat=300_000_000, anchors=True)
    p.lock_in()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    p.flush()
    old = json.dumps(p.ch[A].to_record())
    c = Channel.from_record(json.loads(old))
    assert c.record_json() == json.dumps(json.loads(old), separators=(",", ":"))


def test_record_round_trip_is_stable():
    p = normal_pair(push_msat=50_000_000, anchors=True)
    p.call(A, "add_htlc", 1_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    rec = p.ch[A].to_record()
    again = roundtrip(p.ch[A]).to_record()
    assert rec == again
    with pytest.raises(ValueError):
        Channel.from_record({**rec, "version": 99})
