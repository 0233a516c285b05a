"""BOLT 9 feature vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import features as F
from lncli.proto.features import Features


def test_table_bits():
    expect = {
        "option_data_loss_protect": 0, "option_upfront_shutdown_script": 4, "gossip_queries": 6,
        "var_onion_optin": 8, "gossip_queries_ex": 10, "option_static_remotekey": 12,
        "payment_secret": 14, "basic_mpp": 16, "option_support_large_channel": 18,
        "option_anchors": 22, "option_route_blinding": 24, "option_shutdown_anysegwit": 26,
        "option_dual_fund": 28, "option_quiesce": 34, "option_attribution_data": 36,
        "option_onion_messages": 38, "option_provide_storage": 42, "option_channel_type": 44,
        "option_scid_alias": 46, "option_payment_metadata": 48, "option_zeroconf": 50,
        "option_simple_close": 60, "option_splice": 62,
    }  # fmt: skip
    for name, bit in expect.items():
        assert F.BY_NAME[name].bit == bit
        assert F.feature_name(bit) == name and F.feature_name(bit + 1) == name
    assert F.feature_name(3) == "initial_routing_sync"
    assert F.feature_name(2) is None
    assert F.feature_name(100) is None


def test_wire_form():
    f = Features.from_bits([0, 9, 15])
    assert f.to_bytes() == bytes([0x82, 0x01])
    assert Features.from_bytes(b"\x00\x00\x82\x01") == f  # padding accepted
    assert Features().to_bytes() == b""
    assert Features.from_bytes(b"") == Features()
    assert Features.from_init(b"\x01", b"\x02\x00") == Features.from_bits([0, 9])


def test_names_and_json():
    f = Features.from_names("var_onion_optin", "payment_secret", required=True).set("basic_mpp")
    assert f.bits() == [8, 14, 17]
    assert f.requires("payment_secret") and f.supports("basic_mpp") and not f.requires("basic_mpp")
    assert "basic_mpp" in f and 17 in f and 16 not in f
    assert f.to_json() == [
        {"bit": 8, "name": "var_onion_optin", "required": True},
        {"bit": 14, "name": "payment_secret", "required": True},
        {"bit": 17, "name": "basic_mpp", "required": False},
    ]
    assert Features.from_json(f.to_json()) == f
    assert f.set(101).names() == ["var_onion_optin", "payment_secret", "basic_mpp", "bit_101"]
    assert f.clear("basic_mpp").bits() == [8, 14]
    with pytest.raises(ValueError):
        Features.from_names("option_nonsense")


def test_unknown_even_bits_rejected():
    F.check_known(Features.from_bits([8, 14, 101]))  # unknown odd: fine
    with pytest.raises(F.UnknownRequiredFeature) as e:
        F.check_known(Features.from_bits([8, 100, 101]))
    assert e.value.bits == [100] and isinstance(e.value, DecodeError)
    with pytest.raises(DecodeError):
        F.check_known(bytes([0x04]))  # bit 2: never assigned as even
    # context: payment_metadata is only for invoices; anchors not in invoices
    F.check_known(Features.from_bits([48]), "9")
    with pytest.raises(F.UnknownRequiredFeature):
        F.check_known(Features.from_bits([48]), "I")
    with pytest.raises(F.UnknownRequiredFeature):
        F.check_known(Features.from_bits([22]), "9")
    # assumed features are known everywhere (peers still set them)
    F.check_known(Features.from_bits([0, 8, 12, 14, 44]), "I")
    # a caller's own set of supported features
    with pytest.raises(F.UnknownRequiredFeature):
        F.check_known(Features.from_bits([28]), known=["var_onion_optin"])
    F.check_known(Features.from_bits([28, 9]), known=["option_dual_fund"])


def test_dependencies():
    F.check_dependencies(Features.from_names("basic_mpp", "payment_secret"))
    with pytest.raises(F.MissingFeatureDependency, match="basic_mpp requires payment_secret"):
        F.check_dependencies(Features.from_names("basic_mpp"))
    with pytest.raises(F.MissingFeatureDependency):
        F.check_dependencies(Features.from_names("option_zeroconf", required=True))
    F.check_dependencies(Features.from_names("option_zeroconf", "option_scid_alias"))
    with pytest.raises(F.MissingFeatureDependency):
        F.check_dependencies(Features.from_names("option_simple_close"))


def test_channel_types():
    assert F.CHANNEL_TYPE_STATIC_REMOTEKEY.to_bytes() == bytes([0x10, 0x00])
    assert F.CHANNEL_TYPE_ANCHORS.bits() == [12, 22]
    assert F.channel_type(anchors=True, scid_alias=True).bits() == [12, 22, 46]
    assert F.channel_type_name(F.channel_type(False, zeroconf=True).to_bytes()) == "static_remotekey+zeroconf"
    assert F.channel_type_name(F.CHANNEL_TYPE_ANCHORS) == "anchors"
    with pytest.raises(F.FeatureError):
        F.check_channel_type(Features.from_bits([22]))
    with pytest.raises(F.FeatureError):
        F.check_channel_type(Features.from_bits([12, 13]))


def test_immutable_and_hashable():
    f = Features.from_bits([1])
    with pytest.raises(AttributeError):
        f._mask = 3  # type: ignore[misc]
    assert {f: 1}[Features.from_bits([1])] == 1


@given(st.sets(st.integers(0, 300), max_size=20))
def test_round_trip(bits):
    f = Features.from_bits(bits)
    assert f.bits() == sorted(bits)
    b = f.to_bytes()
    assert Features.from_bytes(b) == f
    assert not b or b[0] != 0  # minimal length
    assert Features.from_json(f.to_json()) == f


@given(st.binary(max_size=40))
def test_any_bytes_decode_and_check_only_decode_error(data):
    f = Features.from_bytes(data)
    assert f.to_bytes() == data.lstrip(b"\x00")
    try:
        F.check_known(f, "I")
        F.check_dependencies(f)
    except DecodeError:
        pass
