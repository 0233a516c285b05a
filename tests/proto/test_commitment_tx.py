"""The transactions of one commitment of a channel (lncli.proto.commitment_tx): the fast key
derivation against the reference one, a side's commitment and HTLC txs against BOLT 3 Appendix
C and F byte for byte, and what a BuiltCommitment computes once."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.bitcoin.tx import Transaction
from lncli.channel import state
from lncli.errors import DecodeError
from lncli.proto import commitment_tx as ctx_mod
from lncli.proto.commitment import Basepoints, build_htlc_tx, derive_commitment_keys, htlc_remote_sighash_type
from lncli.proto.commitment_tx import LOCAL, REMOTE, BuiltCommitment, build_commitment, commitment_keys, htlc_tx, htlc_vouts
from lncli.proto.keys import per_commitment_point
from tests.proto.test_commitment import (
    CASES,
    COMMITMENT_NUMBER,
    FACTOR,
    FUNDING_OUTPOINT,
    FUNDING_SAT,
    FUNDING_SCRIPT,
    KEYS,
    LOCAL_BASEPOINTS,
    PER_COMMITMENT_SECRET,
    REMOTE_BASEPOINTS,
    TO_SELF_DELAY,
    V,
    build_case,
)

H = bytes.fromhex


def test_sides_are_the_channels():
    assert (LOCAL, REMOTE) == (state.LOCAL, state.REMOTE)


def test_commitment_keys_are_the_reference_keys():
    pcp = per_commitment_point(PER_COMMITMENT_SECRET)
    assert commitment_keys(pcp, LOCAL_BASEPOINTS, REMOTE_BASEPOINTS) == KEYS
    assert commitment_keys(pcp, REMOTE_BASEPOINTS, LOCAL_BASEPOINTS) == derive_commitment_keys(
        pcp, REMOTE_BASEPOINTS, LOCAL_BASEPOINTS
    )


_secrets = st.integers(1, 2**255).map(lambda n: n.to_bytes(32, "big"))


@settings(max_examples=40, deadline=None)
@given(st.lists(_secrets, min_size=11, max_size=11))
def test_property_commitment_keys_equal_the_reference(s):
    pub = [pubkey_from_privkey(x) for x in s]
    a, b = Basepoints(*pub[0:5]), Basepoints(*pub[5:10])
    for _ in range(2):  # basepoints parsed, then from the process cache
        assert commitment_keys(pub[10], a, b) == derive_commitment_keys(pub[10], a, b)


def test_commitment_keys_bad_point_raises_the_reference_error():
    with pytest.raises(DecodeError):
        derive_commitment_keys(b"\x02" + bytes(32), LOCAL_BASEPOINTS, REMOTE_BASEPOINTS)
    with pytest.raises(DecodeError):
        commitment_keys(b"\x02" + bytes(32), LOCAL_BASEPOINTS, REMOTE_BASEPOINTS)


def _htlc_views(case: dict, holder_is_us: bool) -> list:
    """The vector's HTLCs as a channel's records: ``outbound`` (we offered) is the holder's
    ``offered`` when we hold the commitment, its opposite when the peer does."""
    out = []
    for i in case["htlc_ids"]:
        h = V["htlcs"][i]
        offered = h["direction"] == "local->remote"
        out.append(SimpleNamespace(
            htlc_id=i, amount_msat=h["amount_msat"],
            payment_hash=hashlib.sha256(H(h["payment_preimage"])).digest(),
            cltv_expiry=h["expiry"], outbound=offered == holder_is_us,
        ))
    return out


def _view(case: dict, side: int):
    """A channel whose ``side`` commitment is the vector's: the holder opened it; its dust limit
    and the to_self_delay the other side asked of it are the vector's."""
    holder = SimpleNamespace(dust_limit_satoshis=case["dust"], to_self_delay=999)
    other = SimpleNamespace(dust_limit_satoshis=1, to_self_delay=TO_SELF_DELAY)
    local, remote = (holder, other) if side == LOCAL else (other, holder)
    return SimpleNamespace(
        funding_outpoint=FUNDING_OUTPOINT, funding_satoshis=FUNDING_SAT, local_config=local, remote_config=remote,
        is_opener=side == LOCAL, anchors=case["anchors"], obscure_factor=FACTOR,
    )


@pytest.mark.parametrize("side", [LOCAL, REMOTE])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_build_commitment_of_either_side_is_the_vectors(case, side):
    ch = _view(case, side)
    holder_is_us = side == LOCAL
    ours, theirs = case["to_local_msat"], case["to_remote_msat"]
    if not holder_is_us:
        ours, theirs = theirs, ours
    got = build_commitment(ch, side, COMMITMENT_NUMBER, ours, theirs, _htlc_views(case, holder_is_us), KEYS, case["feerate"])
    assert got == build_case(case)
    assert got.tx.to_bytes() == build_case(case).tx.to_bytes()
    # the HTLC txs spend it as the vector's do
    expected = {Transaction.from_hex(h["tx"]).inputs[0].prevout.vout: h["tx"] for h in case["htlc_txs"]}
    assert [v for v, _h in htlc_vouts(got)] == sorted(expected)
    built = BuiltCommitment(got, KEYS, case["feerate"])
    assert built.funding_sighash(FUNDING_SCRIPT, FUNDING_SAT) == SighashCache(got.tx).segwit_v0(
        0, FUNDING_SCRIPT, FUNDING_SAT, SIGHASH_ALL
    )
    rows = built.htlc_txs(ch, side)
    assert built.htlc_txs(ch, side) is rows  # computed once
    for (vout, h, htx, _hcache, hsighash), (vout2, h2) in zip(rows, htlc_vouts(got)):
        assert (vout, h) == (vout2, h2)
        assert htx == htlc_tx(ch, side, got.tx.txid(), vout, h, KEYS, case["feerate"])
        assert htx == build_htlc_tx(
            commitment_txid=got.txid, vout=vout, htlc=h, keys=KEYS, to_self_delay=TO_SELF_DELAY,
            feerate_per_kw=case["feerate"], anchors=case["anchors"],
        )
        assert Transaction.from_hex(expected[vout]).to_bytes(False) == htx.to_bytes(False)  # unsigned, the vector's
        ws = got.outputs[vout].witness_script
        assert hsighash == SighashCache(htx).segwit_v0(0, ws, h.amount_sat, htlc_remote_sighash_type(case["anchors"]))


def test_proto_stays_pure():
    """lncli.proto.commitment_tx imports nothing from lncli.channel (nor I/O modules)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ctx_mod))
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(n.startswith(("lncli.channel", "lncli.node", "socket", "os", "time", "random", "asyncio")) for n in names)
