"""BOLT 7 short_channel_id and BOLT 2 channel_id."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyln.proto.primitives import ShortChannelId as PylnScid

from lncli.errors import DecodeError
from lncli.proto.scid import ShortChannelId, channel_id, channel_id_from_outpoint, parse_channel_ref, parse_outpoint
from tests.conftest import load_vector

SCID = load_vector("bolt07_scid.json")
COMMITMENTS = load_vector("bolt03_commitments.json")


def test_spec_example():
    ex = SCID["scid_example"]
    scid = ShortChannelId.from_str(ex["text"])
    assert (scid.block, scid.txindex, scid.output) == (ex["block_height"], ex["tx_index"], ex["output_index"])
    assert scid.to_int() == ex["u64_derived"]
    assert scid.to_bytes().hex() == ex["hex_derived"]
    assert str(scid) == ex["text"]
    assert ShortChannelId.from_int(ex["u64_derived"]) == scid
    assert ShortChannelId.from_bytes(bytes.fromhex(ex["hex_derived"])) == scid
    assert ShortChannelId.parse(str(ex["u64_derived"])) == scid
    assert ShortChannelId.from_str("539268:845:1") == scid


@pytest.mark.parametrize("pair", SCID["scid_pairs"], ids=lambda p: p["text"])
def test_scid_pairs(pair):
    scid = ShortChannelId.from_str(pair["text"])
    assert scid.to_bytes().hex() == pair["hex"]
    assert str(ShortChannelId.from_bytes(bytes.fromhex(pair["hex"]))) == pair["text"]


def test_frozen():
    scid = ShortChannelId(1, 2, 3)
    with pytest.raises(AttributeError):
        scid.block = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        scid.extra = 5  # type: ignore[attr-defined]


def test_one_type_is_the_u64():
    """The same object serves the wire codec (an int) and the text/parts forms."""
    scid = ShortChannelId(539268, 845, 1)
    assert isinstance(scid, int) and scid == 592931436542885889 and hash(scid) == hash(592931436542885889)
    assert ShortChannelId(592931436542885889) == scid and ShortChannelId("539268x845x1") == scid
    assert ShortChannelId(scid) is scid
    assert {scid: 1}[592931436542885889] == 1
    assert repr(scid) == "ShortChannelId('539268x845x1')" and f"{scid}" == "539268x845x1"
    assert type(scid + 0) is int  # arithmetic leaves the type
    assert ShortChannelId.parse("0x083a8400034d0001") == scid
    assert ShortChannelId(1, 2, 3) < ShortChannelId(1, 3, 0) < ShortChannelId(2, 0, 0)
    assert pickle.loads(pickle.dumps(scid)) == scid and type(pickle.loads(pickle.dumps(scid))) is ShortChannelId
    from lncli.proto import wire

    assert wire.ShortChannelId is ShortChannelId


@pytest.mark.parametrize("text", ["0" * 21, "0" * 2732, "0x" + "0" * 17, "1" * 21])
def test_too_many_digits(text):
    with pytest.raises(DecodeError):
        ShortChannelId.parse(text)
    with pytest.raises(DecodeError):
        parse_channel_ref(text)


def test_error_quotes_a_short_prefix():
    bad = "0" * 2732
    with pytest.raises(DecodeError) as e:
        parse_channel_ref(bad)
    msg = str(e.value)
    assert len(msg) < 300 and "'" + "0" * 40 + "'…" in msg and "0" * 41 not in msg
    with pytest.raises(DecodeError) as e:
        ShortChannelId.from_str("9" * 500)
    assert "9" * 41 not in str(e.value) and "…" in str(e.value)
    with pytest.raises(DecodeError) as e:
        ShortChannelId.from_str("1x2")  # short inputs quoted whole, as before
    assert str(e.value).startswith("'1x2' is not a short_channel_id")


TXID = "8984484a580b825b9972d7adb15050b3ab624ccd731946b3eeddb92f4e7ef6be"


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("539268x845x1", "short_channel_id", ShortChannelId(539268, 845, 1)),
        (" 539268:845:1 ", "short_channel_id", ShortChannelId(539268, 845, 1)),
        ("539268X845X1", "short_channel_id", ShortChannelId(539268, 845, 1)),
        ("592931436542885889", "short_channel_id", ShortChannelId(539268, 845, 1)),
        ("0x083A8400034D0001", "short_channel_id", ShortChannelId(539268, 845, 1)),
        (TXID.upper(), "channel_id", bytes.fromhex(TXID)),
        ("02" + TXID, "node_id", bytes.fromhex("02" + TXID)),
        (f"{TXID}:1", "outpoint", (bytes.fromhex(TXID)[::-1], 1)),
    ],
)
def test_parse_channel_ref(text, kind, value):
    ref = parse_channel_ref(text)
    assert (ref.kind, ref.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "hello", "1x2", "16777216x0x0", TXID[:-1], f"{TXID}:x", f"{TXID[:-1]}:1", "18446744073709551616"])
def test_parse_channel_ref_refuses(text):
    with pytest.raises(DecodeError):
        parse_channel_ref(text)


def test_parse_channel_ref_kinds():
    with pytest.raises(DecodeError, match=r"is not a channel_id \(64 hex\) or a funding outpoint TXID:VOUT$"):
        parse_channel_ref("1x2x3", ("channel_id", "outpoint"))
    with pytest.raises(DecodeError, match="is not a short_channel_id"):
        parse_channel_ref("02" + TXID, ("short_channel_id",))


@pytest.mark.parametrize(
    "text",
    [
        "", "1x2", "1x2x3x4", "1x2:3", "1:2x3", " 1x2x3", "1x2x3\n", "1_0x2x3", "+1x2x3", "-1x2x3",
        "16777216x0x0", "0x16777216x0", "0x0x65536", "1X2X3", "٣x2x3", "0x1x2 ", "99999999999x1x1",
    ],
)
def test_bad_text(text):
    with pytest.raises(DecodeError):
        ShortChannelId.from_str(text)
    with pytest.raises(DecodeError):
        ShortChannelId.parse(text)


@pytest.mark.parametrize("args", [(1 << 24, 0, 0), (0, 1 << 24, 0), (0, 0, 1 << 16), (-1, 0, 0), (True, 0, 0)])
def test_range_checks(args):
    with pytest.raises(DecodeError):
        ShortChannelId(*args)


@pytest.mark.parametrize("value", [-1, 1 << 64, "1"])
def test_bad_int(value):
    with pytest.raises(DecodeError):
        ShortChannelId.from_int(value)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x00" * 9, "0" * 8, None])
def test_bad_bytes(data):
    with pytest.raises(DecodeError):
        ShortChannelId.from_bytes(data)


# --- channel_id ---------------------------------------------------------------------------

# A published CLN `listpeers` entry (short_channel_id 577040x1083x1): the displayed
# funding_txid and the channel_id it reported.
CLN_FUNDING_TXID = "fa709f9aad74d239fbe0fcf278299b0f7a198428e9154e8b584478721edb56b7"
CLN_CHANNEL_ID = "b756db1e727844588b4e15e92884197a0f9b2978f2fce0fb39d274ad9a9f70fb"


def test_channel_id_matches_cln():
    assert channel_id_from_outpoint(CLN_FUNDING_TXID, 1).hex() == CLN_CHANNEL_ID
    txid, vout = parse_outpoint(f"{CLN_FUNDING_TXID}:1")
    assert (txid, vout) == (bytes.fromhex(CLN_FUNDING_TXID)[::-1], 1)
    assert channel_id(txid, vout).hex() == CLN_CHANNEL_ID


def test_channel_id_uses_internal_byte_order():
    """Appendix B/C: the funding txid as displayed, and as it sits in the commitment tx's outpoint."""
    params = COMMITMENTS["commitment_params"]
    commit_tx = bytes.fromhex(COMMITMENTS["static_remotekey_no_anchors"][0]["commit_tx"])
    internal = commit_tx[7 : 7 + 32]  # version, marker, flag, input count, then the outpoint txid
    assert internal == bytes.fromhex(params["funding_tx_id"])[::-1]
    cid = channel_id_from_outpoint(params["funding_tx_id"], params["funding_output_index"])
    assert cid == channel_id(internal, 0) == internal  # output 0 changes nothing
    cid5 = channel_id(internal, 0x0102)
    assert cid5[:30] == internal[:30]
    assert cid5[30] == internal[30] ^ 0x01 and cid5[31] == internal[31] ^ 0x02


@pytest.mark.parametrize(
    "txid,vout", [(bytes(31), 0), (bytes(33), 0), ("00" * 32, 0), (bytes(32), 1 << 16), (bytes(32), -1), (bytes(32), True)]
)
def test_channel_id_bad_input(txid, vout):
    with pytest.raises(DecodeError):
        channel_id(txid, vout)


@pytest.mark.parametrize(
    "text",
    [
        "", ":", CLN_FUNDING_TXID, f"{CLN_FUNDING_TXID}:", f"{CLN_FUNDING_TXID}:-1", f"{CLN_FUNDING_TXID}:1:2",
        f"{CLN_FUNDING_TXID}:4294967296", f"{CLN_FUNDING_TXID[:-2]}:1", f"{CLN_FUNDING_TXID}00:1",
        f"{CLN_FUNDING_TXID[:-1]}g:1", f"{CLN_FUNDING_TXID}: 1", f"{CLN_FUNDING_TXID}:1_0", f"{CLN_FUNDING_TXID}:١",
    ],
)
def test_bad_outpoints(text):
    with pytest.raises(DecodeError):
        parse_outpoint(text)


def test_outpoint_vout_beyond_channel_id_range():
    txid, vout = parse_outpoint(f"{CLN_FUNDING_TXID}:70000")
    assert vout == 70000
    with pytest.raises(DecodeError):
        channel_id(txid, vout)


# --- properties ---------------------------------------------------------------------------

scids = st.builds(
    ShortChannelId, st.integers(0, (1 << 24) - 1), st.integers(0, (1 << 24) - 1), st.integers(0, (1 << 16) - 1)
)


@settings(max_examples=300)
@given(scids)
def test_scid_round_trips(scid):
    assert ShortChannelId.from_str(str(scid)) == scid
    assert ShortChannelId.from_str(str(scid).replace("x", ":")) == scid
    assert ShortChannelId.from_int(scid.to_int()) == scid
    assert ShortChannelId.from_bytes(scid.to_bytes()) == scid
    assert ShortChannelId.parse(str(scid.to_int())) == scid
    assert ShortChannelId.parse(hex(scid)) == scid
    assert ShortChannelId(int(scid)) == scid and ShortChannelId(str(scid)) == scid
    assert ShortChannelId(scid.block, scid.txindex, scid.output) == scid
    assert parse_channel_ref(str(scid)).value == scid
    pyln = PylnScid.from_int(scid.to_int())  # independent implementation
    assert pyln.to_bytes() == scid.to_bytes() and str(pyln) == str(scid)


@settings(max_examples=300)
@given(st.integers(0, (1 << 64) - 1))
def test_every_u64_is_a_scid(value):
    assert ShortChannelId.from_int(value).to_int() == value
    scid = ShortChannelId(value)
    assert type(scid) is ShortChannelId and int(scid) == value
    assert ShortChannelId.from_bytes(value.to_bytes(8, "big")) == scid and scid.to_bytes() == value.to_bytes(8, "big")
    assert ShortChannelId.from_str(str(scid)) == scid and ShortChannelId.parse(str(value)) == scid
    assert scid.block << 40 | scid.txindex << 16 | scid.output == value


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"\A[0-9]{1,9}[x:][0-9]{1,9}[x:][0-9]{1,6}\Z")))
def test_random_text_only_raises_decode_error(text):
    for parser in (ShortChannelId.from_str, ShortChannelId.parse):
        try:
            scid = parser(text)
        except DecodeError:
            continue
        assert isinstance(scid, ShortChannelId)


@settings(max_examples=200)
@given(st.binary(max_size=12))
def test_random_bytes_only_raise_decode_error(data):
    try:
        scid = ShortChannelId.from_bytes(data)
    except DecodeError:
        return
    assert scid.to_bytes() == data


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda h, v: f"{h}:{v}",
            st.binary(min_size=31, max_size=33).map(bytes.hex),
            st.one_of(st.integers(-10, 1 << 33).map(str), st.text(max_size=12)),
        ),
    )
)
def test_random_outpoints_only_raise_decode_error(text):
    try:
        txid, vout = parse_outpoint(text)
    except DecodeError:
        return
    assert len(txid) == 32 and 0 <= vout <= 0xFFFFFFFF


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 0xFFFF))
def test_channel_id_is_an_involution(txid, vout):
    cid = channel_id(txid, vout)
    assert channel_id(cid, vout) == txid
    assert channel_id_from_outpoint(txid[::-1].hex(), vout) == cid
