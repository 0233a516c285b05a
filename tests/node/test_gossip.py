"""lncli.node.gossip: its pure helpers against lncli.proto.gossip's verify functions; gossip that\narrives before its block, on a real embedded chain."""

from __future__ import annotations

import asyncio
import hashlib

from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.chain.embedded import EmbeddedChain
from lncli.node import gossip as ng
from lncli.node.chainsync import ChainSync
from lncli.node.features import CHAIN_HASHES
from lncli.proto import gossip as g
from lncli.proto.scid import ShortChannelId
from lncli.proto.transport import public_key
from lncli.proto.wire import decode_message
from lncli.store.db import open_db

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


# --------------------------------------------------------------------------- gossip that waits for its block
# The Gossip component on a real embedded chain and chain view; the peers are recorders.


class _Peer:
    def __init__(self, name: str):
        self.node_id = public_key(_key(name + " node"))
        self.short_id = name
        self.close_reason = None
        self.features = b""
        self.sent: list[bytes] = []

    def send_many(self, raws):
        self.sent.extend(raws)


class _Peers:
    def __init__(self, *peers):
        self.peers = {p.node_id: p for p in peers}
        self.listen_addresses = []

    def get(self, node_id):
        return self.peers.get(node_id)


class _Node:
    """What Gossip reads of the node: identity, database, chain view, peers."""

    def __init__(self, db, chain, peers):
        self.db, self.chain, self.peers = db, chain, peers
        self.settings = type("S", (), {"network": "regtest"})()
        self.node_key = _key("a node")
        self.node_id = public_key(self.node_key)
        self.alias, self.color = "a", "#000000"


def _remote_channel(scid, funding_keys=None):
    """B-C's complete channel_announcement, B's channel_update and C's node_announcement."""
    b, c = _pair("b"), _pair("c")
    ann, b_first = ng.unsigned_channel_announcement(CHAIN, scid, b[2], c[2], b[3], c[3])
    full = ng.complete_announcement(ann, b_first, ng.announcement_signatures(ann, b[0], b[1]),
                                    ng.announcement_signatures(ann, c[0], c[1]))
    upd = ng.signed_channel_update(b[0], CHAIN, scid, 1_700_000_000, 0 if b_first else 1, False, 1, 10_000_000)
    na = ng.signed_node_announcement(c[0], c[2], 1_700_000_000, "carol", "#00ff00", b"", b"")
    spk = p2wsh_script(funding_script(full.bitcoin_key_1, full.bitcoin_key_2))
    return full, upd, na, spk, b, c


def _msg(raw: bytes):
    return decode_message(raw)


async def _gossip_on_chain(tmp_path):
    chain = EmbeddedChain(tmp_path / "chain")
    view = ChainSync(chain, poll_interval=0.02)
    await view.start()
    b_peer, d_peer = _Peer("b"), _Peer("d")
    node = _Node(open_db(tmp_path / "node.sqlite3", {}), view, _Peers(b_peer, d_peer))
    gs = ng.Gossip(node)
    await gs.start()
    return chain, view, gs, b_peer, d_peer


def test_gossip_ahead_of_our_block_waits_and_is_accepted_at_the_block(tmp_path):
    async def main():
        chain, view, gs, b_peer, d_peer = await _gossip_on_chain(tmp_path)
        try:
            tip = view.height
            scid = ShortChannelId(tip + 1, 0, 0)  # the next block's coinbase output 0
            full, upd, na, spk, b, c = _remote_channel(scid)
            # B saw the block first: its announcement, update and C's node_announcement reach us before it
            await gs.on_channel_announcement(b_peer, _msg(full.to_bytes()))
            gs.on_channel_update(b_peer, _msg(upd.to_bytes()))
            gs.on_node_announcement(b_peer, _msg(na.to_bytes()))
            # an update for it signed by the wrong end is not kept (it would take the real one's place)
            forged = ng.signed_channel_update(c[0], CHAIN, scid, 1_700_000_001, upd.direction, False, 1, 10_000_000)
            gs.on_channel_update(b_peer, _msg(forged.to_bytes()))
            assert scid not in gs.graph.channels
            assert gs.view()["pending"] == {"channel_announcements": 1, "channel_updates": 1, "node_announcements": 1}
            await view.call(chain.mine, 1, spk)
            await view.wait_for_height(tip + 1, timeout=10)
            ch = gs.graph.channels[scid]
            assert ch.updates[upd.direction] == upd and gs.graph.node(c[2]).announcement == na
            v = gs.view()
            assert v["pending"] == {"channel_announcements": 0, "channel_updates": 0, "node_announcements": 0}
            assert v["dropped"] == {}
            assert {r["source"] for r in v["channels"]} == {b[2].hex()}
            # relayed to the other peer, in order, and not back to B
            assert d_peer.sent == [full.to_bytes(), upd.to_bytes(), na.to_bytes()] and b_peer.sent == []
            # and kept: a restart loads it from the database
            again = ng.Gossip(gs.node)
            assert again.graph.channels[scid].updates[upd.direction] == upd
        finally:
            await gs.close()
            await view.close()
            chain.close()

    asyncio.run(main())


def test_gossip_that_cannot_be_checked_is_counted(tmp_path):
    async def main():
        chain, view, gs, b_peer, _ = await _gossip_on_chain(tmp_path)
        try:
            tip = view.height
            scid = ShortChannelId(tip + 1, 0, 0)
            full, upd, na, _spk, _b, _c = _remote_channel(scid)
            await gs.on_channel_announcement(b_peer, _msg(full.to_bytes()))
            gs.on_channel_update(b_peer, _msg(upd.to_bytes()))
            # the block comes, but its output 0 pays someone else: the announcement is ignored
            # (rightly, not counted) and the update that waited with it is counted
            await view.call(chain.mine, 1)
            await view.wait_for_height(tip + 1, timeout=10)
            assert scid not in gs.graph.channels
            # an update for a channel nobody announced, a node_announcement for a node with no channel
            other = ng.signed_channel_update(_key("b node"), CHAIN, ShortChannelId(3, 0, 0), 1, 0, False, 1, 1000)
            gs.on_channel_update(b_peer, _msg(other.to_bytes()))
            gs.on_node_announcement(b_peer, _msg(na.to_bytes()))
            v = gs.view()
            assert v["pending"]["channel_announcements"] == 0
            assert v["dropped"] == {"announcement_refused": 1, "node_announcement_for_unknown_node": 1,
                                    "update_for_unknown_channel": 1}
        finally:
            await gs.close()
            await view.close()
            chain.close()

    asyncio.run(main())
