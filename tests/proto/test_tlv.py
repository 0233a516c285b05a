"""BOLT 1 Appendix B: TLV streams in the n1/n2 test namespaces, through the schema engine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import tlv
from lncli.proto.scid import ShortChannelId
from lncli.proto.wire import Schema
from tests.conftest import load_vector

V = load_vector("bolt01_bigsize.json")

# The test namespaces of Appendix B, in the BOLTs' CSV form.
N_CSV = """
tlvtype,n1,tlv1,1
tlvdata,n1,tlv1,amount_msat,tu64,
tlvtype,n1,tlv2,2
tlvdata,n1,tlv2,scid,short_channel_id,
tlvtype,n1,tlv3,3
tlvdata,n1,tlv3,node_id,point,
tlvdata,n1,tlv3,amount_msat_1,u64,
tlvdata,n1,tlv3,amount_msat_2,u64,
tlvtype,n1,tlv4,254
tlvdata,n1,tlv4,cltv_delta,u16,
tlvtype,n2,tlv1,0
tlvdata,n2,tlv1,amount_msat,tu64,
tlvtype,n2,tlv2,11
tlvdata,n2,tlv2,cltv_expiry,tu32,
"""

SCHEMA = Schema.from_csv(N_CSV)


def test_namespaces_match_vector_file():
    for ns, records in V["tlv_namespaces"].items():
        stream = SCHEMA.tlv_streams[ns]
        assert sorted(stream.records) == sorted(int(k) for k in records)
        for num, rec in records.items():
            spec = stream.records[int(num)]
            assert spec.name == rec["name"]
            assert [[f.type, f.name] for f in spec.fields] == rec["fields"]


def _plain(v):
    if isinstance(v, ShortChannelId):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _cases(key):
    return [
        pytest.param(ns, case, id=f"{ns}-{case['stream'][:24] or 'empty'}")
        for case in V[key]
        for ns in case["namespaces"]
    ]


@pytest.mark.parametrize("ns,case", _cases("tlv_decoding_failures"))
def test_decoding_failures(ns, case):
    with pytest.raises(DecodeError):
        SCHEMA.decode_tlv_stream(ns, bytes.fromhex(case["stream"]))


@pytest.mark.parametrize("ns,case", _cases("tlv_decoding_successes"))
def test_decoding_successes(ns, case):
    data = bytes.fromhex(case["stream"])
    got = SCHEMA.decode_tlv_stream(ns, data, keep_unknown=False)
    assert _plain(got) == case["values"]
    # with the unknown odd records kept, re-encoding gives the same bytes
    assert SCHEMA.encode_tlv_stream(ns, SCHEMA.decode_tlv_stream(ns, data)) == data


@pytest.mark.parametrize("ns,case", _cases("tlv_stream_decoding_failures"))
def test_stream_failures(ns, case):
    with pytest.raises(DecodeError):
        SCHEMA.decode_tlv_stream(ns, bytes.fromhex(case["stream"]))


def _streams(key, ns):
    return [bytes.fromhex(c["stream"]) for c in V[key] if ns in c["namespaces"]]


def _types(data):
    return [t for t, _ in tlv.iter_records(data)]


@pytest.mark.parametrize("ns", ["n1", "n2"])
def test_appending(ns):
    """An invalid stream appended to a valid one fails; a higher-numbered valid stream appended
    to a lower-numbered one does not."""
    valid = [s for s in _streams("tlv_decoding_successes", ns) if s]
    for good, bad in itertools.product(valid, _streams("tlv_decoding_failures", ns)):
        with pytest.raises(DecodeError):
            SCHEMA.decode_tlv_stream(ns, good + bad)
    joined = 0
    for a, b in itertools.permutations(valid, 2):
        if max(_types(a)) < min(_types(b)):
            SCHEMA.decode_tlv_stream(ns, a + b)
            joined += 1
    assert joined > 0


def test_encode_values():
    assert SCHEMA.encode_tlv_stream("n1", {"tlv1": {"amount_msat": 256}}).hex() == "01020100"
    assert SCHEMA.encode_tlv_stream("n1", {"tlv2": {"scid": "0x0x550"}}).hex() == "02080000000000000226"
    assert SCHEMA.encode_tlv_stream("n1", {"tlv4": {"cltv_delta": 550}, "tlv1": {"amount_msat": 0}}).hex() == "0100fd00fe020226"
    assert SCHEMA.encode_tlv_stream("n2", {"tlv2": {"cltv_expiry": 1}, 33: b""}).hex() == "0b01012100"


# -- the raw stream layer (lncli.proto.tlv)


def test_raw_stream_rules():
    assert tlv.decode_stream(bytes.fromhex("0100fd00fe020226")) == {1: b"", 254: b"\x02\x26"}
    assert tlv.decode_stream(bytes.fromhex("0100" "2100"), known={1}) == {1: b""}
    with pytest.raises(tlv.TlvError):
        tlv.decode_stream(bytes.fromhex("1200"), known={1})
    with pytest.raises(tlv.TlvError):
        tlv.decode_stream(bytes.fromhex("0100" "0100"))
    assert tlv.encode_stream({3: b"x", 1: b"", 5: None}) == bytes.fromhex("0100030178")


@pytest.mark.parametrize("n,hexval", [(0, ""), (1, "01"), (256, "0100"), ((1 << 64) - 1, "ff" * 8)])
def test_tu(n, hexval):
    assert tlv.encode_tu(n).hex() == hexval
    assert tlv.decode_tu(bytes.fromhex(hexval)) == n


def test_tu_errors():
    with pytest.raises(tlv.TlvError):
        tlv.decode_tu(b"\x00\x01")
    with pytest.raises(tlv.TlvError):
        tlv.decode_tu(b"\x01\x00\x00", max_bytes=2)


# -- properties

_rec = st.dictionaries(
    st.integers(min_value=0, max_value=(1 << 64) - 1), st.binary(max_size=20), max_size=6
)


@given(_rec)
def test_raw_round_trip(records):
    assert tlv.decode_stream(tlv.encode_stream(records)) == records


_n1_values = st.fixed_dictionaries(
    {},
    optional={
        "tlv1": st.fixed_dictionaries({"amount_msat": st.integers(0, (1 << 64) - 1)}),
        "tlv2": st.fixed_dictionaries({"scid": st.integers(0, (1 << 64) - 1)}),
        "tlv3": st.fixed_dictionaries(
            {
                "node_id": st.tuples(st.sampled_from([b"\x02", b"\x03"]), st.binary(min_size=32, max_size=32)).map(b"".join),
                "amount_msat_1": st.integers(0, (1 << 64) - 1),
                "amount_msat_2": st.integers(0, (1 << 64) - 1),
            }
        ),
        "tlv4": st.fixed_dictionaries({"cltv_delta": st.integers(0, 0xFFFF)}),
    },
)


@given(_n1_values)
def test_n1_round_trip(values):
    data = SCHEMA.encode_tlv_stream("n1", values)
    assert SCHEMA.decode_tlv_stream("n1", data) == values


@settings(max_examples=300)
@given(st.binary(max_size=60), st.sampled_from(["n1", "n2"]))
def test_random_streams_only_decode_error(data, ns):
    try:
        got = SCHEMA.decode_tlv_stream(ns, data)
    except DecodeError:
        return
    assert SCHEMA.encode_tlv_stream(ns, got) == data
