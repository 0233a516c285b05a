"""The node's invoice store: creation, decoding back, paid/expired statuses, BOLT 4 final-node checks."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.errors import InputError
from lncli.node import invoices as inv_mod
from lncli.node.invoices import (
    FINAL_INCORRECT_CLTV_EXPIRY,
    FINAL_INCORRECT_HTLC_AMOUNT,
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
    OK,
    InvoiceStore,
)
from lncli.proto import invoice as bolt11
from lncli.proto.invoice import RouteHintHop
from lncli.proto.transport import public_key
from lncli.rpc.server import Registry
from lncli.store.db import open_db

NODE_KEY = bytes.fromhex("e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734")
T0 = 1_700_000_000
FAIL = INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    db = open_db(tmp_path / "node.sqlite3", {})
    yield InvoiceStore(db, NODE_KEY, "regtest", clock=clock)
    db.close()


def test_create_and_decode_back(store):
    rec = store.create(1_000_000, "coffee")
    assert len(rec.preimage) == 32 and len(rec.payment_secret) == 32
    assert rec.payment_hash == hashlib.sha256(rec.preimage).digest()
    d = bolt11.decode(rec.bolt11)
    assert rec.bolt11.startswith("lnbcrt10u1")
    assert d.network == "regtest" and d.payee == public_key(NODE_KEY)
    assert d.amount_msat == 1_000_000 and d.description == "coffee" and d.description_hash is None
    assert d.payment_hash == rec.payment_hash and d.payment_secret == rec.payment_secret
    assert d.timestamp == T0 and d.expiry == 3600 and d.expires_at == rec.expires_at == T0 + 3600
    assert d.min_final_cltv_expiry_delta == 18
    assert d.features == {8, 14, 17}  # var_onion_optin, payment_secret required; basic_mpp optional
    assert d.feature_names == {8: "var_onion_optin", 14: "payment_secret", 17: "basic_mpp"}
    assert store.lookup(rec.payment_hash) == rec
    assert store.status(rec) == "unpaid"


def test_any_amount_description_hash_expiry_route_hints(store):
    h = hashlib.sha256(b"a long description").digest()
    hop = RouteHintHop(public_key(b"\x11" * 32), (700 << 40) | (3 << 16) | 1, 1000, 100, 40)
    rec = store.create(None, description_hash=h, expiry=60, route_hints=[[hop]])
    d = bolt11.decode(rec.bolt11)
    assert rec.bolt11.startswith("lnbcrt1")
    assert d.amount_msat is None and d.description is None and d.description_hash == h
    assert d.expiry == 60 and d.route_hints == ((hop,),)
    # no description at all: an empty one (BOLT 11 wants d or h)
    assert bolt11.decode(store.create(5000).bolt11).description == ""


def test_every_invoice_is_fresh(store):
    a, b = store.create(1000, "x"), store.create(1000, "x")
    assert a.preimage != b.preimage and a.payment_secret != b.payment_secret and a.bolt11 != b.bolt11


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount_msat": 0},
        {"amount_msat": -5},
        {"amount_msat": 1.5},
        {"amount_msat": True},
        {"amount_msat": 21_000_000 * 10**11 + 1},
        {"description": "a", "description_hash": b"\x00" * 32},
        {"description_hash": b"\x00" * 31},
        {"expiry": 0},
        {"expiry": -1},
        {"expiry": 10**12},
        {"description": "x" * 700},  # longer than a BOLT 11 field can hold
    ],
)
def test_create_rejects(store, kwargs):
    with pytest.raises(InputError):
        store.create(**kwargs)
    assert store.list() == []


def test_mark_paid_and_statuses(store, clock):
    a = store.create(1000, "a", expiry=100)
    b = store.create(None, "b", expiry=10)
    c = store.create(2000, "c")
    clock.t += 5
    paid = store.mark_paid(a.payment_hash, 1500)
    assert paid.paid_at == T0 + 5 and paid.amount_received_msat == 1500
    j = store.to_json(paid)
    assert j["status"] == "paid" and j["payment_preimage"] == a.preimage.hex()
    assert store.to_json(c)["payment_preimage"] is None  # still secret
    # paying again keeps the first record
    clock.t += 1
    assert store.mark_paid(a.payment_hash, 9999) == paid
    with pytest.raises(InputError):
        store.mark_paid(b"\x00" * 32, 1)
    # b expires at T0 + 10 (computed when read)
    assert store.status(store.lookup(b.payment_hash)) == "unpaid"
    clock.t = T0 + 10
    assert store.status(store.lookup(b.payment_hash)) == "expired"
    assert [r.payment_hash for r in store.list()] == [a.payment_hash, b.payment_hash, c.payment_hash]
    assert [r.payment_hash for r in store.list("paid")] == [a.payment_hash]
    assert [r.payment_hash for r in store.list("expired")] == [b.payment_hash]
    assert [r.payment_hash for r in store.list("unpaid")] == [c.payment_hash]
    assert store.list(payment_hash=c.payment_hash) == [c]
    assert store.list("paid", payment_hash=c.payment_hash) == []
    # an expired invoice can still be recorded as paid (the HTLC was accepted before)
    assert store.status(store.mark_paid(b.payment_hash, 7)) == "paid"
    with pytest.raises(InputError):
        store.list("settled")


def test_survives_reopen(tmp_path, clock):
    db = open_db(tmp_path / "n.sqlite3", {})
    rec = InvoiceStore(db, NODE_KEY, "regtest", clock=clock).create(1000, "x")
    db.close()
    db = open_db(tmp_path / "n.sqlite3", {})
    try:
        assert InvoiceStore(db, NODE_KEY, "regtest", clock=clock).lookup(rec.payment_hash) == rec
    finally:
        db.close()


def test_networks(tmp_path, clock):
    db = open_db(tmp_path / "n.sqlite3", {})
    try:
        for network, prefix in (("mainnet", "lnbc1"), ("testnet", "lntb1"), ("signet", "lntbs1")):
            assert InvoiceStore(db, NODE_KEY, network, clock=clock).create(None, "x").bolt11.startswith(prefix)
        with pytest.raises(InputError):
            InvoiceStore(db, NODE_KEY, "litecoin")
    finally:
        db.close()


# -- BOLT 4 final-node checks -------------------------------------------------------------------


def test_check_htlc(store, clock):
    rec = store.create(10_000, "x", expiry=600)
    ph, ps = rec.payment_hash, rec.payment_secret
    height = 200

    def check(**kw):
        args = dict(payment_hash=ph, payment_secret=ps, amount_msat=10_000, total_msat=10_000,
                    cltv_expiry=height + 18, current_height=height)
        args.update(kw)
        return store.check_htlc(**args)

    assert check() == OK
    assert check(total_msat=None) == OK
    assert check(amount_msat=20_000, total_msat=20_000) == OK  # up to twice the amount
    assert check(cltv_expiry=height + 100) == OK
    assert check(payment_hash=b"\x01" * 32) == FAIL  # unknown
    assert check(payment_secret=b"\x02" * 32) == FAIL  # wrong secret
    assert check(payment_secret=None) == FAIL  # required
    assert check(amount_msat=9_999, total_msat=9_999) == FAIL  # too little
    assert check(amount_msat=20_001, total_msat=20_001) == FAIL  # more than twice
    # a part of an HTLC set (basic_mpp): the checks are of total_msat, the caller holds the part
    assert check(total_msat=20_000) == OK
    assert check(amount_msat=5_000, total_msat=10_000) == OK
    assert check(amount_msat=5_000, total_msat=9_999) == FAIL  # the total is too little
    assert check(amount_msat=5_000, total_msat=20_001) == FAIL  # the total is more than twice
    assert check(amount_msat=20_000, total_msat=15_000) == FAIL  # a total below this part alone
    assert check(cltv_expiry=height + 17) == FAIL  # too near the present
    # the onion's values versus the HTLC's
    assert check(amt_to_forward=10_001) == FINAL_INCORRECT_HTLC_AMOUNT
    assert check(outgoing_cltv_value=height + 19) == FINAL_INCORRECT_CLTV_EXPIRY
    assert check(amt_to_forward=10_000, outgoing_cltv_value=height + 18) == OK
    # more in the HTLC than the onion says: the onion's amount counts
    assert check(amount_msat=10_500, amt_to_forward=10_000, total_msat=10_000) == OK
    # expired
    clock.t = rec.expires_at
    assert check() == FAIL
    clock.t = T0
    # paid: treated as unknown
    store.mark_paid(ph, 10_000)
    assert check() == FAIL


def test_check_htlc_any_amount(store):
    rec = store.create(None, "tip")
    ok = store.check_htlc(rec.payment_hash, rec.payment_secret, 1, 1, 118, 100)
    assert ok == OK
    assert store.check_htlc(rec.payment_hash, rec.payment_secret, 10**12, None, 118, 100) == OK


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(0, 1 << 64),
    total=st.one_of(st.none(), st.integers(0, 1 << 64)),
    cltv=st.integers(0, 1 << 32),
    height=st.integers(0, 1 << 24),
    secret_ok=st.booleans(),
    hash_ok=st.booleans(),
    fwd=st.one_of(st.none(), st.integers(0, 1 << 64)),
    out_cltv=st.one_of(st.none(), st.integers(0, 1 << 32)),
)
def test_check_htlc_only_names(tmp_path_factory, amount, total, cltv, height, secret_ok, hash_ok, fwd, out_cltv):
    s = _shared_store(tmp_path_factory)
    rec = s.lookup(_SHARED["hash"])
    result = s.check_htlc(
        rec.payment_hash if hash_ok else b"\x07" * 32,
        rec.payment_secret if secret_ok else b"\x08" * 32,
        amount, total, cltv, height, amt_to_forward=fwd, outgoing_cltv_value=out_cltv,
    )
    assert result in (OK, FAIL, FINAL_INCORRECT_CLTV_EXPIRY, FINAL_INCORRECT_HTLC_AMOUNT)
    if result == OK:
        paid = (fwd if fwd is not None else amount) if total is None else total
        assert hash_ok and secret_ok and 50_000 <= paid <= 100_000 and cltv >= height + 18


_SHARED: dict = {}


def _shared_store(factory) -> InvoiceStore:
    if "store" not in _SHARED:
        db = open_db(factory.mktemp("inv") / "node.sqlite3", {})
        store = InvoiceStore(db, NODE_KEY, "regtest", clock=Clock())
        _SHARED["store"] = store
        _SHARED["hash"] = store.create(50_000, "p").payment_hash
    return _SHARED["store"]


# -- RPC methods -------------------------------------------------------------------------------


def test_rpc_methods(store):
    reg = Registry()
    inv_mod.register(reg, store)
    invoice = reg.get("invoice")[0]
    listinvoices = reg.get("listinvoices")[0]
    out = asyncio.run(invoice(amount_msat=3000, description="tea", expiry=120))
    assert out["status"] == "unpaid" and out["amount_msat"] == 3000 and out["expires_at"] == T0 + 120
    assert bolt11.decode(out["bolt11"]).payment_hash.hex() == out["payment_hash"]
    h = hashlib.sha256(b"d").hexdigest()
    out2 = asyncio.run(invoice(description_hash=h))
    assert out2["description_hash"] == h and out2["amount_msat"] is None
    assert [i["payment_hash"] for i in asyncio.run(listinvoices())] == [out["payment_hash"], out2["payment_hash"]]
    assert [i["payment_hash"] for i in asyncio.run(listinvoices(payment_hash=out2["payment_hash"]))] == [out2["payment_hash"]]
    assert asyncio.run(listinvoices(status="paid")) == []
    for bad in ({"description_hash": "zz"}, {"amount_msat": "1000"}, {"description": 5}):
        with pytest.raises(InputError):
            asyncio.run(invoice(**bad))
    with pytest.raises(InputError):
        asyncio.run(listinvoices(payment_hash="abcd"))
    with pytest.raises(InputError):
        asyncio.run(listinvoices(status="nope"))
