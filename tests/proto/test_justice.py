"""Justice (penalty) transactions on revoked BOLT 3 commitments and HTLC transactions.

The Appendix C/F commitments are local's commitment 42; remote's revocation basepoint secret
and local's per-commitment secret are in the vectors' INTERNAL values, so remote can punish
every one of them once local has revealed that secret.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.script import p2wpkh_script_for_pubkey, p2wsh_script
from lncli.bitcoin.sighash import SIGHASH_ALL
from lncli.bitcoin.tx import Transaction
from lncli.chain.interpreter import verify_input as interpret_input
from lncli.errors import RefusedError
from lncli.proto.commitment import derive_commitment_keys, verify_input
from lncli.proto.justice import (
    JUSTICE_SEQUENCE,
    build_htlc_justice_tx,
    build_justice_tx,
    find_revoked_outputs,
    revocation_privkey,
)
from lncli.proto.keys import per_commitment_point
from lncli.proto.scripts import to_local_script
from lncli.proto.shachain import per_commitment_secret
from tests.proto.test_commitment import (
    CASES,
    KEYS,
    LOCAL_BASEPOINTS,
    PER_COMMITMENT_SECRET,
    REMOTE_BASEPOINTS,
    REMOTE_REVOCATION_BASEPOINT_SECRET,
    TO_SELF_DELAY,
    build_case,
    vector_htlc,
)

DEST = p2wpkh_script_for_pubkey(pubkey_from_privkey(b"\x77" * 32))
REVOCATION_PRIVKEY = revocation_privkey(PER_COMMITMENT_SECRET, REMOTE_REVOCATION_BASEPOINT_SECRET)


def _check_signed(justice: Transaction, spent: dict, revocation_pubkey: bytes) -> None:
    """Each input: its signature verifies under our sighash for its script and amount, and
    the script interpreter accepts the spend."""
    for i, txin in enumerate(justice.inputs):
        out = spent[txin.prevout]
        sig_item, second, wscript = txin.witness
        assert sig_item[-1] == SIGHASH_ALL
        assert verify_input(justice, i, wscript, out.value_sat, revocation_pubkey, sig_item[:-1])
        assert second in (b"\x01", revocation_pubkey)
        assert txin.sequence == JUSTICE_SEQUENCE
        interpret_input(justice, i, out.script_pubkey, out.value_sat)


def _outputs_of(tx: Transaction) -> dict:
    return {tx.outpoint(v): o for v, o in enumerate(tx.outputs)}


def test_revocation_key_matches_the_vector():
    assert pubkey_from_privkey(REVOCATION_PRIVKEY) == KEYS.revocation_pubkey


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_justice_on_vector_commitments(case):
    commit = Transaction.from_hex(case["commit_tx"])
    htlcs = [vector_htlc(i) for i in case["htlc_ids"]]
    ours = build_case(case)
    expected_inputs = len(ours.htlc_outputs) + (ours.to_local_vout is not None)
    if expected_inputs == 0:
        with pytest.raises(RefusedError):
            build_justice_tx(
                revoked_commitment_tx=commit, per_commitment_secret=PER_COMMITMENT_SECRET,
                revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
                countersignatory=REMOTE_BASEPOINTS, htlcs=htlcs, to_self_delay=TO_SELF_DELAY, feerate_per_kw=253,
                destination_script=DEST, anchors=case["anchors"],
            )
        return
    justice = build_justice_tx(
        revoked_commitment_tx=commit, per_commitment_secret=PER_COMMITMENT_SECRET,
        revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
        countersignatory=REMOTE_BASEPOINTS, htlcs=htlcs, to_self_delay=TO_SELF_DELAY, feerate_per_kw=253,
        destination_script=DEST, anchors=case["anchors"],
    )
    assert len(justice.inputs) == expected_inputs
    swept = {txin.prevout.vout for txin in justice.inputs}
    assert swept == set(ours.htlc_outputs.values()) | ({ours.to_local_vout} if ours.to_local_vout is not None else set())
    _check_signed(justice, _outputs_of(commit), KEYS.revocation_pubkey)
    total_in = sum(commit.outputs[v].value_sat for v in swept)
    fee = total_in - justice.outputs[0].value_sat
    assert justice.outputs[0].script_pubkey == DEST
    assert 253 * justice.weight() // 1000 <= fee <= 253 * (justice.weight() + 4 * len(swept)) // 1000 + 1


def test_justice_at_an_old_commitment_number():
    seed = bytes(range(32))
    number = 7
    secret = per_commitment_secret(seed, number)
    keys = derive_commitment_keys(per_commitment_point(secret), LOCAL_BASEPOINTS, REMOTE_BASEPOINTS)
    case = next(c for c in CASES if c["id"] == "F: commitment tx with seven outputs untrimmed")
    commit = build_case(case, keys=keys, commitment_number=number)
    htlcs = [vector_htlc(i) for i in case["htlc_ids"]]
    justice = build_justice_tx(
        revoked_commitment_tx=commit.tx, per_commitment_secret=secret,
        revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
        countersignatory=REMOTE_BASEPOINTS, htlcs=htlcs, to_self_delay=TO_SELF_DELAY, feerate_per_kw=2500,
        destination_script=DEST, anchors=True,
    )
    assert len(justice.inputs) == 6  # to_local and five HTLCs; not to_remote, not the anchors
    _check_signed(justice, _outputs_of(commit.tx), keys.revocation_pubkey)
    # a different commitment's secret recognises nothing
    other = per_commitment_secret(seed, number + 1)
    with pytest.raises(RefusedError):
        build_justice_tx(
            revoked_commitment_tx=commit.tx, per_commitment_secret=other,
            revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
            countersignatory=REMOTE_BASEPOINTS, htlcs=htlcs, to_self_delay=TO_SELF_DELAY, feerate_per_kw=2500,
            destination_script=DEST, anchors=True,
        )


def test_without_htlc_knowledge_only_to_local_is_swept():
    case = next(c for c in CASES if c["id"] == "C: commitment tx with all five HTLCs untrimmed (minimum feerate)")
    commit = Transaction.from_hex(case["commit_tx"])
    found = find_revoked_outputs(commit, KEYS, [], TO_SELF_DELAY, anchors=False)
    assert [o.kind for o in found] == ["to_local"]
    assert found[0].witness_script == to_local_script(KEYS.revocation_pubkey, TO_SELF_DELAY, KEYS.local_delayed_pubkey)


@pytest.mark.parametrize("case", [c for c in CASES if c["htlc_txs"]], ids=lambda c: c["id"])
def test_htlc_justice_on_vector_second_stage_txs(case):
    for h in case["htlc_txs"]:
        htlc_tx = Transaction.from_hex(h["tx"])
        justice = build_htlc_justice_tx(
            htlc_tx=htlc_tx, per_commitment_secret=PER_COMMITMENT_SECRET,
            revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
            countersignatory=REMOTE_BASEPOINTS, to_self_delay=TO_SELF_DELAY, feerate_per_kw=253,
            destination_script=DEST,
        )
        assert len(justice.inputs) == 1 and justice.inputs[0].witness[1] == b"\x01"
        _check_signed(justice, _outputs_of(htlc_tx), KEYS.revocation_pubkey)


def test_refusals_and_bad_keys():
    case = next(c for c in CASES if c["id"] == "C: simple commitment tx with no HTLCs")
    commit = Transaction.from_hex(case["commit_tx"])
    kwargs = dict(
        revoked_commitment_tx=commit, per_commitment_secret=PER_COMMITMENT_SECRET,
        revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
        countersignatory=REMOTE_BASEPOINTS, htlcs=[], to_self_delay=TO_SELF_DELAY,
        destination_script=DEST, anchors=False,
    )
    with pytest.raises(RefusedError):  # the fee would eat the whole output
        build_justice_tx(feerate_per_kw=10**9, **kwargs)
    with pytest.raises(ValueError):  # not our revocation basepoint
        build_justice_tx(feerate_per_kw=253, **{**kwargs, "revocation_basepoint_secret": b"\x33" * 32})
    with pytest.raises(RefusedError):  # wrong delay: the to_local script is not found
        build_justice_tx(feerate_per_kw=253, **{**kwargs, "to_self_delay": 145})


@settings(max_examples=25, deadline=None)
@given(st.integers(253, 100_000))
def test_fee_follows_feerate(feerate):
    case = next(c for c in CASES if c["id"] == "C: commitment tx with all five HTLCs untrimmed (minimum feerate)")
    commit = Transaction.from_hex(case["commit_tx"])
    justice = build_justice_tx(
        revoked_commitment_tx=commit, per_commitment_secret=PER_COMMITMENT_SECRET,
        revocation_basepoint_secret=REMOTE_REVOCATION_BASEPOINT_SECRET, broadcaster=LOCAL_BASEPOINTS,
        countersignatory=REMOTE_BASEPOINTS, htlcs=[vector_htlc(i) for i in case["htlc_ids"]],
        to_self_delay=TO_SELF_DELAY, feerate_per_kw=feerate, destination_script=p2wsh_script(b"\x51"),
        anchors=False,
    )
    total_in = sum(commit.outputs[t.prevout.vout].value_sat for t in justice.inputs)
    fee = total_in - justice.outputs[0].value_sat
    assert fee * 1000 // justice.weight() >= feerate  # never below the asked feerate
