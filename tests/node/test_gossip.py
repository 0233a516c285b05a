"""lncli.node.gossip's pure helpers against lncli.proto.gossip's verify functions."""

from __future__ import annotations

import hashlib

from lncli.node import gossip as ng
from lncli.node.features import CHAIN_HASHES
from lncli.proto import gossip as g
from lncli.proto.scid import ShortChannelId
from lncli.proto.transport import public_key

CHAIN = CHAIN_HASHES["regtest"]
SCID = ShortChannelId(110, 1, 0)


def _key(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _pair(name: str):
    nk, fk = _key(name + " node"), _key(name + " funding")
    return nk, fk, public_key(nk), public_key(fk)


def _both():
    a, b = _pair("a"), _pair("b")
    ann_a, a_first = ng.unsigned_channel_announcement(CHAIN, SCID, a[2], b[2], a[3], b[3])
    ann_b, b_first = ng.unsigned_channel_announcement(CHAIN, SCID, b[2], a[2], b[3], a[3])
    return a, b, ann_a, a_first, ann_b, b_first


def test_both_ends_build_the_same_announcement_in_bolt7_order():
    a, b, ann_a, a_first, ann_b, b_first = _both()
    assert ann_a == ann_b and a_first != b_first
    assert ann_a.node_id_1 < ann_a.node_id_2 and not ann_a.problems()
    # each bitcoin key sits with its node
    keys = {ann_a.node_id_1: ann_a.bitcoin_key_1, ann_a.node_id_2: ann_a.bitcoin_key_2}
    assert keys == {a[2]: a[3], b[2]: b[3]}


def test_announcement_signatures_complete_a_valid_announcement():
    a, b, ann, a_first, _, _ = _both()
    sig_a = ng.announcement_signatures(ann, a[0], a[1])
    sig_b = ng.announcement_signatures(ann, b[0], b[1])
    assert ng.check_announcement_signatures(ann, a[2], a[3], *sig_a)
    assert ng.check_announcement_signatures(ann, b[2], b[3], *sig_b)
    assert not ng.check_announcement_signatures(ann, b[2], b[3], *sig_a)
    assert not ng.check_announcement_signatures(ann, a[2], a[3], sig_a[1], sig_a[0])  # swapped keys
    full = ng.complete_announcement(ann, a_first, sig_a, sig_b)
    assert g.verify_channel_announcement(full)
    assert all(full.signatures().values())
    assert g.ChannelAnnouncement.from_bytes(full.to_bytes()) == full
    # the other end completes the same message
    assert ng.complete_announcement(ann, not a_first, sig_b, sig_a) == full
    assert not g.verify_channel_announcement(ng.complete_announcement(ann, not a_first, sig_a, sig_b))


def test_channel_update_and_node_announcement_verify():
    a, b, ann, a_first, _, _ = _both()
    full = ng.complete_announcement(ann, a_first, ng.announcement_signatures(ann, a[0], a[1]),
                                    ng.announcement_signatures(ann, b[0], b[1]))
    direction = 0 if a_first else 1
    u = ng.signed_channel_update(a[0], CHAIN, SCID, 1_700_000_000, direction, False, 1, 300_000_000)
    assert u.direction == direction and g.update_signer(full, u) == a[2]
    assert g.verify_channel_update(u, a[2]) and not g.verify_channel_update(u, b[2])
    assert not u.problems(300_000_000)
    assert (u.fee_base_msat, u.fee_proportional_millionths, u.cltv_expiry_delta) == (1000, 1, 34)
    graph = g.Graph()
    assert graph.add_channel(full, 300_000) and graph.apply_update(u)
    addrs = ng.encode_addresses([("0.0.0.0", 9735), ("::1", 9736), ("127.0.0.1", 9737)])
    na = ng.signed_node_announcement(a[0], a[2], 1_700_000_000, "alice", "#ff0080", addrs, b"\x02\x00")
    assert g.verify_node_announcement(na) and not na.problems()
    assert g.NodeAnnouncement.from_bytes(na.to_bytes()) == na
    assert [(x.type, x.address, x.port) for x in na.address_list] == [("ipv4", "127.0.0.1", 9737), ("ipv6", "::1", 9736)]
    assert graph.apply_node_announcement(na)
    (node,) = [n for n in graph.listnodes() if n["nodeid"] == a[2].hex()]
    assert node["alias"] == "alice" and node["color"] == "ff0080"
