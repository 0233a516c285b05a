"""CLN gossip_store reading: CRC32C, records against CLN's own dump, the graph against CLN's
listchannels/listnodes, the mainnet-derived sample, corruption, and ``lncli gossip-dump``."""

from __future__ import annotations

import io
import json
import random
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.gossip import store
from lncli.gossip.store import GossipStoreError, crc32c, crc32c_py
from lncli.proto.scid import ShortChannelId
from tests.conftest import DATA

REGTEST = DATA / "cln-regtest-gossip_store"
SAMPLE = DATA / "gossip_store-sample"
RAW = REGTEST.read_bytes()
DAVE = "0237c4344f8a5885552b878d430520df6a44d62ba4b063ededefe68f260b566149"


def _bitwise_crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _record(msg: bytes, flags: int = store.COMPLETED, timestamp: int = 0) -> bytes:
    return struct.pack(">HHII", flags, len(msg), crc32c(msg, timestamp), timestamp) + msg


# --------------------------------------------------------------------------- CRC32C


@pytest.mark.parametrize("crc32c", [crc32c, crc32c_py], ids=["package", "python"])
def test_crc32c_check_values(crc32c):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC catalogue's check value
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI) B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64), st.integers(0, 2**32 - 1))
def test_crc32c_matches_bitwise_and_continues(a, b, seed):
    assert crc32c(a, seed) == _bitwise_crc32c(a, seed) == crc32c_py(a, seed)
    assert crc32c(b, crc32c(a, seed)) == crc32c(a + b, seed)


# --------------------------------------------------------------------------- against CLN's dump

_DUMP = re.compile(r"^(\d+): (DELETED )?(DYING )?(?:t=(\d+) )?(\w[\w ]*?)(?:\(([^)]*)\))?: (.*)$")


def _dump_lines():
    lines = (DATA / "cln-regtest-gossip_store.dump.txt").read_text().splitlines()
    assert lines[0] == "GOSSIP VERSION 16/0"
    # "OFFSET: uuid HEX" is the one line without a colon after its kind
    return [_DUMP.match(re.sub(r"^(\d+): uuid ", r"\1: uuid: ", line)).groups() for line in lines[1:]]


def test_every_record_matches_clns_dump():
    records = list(store.iter_records(RAW))
    dump = _dump_lines()
    assert len(records) == len(dump) == 25
    for rec, (off, deleted, dying, ts, kind, arg, rest) in zip(records, dump):
        assert rec.offset == int(off)
        assert rec.deleted == bool(deleted) and rec.dying == bool(dying)
        assert rec.completed
        msg = store.decode_record(rec)
        if kind == "uuid":
            assert rec.type_name == "uuid" and msg.uuid.hex() == rest
        elif kind == "channel_amount":
            assert rest == f"{msg.satoshis}sat"
        elif kind == "dying channel":
            m = re.fullmatch(r"(\S+) \(deadline (\d+)\)", rest)
            assert rec.type_name == "chan_dying"
            assert (str(msg.scid), msg.blockheight) == (m.group(1), int(m.group(2)))
        else:
            assert rec.type_name == kind
            assert rec.timestamp == int(ts)
            assert rec.message.hex() == rest
            if kind == "channel_update":
                assert arg == f"{msg.short_channel_id}/{msg.direction}"
            elif kind == "channel_announcement":
                assert arg == str(msg.short_channel_id)
            else:
                assert arg == msg.node_id.hex()


def test_flags_as_described():
    flags = [(r.type_name, r.flags) for r in store.iter_records(RAW)]
    updates = sorted(f for t, f in flags if t == "channel_update")
    assert updates == sorted([0x2000] * 6 + [0x2800] * 2 + [0xA000] + [0xA800] * 2)
    assert store.Record(0, 0x8000 | 0x2000 | 0x0800 | 0x0004, 0, 0, b"\x01\x00").flag_names == ["DELETED", "COMPLETED", "DYING", "0x0004"]


def test_all_crcs_and_signatures_verify():
    records = list(store.iter_records(RAW, verify_crc=True))
    assert all(crc32c(r.message, r.timestamp) == r.crc for r in records)
    s = store.summarize(RAW)
    assert s["signatures"] == {"valid": 19, "invalid": 0, "unchecked": 0}  # 4x4 + 11 + 4 = 31 signatures
    dumped = list(store.dump_records(RAW, include_deleted=True))
    signed = [d for d in dumped if d["type"] in ("channel_announcement", "node_announcement", "channel_update")]
    assert len(signed) == 19 and all(d["signatures_valid"] is True for d in signed)


def test_summary():
    s = store.summarize(io.BytesIO(RAW))
    assert s["version"] == {"major": 0, "minor": 16}
    assert s["by_type"] == {"uuid": 1, "channel_announcement": 4, "channel_amount": 4, "channel_update": 11, "node_announcement": 4, "chan_dying": 1}
    assert (s["records"], s["live"], s["deleted"], s["dying"]) == (25, 22, 3, 6)
    assert (s["channels"], s["dying_channels"], s["directions"], s["disabled_directions"]) == (4, 1, 8, 2)
    assert (s["nodes"], s["announced_nodes"], s["total_capacity_sat"]) == (4, 4, 5_000_000)


# --------------------------------------------------------------------------- graph against CLN


def _cln(name):
    return json.loads((DATA / f"cln-regtest-gossip_store.{name}.json").read_text())


def _assert_graph_matches_cln(graph_json):
    cln_channels = _cln("listchannels")["channels"]
    mine = {(c["short_channel_id"], c["direction"]): c for c in graph_json["channels"]}
    assert len(mine) == len(graph_json["channels"]) == len(cln_channels) == 8
    for c in cln_channels:
        m = mine[(c["short_channel_id"], c["direction"])]
        assert {k: m[k] for k in c} == c
    assert [m["dying"] for m in mine.values()].count(True) == 2
    cln_nodes = _cln("listnodes")["nodes"]
    nodes = {n["nodeid"]: n for n in graph_json["nodes"]}
    assert len(nodes) == len(cln_nodes) == 4
    for n in cln_nodes:
        assert nodes[n["nodeid"]] == n


def test_graph_equals_listchannels_and_listnodes():
    g = store.load_graph(RAW)
    _assert_graph_matches_cln({"channels": g.listchannels(), "nodes": g.listnodes()})
    dying = g.channels[ShortChannelId(103, 1, 0)]
    assert dying.dying and all(u.disabled for u in dying.updates)
    assert g.node(bytes.fromhex(DAVE)).dying


def test_delete_chan_and_other_records():
    scid = ShortChannelId(103, 1, 0)
    extra = (
        _record(b"\x10\x07" + scid.to_bytes())  # delete_chan
        + _record(b"\x10\x09" + (1234).to_bytes(8, "big") + bytes(32))  # ended
        + _record(b"\x13\x88" + b"hello")  # unknown 5000
    )
    g = store.load_graph(RAW + extra)
    assert scid not in g.channels and g.node(bytes.fromhex(DAVE)) is None
    assert len(g.listchannels()) == 6 and len(g.listnodes()) == 3
    recs = list(store.iter_records(RAW + extra))[-3:]
    assert store.decode_record(recs[0]) == store.DeleteChan(scid)
    assert store.decode_record(recs[1]).to_json() == {"equivalent_offset": 1234, "uuid": "00" * 32}
    assert recs[2].type_name == "unknown_5000" and store.decode_record(recs[2]).payload == b"hello"


def test_obsolete_private_records():
    recs = list(store.iter_records(RAW))
    ann_msg, upd_msg = recs[1].message, recs[3].message
    extra = _record(b"\x10\x08" + (77).to_bytes(8, "big") + len(ann_msg).to_bytes(2, "big") + ann_msg) + _record(
        b"\x10\x06" + len(upd_msg).to_bytes(2, "big") + upd_msg
    )
    a, u = (store.decode_record(r) for r in list(store.iter_records(RAW + extra))[-2:])
    assert a.satoshis == 77 and a.announcement.to_bytes() == ann_msg
    assert u.update.to_bytes() == upd_msg
    assert len(store.load_graph(RAW + extra).listchannels()) == 8  # not applied


def test_bad_signature_is_ignored_by_the_graph():
    recs = list(store.iter_records(RAW))
    upd = bytearray(recs[3].message)  # 103x4x0 direction 1
    upd[10] ^= 1
    data = RAW[:1] + b"".join(_record(r.message, r.flags, r.timestamp) if r is not recs[3] else _record(bytes(upd), r.flags, r.timestamp) for r in recs)
    g = store.load_graph(data)
    assert g.channels[ShortChannelId(103, 4, 0)].updates[1] is None
    assert store.load_graph(data, verify=False).channels[ShortChannelId(103, 4, 0)].updates[1] is not None
    out = [d for d in store.dump_records(data) if d["offset"] == recs[3].offset][0]
    assert out["signatures_valid"] is False and out["invalid_signatures"] == ["signature"]
    assert store.summarize(data)["signatures"]["invalid"] == 1


# --------------------------------------------------------------------------- the mainnet sample


def test_mainnet_sample_parses_fully():
    with open(SAMPLE, "rb") as f:
        s = store.summarize(f, verify=False)
    assert s["by_type"] == {"uuid": 1, "channel_announcement": 1306, "channel_amount": 1306, "channel_update": 2612}
    assert s["channels"] == 1306 and s["directions"] == 2612 and s["disabled_directions"] == 90
    assert s["deleted"] == 0 and s["dying"] == 0
    last = None
    for last in store.iter_records(SAMPLE.read_bytes()):
        store.decode_record(last)
    assert last.offset + 12 + len(last.message) == SAMPLE.stat().st_size


# --------------------------------------------------------------------------- corruption


def test_bad_version():
    with pytest.raises(GossipStoreError, match="major version 1") as e:
        list(store.iter_records(b"\x30" + RAW[1:]))
    assert e.value.offset == 0
    with pytest.raises(GossipStoreError, match="empty"):
        list(store.iter_records(b""))
    assert store.StoreReader(b"\x11").minor == 17  # a later minor version reads


def test_truncation_and_bad_crc_give_offsets():
    with pytest.raises(GossipStoreError, match="truncated record header") as e:
        list(store.iter_records(RAW[:47 + 5]))
    assert e.value.offset == 47
    with pytest.raises(GossipStoreError, match="truncated record") as e:
        list(store.iter_records(RAW[:500]))
    assert e.value.offset == 491
    bad = bytearray(RAW)
    bad[832 + 12 + 100] ^= 0x40
    with pytest.raises(GossipStoreError, match="bad CRC") as e:
        list(store.iter_records(bytes(bad)))
    assert e.value.offset == 832
    assert len(list(store.iter_records(bytes(bad), verify_crc=False))) == 25
    with pytest.raises(GossipStoreError, match="no message type"):
        list(store.iter_records(b"\x10" + _record(b"")))
    with pytest.raises(GossipStoreError, match="channel_amount") as e:
        store.load_graph(b"\x10" + _record(b"\x10\x05\x00"))
    assert e.value.offset == 1


def _consume(data: bytes, verify_crc: bool) -> None:
    for rec in store.iter_records(data, verify_crc=verify_crc):
        store.decode_record(rec)
    list(store.dump_records(data))
    store.summarize(data)
    store.load_graph(data, verify=False)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_store_only_decode_error(data):
    buf = bytearray(RAW)
    for _ in range(data.draw(st.integers(1, 3))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    for verify_crc in (True, False):
        try:
            if verify_crc:
                _consume(bytes(buf), True)
            else:
                for rec in store.iter_records(bytes(buf), verify_crc=False):
                    store.decode_record(rec)
        except DecodeError:
            pass


def test_mutated_messages_with_fixed_crcs_only_decode_error():
    """Mutations inside messages, with the CRCs recomputed, reach the message decoders."""
    rng = random.Random(7)
    recs = list(store.iter_records(RAW))
    for _ in range(300):
        out = [RAW[:1]]
        for r in recs:
            m = bytearray(r.message)
            if rng.random() < 0.3:
                i = rng.randrange(len(m))
                m[i] = rng.randrange(256)
                if rng.random() < 0.3:
                    m = m[: rng.randrange(2, len(m) + 1)]
            out.append(_record(bytes(m), r.flags, r.timestamp))
        try:
            _consume(b"".join(out), True)
        except DecodeError:
            pass


# --------------------------------------------------------------------------- CLI


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_cli_json_lines(script_runner):
    r = script_runner.run(["lncli", "gossip-dump", str(REGTEST)])
    assert r.returncode == 0, r.stderr
    out = _lines(r.stdout)
    assert len(out) == 22 and all("DELETED" not in o["flags"] for o in out)
    assert [o["offset"] for o in out][:3] == [1, 47, 491]
    for o in out:
        assert {"offset", "flags", "type", "timestamp", "message"} <= set(o)
        if o["type"] in ("channel_announcement", "node_announcement", "channel_update"):
            assert o["signatures_valid"] is True and o["problems"] == []
    upd = next(o for o in out if o["type"] == "channel_update")
    assert upd["message"]["short_channel_id"] == "103x4x0" and upd["message"]["htlc_maximum_msat"] == 1485000000


def test_cli_deleted_and_no_verify(script_runner):
    r = script_runner.run(["lncli", "gossip-dump", "--deleted", "--no-verify", str(REGTEST)])
    assert r.returncode == 0, r.stderr
    out = _lines(r.stdout)
    assert len(out) == 25 and sum("DELETED" in o["flags"] for o in out) == 3
    assert not any("signatures_valid" in o for o in out)


def test_cli_stdin_summary_and_graph(script_runner):
    r = script_runner.run(f"lncli gossip-dump --summary - < '{REGTEST}'", shell=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["channels"] == 4 and s["nodes"] == 4 and s["total_capacity_sat"] == 5_000_000
    r = script_runner.run(["lncli", "gossip-dump", "--graph", str(REGTEST)])
    assert r.returncode == 0, r.stderr
    _assert_graph_matches_cln(json.loads(r.stdout))
    r = script_runner.run(["lncli", "gossip-dump", "--summary", "--no-verify", str(SAMPLE)])
    assert r.returncode == 0 and json.loads(r.stdout)["channels"] == 1306


def _one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lncli: error: "), r.stderr
    return lines[0]


def test_cli_errors(script_runner, tmp_path):
    r = script_runner.run(["lncli", "gossip-dump", str(tmp_path / "missing")])
    assert r.returncode == 1 and "cannot read" in _one_error_line(r)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff\x00\x01")
    r = script_runner.run(["lncli", "gossip-dump", str(bad)])
    assert r.returncode == 1 and "offset 0" in _one_error_line(r)
    cut = tmp_path / "cut"
    cut.write_bytes(RAW[:2000])
    r = script_runner.run(["lncli", "gossip-dump", "--summary", str(cut)])
    assert r.returncode == 1 and "offset 1767" in _one_error_line(r)
    r = script_runner.run(["lncli", "gossip-dump", "--summary", "--graph", str(REGTEST)])
    assert r.returncode == 2
    _one_error_line(r)


def test_records_rebuild_the_file():
    for path in (REGTEST, SAMPLE):
        with open(path, "rb") as f:
            reader = store.StoreReader(f)
            body = b"".join(struct.pack(">HHII", r.flags, len(r.message), r.crc, r.timestamp) + r.message for r in reader)
        assert bytes([reader.major << 5 | reader.minor]) + body == path.read_bytes()
