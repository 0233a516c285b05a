import pytest
from hypothesis import given
from hypothesis import strategies as st

from lncli.amount import parse_msat, parse_sat
from lncli.errors import InputError


@pytest.mark.parametrize(
    "text,msat",
    [
        ("1500msat", 1500),
        ("2000sat", 2_000_000),
        ("2000", 2_000_000),
        ("0.01btc", 1_000_000_000),
        ("1BTC", 100_000_000_000),
        ("1.5sat", 1500),
        (" 7 sat ", 7000),
    ],
)
def test_parse_msat(text, msat):
    assert parse_msat(text) == msat


@pytest.mark.parametrize("text", ["", "abc", "-5", "1.2345msat", "1e3", "0.000000000001btc", "5 dollars"])
def test_parse_msat_rejects(text):
    with pytest.raises(InputError):
        parse_msat(text)


def test_parse_sat_whole():
    assert parse_sat("0.001btc") == 100_000
    with pytest.raises(InputError, match="whole number of satoshis"):
        parse_sat("1500msat")


@given(st.text(max_size=30))
def test_parse_msat_only_input_error(text):
    try:
        assert parse_msat(text) >= 0
    except InputError:
        pass
