"""Script building, parsing, numbers, templates and classification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin import script as S
from lncli.bitcoin.script import (
    OP_0,
    OP_2,
    OP_CHECKMULTISIG,
    OP_CHECKSEQUENCEVERIFY,
    OP_CHECKSIG,
    OP_DROP,
    OP_ELSE,
    OP_ENDIF,
    OP_IF,
    Opcode,
    build_script,
    classify,
    decode_script_num,
    disassemble,
    encode_script_num,
    funding_script,
    hash160,
    multisig_2of2,
    p2pkh_script,
    p2sh_script,
    p2tr_script,
    p2wpkh_script,
    p2wpkh_script_for_pubkey,
    p2wsh_script,
    parse_script,
    push_data,
    witness_program,
)
from lncli.errors import DecodeError
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
PARAMS = V["commitment_params"]
LOCAL_FUNDING = bytes.fromhex(PARAMS["local_funding_pubkey"])
REMOTE_FUNDING = bytes.fromhex(PARAMS["remote_funding_pubkey"])


def test_opcode_values() -> None:
    assert S.OP_CHECKLOCKTIMEVERIFY == 0xB1 and S.OP_CHECKSEQUENCEVERIFY == 0xB2
    assert S.OP_HASH160 == 0xA9 and S.OP_NOTIF == 0x64 and S.OP_IFDUP == 0x73
    assert S.OP_16 == 0x60 and S.OP_1NEGATE == 0x4F and S.OP_RETURN == 0x6A
    assert repr(S.OP_CHECKSIG) == "OP_CHECKSIG" and isinstance(S.OP_ADD, Opcode)
    assert S.OPCODES_BY_NAME["OP_NOP3"] == S.OP_CHECKSEQUENCEVERIFY
    assert S.small_int_opcode(16) == S.OP_16 and S.decode_small_int_opcode(S.OP_5) == 5


def test_funding_script_sorts_keys() -> None:
    expected = PARAMS["funding_witness_script"]
    assert funding_script(LOCAL_FUNDING, REMOTE_FUNDING).hex() == expected
    assert funding_script(REMOTE_FUNDING, LOCAL_FUNDING).hex() == expected
    assert multisig_2of2(LOCAL_FUNDING, REMOTE_FUNDING).hex() == expected
    assert multisig_2of2(REMOTE_FUNDING, LOCAL_FUNDING).hex() != expected
    assert build_script([OP_2, LOCAL_FUNDING, REMOTE_FUNDING, OP_2, OP_CHECKMULTISIG]).hex() == expected
    assert S.multisig_script(2, [LOCAL_FUNDING, REMOTE_FUNDING]).hex() == expected
    assert classify(bytes.fromhex(expected))[0] == "multisig"


def test_bolt3_to_local_script() -> None:
    case = V["static_remotekey_no_anchors"][0]
    wscript = next(o for o in case["outputs_in_comments"] if o["type"] == "to_local")["wscript"]
    built = build_script(
        [
            OP_IF,
            bytes.fromhex(PARAMS["local_revocation_pubkey"]),
            OP_ELSE,
            PARAMS["local_delay"],
            OP_CHECKSEQUENCEVERIFY,
            OP_DROP,
            bytes.fromhex(PARAMS["local_delayedpubkey"]),
            OP_ENDIF,
            OP_CHECKSIG,
        ]
    )
    assert built.hex() == wscript
    assert disassemble(built) == (
        f"OP_IF {PARAMS['local_revocation_pubkey']} OP_ELSE 9000 OP_CHECKSEQUENCEVERIFY OP_DROP "
        f"{PARAMS['local_delayedpubkey']} OP_ENDIF OP_CHECKSIG"
    )


@pytest.mark.parametrize(
    "n,hex_",
    [
        (0, ""),
        (1, "01"),
        (-1, "81"),
        (127, "7f"),
        (128, "8000"),
        (-128, "8080"),
        (255, "ff00"),
        (256, "0001"),
        (144, "9000"),
        (500, "f401"),
        (-255, "ff80"),
        (2**31 - 1, "ffffff7f"),
        (-(2**31 - 1), "ffffffff"),
        (2**31, "0000008000"),
    ],
)
def test_script_num(n: int, hex_: str) -> None:
    assert encode_script_num(n).hex() == hex_
    assert decode_script_num(bytes.fromhex(hex_), max_size=5) == n


@pytest.mark.parametrize("hex_", ["00", "80", "0100", "ff0000", "0080"])
def test_script_num_non_minimal(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode_script_num(bytes.fromhex(hex_))
    decode_script_num(bytes.fromhex(hex_), require_minimal=False)


def test_script_num_too_long() -> None:
    with pytest.raises(DecodeError):
        decode_script_num(bytes.fromhex("0000008000"))  # 5 bytes, max 4


def test_push_items() -> None:
    assert build_script([0, -1, 1, 16, 17, 144]).hex() == "004f51600111029000"
    assert build_script([b"", b"\x01", b"\x10", b"\x81", b"\x11", b"\x00"]).hex() == "0051604f01110100"
    assert push_data(b"\xaa" * 75)[:1] == b"\x4b"
    assert push_data(b"\xaa" * 76)[:2] == b"\x4c\x4c"
    assert push_data(b"\xaa" * 256)[:3] == b"\x4d\x00\x01"
    assert push_data(b"\xaa" * 65536)[:5] == b"\x4e\x00\x00\x01\x00"
    with pytest.raises(TypeError):
        build_script(["OP_DUP"])  # type: ignore[list-item]


def test_parse() -> None:
    script = bytes.fromhex("76a914" + "11" * 20 + "88ac")
    assert parse_script(script) == [
        (0x76, None),
        (0xA9, None),
        (0x14, b"\x11" * 20),
        (0x88, None),
        (0xAC, None),
    ]
    assert parse_script(b"\x00\x4c\x00\x4d\x01\x00\xff") == [(0, b""), (0x4C, b""), (0x4D, b"\xff")]
    for bad in ["01", "4b" + "00" * 74, "4c", "4c02ff", "4d01", "4e00000001"]:
        with pytest.raises(DecodeError):
            parse_script(bytes.fromhex(bad))
    assert not S.is_push_only(bytes.fromhex("4c"))
    assert S.is_push_only(bytes.fromhex("0051604f0111"))


def test_templates_and_classify() -> None:
    h20, h32 = b"\x01" * 20, b"\x02" * 32
    pub = LOCAL_FUNDING
    assert classify(p2pkh_script(h20)) == ("p2pkh", h20)
    assert classify(p2sh_script(b"\x51")) == ("p2sh", hash160(b"\x51"))
    assert classify(p2wpkh_script(h20)) == ("p2wpkh", h20)
    assert p2wpkh_script_for_pubkey(pub) == p2wpkh_script(hash160(pub))
    assert classify(p2wsh_script(b"\x51")) == ("p2wsh", hashlib.sha256(b"\x51").digest())
    assert classify(p2tr_script(h32)) == ("p2tr", h32)
    assert classify(S.P2A_SCRIPT) == ("p2a", b"\x4e\x73")
    assert classify(b"\x52\x02\xaa\xbb")[0] == "witness_unknown"
    assert witness_program(b"\x52\x02\xaa\xbb") == (2, b"\xaa\xbb")
    assert classify(b"\x00\x10" + b"\x00" * 16)[0] == "nonstandard"  # v0 must be 20 or 32
    assert classify(b"\x21" + pub + b"\xac") == ("p2pk", pub)
    assert classify(S.op_return_script(b"hello")) == ("nulldata", b"\x05hello")
    assert classify(b"")[0] == "nonstandard"
    assert classify(b"\x6a\x4c")[0] == "nonstandard"
    assert classify(b"\x51\xae\xae\xae")[0] == "nonstandard"
    # BOLT 3 to_remote output of the first commitment
    to_remote = next(
        o for o in V["static_remotekey_no_anchors"][0]["outputs_in_comments"]
        if o["type"] == "to_remote"
    )
    assert p2wpkh_script_for_pubkey(bytes.fromhex(to_remote["p2wpkh_pubkey"])) == (
        b"\x00\x14" + hash160(bytes.fromhex(PARAMS["remote_payment_basepoint"]))
    )


def test_hashes_and_ripemd160_fallback() -> None:
    assert S.ripemd160(b"").hex() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert S._ripemd160_py(b"").hex() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert S._ripemd160_py(b"abc").hex() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    assert S._ripemd160_py(b"a" * 1000) == S.ripemd160(b"a" * 1000)
    assert hash160(b"").hex() == "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_random_only_decode_error(data: bytes) -> None:
    try:
        ops = parse_script(data)
    except DecodeError:
        return
    # re-assemble byte for byte (non-minimal pushes are kept as they were)
    out = bytearray()
    for op, d in ops:
        out.append(op)
        if d is not None and op >= S.OP_PUSHDATA1:
            width = {S.OP_PUSHDATA1: 1, S.OP_PUSHDATA2: 2, S.OP_PUSHDATA4: 4}[op]
            out += len(d).to_bytes(width, "little")
        if d is not None:
            out += d
    assert bytes(out) == data
    classify(data)


items = st.one_of(
    st.integers(-(2**40), 2**40),
    st.binary(max_size=300),
    st.sampled_from([S.OP_DUP, S.OP_CHECKSIG, S.OP_IF, S.OP_ELSE, S.OP_ENDIF, S.OP_SIZE]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(items, max_size=10))
def test_build_parse_round_trip(script_items: list) -> None:
    ops = parse_script(build_script(script_items))
    assert len(ops) == len(script_items)
    for item, (op, data) in zip(script_items, ops):
        if isinstance(item, Opcode):
            assert (op, data) == (item, None)
        elif isinstance(item, bytes):
            small = S.decode_small_int_opcode(op)
            got = data if data is not None else (b"\x81" if small == -1 else bytes((small,)))
            assert got == item and S.is_minimal_push(op, item)
        else:
            small = S.decode_small_int_opcode(op)
            assert (small if small is not None else decode_script_num(data, max_size=6)) == item


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**39 - 1), 2**39 - 1))
def test_script_num_round_trip(n: int) -> None:
    assert decode_script_num(encode_script_num(n), max_size=5) == n


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=6))
def test_script_num_decode_random(data: bytes) -> None:
    try:
        n = decode_script_num(data, max_size=5)
    except DecodeError:
        return
    assert encode_script_num(n) == data


def test_op0_is_empty_push() -> None:
    assert parse_script(bytes((OP_0,))) == [(0, b"")]
    assert disassemble(bytes.fromhex("0051ac")) == "OP_0 OP_1 OP_CHECKSIG"
    assert OP_CHECKSIG == 0xAC


def _build_script_reference(script_items) -> bytes:
    """build_script without its exact-type fast paths (the general branches only)."""
    out = bytearray()
    for item in script_items:
        if isinstance(item, Opcode):
            out.append(item)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            out += S.push_data(bytes(item))
        elif isinstance(item, int):
            out += S.push_int(item)
    return bytes(out)


_any_items = st.one_of(
    st.integers(-(2**40), 2**40),
    st.integers(-3, 20),
    st.booleans(),
    st.binary(max_size=300),
    st.binary(max_size=2),
    st.binary(max_size=80).map(bytearray),
    st.binary(max_size=80).map(memoryview),
    st.sampled_from([S.OP_0, S.OP_1, S.OP_16, S.OP_DUP, S.OP_CHECKSIG, S.OP_PUSHDATA1, S.OP_1NEGATE]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_any_items, max_size=12))
def test_build_script_fast_paths_match_the_general_path(script_items: list) -> None:
    assert build_script(script_items) == _build_script_reference(script_items)
