"""BOLT 3 Appendix D: per-commitment secret generation and storage."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto.shachain import (
    INDEX_MAX,
    RevocationStore,
    ShachainError,
    commitment_index,
    derive_secret,
    generate_from_seed,
    per_commitment_secret,
    where_to_put_secret,
)
from tests.conftest import load_vector

KEYS = load_vector("bolt03_keys.json")


@pytest.mark.parametrize("case", KEYS["per_commitment_secret_generation"], ids=lambda c: c["name"])
def test_generate_from_seed(case):
    assert generate_from_seed(bytes.fromhex(case["seed"]), case["I"]).hex() == case["output"]


def test_vector_counts():
    assert len(KEYS["per_commitment_secret_generation"]) == 5
    assert len(KEYS["per_commitment_secret_storage"]) == 9


@pytest.mark.parametrize("case", KEYS["per_commitment_secret_storage"], ids=lambda c: c["name"])
def test_insert_secret(case):
    store = RevocationStore()
    failed_at = None
    for n, insert in enumerate(case["inserts"]):
        secret = bytes.fromhex(insert["secret"])
        if insert["output"] == "OK":
            store.insert_secret(secret, insert["I"])
            assert store.get_secret(insert["I"]) == secret
        else:
            before = store.to_bytes()
            with pytest.raises(ShachainError):
                store.insert_secret(secret, insert["I"])
            assert store.to_bytes() == before  # a refused insert changes nothing
            failed_at = n
            break
    assert failed_at == case["fails_at_insert_index"]


def test_correct_sequence_all_retrievable():
    case = KEYS["per_commitment_secret_storage"][0]
    seed = bytes.fromhex(case["seed_for_correct_entries"])
    store = RevocationStore()
    for insert in case["inserts"]:
        assert generate_from_seed(seed, insert["I"]).hex() == insert["secret"]
        store.insert_secret(bytes.fromhex(insert["secret"]), insert["I"])
    for insert in case["inserts"]:
        assert store.get_secret(insert["I"]).hex() == insert["secret"]
    with pytest.raises(ShachainError):
        store.get_secret(case["inserts"][-1]["I"] - 1)  # not received yet


def test_index_convention():
    assert commitment_index(0) == INDEX_MAX == 2**48 - 1
    assert commitment_index(1) == 2**48 - 2
    seed = b"\x11" * 32
    assert per_commitment_secret(seed, 0) == generate_from_seed(seed, 2**48 - 1)
    assert per_commitment_secret(seed, 5) == generate_from_seed(seed, 2**48 - 6)
    assert where_to_put_secret(INDEX_MAX) == 0
    assert where_to_put_secret(8) == 3
    assert where_to_put_secret(0) == 48


def test_out_of_order_and_bad_arguments():
    seed = b"\x22" * 32
    store = RevocationStore()
    with pytest.raises(ShachainError):
        store.insert_commitment_secret(per_commitment_secret(seed, 1), 1)  # skipped commitment 0
    store.insert_commitment_secret(per_commitment_secret(seed, 0), 0)
    with pytest.raises(ShachainError):
        store.insert_commitment_secret(per_commitment_secret(seed, 0), 0)  # repeated
    for bad in (b"", b"\x00" * 31, "ab" * 32, None):
        with pytest.raises(ShachainError):
            store.insert_secret(bad, store.next_index)  # type: ignore[arg-type]
    for bad_index in (-1, 1 << 48, 1.0, True):
        with pytest.raises(DecodeError):
            generate_from_seed(seed, bad_index)  # type: ignore[arg-type]
        with pytest.raises(DecodeError):
            store.get_secret(bad_index)  # type: ignore[arg-type]
    assert issubclass(ShachainError, DecodeError)


def test_empty_store_round_trip():
    store = RevocationStore()
    data = store.to_bytes()
    assert data == b"\x01" + bytes(8)
    assert RevocationStore.from_bytes(data) == store
    assert len(store) == 0 and store.next_commitment_number == 0


# --- properties ---------------------------------------------------------------------------


def _filled(seed: bytes, count: int) -> RevocationStore:
    store = RevocationStore()
    for n in range(count):
        store.insert_commitment_secret(per_commitment_secret(seed, n), n)
    return store


@settings(max_examples=5, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_thousand_secrets_accepted_and_retrievable(seed):
    store = _filled(seed, 1000)
    assert store.next_commitment_number == 1000
    assert len(store) <= 49
    for n in range(0, 1000, 7):
        assert store.get_commitment_secret(n) == per_commitment_secret(seed, n)
    assert RevocationStore.from_bytes(store.to_bytes()) == store


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 998), st.binary(min_size=32, max_size=32))
def test_tampered_secret_rejected(seed, tampered_at, junk):
    good = per_commitment_secret(seed, tampered_at)
    assume(junk != good)
    # A wrong secret at index I is caught at once if I has trailing zeros (it must derive
    # the secrets already stored), otherwise by the very next insert (which must derive it).
    index = commitment_index(tampered_at)
    expected_failure = tampered_at if where_to_put_secret(index) > 0 else tampered_at + 1
    store = RevocationStore()
    failed = None
    for n in range(1000):
        secret = junk if n == tampered_at else per_commitment_secret(seed, n)
        try:
            store.insert_commitment_secret(secret, n)
        except ShachainError:
            failed = n
            break
    assert failed == expected_failure


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 300))
def test_store_round_trips_through_bytes(seed, count):
    store = _filled(seed, count)
    data = store.to_bytes()
    again = RevocationStore.from_bytes(data)
    assert again == store and again.to_bytes() == data
    for n in range(count):
        assert again.get_commitment_secret(n) == per_commitment_secret(seed, n)
    # and the restored store keeps accepting the chain
    again.insert_commitment_secret(per_commitment_secret(seed, count), count)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(2, 200), st.data())
def test_corrupted_store_bytes_rejected(seed, count, data):
    blob = bytearray(_filled(seed, count).to_bytes())
    # flip one bit in one stored secret: the consistency check must notice if that secret
    # takes part in a derivation pair; either way only ShachainError may come out
    pos = data.draw(st.integers(9, len(blob) - 1))
    blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    try:
        RevocationStore.from_bytes(bytes(blob))
    except ShachainError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_decode_error(blob):
    try:
        store = RevocationStore.from_bytes(blob)
    except DecodeError:
        return
    assert store.to_bytes() == blob


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**48), st.binary(max_size=64))
def test_random_count_header_only_raise_decode_error(count, tail):
    blob = b"\x01" + count.to_bytes(8, "big") + tail
    try:
        RevocationStore.from_bytes(blob)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(-(2**50), 2**50))
def test_random_insert_only_raises_decode_error(secret, index):
    store = RevocationStore()
    try:
        store.insert_secret(secret, index)
    except DecodeError:
        pass


def test_corrupted_derivable_entry_detected():
    case = KEYS["per_commitment_secret_storage"][0]
    store = RevocationStore()
    for insert in case["inserts"]:  # 8 secrets: the newest (position 3) derives the other three
        store.insert_secret(bytes.fromhex(insert["secret"]), insert["I"])
    blob = bytearray(store.to_bytes())
    assert len(blob) == 9 + 4 * 32
    blob[9] ^= 0x01  # first byte of the position-0 secret
    with pytest.raises(ShachainError, match="does not derive"):
        RevocationStore.from_bytes(bytes(blob))
    with pytest.raises(ShachainError, match="must be"):
        RevocationStore.from_bytes(bytes(blob[:-1]))
    with pytest.raises(ShachainError, match="version"):
        RevocationStore.from_bytes(b"\x02" + bytes(blob[1:]))


def _derive_secret_reference(base: bytes, bits: int, index: int) -> bytes:
    """The spec's derive_secret loop as written (no caches, no shortcuts)."""
    value = bytearray(base)
    for b in range(bits - 1, -1, -1):
        if (index >> b) & 1:
            value[b // 8] ^= 1 << (b % 8)
            value = bytearray(hashlib.sha256(value).digest())
    return bytes(value)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**48 - 1), st.integers(0, 48))
def test_fast_derive_matches_the_spec_loop(base, index, bits):
    assert derive_secret(base, bits, index) == _derive_secret_reference(base, bits, index)
    assert derive_secret(bytearray(base), bits, index) == _derive_secret_reference(base, bits, index)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**48 - 1), st.integers(0, 600))
def test_cached_generate_matches_the_spec_loop(seed, start, count):
    # a run of consecutive indices (crossing cached 2^8 / 2^24 boundaries) and a jump back
    for index in list(range(start, max(start - count, -1), -1))[:: max(1, count // 40)] + [start]:
        assert generate_from_seed(seed, index) == _derive_secret_reference(seed, 48, index)
    boundary = (start >> 8 << 8) or 256
    for index in (boundary, boundary - 1, (start >> 24 << 24), max(0, (start >> 24 << 24) - 1)):
        assert generate_from_seed(seed, index) == _derive_secret_reference(seed, 48, index)
