"""Addresses: BIP 173 / BIP 350 vectors, base58check, networks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.address import (
    NETWORKS,
    WrongNetworkError,
    address_to_script,
    base58check_decode,
    base58check_encode,
    bech32_decode,
    decode_address,
    decode_segwit_address,
    encode_segwit_address,
    get_network,
    script_to_address,
)
from lncli.bitcoin.script import p2pkh_script, p2sh_script_from_hash, p2wpkh_script
from lncli.errors import DecodeError, InputError
from tests.conftest import load_vector

# BIP 350 "Test vectors for v0-v16 native segregated witness addresses" (also BIP 173's v0 ones)
VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

# BIP 350 invalid segwit addresses, with the reason the BIP gives
INVALID_SEGWIT = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "hrp"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "bech32 not bech32m"),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "bech32 not bech32m"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "bech32 not bech32m"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "bech32m not bech32"),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "bech32m not bech32"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "checksum character"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness version"),
    ("bc1pw5dgrnzv", "program length 1"),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
        "program length 41",
    ),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "v0 program length"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixed case"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "padding > 4 bits"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "non-zero padding"),
    ("bc1gmk9yu", "empty data"),
    # BIP 173 invalid addresses
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "bip173: zero padding"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", "bip173: non-zero padding"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", "bip173: mixed case"),
    ("bc1", "empty"),
]

# BIP 350 valid bech32m strings (not segwit addresses): checksums only
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
INVALID_BECH32M = [
    "\x201xj0phk",
    "\x7f1g6xzxy",
    "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
]


@pytest.mark.parametrize("address,script_hex", VALID_SEGWIT)
def test_valid_segwit(address: str, script_hex: str) -> None:
    decoded = decode_address(address)
    assert decoded.script_pubkey.hex() == script_hex
    network = decoded.networks[0]
    assert address_to_script(address, network).hex() == script_hex
    assert script_to_address(bytes.fromhex(script_hex), network) == address.lower()


@pytest.mark.parametrize("address,reason", INVALID_SEGWIT)
def test_invalid_segwit(address: str, reason: str) -> None:
    with pytest.raises(DecodeError):
        decode_address(address)
    for network in NETWORKS:
        with pytest.raises(DecodeError):
            address_to_script(address, network)


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_bech32m_checksums(text: str) -> None:
    _, _, is_m = bech32_decode(text)
    assert is_m


@pytest.mark.parametrize("text", INVALID_BECH32M)
def test_bech32m_invalid(text: str) -> None:
    with pytest.raises(DecodeError):
        bech32_decode(text)


def test_encode_segwit() -> None:
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert encode_segwit_address("bc", 0, program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert decode_segwit_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4") == ("bc", 0, program)
    assert encode_segwit_address("bcrt", 0, program).startswith("bcrt1q")
    with pytest.raises(ValueError):
        encode_segwit_address("bc", 0, program[:16])


def test_wrong_network() -> None:
    address = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    with pytest.raises(WrongNetworkError, match="bitcoin, not regtest"):
        address_to_script(address, "regtest")
    tb = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"
    for net in ("testnet", "signet", "testnet4"):
        address_to_script(tb, net)
    with pytest.raises(WrongNetworkError, match="not bitcoin"):
        address_to_script(tb, "mainnet")
    with pytest.raises(WrongNetworkError):
        address_to_script(tb, "regtest")
    regtest = script_to_address(p2wpkh_script(b"\x01" * 20), "regtest")
    assert regtest.startswith("bcrt1q")
    with pytest.raises(WrongNetworkError, match="regtest"):
        address_to_script(regtest, "testnet")
    assert issubclass(WrongNetworkError, DecodeError)


def test_base58() -> None:
    v = load_vector("bolt03_commitments.json")["funding_tx"]
    coinbase_address = v["block1_coinbase_address_base58"]  # regtest P2PKH of the coinbase key
    script = address_to_script(coinbase_address, "regtest")
    assert script.hex() == "76a9143ca33c2e4446f4a305f23c80df8ad1afdcf652f988ac"
    assert script_to_address(script, "regtest") == coinbase_address
    with pytest.raises(WrongNetworkError):
        address_to_script(coinbase_address, "bitcoin")
    # well-known mainnet addresses: the genesis coinbase P2PKH and a P2SH
    genesis = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    assert decode_address(genesis).kind == "p2pkh"
    assert script_to_address(address_to_script(genesis, "bitcoin"), "bitcoin") == genesis
    p2sh = script_to_address(p2sh_script_from_hash(b"\x00" * 20), "bitcoin")
    assert p2sh.startswith("3") and decode_address(p2sh).kind == "p2sh"
    assert script_to_address(p2sh_script_from_hash(b"\x00" * 20), "testnet").startswith("2")
    assert script_to_address(p2pkh_script(b"\x00" * 20), "signet")[0] in "mn"
    assert base58check_decode(base58check_encode(b"\x00\x00\x01")) == b"\x00\x00\x01"
    for bad in ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a", "", "1"]:
        with pytest.raises(DecodeError):
            decode_address(bad)
    # a valid base58check payload that is not an address (WIF private key)
    with pytest.raises(DecodeError):
        decode_address(v["block1_coinbase_privkey_base58"])


def test_script_without_address_and_networks() -> None:
    with pytest.raises(InputError):
        script_to_address(b"\x6a\x01\x01", "bitcoin")
    with pytest.raises(InputError):
        get_network("litecoin")
    assert get_network("mainnet").hrp == "bc" and get_network("regtest").hrp == "bcrt"


ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l1bcQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L123456789ABmno"


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=100), st.text(alphabet=ALPHABET, max_size=100)))
def test_random_text_only_decode_error(text: str) -> None:
    try:
        decoded = decode_address(text)
    except DecodeError:
        return
    assert decoded.networks


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([a for a, _ in VALID_SEGWIT]), st.data())
def test_mutated_addresses_only_decode_error(address: str, data: st.DataObject) -> None:
    chars = list(address)
    pos = data.draw(st.integers(0, len(chars) - 1))
    chars[pos] = data.draw(st.sampled_from(ALPHABET))
    try:
        decode_address("".join(chars))
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(NETWORKS)),
    st.integers(0, 16),
    st.binary(min_size=2, max_size=40),
)
def test_segwit_round_trip(network: str, version: int, program: bytes) -> None:
    if version == 0 and len(program) not in (20, 32):
        return
    from lncli.bitcoin.script import witness_program_script

    script = witness_program_script(version, program)
    address = script_to_address(script, network)
    assert address_to_script(address, network) == script
    assert address_to_script(address.upper(), network) == script
