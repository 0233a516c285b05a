"""BOLT 3 commitment and HTLC transactions: Appendix C and F byte for byte, keys, fees,
trimming, ordering, and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.script import funding_script, p2wsh_script
from lncli.bitcoin.tx import OutPoint, Transaction
from lncli.chain.interpreter import verify_input as interpret_input
from lncli.proto.commitment import (
    ANCHOR_OUTPUT_SAT,
    Basepoints,
    CommitmentKeys,
    Htlc,
    build_commitment_tx,
    build_htlc_tx,
    commitment_fee_sat,
    derive_commitment_keys,
    funding_witness,
    htlc_remote_sighash_type,
    htlc_success_fee_sat,
    htlc_timeout_fee_sat,
    htlc_witness,
    is_trimmed,
    sign_input,
    verify_input,
)
from lncli.proto.keys import obscure_factor, per_commitment_point
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
P = V["commitment_params"]
INTERNAL = V["internal_derivation_values"]
H = bytes.fromhex


def _secret(hex_with_01: str) -> bytes:
    return H(hex_with_01)[:32]


FUNDING_PRIVKEY = _secret(P["local_funding_privkey"])
LOCAL_HTLC_PRIVKEY = _secret(P["local_privkey"])  # htlc basepoint == payment basepoint here
FUNDING_OUTPOINT = OutPoint.from_txid_hex(P["funding_tx_id"], P["funding_output_index"])
FUNDING_SAT = P["funding_amount_satoshi"]
FUNDING_SCRIPT = H(P["funding_witness_script"])
TO_SELF_DELAY = P["local_delay"]
FACTOR = int(P["obscuring_factor"], 16)
COMMITMENT_NUMBER = P["commitment_number"]
PREIMAGES = {h["id"]: H(h["payment_preimage"]) for h in V["htlcs"]}

# Basepoints. Points the vectors do not give (and the local commitment does not use) are
# made up from arbitrary secrets.
LOCAL_BASEPOINTS = Basepoints(
    funding_pubkey=H(P["local_funding_pubkey"]),
    revocation_basepoint=pubkey_from_privkey(b"\x55" * 32),
    payment_basepoint=H(P["local_payment_basepoint"]),
    delayed_payment_basepoint=H(INTERNAL["local_delayed_payment_basepoint"]),
    htlc_basepoint=H(P["local_htlc_basepoint"]),
)
REMOTE_BASEPOINTS = Basepoints(
    funding_pubkey=H(P["remote_funding_pubkey"]),
    revocation_basepoint=H(INTERNAL["remote_revocation_basepoint"]),
    payment_basepoint=H(P["remote_payment_basepoint"]),
    delayed_payment_basepoint=pubkey_from_privkey(b"\x66" * 32),
    htlc_basepoint=H(P["remote_htlc_basepoint"]),
)
PER_COMMITMENT_SECRET = _secret(INTERNAL["x_local_per_commitment_secret"])
REMOTE_REVOCATION_BASEPOINT_SECRET = _secret(INTERNAL["remote_revocation_basepoint_secret"])
KEYS = derive_commitment_keys(per_commitment_point(PER_COMMITMENT_SECRET), LOCAL_BASEPOINTS, REMOTE_BASEPOINTS)


def vector_htlc(htlc_id: int) -> Htlc:
    h = V["htlcs"][htlc_id]
    assert h["id"] == htlc_id
    return Htlc(
        htlc_id=htlc_id,
        amount_msat=h["amount_msat"],
        payment_hash=hashlib.sha256(H(h["payment_preimage"])).digest(),
        cltv_expiry=h["expiry"],
        offered=h["direction"] == "local->remote",
    )


def _anchor_htlc_ids(case: dict) -> list[int]:
    if not case["UseTestHtlcs"]:
        return []
    # the "same amount and preimage" case uses HTLCs 1, 5 and 6 (balances add up only so)
    return [1, 5, 6] if "same amount" in case["Name"] else [0, 1, 2, 3, 4]


def _cases() -> list[dict]:
    """Both appendices in one shape."""
    out = []
    for c in V["static_remotekey_no_anchors"]:
        out.append(
            dict(
                id="C: " + c["name"],
                to_local_msat=c["to_local_msat"],
                to_remote_msat=c["to_remote_msat"],
                feerate=c["local_feerate_per_kw"],
                dust=P["local_dust_limit_satoshi"],
                htlc_ids=c["htlc_ids"],
                anchors=False,
                remote_sig=c["remote_signature"],
                local_sig=c["local_signature"],
                commit_tx=c["commit_tx"],
                htlc_txs=[
                    dict(remote_sig=h["remote_htlc_signature"], local_sig=h["local_htlc_signature"], tx=h["tx"],
                         vout=h["commit_output_index"], htlc_id=h["htlc_id"], type=h["type"])
                    for h in c["htlc_txs"]
                ],
                raw=c,
            )
        )
    for a in V["anchors"]:
        out.append(
            dict(
                id="F: " + a["Name"],
                to_local_msat=a["LocalBalance"],
                to_remote_msat=a["RemoteBalance"],
                feerate=a["FeePerKw"],
                dust=a["DustLimitSatoshis"],
                htlc_ids=_anchor_htlc_ids(a),
                anchors=True,
                remote_sig=a["RemoteSigHex"],
                local_sig=None,
                commit_tx=a["ExpectedCommitmentTxHex"],
                htlc_txs=[dict(remote_sig=h["RemoteSigHex"], local_sig=None, tx=h["ResolutionTxHex"]) for h in a["HtlcDescs"]],
                raw=a,
            )
        )
    return out


CASES = _cases()


def build_case(case: dict, keys: CommitmentKeys = KEYS, commitment_number: int = COMMITMENT_NUMBER):
    return build_commitment_tx(
        funding_outpoint=FUNDING_OUTPOINT,
        funding_amount_sat=FUNDING_SAT,
        keys=keys,
        commitment_number=commitment_number,
        obscure_factor=FACTOR,
        to_local_msat=case["to_local_msat"],
        to_remote_msat=case["to_remote_msat"],
        htlcs=[vector_htlc(i) for i in case["htlc_ids"]],
        feerate_per_kw=case["feerate"],
        dust_limit_sat=case["dust"],
        to_self_delay=TO_SELF_DELAY,
        local_is_opener=True,
        anchors=case["anchors"],
    )


def sign_commitment(commit, remote_sig_hex: str) -> tuple[Transaction, bytes]:
    local_sig = sign_input(commit.tx, 0, FUNDING_SCRIPT, FUNDING_SAT, FUNDING_PRIVKEY)
    witness = funding_witness(local_sig, H(remote_sig_hex), KEYS.local_funding_pubkey, KEYS.remote_funding_pubkey)
    return commit.tx.with_witness(0, witness), local_sig


# ---------------------------------------------------------------------------------------------
# Keys and parameters


def test_derived_keys_match_the_vector_parameters():
    assert per_commitment_point(PER_COMMITMENT_SECRET) == H(INTERNAL["local_per_commitment_point"])
    assert KEYS.revocation_pubkey == H(P["local_revocation_pubkey"])
    assert KEYS.local_delayed_pubkey == H(P["local_delayedpubkey"])
    assert KEYS.local_htlc_pubkey == H(P["local_htlcpubkey"])
    assert KEYS.remote_htlc_pubkey == H(P["remote_htlcpubkey"])
    assert KEYS.remote_payment_pubkey == H(P["remote_payment_basepoint"])
    assert pubkey_from_privkey(LOCAL_HTLC_PRIVKEY) == KEYS.local_htlc_pubkey
    assert pubkey_from_privkey(FUNDING_PRIVKEY) == KEYS.local_funding_pubkey
    assert funding_script(KEYS.local_funding_pubkey, KEYS.remote_funding_pubkey) == FUNDING_SCRIPT


def test_obscuring_factor():
    assert obscure_factor(H(P["local_payment_basepoint"]), H(P["remote_payment_basepoint"])) == FACTOR


def test_case_count():
    assert len(CASES) == 16 + 9
    assert sum(len(c["htlc_txs"]) for c in CASES) == 33 + 15


# ---------------------------------------------------------------------------------------------
# The vectors, byte for byte


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_commitment_tx_byte_for_byte(case):
    commit = build_case(case)
    signed, local_sig = sign_commitment(commit, case["remote_sig"])
    if case["local_sig"] is not None:
        assert local_sig.hex() == case["local_sig"]
    assert verify_input(commit.tx, 0, FUNDING_SCRIPT, FUNDING_SAT, KEYS.remote_funding_pubkey, H(case["remote_sig"]))
    assert signed.to_hex() == case["commit_tx"]
    interpret_input(signed, 0, p2wsh_script(FUNDING_SCRIPT), FUNDING_SAT)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_htlc_txs_byte_for_byte(case):
    commit = build_case(case)
    expected_vouts = []
    for h in case["htlc_txs"]:
        expected = Transaction.from_hex(h["tx"])
        vout = expected.inputs[0].prevout.vout
        expected_vouts.append(vout)
        out = commit.outputs[vout]
        htlc = out.htlc
        assert htlc is not None
        if "vout" in h:
            assert vout == h["vout"] and htlc.htlc_id == h["htlc_id"]
            assert h["type"] == ("htlc-timeout" if htlc.offered else "htlc-success")
        assert commit.htlc_outputs[htlc.htlc_id] == vout
        tx = build_htlc_tx(
            commitment_txid=commit.txid, vout=vout, htlc=htlc, keys=KEYS, to_self_delay=TO_SELF_DELAY,
            feerate_per_kw=case["feerate"], anchors=case["anchors"],
        )
        local_sig = sign_input(tx, 0, out.witness_script, out.value_sat, LOCAL_HTLC_PRIVKEY)
        if h["local_sig"] is not None:
            assert local_sig.hex() == h["local_sig"]
        remote_sig = H(h["remote_sig"])
        assert verify_input(
            tx, 0, out.witness_script, out.value_sat, KEYS.remote_htlc_pubkey, remote_sig,
            htlc_remote_sighash_type(case["anchors"]),
        )
        preimage = None if htlc.offered else PREIMAGES[htlc.htlc_id]
        signed = tx.with_witness(
            0, htlc_witness(remote_sig_der=remote_sig, local_sig_der=local_sig, witness_script=out.witness_script,
                            anchors=case["anchors"], payment_preimage=preimage),
        )
        assert signed.to_hex() == h["tx"]
        interpret_input(signed, 0, out.script_pubkey, out.value_sat)
    # one second-stage tx per HTLC output, in output order
    assert expected_vouts == sorted(commit.htlc_outputs.values())


CASES_C = [c for c in CASES if not c["anchors"]]


@pytest.mark.parametrize("case", CASES_C, ids=[c["id"] for c in CASES_C])
def test_fees_and_outputs_of_appendix_c(case):
    raw = case["raw"]
    commit = build_case(case)
    if "base_fee_sat" in raw:
        assert commit.base_fee_sat == raw["base_fee_sat"]
        assert commit.fee_sat == raw["actual_fee_sat"]
    assert len(commit.htlc_outputs) == raw["num_htlcs"]
    # the comments list outputs by kind (not always in vout order, sometimes only the HTLCs)
    comments = raw.get("outputs_in_comments", [])
    by_kind = {(o.kind, o.htlc.htlc_id if o.htlc else None): o for o in commit.outputs}
    for want in comments:
        kind = {"htlc_offered": "offered_htlc", "htlc_received": "received_htlc"}.get(want["type"], want["type"])
        out = by_kind[(kind, want.get("htlc_id"))]
        assert out.value_sat == want["amount_sat"]
        if "wscript" in want:
            assert out.witness_script.hex() == want["wscript"]
        if "p2wpkh_pubkey" in want:
            assert out.witness_script is None and KEYS.remote_payment_pubkey.hex() == want["p2wpkh_pubkey"]
    if comments and comments[-1]["type"] == "to_remote":
        assert len(comments) == len(commit.outputs)


def test_same_amount_htlcs_ordered_by_cltv_expiry():
    case = next(c for c in CASES if c["id"].startswith("C:") and "same amount" in c["id"])
    commit = build_case(case)
    assert commit.outputs[commit.htlc_outputs[6]].script_pubkey == commit.outputs[commit.htlc_outputs[5]].script_pubkey
    assert commit.htlc_outputs[6] < commit.htlc_outputs[5]  # cltv 505 before 506


def test_anchor_outputs_present_per_side():
    single = next(c for c in CASES if c["id"] == "F: simple commitment tx with no HTLCs and single anchor")
    commit = build_case(single)
    assert commit.to_remote_vout is None and commit.remote_anchor_vout is None
    assert commit.local_anchor_vout is not None and commit.to_local_vout is not None
    one = next(c for c in CASES if c["id"] == "F: commitment tx with one output untrimmed (minimum dust limit)")
    commit = build_case(one)
    assert commit.to_local_vout is None and commit.local_anchor_vout is None
    assert commit.remote_anchor_vout is not None and commit.to_remote_vout is not None
    assert commit.outputs[commit.remote_anchor_vout].value_sat == ANCHOR_OUTPUT_SAT


# ---------------------------------------------------------------------------------------------
# Fees, trimming, arguments


def test_fee_formulas():
    assert commitment_fee_sat(15000, 0, False) == 10860
    assert commitment_fee_sat(15000, 0, True) == 15000 * 1124 // 1000
    assert commitment_fee_sat(647, 5, False) == 1024
    assert htlc_timeout_fee_sat(1000, False) == 663 and htlc_success_fee_sat(1000, False) == 703
    assert htlc_timeout_fee_sat(1000, True) == 0 and htlc_success_fee_sat(1000, True) == 0


def test_is_trimmed_boundaries():
    ph = bytes(32)
    # offered: trimmed below dust + timeout fee
    fee = htlc_timeout_fee_sat(2000, False)
    assert not is_trimmed(Htlc(0, (546 + fee) * 1000, ph, 1, True), 546, 2000, False)
    assert is_trimmed(Htlc(0, (546 + fee) * 1000 - 1, ph, 1, True), 546, 2000, False)
    fee = htlc_success_fee_sat(2000, False)
    assert not is_trimmed(Htlc(0, (546 + fee) * 1000, ph, 1, False), 546, 2000, False)
    assert is_trimmed(Htlc(0, (546 + fee) * 1000 - 1, ph, 1, False), 546, 2000, False)
    assert not is_trimmed(Htlc(0, 546_000, ph, 1, False), 546, 10**6, True)
    assert is_trimmed(Htlc(0, 545_999, ph, 1, True), 546, 0, True)


def test_bad_arguments():
    case = CASES[0]
    with pytest.raises(ValueError):  # balances do not add up
        build_commitment_tx(
            funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=FUNDING_SAT, keys=KEYS, commitment_number=1,
            obscure_factor=FACTOR, to_local_msat=1, to_remote_msat=0, htlcs=[], feerate_per_kw=253,
            dust_limit_sat=546, to_self_delay=144, local_is_opener=True, anchors=False,
        )
    with pytest.raises(ValueError):  # both forms of the commitment number
        build_commitment_tx(
            funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=FUNDING_SAT, keys=KEYS, commitment_number=1,
            obscure_factor=FACTOR, obscured_commitment_number=5, to_local_msat=case["to_local_msat"],
            to_remote_msat=case["to_remote_msat"], htlcs=[], feerate_per_kw=253, dust_limit_sat=546,
            to_self_delay=144, local_is_opener=True, anchors=False,
        )


def test_obscured_number_form_gives_the_same_tx():
    case = CASES[0]
    a = build_case(case)
    b = build_commitment_tx(
        funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=FUNDING_SAT, keys=KEYS,
        obscured_commitment_number=COMMITMENT_NUMBER ^ FACTOR, to_local_msat=case["to_local_msat"],
        to_remote_msat=case["to_remote_msat"], htlcs=[], feerate_per_kw=case["feerate"],
        dust_limit_sat=case["dust"], to_self_delay=TO_SELF_DELAY, local_is_opener=True, anchors=False,
    )
    assert a.tx == b.tx


def test_remote_opener_pays_the_fee():
    case = CASES[0]
    commit = build_commitment_tx(
        funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=FUNDING_SAT, keys=KEYS, commitment_number=1,
        obscure_factor=FACTOR, to_local_msat=case["to_local_msat"], to_remote_msat=case["to_remote_msat"],
        htlcs=[], feerate_per_kw=15000, dust_limit_sat=546, to_self_delay=144, local_is_opener=False, anchors=True,
    )
    assert commit.outputs[commit.to_local_vout].value_sat == case["to_local_msat"] // 1000
    assert commit.outputs[commit.to_remote_vout].value_sat == case["to_remote_msat"] // 1000 - commit.base_fee_sat - 660


# ---------------------------------------------------------------------------------------------
# Properties

_hash = st.binary(min_size=32, max_size=32)


@st.composite
def _channel(draw):
    funding_sat = draw(st.integers(1_000, 50_000_000))
    total_msat = funding_sat * 1000
    n = draw(st.integers(0, 8))
    htlcs = []
    left = total_msat
    for _ in range(n):
        if left < 1000:
            break
        amount = draw(st.integers(1, min(left // 2 + 1, 10_000_000)))
        payment_hash = draw(st.sampled_from([b"\x01" * 32, b"\x02" * 32]) | _hash)
        offered = draw(st.booleans())
        htlc_id = sum(1 for h in htlcs if h.offered == offered)  # ids count per direction (BOLT 2)
        htlcs.append(Htlc(htlc_id, amount, payment_hash, draw(st.integers(0, 600)), offered))
        left -= amount
    to_local = draw(st.integers(0, left))
    return dict(
        funding_sat=funding_sat,
        htlcs=htlcs,
        to_local_msat=to_local,
        to_remote_msat=left - to_local,
        feerate=draw(st.integers(0, 50_000)),
        dust=draw(st.integers(0, 5_000)),
        opener=draw(st.booleans()),
        anchors=draw(st.booleans()),
    )


@settings(max_examples=150, deadline=None)
@given(_channel())
def test_property_amounts_trimming_and_order(ch):
    commit = build_commitment_tx(
        funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=ch["funding_sat"], keys=KEYS, commitment_number=7,
        obscure_factor=FACTOR, to_local_msat=ch["to_local_msat"], to_remote_msat=ch["to_remote_msat"],
        htlcs=ch["htlcs"], feerate_per_kw=ch["feerate"], dust_limit_sat=ch["dust"], to_self_delay=144,
        local_is_opener=ch["opener"], anchors=ch["anchors"],
    )
    anchors, dust, feerate = ch["anchors"], ch["dust"], ch["feerate"]
    kept = [h for h in ch["htlcs"] if not is_trimmed(h, dust, feerate, anchors)]
    trimmed = [h for h in ch["htlcs"] if is_trimmed(h, dust, feerate, anchors)]
    assert set(commit.htlc_outputs) == {h.htlc_id for h in kept}
    assert len(commit.offered_htlc_outputs) + len(commit.received_htlc_outputs) == len(kept)
    assert set(commit.trimmed_htlcs) == set(trimmed)
    assert commit.base_fee_sat == commitment_fee_sat(feerate, len(kept), anchors)

    # where every millisatoshi goes
    opener_cost = (commit.base_fee_sat + (2 * ANCHOR_OUTPUT_SAT if anchors else 0)) * 1000
    opener, other = (ch["to_local_msat"], ch["to_remote_msat"]) if ch["opener"] else (ch["to_remote_msat"], ch["to_local_msat"])
    opener_left = max(0, opener - opener_cost)
    paid_by_opener = opener - opener_left
    balances = {"opener": opener_left // 1000, "other": other // 1000}
    to_miners_msat = paid_by_opener + (opener_left % 1000) + (other % 1000)
    to_miners_msat += sum(h.amount_msat for h in trimmed) + sum(h.amount_msat % 1000 for h in kept)
    for sat in balances.values():
        if sat < dust or sat == 0:
            to_miners_msat += sat * 1000
    n_anchors = (commit.local_anchor_vout is not None) + (commit.remote_anchor_vout is not None)
    to_miners_msat -= n_anchors * ANCHOR_OUTPUT_SAT * 1000  # anchors were paid by the opener
    outputs_sat = sum(o.value_sat for o in commit.tx.outputs)
    assert outputs_sat * 1000 + to_miners_msat == ch["funding_sat"] * 1000
    assert commit.fee_sat == ch["funding_sat"] - outputs_sat

    # outputs: none below dust (anchors excepted), BIP 69 order, cltv tie-break
    for o in commit.outputs:
        if o.kind.endswith("anchor"):
            assert o.value_sat == ANCHOR_OUTPUT_SAT
        else:
            assert o.value_sat >= dust and o.value_sat > 0
    keys = [(o.value_sat, o.script_pubkey) for o in commit.tx.outputs]
    assert keys == sorted(keys)
    for a, b in zip(commit.outputs, commit.outputs[1:]):
        if a.htlc and b.htlc and (a.value_sat, a.script_pubkey) == (b.value_sat, b.script_pubkey):
            assert a.htlc.cltv_expiry <= b.htlc.cltv_expiry
    # anchors only for a side with an output, or both with HTLC outputs
    if anchors:
        assert (commit.local_anchor_vout is not None) == (commit.to_local_vout is not None or bool(kept))
        assert (commit.remote_anchor_vout is not None) == (commit.to_remote_vout is not None or bool(kept))
    else:
        assert commit.local_anchor_vout is None and commit.remote_anchor_vout is None
    # vout bookkeeping
    for htlc_id, vout in commit.htlc_outputs.items():
        assert commit.outputs[vout].htlc.htlc_id == htlc_id
    for i in range(len(commit.outputs)):
        h = commit.htlc_at(i)
        assert h is None or commit.htlc_vout(h) == i
    for h in ch["htlcs"]:
        vout = commit.htlc_vout(h)
        assert (vout is None) == (h in trimmed)
        if vout is not None:
            assert commit.outputs[vout].htlc == h
            assert (commit.offered_htlc_outputs if h.offered else commit.received_htlc_outputs)[h.htlc_id] == vout
            assert commit.tx.outputs[vout].script_pubkey == p2wsh_script(commit.outputs[vout].witness_script)


def _reference_build(*, funding_outpoint, funding_amount_sat, keys, to_local_msat, to_remote_msat, htlcs,
                     feerate_per_kw, dust_limit_sat, to_self_delay, local_is_opener, anchors, commitment_number,
                     obscure_factor):
    """build_commitment_tx written plainly from the public pieces, without its caches."""
    from lncli.bitcoin.tx import TxIn, TxOut
    from lncli.proto import commitment as C
    from lncli.proto import scripts as SC
    from lncli.proto.keys import commitment_locktime_sequence

    locktime, sequence = commitment_locktime_sequence(commitment_number, obscure_factor)
    kept = C.untrimmed_htlcs(htlcs, dust_limit_sat, feerate_per_kw, anchors)
    trimmed = tuple(h for h in htlcs if all(h is not k for k in kept))
    base_fee = commitment_fee_sat(feerate_per_kw, len(kept), anchors)
    cost = (base_fee + (2 * ANCHOR_OUTPUT_SAT if anchors else 0)) * 1000
    if local_is_opener:
        to_local_msat = max(0, to_local_msat - cost)
    else:
        to_remote_msat = max(0, to_remote_msat - cost)
    entries = []

    def add(out, cltv=0, tie=-1):
        entries.append(((out.value_sat, out.script_pubkey, cltv, tie), out))

    local_sat, remote_sat = to_local_msat // 1000, to_remote_msat // 1000
    has_local = local_sat >= dust_limit_sat and local_sat > 0
    has_remote = remote_sat >= dust_limit_sat and remote_sat > 0
    if has_local:
        ws = SC.to_local_script(keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey)
        add(C.CommitmentOutput(C.TO_LOCAL, local_sat, p2wsh_script(ws), ws))
    if has_remote:
        ws = SC.to_remote_anchor_script(keys.remote_payment_pubkey) if anchors else None
        add(C.CommitmentOutput(C.TO_REMOTE, remote_sat, SC.to_remote_script_pubkey(keys.remote_payment_pubkey, anchors), ws))
    if anchors and (has_local or kept):
        ws = SC.anchor_script(keys.local_funding_pubkey)
        add(C.CommitmentOutput(C.LOCAL_ANCHOR, ANCHOR_OUTPUT_SAT, p2wsh_script(ws), ws))
    if anchors and (has_remote or kept):
        ws = SC.anchor_script(keys.remote_funding_pubkey)
        add(C.CommitmentOutput(C.REMOTE_ANCHOR, ANCHOR_OUTPUT_SAT, p2wsh_script(ws), ws))
    for h in kept:
        ws = C.htlc_witness_script(h, keys, anchors)
        kind = C.OFFERED_HTLC if h.offered else C.RECEIVED_HTLC
        add(C.CommitmentOutput(kind, h.amount_msat // 1000, p2wsh_script(ws), ws, h), h.cltv_expiry, h.htlc_id)
    entries.sort(key=lambda e: e[0])
    outputs = tuple(e[1] for e in entries)
    vouts, merged, by_dir = {}, {}, {True: {}, False: {}}
    for vout, out in enumerate(outputs):
        if out.htlc is not None:
            merged[out.htlc.htlc_id] = vout
            by_dir[out.htlc.offered][out.htlc.htlc_id] = vout
        else:
            vouts[out.kind] = vout
    tx = Transaction(2, (TxIn(funding_outpoint, b"", sequence),), tuple(TxOut(o.value_sat, o.script_pubkey) for o in outputs), locktime)
    return C.CommitmentTx(
        tx=tx, fee_sat=funding_amount_sat - sum(o.value_sat for o in outputs), base_fee_sat=base_fee,
        outputs=outputs, htlc_outputs=merged, to_local_vout=vouts.get(C.TO_LOCAL),
        to_remote_vout=vouts.get(C.TO_REMOTE), local_anchor_vout=vouts.get(C.LOCAL_ANCHOR),
        remote_anchor_vout=vouts.get(C.REMOTE_ANCHOR), trimmed_htlcs=trimmed,
        offered_htlc_outputs=by_dir[True], received_htlc_outputs=by_dir[False],
    )


_keys_strategy = st.lists(st.integers(1, 2**64), min_size=8, max_size=8, unique=True).map(
    lambda ks: CommitmentKeys(*(pubkey_from_privkey(k.to_bytes(32, "big")) for k in ks))
)


@settings(max_examples=150, deadline=None)
@given(_channel(), st.sampled_from([KEYS]) | _keys_strategy, st.integers(1, 2000), st.booleans())
def test_property_cached_build_equals_the_plain_build(ch, keys, to_self_delay, as_bytearray):
    args = dict(
        funding_outpoint=FUNDING_OUTPOINT, funding_amount_sat=ch["funding_sat"], keys=keys, commitment_number=7,
        obscure_factor=FACTOR, to_local_msat=ch["to_local_msat"], to_remote_msat=ch["to_remote_msat"],
        htlcs=ch["htlcs"], feerate_per_kw=ch["feerate"], dust_limit_sat=ch["dust"], to_self_delay=to_self_delay,
        local_is_opener=ch["opener"], anchors=ch["anchors"],
    )
    expected = _reference_build(**args)
    if as_bytearray:  # unhashable keys take the uncached path
        args["keys"] = CommitmentKeys(*(bytearray(k) for k in keys.__dict__.values()))
    for _ in range(2):  # a cache miss, then a hit
        got = build_commitment_tx(**args)
        assert got == expected
        assert got.tx.to_bytes() == expected.tx.to_bytes()


@settings(max_examples=60, deadline=None)
@given(_keys_strategy, st.integers(0, 2000), st.integers(0, 5000), st.booleans(), st.booleans(), st.booleans())
def test_property_cached_htlc_tx_equals_the_plain_one(keys, to_self_delay, feerate, offered, anchors, as_bytearray):
    from lncli.bitcoin.tx import TxIn, TxOut
    from lncli.proto.scripts import htlc_tx_output_script

    htlc = Htlc(3, 5_000_000, b"\x07" * 32, 600, offered)
    fee = (htlc_timeout_fee_sat if offered else htlc_success_fee_sat)(feerate, anchors)
    expected = Transaction(
        2,
        (TxIn(OutPoint(b"\x01" * 32, 2), b"", 1 if anchors else 0),),
        (TxOut(5_000 - fee, p2wsh_script(htlc_tx_output_script(keys.revocation_pubkey, to_self_delay, keys.local_delayed_pubkey))),),
        600 if offered else 0,
    )
    if as_bytearray:
        keys = CommitmentKeys(*(bytearray(k) for k in keys.__dict__.values()))
    for _ in range(2):
        got = build_htlc_tx(commitment_txid=b"\x01" * 32, vout=2, htlc=htlc, keys=keys, to_self_delay=to_self_delay,
                            feerate_per_kw=feerate, anchors=anchors)
        assert got == expected and got.to_bytes() == expected.to_bytes()
