"""BOLT 11 invoices: the spec's examples (valid and invalid), encode round trips, and fuzzing."""

from __future__ import annotations

import hashlib
import json

import bech32
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lncli.errors import DecodeError
from lncli.proto import invoice as bolt11
from lncli.proto.features import FEATURES
from lncli.proto.invoice import InvoiceError, InvoiceNetworkError, RouteHintHop, UnknownField
from tests.conftest import load_vector

VEC = load_vector("bolt11_invoices.json")
PRIVKEY = bytes.fromhex(VEC["private_key"])
PAYEE = bytes.fromhex(VEC["payee_pubkey"])
IGNORED_FIELDS_TITLE = "Same, but including fields which must be ignored."
HIGH_S_TITLE = "Public-key recovery with high-S signature"
COFFEE = next(v for v in VEC["valid"] if v["title"].startswith("Please send $3 for a cup of coffee"))["invoice"]

ORDINARY_VALID = [v for v in VEC["valid"] if v["title"] not in (IGNORED_FIELDS_TITLE, HIGH_S_TITLE)]


def _vector(title: str) -> dict:
    return next(v for v in VEC["valid"] if v["title"] == title)


def test_vector_counts():
    assert len(VEC["valid"]) == 16
    assert len(VEC["invalid"]) == 10
    assert len(ORDINARY_VALID) == 14


# --------------------------------------------------------------------------------------------
# checksum


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 31), max_size=400))
def test_fast_polymod_matches_bech32_package(values):
    assert bolt11._polymod(bytes(values)) == bech32.bech32_polymod(values)


def test_checksums_of_vectors_match_bech32_package():
    for v in VEC["valid"]:
        text = v["invoice"].lower()
        hrp, data = text[: text.rfind("1")], text[text.rfind("1") + 1 :]
        values = [bech32.CHARSET.index(c) for c in data]
        assert bech32.bech32_verify_checksum(hrp, values)
        assert bolt11._polymod(bolt11._hrp_expand(hrp) + bytes(values)) == 1


# --------------------------------------------------------------------------------------------
# valid examples


@pytest.mark.parametrize("v", ORDINARY_VALID, ids=lambda v: v["title"][:60])
def test_valid_example(v):
    inv = bolt11.decode(v["invoice"])
    assert inv.currency == v["currency_prefix"][2:]
    assert inv.network == {"bitcoin mainnet": "bitcoin", "bitcoin testnet": "testnet"}[v["network"]]
    assert inv.amount_msat == v["amount_msat"]
    assert inv.timestamp == v["timestamp"]
    assert inv.payment_hash.hex() == v["payment_hash"]
    assert inv.payment_secret.hex() == v["payment_secret"]
    assert inv.description == v["description"]
    assert (inv.description_hash.hex() if inv.description_hash else None) == v["description_hash"]
    if v["hashed_description"] is not None:
        assert hashlib.sha256(v["hashed_description"].encode()).hexdigest() == v["description_hash"]
    assert inv.expiry == (3600 if v["expiry"] is None else v["expiry"])
    assert inv.expires_at == inv.timestamp + inv.expiry
    assert inv.min_final_cltv_expiry_delta == (
        18 if v["min_final_cltv_expiry_delta"] is None else v["min_final_cltv_expiry_delta"]
    )
    assert [(f.version, f.program.hex(), f.address) for f in inv.fallbacks] == [
        (f["version"], f["program"], f["address"]) for f in v["fallbacks"]
    ]
    got_routes = [[h.to_json() for h in route] for route in inv.route_hints]
    want_routes = [
        [{k: hop[k] for k in hop if k != "short_channel_id_hex"} for hop in route] for route in v["route_hints"]
    ]
    assert got_routes == want_routes
    for route, want in zip(inv.route_hints, v["route_hints"]):
        assert [h.short_channel_id.to_bytes(8, "big").hex() for h in route] == [
            h["short_channel_id_hex"] for h in want
        ]
    assert sorted(inv.features) == v["feature_bits"]
    assert (inv.payment_metadata.hex() if inv.payment_metadata else None) == v["metadata"]
    assert inv.payee.hex() == v["payee_pubkey"] == VEC["payee_pubkey"]
    assert inv.payee_in_invoice is False
    assert inv.signature.hex() == v["signature"]
    assert inv.recovery_id == v["recovery_id"]
    assert inv.unknown_fields == ()


def test_feature_names():
    inv = bolt11.decode(_vector("Please send 0.01 BTC with payment metadata 0x01fafaf0")["invoice"])
    assert inv.feature_names == {8: "var_onion_optin", 14: "payment_secret", 48: "option_payment_metadata"}
    inv = bolt11.decode(next(v for v in VEC["valid"] if "features 8, 14 and 99" in v["title"])["invoice"])
    assert inv.feature_names == {8: "var_onion_optin", 14: "payment_secret", 99: None}


def test_to_json():
    v = next(v for v in VEC["valid"] if "1RustyRX2oai4EYYDpQGWvEL62BBGqN9T" in v["title"])
    j = bolt11.decode(v["invoice"]).to_json()
    json.dumps(j)  # JSON ready
    assert j["signature_valid"] is True
    assert j["network"] == "bitcoin" and j["currency"] == "bc"
    assert j["amount_msat"] == 2_000_000_000
    assert j["expires_at"] == 1496314658 + 3600
    assert j["description"] is None and j["description_hash"] == v["description_hash"]
    assert j["fallbacks"] == [{"address": "1RustyRX2oai4EYYDpQGWvEL62BBGqN9T", "version": 17, "type": "p2pkh",
                               "program": "04b61f7dc1ea0dc99424464cc4064dc564d91e89"}]
    assert [h["short_channel_id"] for h in j["route_hints"][0]] == ["66051x263430x1800", "197637x395016x2314"]
    assert j["features"] == {"8": "var_onion_optin", "14": "payment_secret"}
    assert j["payee"] == VEC["payee_pubkey"]
    assert j["signature"] == v["signature"] and j["recovery_id"] == 0
    assert j["unknown_fields"] == [] and j["payment_metadata"] is None
    assert j["min_final_cltv_expiry_delta"] == 18


def test_fallback_kinds():
    kinds = {}
    for v in ORDINARY_VALID:
        for f in bolt11.decode(v["invoice"]).fallbacks:
            kinds[f.address] = f.kind
    assert kinds["bc1pptdvg0d2nj99568qn6ssdy4cygnwuxgw2ukmnwgwz7jpqjz2kszse2s3lm"] == "p2tr"
    assert kinds["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"] == "p2wpkh"
    assert kinds["3EktnHQD7RiAE6uzMj2ZifT9YgRrkSgzQX"] == "p2sh"


def test_spec_caveat_wrong_length_fields_must_fail():
    """Rule chosen: the current spec (since lightning/bolts#1243) says a reader MUST fail the
    payment if p, h, s or n has the wrong data_length. The "fields which must be ignored" example
    predates that change and still sits in the valid section; under the current rule it is rejected."""
    v = _vector(IGNORED_FIELDS_TITLE)
    assert "spec_caveat" in v
    with pytest.raises(InvoiceError, match=r"p \(payment_hash\) field has data_length 51, must be 52"):
        bolt11.decode(v["invoice"])


def test_high_s_signature_without_n_uses_plain_recovery():
    """Rule chosen: without an n field the payee is recovered with plain libsecp256k1
    (secp256k1_ecdsa_recover), which accepts the high-S signature as transmitted. That is what the
    spec text asks ("MUST perform ECDSA public-key recovery and accept both high-S and low-S
    signatures"; the commit adding it cites secp256k1_ecdsa_recover) and what LDK, eclair, lnd and
    CLN do. The example's s was negated while its recovery id was kept, so plain recovery gives
    another key (02d0139c...) than the example key; we do not normalise s before recovering."""
    v = _vector(HIGH_S_TITLE)
    inv = bolt11.decode(v["invoice"])
    assert v["signature_is_high_s"]
    assert inv.payee.hex() == v["recovery_note"]["raw_recovery_pubkey"]
    assert inv.payee.hex() != v["recovery_note"]["normalized_s_recovery_pubkey"]
    assert inv.signature.hex() == v["signature"] and inv.recovery_id == 1
    assert inv.description == "Please consider supporting this project"


def test_upper_case_equals_lower_case():
    upper = next(v for v in VEC["valid"] if v["title"] == "Same, but all upper case.")["invoice"]
    assert bolt11.decode(upper) == bolt11.decode(upper.lower())


# --------------------------------------------------------------------------------------------
# invalid examples

INVALID_REASONS = {
    "unknown_even_feature_bit": r"unknown required feature bit 100",
    "bad_bech32_checksum": r"bad bech32 checksum",
    "no_bech32_separator": r"no '1' separator",
    "mixed_case": r"mixed upper and lower case",
    "signature_not_recoverable": r"signature is not recoverable",
    "too_short": r"too short",
    "invalid_amount_multiplier": r"invalid amount multiplier 'x'",
    "sub_millisatoshi_amount": r"sub-millisatoshi precision",
    "missing_payment_secret": r"missing required s \(payment_secret\)",
    "high_s_signature_with_n_field": r"high-S\) signature with an n field",
}


@pytest.mark.parametrize("v", VEC["invalid"], ids=lambda v: v["error_class"])
def test_invalid_example(v):
    with pytest.raises(InvoiceError, match=INVALID_REASONS[v["error_class"]]):
        bolt11.decode(v["invoice"])


# --------------------------------------------------------------------------------------------
# other reader rules


def _sign(**kw) -> str:
    args = dict(privkey=PRIVKEY, timestamp=1496314658, payment_hash=bytes(range(32)),
                payment_secret=b"\x11" * 32, description="test")
    args.update(kw)
    return bolt11.encode(**args)


def test_prefixes_and_network_hint():
    for network, prefix in (("bitcoin", "lnbc"), ("testnet", "lntb"), ("signet", "lntbs"), ("regtest", "lnbcrt")):
        text = _sign(network=network, amount_msat=1000)
        assert text.startswith(prefix + "10n1")
        inv = bolt11.decode(text, network_hint=network)
        assert inv.network == network and inv.amount_msat == 1000
    text = _sign(network="regtest")
    assert text.startswith("lnbcrt1")
    assert bolt11.decode(text, network_hint="bcrt").network == "regtest"
    with pytest.raises(InvoiceNetworkError, match="regtest"):
        bolt11.decode(text, network_hint="mainnet")
    with pytest.raises(InvoiceError, match="unknown network"):
        bolt11.decode(text, network_hint="litecoin")


def test_lightning_uri_prefix():
    assert bolt11.decode("lightning:" + COFFEE) == bolt11.decode(COFFEE)
    assert bolt11.decode("LIGHTNING:" + COFFEE.upper()) == bolt11.decode(COFFEE)


@pytest.mark.parametrize(
    "msat,text",
    [(100_000_000_000, "1"), (250_000_000, "2500u"), (2_000_000_000, "20m"), (967878534, "9678785340p"),
     (1, "10p"), (100, "1n"), (123_000, "1230n"), (100_000, "1u")],
)
def test_amount_text_shortest(msat, text):
    assert bolt11.amount_text(msat) == text
    assert bolt11.decode(_sign(amount_msat=msat)).amount_msat == msat


@pytest.mark.parametrize(
    "hrp_amount,reason",
    [("0", "leading zeros"), ("025m", "leading zeros"), ("m", "unknown currency prefix"), ("2.5m", "invalid amount"),
     ("25mm", "invalid amount"),
     ("1" + "0" * 40, "too large"), ("99999999999999999999", "too large")],
)
def test_bad_amounts(hrp_amount, reason):
    # signature and checksum recomputed so that only the amount is wrong
    text = _resign_hrp("lnbc" + hrp_amount)
    with pytest.raises(InvoiceError, match=reason):
        bolt11.decode(text)


def _resign_hrp(hrp: str) -> str:
    """Take a valid invoice body, put a new hrp in front, fix the checksum (signature stays stale)."""
    body = _sign()
    data = body[body.rfind("1") + 1 : -6]
    values = [bech32.CHARSET.index(c) for c in data]
    return bech32.bech32_encode(hrp, values)


def test_unknown_prefix():
    with pytest.raises(InvoiceError, match="unknown currency prefix"):
        bolt11.decode(_resign_hrp("lnxy"))
    with pytest.raises(InvoiceError, match="does not start with 'ln'"):
        bolt11.decode(_resign_hrp("bc"))


def test_bech32m_checksum_rejected():
    text = _sign()
    hrp, data = text[: text.rfind("1")], text[text.rfind("1") + 1 : -6]
    values = bytes(bech32.CHARSET.index(c) for c in data)
    bad = hrp + "1" + data + "".join(bech32.CHARSET[v] for v in bolt11._checksum(hrp, values, 0x2BC830A3))
    with pytest.raises(InvoiceError, match="bech32m"):
        bolt11.decode(bad)


def test_n_field_verified():
    text = _sign(include_payee=True, amount_msat=5000)
    inv = bolt11.decode(text)
    assert inv.payee_in_invoice and inv.payee == PAYEE


def test_n_field_with_other_key_rejected():
    # an invoice naming PAYEE in n but signed by another key
    other = b"\x02" * 32
    good = _sign(include_payee=True)
    forged = bolt11.encode(privkey=other, timestamp=1496314658, payment_hash=bytes(range(32)),
                           payment_secret=b"\x11" * 32, description="test",
                           unknown_fields=(UnknownField("n", _words_of(PAYEE)),))
    # the forged invoice's only n field is PAYEE (first n wins), its signature is by `other`
    assert bolt11.decode(good).payee == PAYEE
    with pytest.raises(InvoiceError, match="does not verify against the n"):
        bolt11.decode(forged)


def _words_of(data: bytes) -> str:
    return "".join(bech32.CHARSET[v] for v in bech32.convertbits(data, 8, 5))


def _raw_invoice(fields, hrp="lnbc", privkey=PRIVKEY, timestamp=1496314658):
    """Assemble and sign an invoice from raw (tag letter, bech32 data) fields, in the given order."""
    from coincurve import PrivateKey

    values = [(timestamp >> 5 * (6 - i)) & 31 for i in range(7)]
    for tag, words in fields:
        values += [bech32.CHARSET.index(tag), len(words) >> 5, len(words) & 31]
        values += [bech32.CHARSET.index(c) for c in words]
    data = bytes(bech32.convertbits(values, 5, 8, True))
    sig = PrivateKey(privkey).sign_recoverable(hashlib.sha256(hrp.encode() + data).digest(), hasher=None)
    return bech32.bech32_encode(hrp, values + bech32.convertbits(sig, 8, 5, True))


BASE_FIELDS = [("p", _words_of(bytes(range(32)))), ("s", _words_of(b"\x11" * 32)), ("d", _words_of(b"test"))]


def test_raw_invoice_helper():
    inv = bolt11.decode(_raw_invoice(BASE_FIELDS))
    assert inv.payee == PAYEE and inv.description == "test" and inv.features == frozenset()
    assert inv.min_final_cltv_expiry_delta == 18 and inv.expiry == 3600


@pytest.mark.parametrize("tag,words", [("x", "qpu"), ("c", "qqp2"), ("9", "qsgq")])
def test_non_minimal_fields_rejected(tag, words):
    with pytest.raises(InvoiceError, match="not minimally encoded"):
        bolt11.decode(_raw_invoice(BASE_FIELDS + [(tag, words)]))


def test_first_of_repeated_fields_wins():
    inv = bolt11.decode(_raw_invoice(BASE_FIELDS + [("d", _words_of(b"second")), ("x", "pu"), ("x", "qu")]))
    assert inv.description == "test" and inv.expiry == 60


@pytest.mark.parametrize("tag,name", [("p", "payment_hash"), ("s", "payment_secret")])
def test_missing_required_fields(tag, name):
    with pytest.raises(InvoiceError, match=f"missing required {tag} \\({name}\\)"):
        bolt11.decode(_raw_invoice([f for f in BASE_FIELDS if f[0] != tag]))


def test_missing_description():
    with pytest.raises(InvoiceError, match="needs a d or an h"):
        bolt11.decode(_raw_invoice(BASE_FIELDS[:2]))


@pytest.mark.parametrize("tag,length", [("p", 51), ("p", 53), ("h", 53), ("s", 51), ("n", 52), ("n", 54)])
def test_wrong_length_fixed_fields_rejected(tag, length):
    with pytest.raises(InvoiceError, match=f"data_length {length}, must be"):
        bolt11.decode(_raw_invoice(BASE_FIELDS + [(tag, "q" * length)]))


def test_bad_recovery_id():
    text = _raw_invoice(BASE_FIELDS)
    values = [bech32.CHARSET.index(c) for c in text[5:-6]]
    values[-1] = 31  # the low 5 bits of the recovery id byte
    with pytest.raises(InvoiceError, match="recovery id"):
        bolt11.decode(bech32.bech32_encode("lnbc", values))


def test_d_and_h_rules():
    with pytest.raises(InvoiceError, match="both a d"):
        bolt11.decode(_sign(unknown_fields=(UnknownField("h", _words_of(b"\x00" * 32)),)))
    dh = bolt11.decode(_sign(description=None, description_hash=b"\x01" * 32))
    assert dh.description is None and dh.description_hash == b"\x01" * 32
    with pytest.raises(InvoiceError, match="valid UTF-8"):
        bolt11.decode(_sign(description=None, description_hash=b"\x01" * 32,
                            unknown_fields=(UnknownField("d", _words_of(b"\xff\xfe")),)))


def test_unknown_fields_kept_and_unknown_fallback_version_skipped():
    inv = bolt11.decode(_sign(unknown_fields=(UnknownField("2", "qqq"), UnknownField("f", "nqqqq"))))
    assert inv.unknown_fields == (UnknownField("2", "qqq"), UnknownField("f", "nqqqq"))
    assert inv.fallbacks == ()
    assert inv.to_json()["unknown_fields"] == [{"tag": "2", "data": "qqq", "data_length": 3},
                                               {"tag": "f", "data": "nqqqq", "data_length": 5}]


def test_bad_fallback_and_route_lengths_rejected():
    with pytest.raises(InvoiceError, match="20-byte hash"):
        bolt11.decode(_sign(unknown_fields=(UnknownField("f", "3" + _words_of(b"\x00" * 21)),)))
    with pytest.raises(InvoiceError, match="whole number"):
        bolt11.decode(_sign(unknown_fields=(UnknownField("r", _words_of(b"\x00" * 50)),)))


def test_basic_mpp_needs_payment_secret():
    with pytest.raises(InvoiceError, match="basic_mpp"):
        bolt11.decode(_sign(features={8, 16}))


# --------------------------------------------------------------------------------------------
# encoding


def test_encode_spec_example_fields():
    v = _vector("Please send 0.01 BTC with payment metadata 0x01fafaf0")
    want = bolt11.decode(v["invoice"])
    text = bolt11.encode(privkey=PRIVKEY, timestamp=want.timestamp, payment_hash=want.payment_hash,
                         payment_secret=want.payment_secret, amount_msat=want.amount_msat,
                         description=want.description, payment_metadata=want.payment_metadata,
                         features=want.features)
    assert text.startswith("lnbc10m1pvjluez")
    got = bolt11.decode(text)
    assert got.payee == PAYEE
    for name in ("amount_msat", "timestamp", "payment_hash", "payment_secret", "description",
                 "payment_metadata", "features", "expiry"):
        assert getattr(got, name) == getattr(want, name)
    assert text == bolt11.encode(privkey=PRIVKEY, timestamp=want.timestamp, payment_hash=want.payment_hash,
                                 payment_secret=want.payment_secret, amount_msat=want.amount_msat,
                                 description=want.description, payment_metadata=want.payment_metadata,
                                 features=want.features)  # deterministic


def test_pyln_decodes_our_invoices():
    from pyln.proto.invoice import Invoice as PylnInvoice

    hop = RouteHintHop(PAYEE, (700000 << 40) | (12 << 16) | 1, 1000, 250, 40)
    text = _sign(amount_msat=250_000_000, expiry=60, route_hints=((hop,),),
                 fallbacks=((0, bytes(20)), (17, bytes(range(20)))))
    ours = bolt11.decode(text)
    theirs = PylnInvoice.decode(text)
    assert theirs.pubkey.format().hex() == ours.payee.hex()
    assert theirs.paymenthash == ours.payment_hash
    assert int(theirs.amount * 100_000_000_000) == ours.amount_msat
    assert ours.route_hints[0][0].to_json()["short_channel_id"] == "700000x12x1"
    assert [t[1].decode() if isinstance(t[1], bytes) else t[1] for t in theirs.tags if t[0] == "f"] == [f.address for f in ours.fallbacks]
    assert bech32.decode("bc", ours.fallbacks[0].address) == (0, [0] * 20)


_bytes32 = st.binary(min_size=32, max_size=32)
_privkey = st.integers(1, bolt11._SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
_hop = st.builds(
    RouteHintHop,
    pubkey=st.sampled_from([PAYEE, bytes.fromhex("029e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255")]),
    short_channel_id=st.integers(0, 2**64 - 1),
    fee_base_msat=st.integers(0, 2**32 - 1),
    fee_proportional_millionths=st.integers(0, 2**32 - 1),
    cltv_expiry_delta=st.integers(0, 2**16 - 1),
)
_fallback = st.one_of(
    st.tuples(st.sampled_from([17, 18]), st.binary(min_size=20, max_size=20)),
    st.tuples(st.just(0), st.sampled_from([20, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))),
    st.tuples(st.integers(1, 16), st.binary(min_size=2, max_size=40)),
)
# bits that BOLT 9 defines for invoices (context 9, or every context)
_invoice_bits = sorted(b for f in FEATURES if f.known_in("9") for b in (f.bit, f.bit + 1))
_known_odd = [b for b in _invoice_bits if b % 2]
_features = st.frozensets(st.sampled_from(_invoice_bits + [99, 101, 255])).filter(
    lambda f: not (f & {16, 17}) or f & {14, 15}
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    privkey=_privkey,
    timestamp=st.integers(0, 2**35 - 1),
    payment_hash=_bytes32,
    payment_secret=_bytes32,
    network=st.sampled_from(["bitcoin", "testnet", "signet", "regtest"]),
    amount_msat=st.one_of(st.none(), st.integers(1, 2**64 - 1)),
    desc=st.one_of(st.text(max_size=100).map(lambda s: ("d", s)), _bytes32.map(lambda h: ("h", h))),
    expiry=st.integers(0, 2**64 - 1),
    cltv=st.integers(0, 2**32),
    fallbacks=st.lists(_fallback, max_size=3),
    route_hints=st.lists(st.lists(_hop, min_size=1, max_size=4).map(tuple), max_size=3),
    features=_features,
    payment_metadata=st.one_of(st.none(), st.binary(max_size=64)),
    include_payee=st.booleans(),
)
def test_round_trip(privkey, timestamp, payment_hash, payment_secret, network, amount_msat, desc, expiry, cltv,
                    fallbacks, route_hints, features, payment_metadata, include_payee):
    kw = dict(privkey=privkey, timestamp=timestamp, payment_hash=payment_hash, payment_secret=payment_secret,
              network=network, amount_msat=amount_msat, expiry=expiry, min_final_cltv_expiry_delta=cltv,
              fallbacks=tuple(fallbacks), route_hints=tuple(route_hints), features=features,
              payment_metadata=payment_metadata, include_payee=include_payee)
    kw["description" if desc[0] == "d" else "description_hash"] = desc[1]
    text = bolt11.encode(**kw)
    inv = bolt11.decode(text, network_hint=network)
    from coincurve import PrivateKey

    assert inv.payee == PrivateKey(privkey).public_key.format()
    assert inv.payee_in_invoice == include_payee
    assert inv.network == network
    assert (inv.amount_msat, inv.timestamp, inv.payment_hash, inv.payment_secret) == (
        amount_msat, timestamp, payment_hash, payment_secret)
    assert (inv.description if desc[0] == "d" else inv.description_hash) == desc[1]
    assert (inv.expiry, inv.min_final_cltv_expiry_delta) == (expiry, cltv)
    assert [(f.version, f.program) for f in inv.fallbacks] == fallbacks
    assert list(inv.route_hints) == route_hints
    assert inv.features == features
    assert inv.payment_metadata == payment_metadata
    assert int.from_bytes(inv.signature[32:], "big") <= bolt11._HALF_N  # libsecp256k1 signs low-S
    # encoding the decoded invoice again gives the same text
    again = bolt11.encode(
        privkey=privkey, timestamp=inv.timestamp, payment_hash=inv.payment_hash,
        payment_secret=inv.payment_secret, network=inv.network, amount_msat=inv.amount_msat,
        description=inv.description, description_hash=inv.description_hash, expiry=inv.expiry,
        min_final_cltv_expiry_delta=inv.min_final_cltv_expiry_delta, fallbacks=inv.fallbacks,
        route_hints=inv.route_hints, features=inv.features, payment_metadata=inv.payment_metadata,
        include_payee=inv.payee_in_invoice)
    assert again == text
    assert bolt11.decode(again) == inv
    json.dumps(inv.to_json())


# --------------------------------------------------------------------------------------------
# fuzzing: only DecodeError may escape


def _decode_or_decode_error(text):
    try:
        inv = bolt11.decode(text)
    except DecodeError:
        return None
    json.dumps(inv.to_json())
    return inv


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(alphabet="qpzry9x8gf2tvdw0s3jn54khce6mua7l1lnbcLNBC", max_size=400)))
def test_random_text_only_decode_error(text):
    _decode_or_decode_error(text)


_ALL_VALID = [v["invoice"] for v in VEC["valid"]] + [v["invoice"] for v in VEC["invalid"]]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_ALL_VALID), st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(
    ["replace", "delete", "insert", "swapcase"]), st.characters(codec="ascii")), min_size=1, max_size=4))
def test_mutated_text_only_decode_error(text, edits):
    chars = list(text)
    for pos, op, ch in edits:
        if not chars:
            break
        pos %= len(chars)
        if op == "replace":
            chars[pos] = ch
        elif op == "delete":
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, ch)
        else:
            chars[pos] = chars[pos].swapcase()
    _decode_or_decode_error("".join(chars))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_ALL_VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 31)),
                                            min_size=1, max_size=6), st.booleans())
def test_mutated_values_with_fixed_checksum_only_decode_error(text, edits, truncate):
    """Change 5-bit values then recompute the checksum, so that the field parser sees the damage."""
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or any(c not in bech32.CHARSET for c in text[sep + 1 :]):
        return
    hrp, values = text[:sep], [bech32.CHARSET.index(c) for c in text[sep + 1 : -6]]
    for pos, val in edits:
        values[pos % len(values)] = val
    if truncate:
        start = edits[0][0] % len(values)
        del values[start : start + edits[0][1]]
    _decode_or_decode_error(bech32.bech32_encode(hrp, values))


def test_encode_rejects_bad_inputs():
    from lncli.errors import InputError

    with pytest.raises(InputError, match="too long"):
        _sign(description="x" * 700)
    with pytest.raises(InputError, match="exactly one"):
        _sign(description_hash=b"\x00" * 32)
    with pytest.raises(InputError, match="privkey"):
        _sign(privkey=b"\x00" * 32)
    with pytest.raises(InputError, match="out of range"):
        _sign(route_hints=((RouteHintHop(PAYEE, 2**64, 0, 0, 0),),))
    with pytest.raises(InputError, match="20 or 32"):
        _sign(fallbacks=((0, bytes(21)),))
    with pytest.raises(InputError, match="positive"):
        _sign(amount_msat=0)
    assert len(_sign(description="x" * 639)) > 1000  # the longest d field that fits
