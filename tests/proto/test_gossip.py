"""BOLT 7 gossip messages: decoding, signatures, field rules, the graph, fees.

The messages are the 19 that CLN v26.06 wrote into the regtest gossip_store, taken from CLN's own
dump of it (dump.txt), so these tests do not depend on the store reader.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import gossip, wire
from lncli.proto.gossip import (
    Address,
    ChannelAnnouncement,
    ChannelUpdate,
    Graph,
    NodeAnnouncement,
    fee_msat,
    parse_addresses,
)
from lncli.proto.scid import ShortChannelId
from tests.conftest import DATA, load_vector

_LINE = re.compile(r"^(\d+): (?:DELETED )?(?:DYING )?t=(\d+) (\w+)\(([^)]*)\): ([0-9a-f]+)$")


def _messages() -> list[tuple[int, str, bytes]]:
    out = []
    for line in (DATA / "cln-regtest-gossip_store.dump.txt").read_text().splitlines():
        m = _LINE.match(line)
        if m:
            out.append((int(m.group(1)), m.group(3), bytes.fromhex(m.group(5))))
    return out


MESSAGES = _messages()
DECODERS = {
    "channel_announcement": ChannelAnnouncement.from_bytes,
    "node_announcement": NodeAnnouncement.from_bytes,
    "channel_update": ChannelUpdate.from_bytes,
}
ANNS = {a.short_channel_id: a for a in (ChannelAnnouncement.from_bytes(m) for _, n, m in MESSAGES if n == "channel_announcement")}
DAVE = "0237c4344f8a5885552b878d430520df6a44d62ba4b063ededefe68f260b566149"
ALICE = "0322884df2f998fd8029c371fde250c5baad605b2b078470f6e8149f8adb207266"


def test_dump_has_all_messages():
    names = [n for _, n, _ in MESSAGES]
    assert (names.count("channel_announcement"), names.count("channel_update"), names.count("node_announcement")) == (4, 11, 4)


@pytest.mark.parametrize("offset,name,raw", MESSAGES, ids=[f"{o}-{n}" for o, n, _ in MESSAGES])
def test_decode_round_trip_and_agrees_with_wire_schema(offset, name, raw):
    msg = DECODERS[name](raw)
    assert msg.to_bytes() == raw
    ref = wire.decode_message(raw)
    assert ref.name == name
    for k, v in ref.fields().items():
        mine = getattr(msg, k)
        if isinstance(mine, ShortChannelId):
            assert mine.to_int() == int(v)
        else:
            assert mine == v, k
    assert msg.extension == ref.extension
    assert msg.problems() == ()


def test_all_31_signatures_verify():
    count = 0
    for _, name, raw in MESSAGES:
        msg = DECODERS[name](raw)
        if name == "channel_announcement":
            sigs = msg.signatures()
            assert all(sigs.values()) and gossip.verify_channel_announcement(msg)
            count += len(sigs)
        elif name == "node_announcement":
            assert gossip.verify_node_announcement(msg)
            count += 1
        else:
            ann = ANNS[msg.short_channel_id]
            signer = gossip.update_signer(ann, msg)
            assert signer == (ann.node_id_2 if msg.direction else ann.node_id_1)
            assert gossip.verify_channel_update(msg, signer)
            other = ann.node_id_1 if signer == ann.node_id_2 else ann.node_id_2
            assert not gossip.verify_channel_update(msg, other)
            count += 1
    assert count == 31


def test_signed_hash_is_sha256d_after_the_signatures():
    for _, name, raw in MESSAGES:
        msg = DECODERS[name](raw)
        assert msg.signed_hash() == gossip.sha256d(raw[msg.SIGNED_OFFSET :])


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_each_announcement_signature_is_checked(index):
    ann = next(iter(ANNS.values()))
    names = ["node_signature_1", "node_signature_2", "bitcoin_signature_1", "bitcoin_signature_2"]
    sig = bytearray(getattr(ann, names[index]))
    sig[10] ^= 1
    bad = dataclasses.replace(ann, **{names[index]: bytes(sig)})
    assert not gossip.verify_channel_announcement(bad)
    assert [k for k, v in bad.signatures().items() if not v] == [names[index]]


def test_a_changed_field_breaks_the_signature():
    upd = next(ChannelUpdate.from_bytes(m) for _, n, m in MESSAGES if n == "channel_update")
    ann = ANNS[upd.short_channel_id]
    assert not gossip.verify_channel_update(dataclasses.replace(upd, fee_base_msat=upd.fee_base_msat + 1), gossip.update_signer(ann, upd))
    na = next(NodeAnnouncement.from_bytes(m) for _, n, m in MESSAGES if n == "node_announcement")
    assert not gossip.verify_node_announcement(dataclasses.replace(na, extension=b"\x00"))


def test_node_announcement_fields():
    na = next(NodeAnnouncement.from_bytes(m) for _, n, m in MESSAGES if n == "node_announcement" and m.hex().find(ALICE) > 0)
    assert na.alias_text == "alice-regtest" and na.color == "e01010"
    assert na.node_id.hex() == ALICE
    assert [a.type for a in na.address_list] == ["ipv4"] and na.address_list[0].address == "127.0.0.1"
    j = na.to_json()
    assert j["alias"] == "alice-regtest" and j["addresses"][0]["port"] == na.address_list[0].port


def test_channel_update_flags():
    ups = [ChannelUpdate.from_bytes(m) for _, n, m in MESSAGES if n == "channel_update"]
    assert {u.direction for u in ups} == {0, 1}
    assert sum(u.disabled for u in ups) == 2  # C and D's updates of the closed 103x1x0
    assert all(u.message_flags & gossip.MUST_BE_ONE for u in ups) and not any(u.dont_forward for u in ups)


# --------------------------------------------------------------------------- field rules


def _update() -> ChannelUpdate:
    return next(ChannelUpdate.from_bytes(m) for _, n, m in MESSAGES if n == "channel_update")


def test_update_problems():
    u = _update()
    assert any("must_be_one" in p for p in dataclasses.replace(u, message_flags=0).problems())
    assert any("unassigned" in p for p in dataclasses.replace(u, message_flags=0x05).problems())
    assert any("channel_flags" in p for p in dataclasses.replace(u, channel_flags=0x04).problems())
    assert any("timestamp" in p for p in dataclasses.replace(u, timestamp=0).problems())
    assert any("less than htlc_minimum" in p for p in dataclasses.replace(u, htlc_minimum_msat=u.htlc_maximum_msat + 1).problems())
    assert any("capacity" in p for p in u.problems(capacity_msat=u.htlc_maximum_msat - 1))
    assert u.problems(capacity_msat=u.htlc_maximum_msat) == ()


def test_announcement_node_id_order():
    a = next(iter(ANNS.values()))
    assert a.node_id_1 < a.node_id_2
    swapped = dataclasses.replace(a, node_id_1=a.node_id_2, node_id_2=a.node_id_1)
    assert any("lexicographically" in p for p in swapped.problems())


def _node() -> NodeAnnouncement:
    return next(NodeAnnouncement.from_bytes(m) for _, n, m in MESSAGES if n == "node_announcement")


def _with_addresses(data: bytes) -> NodeAnnouncement:
    na = _node()
    return NodeAnnouncement.from_bytes(dataclasses.replace(na, addresses=data).to_bytes())


def test_alias_rules():
    na = _node()
    assert any("UTF-8" in p for p in dataclasses.replace(na, alias=b"\xff" + bytes(31)).problems())
    assert any("zero byte" in p for p in dataclasses.replace(na, alias=b"a\x00b" + bytes(29)).problems())
    snow = "☃ snow".encode() + bytes(32 - len("☃ snow".encode()))
    assert dataclasses.replace(na, alias=snow).alias_text == "☃ snow"


def test_address_descriptors_every_type():
    onion3 = bytes(range(35))
    data = (
        b"\x01" + bytes([192, 0, 2, 1]) + (9735).to_bytes(2, "big")
        + b"\x02" + bytes.fromhex("20010db8000000000000000000000001") + (9736).to_bytes(2, "big")
        + b"\x03" + bytes(10) + (1).to_bytes(2, "big")
        + b"\x04" + onion3 + (9737).to_bytes(2, "big")
        + b"\x05" + bytes([11]) + b"example.com" + (9738).to_bytes(2, "big")
    )
    addrs, tail = parse_addresses(data)
    assert tail == b""
    assert [(a.type, a.address, a.port) for a in addrs] == [
        ("ipv4", "192.0.2.1", 9735),
        ("ipv6", "2001:db8::1", 9736),
        ("torv2", "aaaaaaaaaaaaaaaa.onion", 1),
        ("torv3", "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypsaijc.onion", 9737),
        ("dns", "example.com", 9738),
    ]
    assert len(addrs[3].address) == 62
    na = _with_addresses(data)
    assert na.address_list == addrs
    assert any("Tor v2" in p for p in na.problems())


def test_address_rules():
    ip = b"\x01\x7f\x00\x00\x01"
    # unknown type: it and what follows are ignored
    addrs, tail = parse_addresses(ip + b"\x26\x07" + b"\x09zzz")
    assert [a.address for a in addrs] == ["127.0.0.1"] and tail == b"\x09zzz"
    assert any("unknown address descriptor type 9" in p for p in _with_addresses(ip + b"\x26\x07\x09zzz").problems())
    assert any("port 0" in p for p in _with_addresses(ip + b"\x00\x00").problems())
    dns = b"\x05\x01a\x00\x01"
    assert any("more than one DNS" in p for p in _with_addresses(dns + dns).problems())
    assert any("ascending" in p for p in _with_addresses(dns + ip + b"\x00\x01").problems())
    assert any("not ASCII letters" in p for p in _with_addresses(b"\x05\x03a_b\x00\x01").problems())
    assert Address("ipv4", "1.2.3.4", 1, 1).to_json() == {"type": "ipv4", "address": "1.2.3.4", "port": 1}
    for truncated in (b"\x01\x7f\x00", b"\x02" + bytes(17), b"\x04" + bytes(30), b"\x05", b"\x05\x05ab"):
        with pytest.raises(DecodeError):
            parse_addresses(truncated)
        with pytest.raises(DecodeError):
            _with_addresses(truncated)


# --------------------------------------------------------------------------- fees: BOLT 7 routing example


def test_routing_example_fees():
    ex = load_vector("bolt07_scid.json")["routing_example"]
    hop = {(u["from"], u["to"]): u for u in ex["channel_updates"]}
    for pay in ex["payments"]:
        route = pay["route"]  # the payer's first peer first ... the payee last
        amount = pay["final_amt_to_forward"]
        cltv = 0
        fees = {}
        # walk back from the payee: each intermediate node charges its channel_update's fee
        for i in range(len(route) - 2, -1, -1):
            u = hop[(route[i], route[i + 1])]
            if i == 0:
                break
            fee = fee_msat(amount, u["fee_base_msat"], u["fee_proportional_millionths"])
            fees[route[i]] = fee
            amount += fee
            cltv += u["cltv_expiry_delta"]
        assert amount == pay["first_hop_amount_msat"], route
        if "fee_at_B_msat" in pay:
            assert fees["B"] == pay["fee_at_B_msat"]
        expect = pay["first_hop_cltv_expiry"].replace("current-block-height", "").replace(" ", "").strip("+")
        extra = ex["min_final_cltv_expiry_delta"] + ex["shadow_route_extra_cltv"]
        assert cltv + extra == sum(int(x) for x in expect.split("+"))


def test_fee_rounds_down():
    assert fee_msat(4999999, 200, 2000) == 10199
    assert fee_msat(0, 1, 10) == 1
    assert fee_msat(1_000_000, 0, 1) == 1 and fee_msat(999_999, 0, 1) == 0


# --------------------------------------------------------------------------- graph


def _graph() -> Graph:
    g = Graph()
    for _, name, raw in MESSAGES:
        msg = DECODERS[name](raw)
        if name == "channel_announcement":
            g.add_channel(msg, 1000)
        elif name == "channel_update":
            g.apply_update(msg)
        else:
            g.apply_node_announcement(msg)
    return g


def test_graph_rules():
    g = _graph()
    assert len(g.channels) == 4 and len(g.nodes) == 4
    assert all(n.announcement is not None for n in g.nodes.values())
    ann = next(iter(ANNS.values()))
    assert not g.add_channel(ann)  # known already
    # an update for an unknown channel, an older one and an equal one are ignored
    u = g.channels[ann.short_channel_id].updates[0]
    assert not g.apply_update(dataclasses.replace(u, short_channel_id=ShortChannelId(1, 1, 1)))
    assert not g.apply_update(dataclasses.replace(u, timestamp=u.timestamp - 1, fee_base_msat=7))
    assert not g.apply_update(u)
    assert g.apply_update(dataclasses.replace(u, timestamp=u.timestamp + 1, fee_base_msat=7))
    assert g.channels[ann.short_channel_id].updates[0].fee_base_msat == 7
    # node announcements: only for nodes with channels, only newer
    na = g.node(ann.node_id_1).announcement
    assert not g.apply_node_announcement(na)
    assert not g.apply_node_announcement(dataclasses.replace(na, node_id=b"\x02" + bytes(32), timestamp=na.timestamp + 1))
    assert g.apply_node_announcement(dataclasses.replace(na, timestamp=na.timestamp + 1))


def test_graph_remove_channel_forgets_lonely_nodes():
    g = _graph()
    dying = ShortChannelId(103, 1, 0)  # C-D; D has no other channel
    d = bytes.fromhex(DAVE)
    assert d in (ANNS[dying].node_id_1, ANNS[dying].node_id_2)
    assert g.mark_dying(dying) and g.channels[dying].dying
    assert g.remove_channel(dying) and not g.remove_channel(dying)
    assert g.node(d) is None and len(g.nodes) == 3
    assert not g.mark_dying(dying) and not g.set_amount(dying, 1)
    assert all(len(g.node_channels(n)) >= 1 for n in g.nodes)


def test_listchannels_shape():
    entries = _graph().listchannels()
    assert len(entries) == 8
    e = entries[0]
    assert e["amount_msat"] == 1_000_000 and e["public"] is True
    assert {"source", "destination", "short_channel_id", "active", "base_fee_millisatoshi", "fee_per_millionth", "delay", "htlc_minimum_msat", "htlc_maximum_msat", "last_update", "channel_flags", "message_flags"} <= set(e)


# --------------------------------------------------------------------------- robustness


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([256, 257, 258]), st.binary(max_size=600))
def test_random_bytes_only_decode_error(typ, body):
    raw = typ.to_bytes(2, "big") + body
    try:
        msg = DECODERS[{256: "channel_announcement", 257: "node_announcement", 258: "channel_update"}[typ]](raw)
    except DecodeError:
        return
    assert msg.to_bytes() == raw
    msg.problems()
    msg.to_json()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MESSAGES), st.data())
def test_mutated_messages_only_decode_error(item, data):
    _, name, raw = item
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    buf = buf[:cut] if data.draw(st.booleans()) else buf
    try:
        msg = DECODERS[name](bytes(buf))
    except DecodeError:
        return
    assert msg.to_bytes() == bytes(buf)
    msg.problems()
    if name == "channel_update":
        gossip.verify_channel_update(msg, ANNS[next(iter(ANNS))].node_id_1)
    elif name == "channel_announcement":
        gossip.verify_channel_announcement(msg)
    else:
        gossip.verify_node_announcement(msg)


def test_wrong_type_and_non_bytes():
    raw = next(m for _, n, m in MESSAGES if n == "channel_update")
    for bad in (b"", b"\x01", raw[:1] + b"\x01" + raw[2:]):
        with pytest.raises(DecodeError):
            ChannelUpdate.from_bytes(bad)
    with pytest.raises(DecodeError):
        ChannelAnnouncement.from_bytes("0100")  # type: ignore[arg-type]
