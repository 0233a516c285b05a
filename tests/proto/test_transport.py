"""BOLT 8 transport: the Appendix A vectors, segmentation, garbage, and a pyln-proto cross-check."""

from __future__ import annotations

import hmac
import re
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError, InputError
from lncli.proto.transport import (
    ACT_ONE_SIZE,
    ACT_THREE_SIZE,
    ACT_TWO_SIZE,
    HEADER_SIZE,
    MAX_MESSAGE_SIZE,
    CipherState,
    HandshakeError,
    Initiator,
    InvalidKeyError,
    MessageTooLongError,
    Responder,
    Transport,
    TransportError,
    ecdh,
    hkdf,
    public_key,
)
from tests.conftest import load_vector

V = load_vector("bolt08_transport.json")
INITIATOR_OK = V["initiator"][0]
RESPONDER_OK = V["responder"][0]
MESSAGES = V["message_encryption"]
x = bytes.fromhex

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _comment_values(comments, name):
    """Hex values of ``# name=0x...`` trace lines, in order."""
    out = []
    for line in comments:
        m = re.match(rf"# {name}=(?:0x)?([0-9a-f]+)$", line)
        if m:
            out.append(m.group(1))
    return out


def make_initiator(case):
    return Initiator(x(case["ls_priv"]), x(case["rs_pub"]), x(case["e_priv"]))


def make_responder(case):
    return Responder(x(case["ls_priv"]), x(case["e_priv"]))


def spec_pair():
    """The vector's two finished sessions: (initiator side, responder side)."""
    ini = make_initiator(INITIATOR_OK)
    ini.act_one()
    _, t_i = ini.read_act_two(x(INITIATOR_OK["act2_input"]))
    resp = make_responder(RESPONDER_OK)
    resp.read_act_one(x(RESPONDER_OK["act1_input"]))
    t_r = resp.read_act_three(x(RESPONDER_OK["act3_input"]))
    return t_i, t_r


def fresh_pair(start_nonce: int = 0):
    """Two matching sessions from keys, with the sender/receiver nonces set to ``start_nonce``."""
    sk, rk, ck = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))
    a = Transport(sk, rk, ck, public_key(b"\x01" * 32))
    b = Transport(rk, sk, ck, public_key(b"\x02" * 32))
    a.send.nonce = b.receive.nonce = start_nonce
    return a, b


# --- primitives against the spec trace ------------------------------------------------------------


def test_ecdh_matches_spec_trace():
    case = INITIATOR_OK
    ss = _comment_values(case["spec_comments"], "ss")
    assert ecdh(x(case["e_priv"]), x(case["rs_pub"])).hex() == ss[0]  # es
    re_pub = _comment_values(case["spec_comments"], "re")[0]
    assert ecdh(x(case["e_priv"]), x(re_pub)).hex() == ss[1]  # ee
    assert ecdh(x(case["ls_priv"]), x(re_pub)).hex() == ss[2]  # se


def test_ecdh_is_coincurve_default():
    import coincurve

    k = b"\x33" * 32
    pub = public_key(b"\x44" * 32)
    assert ecdh(k, pub) == coincurve.PrivateKey(k).ecdh(pub)


def test_public_keys_match_vectors():
    for case in V["initiator"] + V["responder"]:
        assert public_key(x(case["ls_priv"])).hex() == case["ls_pub"]
        assert public_key(x(case["e_priv"])).hex() == case["e_pub"]


def test_hkdf_matches_spec_trace():
    prefixes = ("# HKDF(", "# ck,temp_k")
    lines = [ln for ln in INITIATOR_OK["spec_comments"] if ln.startswith(prefixes)]
    pairs = list(zip(lines[0::2], lines[1::2]))
    assert len(pairs) == 3
    for call, result in pairs:
        salt, ikm = re.match(r"# HKDF\(0x([0-9a-f]+),0x([0-9a-f]+)\)", call).groups()
        ck, temp_k = re.match(r"# ck,temp_k\d=0x([0-9a-f]+),0x([0-9a-f]+)", result).groups()
        assert hkdf(x(salt), x(ikm)) == (x(ck), x(temp_k))


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=80))
@settings(max_examples=100)
def test_hkdf_is_rfc5869(salt, ikm):
    prk = hmac.digest(salt, ikm, "sha256")
    t1 = hmac.digest(prk, b"\x01", "sha256")
    t2 = hmac.digest(prk, t1 + b"\x02", "sha256")
    assert hkdf(salt, ikm) == (t1, t2)


# --- handshake vectors ----------------------------------------------------------------------------


def test_initiator_success():
    case = INITIATOR_OK
    ini = make_initiator(case)
    assert ini.act_one().hex() == case["act1_output"]
    act3, t = ini.read_act_two(x(case["act2_input"]))
    assert len(act3) == ACT_THREE_SIZE
    assert act3.hex() == case["act3_output"]
    assert t.sk.hex() == case["sk"]
    assert t.rk.hex() == case["rk"]
    assert t.send.ck.hex() == t.receive.ck.hex() == MESSAGES["ck"]
    assert t.send.nonce == t.receive.nonce == 0
    assert t.remote_static_pubkey.hex() == case["rs_pub"]


@pytest.mark.parametrize("case", V["initiator"][1:], ids=lambda c: c["error"])
def test_initiator_act2_failures(case):
    ini = make_initiator(case)
    assert ini.act_one().hex() == case["act1_output"]
    with pytest.raises(HandshakeError) as err:
        ini.read_act_two(x(case["act2_input"]))
    assert err.value.code == case["error"]
    assert isinstance(err.value, DecodeError)


def test_responder_success():
    case = RESPONDER_OK
    resp = make_responder(case)
    act2 = resp.read_act_one(x(case["act1_input"]))
    assert len(act2) == ACT_TWO_SIZE
    assert act2.hex() == case["act2_output"]
    t = resp.read_act_three(x(case["act3_input"]))
    assert t.sk.hex() == case["sk"]
    assert t.rk.hex() == case["rk"]
    assert t.remote_static_pubkey.hex() == INITIATOR_OK["ls_pub"]
    assert resp.remote_static_pubkey == t.remote_static_pubkey
    assert t.send.ck.hex() == MESSAGES["ck"]


@pytest.mark.parametrize(
    "case", [c for c in V["responder"] if c.get("error_act") == "act1"], ids=lambda c: c["error"]
)
def test_responder_act1_failures(case):
    with pytest.raises(HandshakeError) as err:
        make_responder(case).read_act_one(x(case["act1_input"]))
    assert err.value.code == case["error"]


@pytest.mark.parametrize(
    "case", [c for c in V["responder"] if c.get("error_act") == "act3"], ids=lambda c: c["error"]
)
def test_responder_act3_failures(case):
    resp = make_responder(case)
    assert resp.read_act_one(x(case["act1_input"])).hex() == case["act2_output"]
    with pytest.raises(HandshakeError) as err:
        resp.read_act_three(x(case["act3_input"]))
    assert err.value.code == case["error"]


def test_vector_counts():
    assert len(V["initiator"]) == 5
    assert sum(c.get("error_act") == "act1" for c in V["responder"]) == 4
    assert sum(c.get("error_act") == "act3" for c in V["responder"]) == 5


def test_both_roles_agree():
    s_i, s_r = b"\x05" * 32, b"\x06" * 32
    ini = Initiator(s_i, public_key(s_r), b"\x07" * 32)
    resp = Responder(s_r, b"\x08" * 32)
    act1 = ini.act_one()
    assert len(act1) == ACT_ONE_SIZE
    act3, t_i = ini.read_act_two(resp.read_act_one(act1))
    t_r = resp.read_act_three(act3)
    assert (t_i.sk, t_i.rk) == (t_r.rk, t_r.sk)
    assert t_r.remote_static_pubkey == public_key(s_i)
    assert t_i.remote_static_pubkey == public_key(s_r)
    assert t_r.feed(t_i.encrypt_message(b"ping")) == [b"ping"]
    assert t_i.feed(t_r.encrypt_message(b"pong")) == [b"pong"]


def test_out_of_order_steps():
    case = INITIATOR_OK
    ini = make_initiator(case)
    with pytest.raises(HandshakeError, match="OUT_OF_ORDER"):
        ini.read_act_two(x(case["act2_input"]))
    ini.act_one()
    with pytest.raises(HandshakeError, match="OUT_OF_ORDER"):
        ini.act_one()
    ini.read_act_two(x(case["act2_input"]))
    with pytest.raises(HandshakeError, match="OUT_OF_ORDER"):
        ini.read_act_two(x(case["act2_input"]))
    resp = make_responder(RESPONDER_OK)
    with pytest.raises(HandshakeError, match="OUT_OF_ORDER"):
        resp.read_act_three(x(RESPONDER_OK["act3_input"]))


@pytest.mark.parametrize(
    "key", [b"", b"\x00" * 32, CURVE_ORDER.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31]
)
def test_invalid_private_keys(key):
    pub = x(INITIATOR_OK["rs_pub"])
    with pytest.raises(InvalidKeyError):
        Initiator(key, pub, b"\x01" * 32)
    with pytest.raises(InvalidKeyError):
        Initiator(b"\x01" * 32, pub, key)
    with pytest.raises(InvalidKeyError):
        Responder(key, b"\x01" * 32)


@pytest.mark.parametrize(
    "pub",
    [b"", b"\x02" + b"\x00" * 32, b"\x04" + b"\x11" * 32, b"\x02" + b"\xff" * 32, bytes(65)],
)
def test_invalid_remote_pubkey(pub):
    with pytest.raises(InvalidKeyError):
        Initiator(b"\x01" * 32, pub, b"\x02" * 32)


# --- message encryption and key rotation ----------------------------------------------------------


def test_message_vectors_with_rotation():
    t_i, t_r = spec_pair()
    assert t_i.sk.hex() == MESSAGES["sk"]
    wanted = {o["index"]: o["ciphertext"] for o in MESSAGES["outputs"]}
    assert sorted(wanted) == [0, 1, 500, 501, 1000, 1001]
    plaintext = x(MESSAGES["plaintext"])
    for i in range(1002):
        packet = t_i.encrypt_message(plaintext)
        if i in wanted:
            assert packet.hex() == wanted[i], i
        assert t_r.feed(packet) == [plaintext]
    # The receiving side rotated in step.
    r, s = t_r.receive, t_i.send
    assert (r.key, r.ck, r.nonce) == (s.key, s.ck, s.nonce)


def test_rotation_keys_match_spec_trace():
    rotations = []
    for line in MESSAGES["spec_comments"]:
        m = re.match(r"# 0x([0-9a-f]{64}), 0x([0-9a-f]{64}) = HKDF", line)
        if m and (x(m.group(1)), x(m.group(2))) not in rotations:
            rotations.append((x(m.group(1)), x(m.group(2))))
    assert len(rotations) == 2
    t_i, _ = spec_pair()
    for i in range(1000):
        t_i.encrypt_message(b"hello")
        if i == 498:
            assert t_i.send.nonce == 998
        if i == 499:  # 500 messages = 1000 nonces: the key has just rotated
            assert (t_i.send.ck, t_i.send.key, t_i.send.nonce) == (*rotations[0], 0)
    assert (t_i.send.ck, t_i.send.key, t_i.send.nonce) == (*rotations[1], 0)


def test_cipher_state_rotates_on_odd_boundary():
    a = CipherState(b"\x01" * 32, b"\x02" * 32, nonce=999)
    b = CipherState(b"\x01" * 32, b"\x02" * 32, nonce=999)
    c = a.encrypt_with_ad(None, b"x")
    assert a.nonce == 0 and a.key != b"\x01" * 32
    assert b.decrypt_with_ad(None, c) == b"x"
    assert (b.key, b.ck, b.nonce) == (a.key, a.ck, 0)
    # A message that straddles the rotation (header at nonce 999, body under the new key).
    t_a, t_b = fresh_pair(999)
    packet = t_a.encrypt_message(b"straddle")
    assert t_a.send.nonce == 1
    assert t_b.feed(packet) == [b"straddle"]


def test_message_sizes():
    t_a, t_b = fresh_pair()
    for size in (0, 1, MAX_MESSAGE_SIZE):
        m = bytes([size % 251]) * size
        packet = t_a.encrypt_message(m)
        assert len(packet) == HEADER_SIZE + size + 16
        assert t_b.feed(packet) == [m]
    with pytest.raises(MessageTooLongError) as err:
        t_a.encrypt_message(bytes(MAX_MESSAGE_SIZE + 1))
    assert isinstance(err.value, InputError)


def test_two_step_reader():
    t_a, t_b = fresh_pair(990)
    for i in range(20):
        m = bytes([i]) * (i * 7)
        packet = t_a.encrypt_message(m)
        assert t_b.next_part_size == HEADER_SIZE
        n = t_b.decrypt_length(packet[:HEADER_SIZE])
        assert n == len(m) and t_b.next_part_size == n + 16
        assert t_b.decrypt_body(packet[HEADER_SIZE:]) == m


def test_two_step_misuse():
    t_a, t_b = fresh_pair()
    packet = t_a.encrypt_message(b"abc")
    with pytest.raises(TransportError):
        t_b.decrypt_body(packet[HEADER_SIZE:])
    with pytest.raises(TransportError):
        t_b.decrypt_length(packet[: HEADER_SIZE - 1])
    t_b.decrypt_length(packet[:HEADER_SIZE])
    with pytest.raises(TransportError):
        t_b.decrypt_length(packet[:HEADER_SIZE])
    with pytest.raises(TransportError):
        t_b.decrypt_body(packet[HEADER_SIZE:-1])
    assert t_b.decrypt_body(packet[HEADER_SIZE:]) == b"abc"


def test_bytes_needed():
    t_a, t_b = fresh_pair()
    packet = t_a.encrypt_message(b"hello")
    assert t_b.bytes_needed == 18
    assert t_b.feed(packet[:5]) == []
    assert t_b.bytes_needed == 13
    assert t_b.feed(packet[5:20]) == []
    assert t_b.bytes_needed == 5 + 16 - 2
    assert t_b.feed(packet[20:]) == [b"hello"]
    assert t_b.bytes_needed == 18


def test_one_byte_at_a_time_large_message():
    t_a, t_b = fresh_pair()
    m = bytes(range(256)) * 256
    m = m[:MAX_MESSAGE_SIZE]
    stream = t_a.encrypt_message(m) + t_a.encrypt_message(b"")
    got = []
    for i in range(len(stream)):
        got += t_b.feed(stream[i : i + 1])
    assert got == [m, b""]


def test_bad_mac_breaks_the_session():
    t_a, t_b = fresh_pair()
    good = t_a.encrypt_message(b"one")
    bad = bytearray(t_a.encrypt_message(b"two"))
    bad[-1] ^= 1
    assert t_b.feed(good) == [b"one"]
    with pytest.raises(TransportError, match="body"):
        t_b.feed(bytes(bad))
    with pytest.raises(TransportError):
        t_b.feed(t_a.encrypt_message(b"three"))
    t_a, t_b = fresh_pair()
    bad = bytearray(t_a.encrypt_message(b"x"))
    bad[0] ^= 1
    with pytest.raises(TransportError, match="length"):
        t_b.decrypt_length(bytes(bad[:HEADER_SIZE]))
    with pytest.raises(TransportError):
        t_b.decrypt_length(bytes(bad[:HEADER_SIZE]))


# --- properties -----------------------------------------------------------------------------------

message_lists = st.lists(
    st.one_of(st.binary(max_size=64), st.binary(min_size=200, max_size=3000)), max_size=12
)


@given(
    messages=message_lists,
    cuts=st.lists(st.integers(min_value=0, max_value=40000), max_size=30),
    start=st.sampled_from([0, 2, 990, 996, 998, 999]),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_segmentation_yields_the_messages(messages, cuts, start):
    t_a, t_b = fresh_pair(start)
    stream = b"".join(t_a.encrypt_message(m) for m in messages)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    got = []
    for lo, hi in zip(points, points[1:]):
        got += t_b.feed(stream[lo:hi])
    assert got == messages
    assert t_b.bytes_needed == HEADER_SIZE
    assert (t_b.receive.key, t_b.receive.nonce) == (t_a.send.key, t_a.send.nonce)


@given(st.lists(st.binary(max_size=300), max_size=8))
@settings(max_examples=100, deadline=None)
def test_random_garbage_into_reader(chunks):
    _, t_b = fresh_pair()
    try:
        for chunk in chunks:
            assert t_b.feed(chunk) == []  # garbage never authenticates
    except TransportError:
        pass


@given(st.binary(max_size=40), st.data())
@settings(max_examples=100, deadline=None)
def test_random_garbage_into_two_step(header, data):
    _, t_b = fresh_pair()
    try:
        n = t_b.decrypt_length(header)
    except TransportError:
        return
    t_b.decrypt_body(data.draw(st.binary(min_size=n + 16, max_size=n + 16)))  # pragma: no cover


@given(messages=st.lists(st.binary(max_size=100), min_size=1, max_size=6), data=st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_stream_fails_cleanly(messages, data):
    t_a, t_b = fresh_pair()
    packets = [t_a.encrypt_message(m) for m in messages]
    stream = bytearray(b"".join(packets))
    pos = data.draw(st.integers(0, len(stream) - 1))
    stream[pos] ^= data.draw(st.integers(1, 255))
    # Messages whose packets end before the flipped byte still come out.
    intact, end = 0, 0
    for p in packets:
        end += len(p)
        if end > pos:
            break
        intact += 1
    got = []
    with pytest.raises(TransportError) as err:
        for i in range(0, len(stream), 7):
            got += t_b.feed(bytes(stream[i : i + 7]))
        raise AssertionError("a flipped byte went unnoticed")  # pragma: no cover
    got += err.value.messages
    assert got == messages[:intact]


@given(st.binary(max_size=80), st.integers(0, 2))
@settings(max_examples=150, deadline=None)
def test_random_garbage_into_acts(act, which):
    if which == 0:
        fn = make_responder(RESPONDER_OK).read_act_one
    elif which == 1:
        ini = make_initiator(INITIATOR_OK)
        ini.act_one()
        fn = ini.read_act_two
    else:
        resp = make_responder(RESPONDER_OK)
        resp.read_act_one(x(RESPONDER_OK["act1_input"]))
        fn = resp.read_act_three
    with pytest.raises(HandshakeError):
        fn(act)


@given(st.sampled_from(["act1", "act2", "act3"]), st.data())
@settings(max_examples=150, deadline=None)
def test_mutated_acts_rejected(which, data):
    key = {"act1": "act1_input", "act2": "act2_input", "act3": "act3_input"}[which]
    good = x((INITIATOR_OK if which == "act2" else RESPONDER_OK)[key])
    act = bytearray(good)
    pos = data.draw(st.integers(0, len(act) - 1))
    act[pos] ^= data.draw(st.integers(1, 255))
    if which == "act1":
        steps = [lambda: make_responder(RESPONDER_OK).read_act_one(bytes(act))]
    elif which == "act2":
        ini = make_initiator(INITIATOR_OK)
        ini.act_one()
        steps = [lambda: ini.read_act_two(bytes(act))]
    else:
        resp = make_responder(RESPONDER_OK)
        resp.read_act_one(x(RESPONDER_OK["act1_input"]))
        steps = [lambda: resp.read_act_three(bytes(act))]
    with pytest.raises(HandshakeError) as err:
        steps[0]()
    assert err.value.code.startswith(which.upper())


# --- cross-check with pyln-proto over a socket pair -----------------------------------------------


def _recv_exactly(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "peer closed"
        out += chunk
    return out


def _run_in_thread(fn):
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # pragma: no cover - reported below
            result["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th, result


def test_cross_check_our_initiator_with_pyln_responder():
    wire = pytest.importorskip("pyln.proto.wire")
    s_i, s_r = b"\x31" * 32, b"\x32" * 32
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)
        theirs.settimeout(10)
        lc = wire.LightningConnection(theirs, None, wire.PrivateKey(s_r), is_initiator=False)
        th, res = _run_in_thread(lambda: (lc.shake(), lc.read_message())[1])
        ini = Initiator(s_i, public_key(s_r), b"\x33" * 32)
        ours.sendall(ini.act_one())
        act3, t = ini.read_act_two(_recv_exactly(ours, ACT_TWO_SIZE))
        ours.sendall(act3)
        ours.sendall(t.encrypt_message(b"hello pyln"))
        th.join(10)
        assert res.get("value") == b"hello pyln", res
        assert lc.remote_pubkey.serializeCompressed() == public_key(s_i)
        for i in range(600):  # past a key rotation in both directions
            lc.send_message(b"m%d" % i)
            got = []
            while not got:
                got = t.feed(ours.recv(4096))
            assert got == [b"m%d" % i]
            ours.sendall(t.encrypt_message(b"r%d" % i))
            assert lc.read_message() == b"r%d" % i


def test_cross_check_pyln_initiator_with_our_responder():
    wire = pytest.importorskip("pyln.proto.wire")
    s_i, s_r = b"\x41" * 32, b"\x42" * 32
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)
        theirs.settimeout(10)
        lc = wire.LightningConnection(
            theirs, wire.PublicKey(public_key(s_r)), wire.PrivateKey(s_i), is_initiator=True
        )
        th, res = _run_in_thread(lambda: (lc.shake(), lc.send_message(b"hi from pyln"))[1])
        resp = Responder(s_r, b"\x43" * 32)
        ours.sendall(resp.read_act_one(_recv_exactly(ours, ACT_ONE_SIZE)))
        t = resp.read_act_three(_recv_exactly(ours, ACT_THREE_SIZE))
        assert t.remote_static_pubkey == public_key(s_i)
        th.join(10)
        assert "error" not in res, res
        n = t.decrypt_length(_recv_exactly(ours, HEADER_SIZE))
        assert t.decrypt_body(_recv_exactly(ours, n + 16)) == b"hi from pyln"
        ours.sendall(t.encrypt_message(b"hi from lncli"))
        assert lc.read_message() == b"hi from lncli"
