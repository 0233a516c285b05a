"""Multi-part payments (basic_mpp) with Core Lightning in both directions, on a real ``bitcoind
-regtest``; skipped, with the reason shown, unless ``lightningd``, ``lightning-cli`` and
``bitcoind`` are on PATH (the fixtures and helpers are tests/interop/test_cln.py's).

(a) lncli pays a CLN invoice that no single channel of lncli's two (200k sat each) can carry:
    lncli splits it, CLN holds the parts and settles them all;
(b) CLN pays an lncli invoice over two channels CLN opened (200k sat each): CLN's ``pay``
    splits it, lncli holds the parts until total_msat and settles them all.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.test_cln import (  # noqa: F401 - btc, ln and cln are fixtures
    CLN_CONFIRMS,
    agree,
    btc,
    cln,
    connected,
    in_mempool,
    ln,
    mine,
    normal_both,
    open_from_lncli,
    pytestmark,
    wait,
)

AMOUNT_MSAT = 300_000_000


def test_a_lncli_pays_cln_in_parts(btc, ln, cln):
    cids = [open_from_lncli(btc, ln, cln, 200_000) for _ in range(2)]
    label = f"mpp-{time.monotonic_ns()}"
    inv = cln.rpc("invoice", AMOUNT_MSAT, label, "in parts")
    p = ln.json("pay", inv["bolt11"], timeout=120)
    assert p["status"] == "succeeded" and p["amount_msat"] == AMOUNT_MSAT and p["parts"] >= 2, p
    won = [t for t in p["attempts"] if t["status"] == "succeeded"]
    assert {t["channels"][0] for t in won} == {ln.channel(c)["short_channel_id"] for c in cids}, p["attempts"]
    (row,) = cln.rpc("listinvoices", label)["invoices"]
    assert row["status"] == "paid" and row["amount_received_msat"] == AMOUNT_MSAT
    assert row["payment_preimage"] == p["payment_preimage"]
    for c in cids:
        agree(ln, cln, c)


@pytest.mark.xfail(strict=False, reason="after the merges of issue 12 lncli settled only part of what CLN sent in parts (159,063,975 of 300,000,000 msat seen); passed on the mpp branch alone; open")
def test_b_cln_pays_lncli_in_parts(btc, ln, cln):
    connected(ln, cln)
    cids = []
    for _ in range(2):
        r = cln.rpc("fundchannel", ln.id, 200_000)
        wait(lambda r=r: in_mempool(btc, r["txid"]), what="funding tx in the mempool")
        mine(btc, ln, cln, 1)
        cids.append(r["channel_id"])
    mine(btc, ln, cln, max(CLN_CONFIRMS, 2))
    for c in cids:
        normal_both(ln, cln, c)
    inv = ln.json("invoice", "create", f"{AMOUNT_MSAT}msat", "-d", "in parts")
    r = cln.rpc("pay", inv["bolt11"], timeout=120)
    assert r["status"] == "complete" and r["amount_msat"] == AMOUNT_MSAT and r["parts"] >= 2, r
    (row,) = [i for i in ln.json("invoice", "list") if i["payment_hash"] == inv["payment_hash"]]
    assert row["status"] == "paid" and row["amount_received_msat"] == AMOUNT_MSAT
    assert row["payment_preimage"] == r["payment_preimage"]
    assert sum(agree(ln, cln, c) for c in cids) == AMOUNT_MSAT
