"""BOLT 4 failure messages and return packets: spec vectors, round trips, properties.

The spec's attribution_data (option_attribution_data) is not implemented and its vector values
are not checked.
"""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto.onion import compute_shared_secrets
from lncli.proto.onion_failure import (
    BADONION,
    FAILURE_CODES,
    NODE,
    PERM,
    UPDATE,
    DecodedFailure,
    FailureDecodeError,
    code_for,
    create_failure,
    decode_failure,
    decode_failure_message,
    encode_failure_message,
    failure_flags,
    failure_name,
    generate_key,
    hmac_sha256,
    wrap_failure,
)
from tests.conftest import load_vector


@pytest.fixture(scope="module")
def returning():
    return load_vector("bolt04_onion.json")["returning_errors"]


@pytest.fixture(scope="module")
def route_secrets(returning):
    pubkeys = [bytes.fromhex(h["pubkey"]) for h in returning["params"]["hops"]]
    return compute_shared_secrets(bytes.fromhex(returning["params"]["session_key"]), pubkeys)


def _spec_failure_message(returning):
    p = returning["params"]
    return encode_failure_message(
        p["failure_message_name"],
        {"htlc_msat": p["failure_htlc_msat"], "height": p["failure_height"]},
        {p["failure_tlv_type"]: b"\x80" * 300},
    )


# --------------------------------------------------------------------------- current spec vector


def test_creation_step(returning, route_secrets):
    c = returning["creating"]
    node = returning["params"]["failure_source_node"]
    ss = route_secrets[node]
    assert ss.hex() == c["shared_secret"]
    assert generate_key(b"um", ss).hex() == c["um_key"]
    msg = _spec_failure_message(returning)
    assert c["encoded_failure_message"].startswith(msg.hex())  # followed by pad_len || pad
    packet = create_failure(ss, msg, pad_to=1024)
    # removing the erring node's own obfuscation gives the raw packet
    raw = wrap_failure(ss, packet)
    assert raw.hex() == c["raw_error_packet"]
    assert raw[32:].hex() == c["payload"]
    # same packet when given as code + data fields
    assert create_failure(ss, "incorrect_or_unknown_payment_details", msg[2:], pad_to=1024) == packet


def test_forwarding_steps(returning, route_secrets):
    steps = returning["forwarding"]
    assert [s["node"] for s in steps] == [4, 3, 2, 1, 0]
    packet = None
    for step in steps:
        ss = bytes.fromhex(step["shared_secret"])
        assert ss == route_secrets[step["node"]]
        assert generate_key(b"ammag", ss).hex() == step["ammag_key"]
        stream = wrap_failure(ss, bytes(len(step["stream"]) // 2))
        assert stream.hex() == step["stream"]
        if packet is None:
            packet = create_failure(ss, _spec_failure_message(returning), pad_to=1024)
        else:
            packet = wrap_failure(ss, packet)
        assert packet.hex() == step["error_packet"]


def test_origin_decodes_spec_failure(returning, route_secrets):
    packet = bytes.fromhex(returning["forwarding"][-1]["error_packet"])
    f = decode_failure(packet, route_secrets)
    assert isinstance(f, DecodedFailure)
    assert f.hop_index == returning["params"]["failure_source_node"] == 4
    assert f.code == PERM | 15
    assert f.name == "incorrect_or_unknown_payment_details"
    assert f.fields == {"htlc_msat": 100, "height": 800000}
    assert f.tlvs == {34001: b"\x80" * 300}
    j = f.to_json()
    assert j["hop_index"] == 4 and j["htlc_msat"] == 100 and j["flags"] == ["PERM"]
    assert j["failure_code_hex"] == "0x400f"


# --------------------------------------------------------------------------- legacy json vector


def test_legacy_error_vector():
    v = load_vector("bolt04/onion-error-test.json")
    hops = v["generate"]["hops"]
    secrets = [bytes.fromhex(h["hop_shared_secret"]) for h in hops]
    for h, ss in zip(hops, secrets):
        assert generate_key(b"ammag", ss).hex() == h["ammag_key"]
    assert generate_key(b"um", secrets[4]).hex() == hops[4]["um_key"]
    failure = bytes.fromhex(v["generate"]["failure_message"])
    packet = create_failure(secrets[4], failure)  # pad_to=256
    assert wrap_failure(secrets[4], packet)[32:].hex() == hops[4]["payload"]
    for ss in reversed(secrets[:4]):
        packet = wrap_failure(ss, packet)
    assert packet.hex() == v["errorpacket"]
    f = decode_failure(packet, secrets)
    assert (f.hop_index, f.code, f.name, f.fields) == (4, 0x2002, "temporary_node_failure", {})
    # recomputed from the session key
    pubkeys = [bytes.fromhex(h["pubkey"]) for h in hops]
    assert compute_shared_secrets(bytes.fromhex(v["generate"]["session_key"]), pubkeys) == secrets


# --------------------------------------------------------------------------- codes and messages


def test_codes_and_flags():
    expected = {
        "temporary_node_failure": 0x2002,
        "permanent_node_failure": 0x6002,
        "required_node_feature_missing": 0x6003,
        "invalid_onion_version": 0xC004,
        "invalid_onion_hmac": 0xC005,
        "invalid_onion_key": 0xC006,
        "temporary_channel_failure": 0x1007,
        "permanent_channel_failure": 0x4008,
        "required_channel_feature_missing": 0x4009,
        "unknown_next_peer": 0x400A,
        "amount_below_minimum": 0x100B,
        "fee_insufficient": 0x100C,
        "incorrect_cltv_expiry": 0x100D,
        "expiry_too_soon": 0x100E,
        "incorrect_or_unknown_payment_details": 0x400F,
        "final_incorrect_cltv_expiry": 18,
        "final_incorrect_htlc_amount": 19,
        "channel_disabled": 0x1014,
        "expiry_too_far": 21,
        "invalid_onion_payload": 0x4016,
        "mpp_timeout": 23,
        "invalid_onion_blinding": 0xC018,
    }
    assert FAILURE_CODES == expected
    assert failure_flags(0xC005) == ["BADONION", "PERM"]
    assert failure_flags(0x6002) == ["PERM", "NODE"]
    assert failure_flags(UPDATE | 7) == ["UPDATE"]
    assert BADONION == 0x8000 and NODE == 0x2000
    assert failure_name(0x1234) == "unknown_0x1234"
    assert code_for("mpp_timeout") == 23 and code_for(7) == 7
    with pytest.raises(ValueError):
        code_for("no_such_failure")


SAMPLE_FIELDS = {
    "invalid_onion_version": {"sha256_of_onion": b"\x01" * 32},
    "invalid_onion_hmac": {"sha256_of_onion": b"\x02" * 32},
    "invalid_onion_key": {"sha256_of_onion": b"\x03" * 32},
    "invalid_onion_blinding": {"sha256_of_onion": b"\x04" * 32},
    "temporary_channel_failure": {"channel_update": b"\x01\x02" + b"\xaa" * 10},
    "amount_below_minimum": {"htlc_msat": 123, "channel_update": b""},
    "fee_insufficient": {"htlc_msat": 2**64 - 1, "channel_update": b"\xbb" * 3},
    "incorrect_cltv_expiry": {"cltv_expiry": 700_000, "channel_update": b"\xcc"},
    "expiry_too_soon": {"channel_update": b""},
    "incorrect_or_unknown_payment_details": {"htlc_msat": 5, "height": 6},
    "final_incorrect_cltv_expiry": {"cltv_expiry": 9},
    "final_incorrect_htlc_amount": {"incoming_htlc_amt": 10},
    "channel_disabled": {"disabled_flags": 0, "channel_update": b"\xdd" * 4},
    "invalid_onion_payload": {"type": 34001, "offset": 17},
}


@pytest.mark.parametrize("name", sorted(FAILURE_CODES))
def test_every_failure_round_trips_through_the_route(name, route_secrets):
    fields = SAMPLE_FIELDS.get(name, {})
    msg = encode_failure_message(name, fields, {1: b"\x09"})
    code, got_fields, tlvs = decode_failure_message(msg)
    assert (code, got_fields, tlvs) == (FAILURE_CODES[name], fields, {1: b"\x09"})
    for hop in range(len(route_secrets)):
        packet = create_failure(route_secrets[hop], msg)
        for ss in reversed(route_secrets[:hop]):
            packet = wrap_failure(ss, packet)
        f = decode_failure(packet, route_secrets)
        assert (f.hop_index, f.name, f.fields, f.failure_message) == (hop, name, fields, msg)
        assert f.to_json()["name"] == name


def test_encoding_details():
    msg = encode_failure_message("invalid_onion_payload", {"type": 20, "offset": 3})
    assert msg == bytes.fromhex("4016" + "14" + "0003")
    msg = encode_failure_message("amount_below_minimum", {"htlc_msat": 1})
    assert msg == bytes.fromhex("100b" + "0000000000000001" + "0000")
    assert decode_failure_message(bytes.fromhex("abcd0102")) == (0xABCD, {"data": b"\x01\x02"}, {})
    # padding
    assert len(create_failure(b"\x00" * 32, "mpp_timeout")) == 32 + 2 + 2 + 2 + 254
    assert len(create_failure(b"\x00" * 32, "mpp_timeout", b"\x01" * 300)) == 32 + 2 + 302 + 2


@pytest.mark.parametrize(
    "hexmsg",
    [
        "",
        "40",
        "400f00000000",  # truncated u64/u32
        "1007000501",  # channel_update len past end
        "c005" + "00" * 31,  # short sha256
        "4016fd",  # bad bigsize
        "400f" + "00" * 12 + "0201",  # bad tlv extension
    ],
)
def test_decode_failure_message_errors(hexmsg):
    with pytest.raises(FailureDecodeError):
        decode_failure_message(bytes.fromhex(hexmsg))


def test_decode_failure_no_match_and_short(route_secrets):
    packet = create_failure(b"\x99" * 32, "temporary_node_failure")
    with pytest.raises(FailureDecodeError, match="no hop"):
        decode_failure(packet, route_secrets)
    with pytest.raises(FailureDecodeError):
        decode_failure(b"\x00" * 35, route_secrets)
    with pytest.raises(FailureDecodeError):
        decode_failure(packet, [])


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400), n=st.integers(0, 5))
def test_random_return_packets_only_raise_decode_errors(raw, n, route_secrets):
    try:
        decode_failure(raw, route_secrets[:n])
    except FailureDecodeError as e:
        assert isinstance(e, DecodeError)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=120))
def test_random_failure_messages_only_raise_decode_errors(raw):
    try:
        code, fields, tlvs = decode_failure_message(raw)
    except FailureDecodeError:
        return
    if "data" not in fields and code in {c for c in FAILURE_CODES.values()}:
        assert encode_failure_message(code, fields, tlvs) == raw


@settings(max_examples=100, deadline=None)
@given(
    hop=st.integers(0, 4),
    code=st.integers(0, 0xFFFF),
    data=st.binary(max_size=600),
    pad_to=st.sampled_from([0, 256, 1024]),
    flip=st.integers(0, 2000),
)
def test_create_wrap_decode_properties(route_secrets, hop, code, data, pad_to, flip):
    packet = create_failure(route_secrets[hop], code, data, pad_to=pad_to)
    for ss in reversed(route_secrets[:hop]):
        packet = wrap_failure(ss, packet)
    try:
        f = decode_failure(packet, route_secrets)
        assert f.hop_index == hop and f.code == code
    except FailureDecodeError as e:
        # only a malformed failure message body for a known code may fail, and it names the hop
        assert e.hop_index == hop
    mutated = bytearray(packet)
    mutated[flip % len(mutated)] ^= 0x40
    try:
        f = decode_failure(bytes(mutated), route_secrets)
    except FailureDecodeError:
        pass


def test_hmac_is_over_the_whole_body(route_secrets):
    ss = route_secrets[0]
    packet = wrap_failure(ss, create_failure(ss, "unknown_next_peer"))
    assert packet[:32] == hmac.digest(generate_key(b"um", ss), packet[32:], "sha256")


@settings(max_examples=100, deadline=None)
@given(
    key_type=st.sampled_from([b"rho", b"mu", b"um", b"pad", b"ammag", b"other"]),
    secret=st.binary(max_size=40),
    key=st.binary(max_size=100),
    msg=st.binary(max_size=300),
)
def test_hmac_helpers_match_stdlib(key_type, secret, key, msg):
    assert generate_key(key_type, secret) == hmac.digest(key_type, secret, "sha256")
    assert hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")
