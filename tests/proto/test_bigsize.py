"""BOLT 1 Appendix A: BigSize vectors, plus property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import bigsize
from tests.conftest import load_vector

V = load_vector("bolt01_bigsize.json")

# error_class (from the vector file) -> a phrase our message must contain
ERROR_TEXT = {"non_canonical": "not canonical", "unexpected_eof": "end of data", "eof": "end of data"}


@pytest.mark.parametrize("case", V["bigsize_decoding"], ids=lambda c: c["name"])
def test_decode_vectors(case):
    data = bytes.fromhex(case["bytes"])
    if "exp_error" in case:
        with pytest.raises(bigsize.BigSizeError) as exc:
            bigsize.decode(data)
        assert isinstance(exc.value, DecodeError)
        assert ERROR_TEXT[case["error_class"]] in str(exc.value)
    else:
        assert bigsize.decode(data) == case["value"]
        assert bigsize.read(data + b"\xaa", 0) == (case["value"], len(data))


@pytest.mark.parametrize("case", V["bigsize_encoding"], ids=lambda c: c["name"])
def test_encode_vectors(case):
    assert bigsize.encode(case["value"]).hex() == case["bytes"]


def test_encode_out_of_range():
    with pytest.raises(ValueError):
        bigsize.encode(-1)
    with pytest.raises(ValueError):
        bigsize.encode(1 << 64)


def test_trailing_bytes_rejected():
    with pytest.raises(bigsize.BigSizeError):
        bigsize.decode(b"\x01\x02")


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_round_trip(n):
    enc = bigsize.encode(n)
    assert bigsize.decode(enc) == n
    assert len(enc) == (1 if n < 0xFD else 3 if n < 1 << 16 else 5 if n < 1 << 32 else 9)


@settings(max_examples=300)
@given(st.binary(max_size=12), st.integers(min_value=0, max_value=12))
def test_random_bytes_only_decode_error(data, off):
    try:
        value, end = bigsize.read(data, off)
    except DecodeError:
        return
    assert bigsize.encode(value) == data[off:end]
