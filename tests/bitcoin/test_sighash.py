"""BIP 143 sighash vectors, BOLT 3 commitment/HTLC signatures, and the legacy sighash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.ecdsa import sign, split_witness_signature, verify
from lncli.bitcoin.script import parse_script
from lncli.bitcoin.sighash import (
    SIGHASH_ALL,
    SIGHASH_ANYONECANPAY,
    SIGHASH_NONE,
    SIGHASH_SINGLE,
    SighashCache,
    legacy_sighash,
    p2wpkh_script_code,
    segwit_v0_preimage,
    segwit_v0_sighash,
)
from lncli.bitcoin.tx import Transaction
from tests.conftest import load_vector

H = bytes.fromhex

# ---------------------------------------------------------------------------------------------
# BIP 143 examples (bitcoin/bips, bip-0143.mediawiki, section "Example"), copied as data.

# Native P2WPKH, input 1, SIGHASH_ALL
P2WPKH_UNSIGNED = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
    "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206"
    "000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42db"
    "ee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
P2WPKH_PUBKEY_HASH = "1d0f172a0ecb48aee1be1f2687d2963ae33f71a1"
P2WPKH_PRIVKEY = "619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9"
P2WPKH_PUBKEY = "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"
P2WPKH_HASH_PREVOUTS = "96b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd37"
P2WPKH_HASH_SEQUENCE = "52b0a642eea2fb7ae638c36f6252b6750293dbe574a806984b8e4d8548339a3b"
P2WPKH_HASH_OUTPUTS = "863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e5"
P2WPKH_PREIMAGE = (
    "0100000096b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd3752b0a642eea2fb7ae638"
    "c36f6252b6750293dbe574a806984b8e4d8548339a3bef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9"
    "b2b55d57b90ec68a010000001976a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac0046c32300000000"
    "ffffffff863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e51100000001000000"
)
P2WPKH_SIGHASH = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
P2WPKH_SIGNATURE = (
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c45183315"
    "61406f90300e8f3358f51928d43c212a8caed02de67eebee"
)

# P2SH-P2WPKH, input 0, SIGHASH_ALL
P2SH_P2WPKH_UNSIGNED = (
    "0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a54770100000000feffffff"
    "02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a9"
    "14fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000"
)
P2SH_P2WPKH_SIGHASH = "64f3b0f4dd2bb3aa1ce8566d220cc74dda9df97d8490cc81d89d735c92e59fb6"

# Native P2WSH with OP_CODESEPARATOR, input 1, SIGHASH_SINGLE without a matching output
P2WSH_UNSIGNED = (
    "0100000002fe3dc9208094f3ffd12645477b3dc56f60ec4fa8e6f5d67c565d1c6b9216b36e0000000000ffffffff"
    "0815cf020f013ed6cf91d29f4202e8a58726b1ac6c79da47c23d1bee0a6925f80000000000ffffffff0100f2052a"
    "010000001976a914a30741f8145e5acadf23f751864167f32e0963f788ac00000000"
)
P2WSH_SCRIPT_CODE_1 = (
    "21026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880aeadab210255a9626aebf5e29c"
    "0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac"
)
P2WSH_SIGHASH_1 = "82dde6e4f1e94d02c2b7ad03d2115d691f48d064e9d52f58194a6637e4194391"
P2WSH_PUBKEY_1 = "026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880ae"
P2WSH_SIG_1 = (
    "3044022027dc95ad6b740fe5129e7e62a75dd00f291a2aeb1200b84b09d9e3789406b6c002201a9ecd315dd6a0e6"
    "32ab20bbb98948bc0c6fb204f2c286963bb48517a7058e27"
)
P2WSH_SCRIPT_CODE_2 = "210255a9626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac"
P2WSH_SIGHASH_2 = "fef7bd749cce710c5c052bd796df1af0d935e59cea63736268bcbe2d2134fc47"
P2WSH_PUBKEY_2 = "0255a9626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465"
P2WSH_SIG_2 = (
    "304402200de66acf4527789bfda55fc5459e214fa6083f936b430a762c629656216805ac0220396f550692cd3471"
    "71cbc1ef1f51e15282e837bb2b30860dc77c8f78bc8501e5"
)
P2WSH_AMOUNT = 4900000000

# Native P2WSH, SINGLE|ANYONECANPAY on both inputs
ACP_UNSIGNED = (
    "0100000002e9b542c5176808107ff1df906f46bb1f2583b16112b95ee5380665ba7fcfc0010000000000ffffffff"
    "80e68831516392fcd100d186b3c2c7b95c80b53c77e77c35ba03a66b429a2a1b0000000000ffffffff0280969800"
    "000000001976a914de4b231626ef508c9a74a8517e6783c0546d6b2888ac80969800000000001976a9146648a8cd"
    "4531e1ec47f35916de8e259237294d1e88ac00000000"
)
ACP_SCRIPT_CODES = (
    "0063ab68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac",
    "68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac",
)
ACP_SIGHASHES = (
    "e9071e75e25b8a1e298a72f0d2e9f4f95a0f5cdf86a533cda597eb402ed13b3a",
    "cd72f1f1a433ee9df816857fad88d8ebd97e09a75cd481583eb841c330275e54",
)
ACP_AMOUNT = 16777215
ACP_PUBKEY = "0392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98"
ACP_SIGNATURES = (
    "3045022100f6a10b8604e6dc910194b79ccfc93e1bc0ec7c03453caaa8987f7d6c3413566002206216229ede9b4d"
    "6ec2d325be245c5b508ff0339bf1794078e20bfe0babc7ffe6",
    "30440220032521802a76ad7bf74d0e2c218b72cf0cbc867066e2e53db905ba37f130397e02207709e2188ed7f08f"
    "4c952d9d13986da504502b8c3be59617e043552f506c46ff",
)

# P2SH-P2WSH 6-of-6 multisig signed with all six sighash types
MULTI_UNSIGNED = (
    "010000000136641869ca081e70f394c6948e8af409e18b619df2ed74aa106c1ca29787b96e0100000000ffffffff"
    "0200e9a435000000001976a914389ffce9cd9ae88dcc0631e88a821ffdbe9bfe2688acc0832f05000000001976a9"
    "147480a33f950689af511e6e84c138dbbd3c3ee41588ac00000000"
)
MULTI_WITNESS_SCRIPT = (
    "56210307b8ae49ac90a048e9b53357a2354b3334e9c8bee813ecb98e99a7e07e8c3ba32103b28f0c28bfab54554a"
    "e8c658ac5c3e0ce6e79ad336331f78c428dd43eea8449b21034b8113d703413d57761b8b9781957b8c0ac1dfe69f"
    "492580ca4195f50376ba4a21033400f6afecb833092a9a21cfdf1ed1376e58c5d1f47de74683123987e967a8f421"
    "03a6d48b1131e94ba04d9737d61acdaa1322008af9602b3b14862c07a1789aac162102d8b661b0b3302ee2f162b0"
    "9e07a55ad5dfbe673a9f01d9f0c19617681024306b56ae"
)
MULTI_AMOUNT = 987654321
MULTI_SIGHASHES = {
    SIGHASH_ALL: "185c0be5263dce5b4bb50a047973c1b6272bfbd0103a89444597dc40b248ee7c",
    SIGHASH_NONE: "e9733bc60ea13c95c6527066bb975a2ff29a925e80aa14c213f686cbae5d2f36",
    SIGHASH_SINGLE: "1e1f1c303dc025bd664acb72e583e933fae4cff9148bf78c157d1e8f78530aea",
    SIGHASH_ALL | SIGHASH_ANYONECANPAY: "2a67f03e63a6a422125878b40b82da593be8d4efaafe88ee528af6e5a9955c6e",
    SIGHASH_NONE | SIGHASH_ANYONECANPAY: "781ba15f3779d5542ce8ecb5c18716733a5ee42a6f51488ec96154934e2c890a",
    SIGHASH_SINGLE | SIGHASH_ANYONECANPAY: "511e8e52ed574121fc1b654970395502128263f62662e076dc6baf05c2e6a99b",
}
MULTI_HASH_PREVOUTS = "74afdc312af5183c4198a40ca3c1a275b485496dd3929bca388c4b5e31f7aaa0"
MULTI_HASH_SEQUENCE = "3bb13029ce7b1f559ef5e747fcac439f1455a2ec7c5f09b72290795e70665044"
MULTI_HASH_OUTPUTS = "bc4d309071414bed932f98832b27b4d76dad7e6c1346f487a8fdbb8eb90307cc"


def test_bip143_native_p2wpkh() -> None:
    tx = Transaction.from_hex(P2WPKH_UNSIGNED)
    cache = SighashCache(tx)
    assert cache.hash_prevouts().hex() == P2WPKH_HASH_PREVOUTS
    assert cache.hash_sequence().hex() == P2WPKH_HASH_SEQUENCE
    assert cache.hash_outputs().hex() == P2WPKH_HASH_OUTPUTS
    code = p2wpkh_script_code(H(P2WPKH_PUBKEY_HASH))
    amount = 600000000
    assert segwit_v0_preimage(tx, 1, code, amount).hex() == P2WPKH_PREIMAGE
    digest = segwit_v0_sighash(tx, 1, code, amount, SIGHASH_ALL)
    assert digest.hex() == P2WPKH_SIGHASH
    assert cache.segwit_v0(1, code, amount) == digest
    assert sign(H(P2WPKH_PRIVKEY), digest).hex() == P2WPKH_SIGNATURE
    assert verify(H(P2WPKH_PUBKEY), digest, H(P2WPKH_SIGNATURE))


def test_bip143_p2sh_p2wpkh() -> None:
    tx = Transaction.from_hex(P2SH_P2WPKH_UNSIGNED)
    code = p2wpkh_script_code(H("79091972186c449eb1ded22b78e40d009bdf0089"))
    assert segwit_v0_sighash(tx, 0, code, 1000000000).hex() == P2SH_P2WPKH_SIGHASH


def test_bip143_native_p2wsh_codeseparator_and_single() -> None:
    tx = Transaction.from_hex(P2WSH_UNSIGNED)
    d1 = segwit_v0_sighash(tx, 1, H(P2WSH_SCRIPT_CODE_1), P2WSH_AMOUNT, SIGHASH_SINGLE)
    assert d1.hex() == P2WSH_SIGHASH_1
    assert verify(H(P2WSH_PUBKEY_1), d1, H(P2WSH_SIG_1))
    d2 = segwit_v0_sighash(tx, 1, H(P2WSH_SCRIPT_CODE_2), P2WSH_AMOUNT, SIGHASH_SINGLE)
    assert d2.hex() == P2WSH_SIGHASH_2
    assert verify(H(P2WSH_PUBKEY_2), d2, H(P2WSH_SIG_2))


def test_bip143_single_anyonecanpay() -> None:
    tx = Transaction.from_hex(ACP_UNSIGNED)
    cache = SighashCache(tx)
    for i in range(2):
        digest = cache.segwit_v0(
            i, H(ACP_SCRIPT_CODES[i]), ACP_AMOUNT, SIGHASH_SINGLE | SIGHASH_ANYONECANPAY
        )
        assert digest.hex() == ACP_SIGHASHES[i]
        assert verify(H(ACP_PUBKEY), digest, H(ACP_SIGNATURES[i]))
    # SINGLE|ANYONECANPAY does not commit to the index: swapping input/output pairs keeps it
    swapped = Transaction(tx.version, tx.inputs[::-1], tx.outputs[::-1], tx.locktime)
    digest = segwit_v0_sighash(
        swapped, 1, H(ACP_SCRIPT_CODES[0]), ACP_AMOUNT, SIGHASH_SINGLE | SIGHASH_ANYONECANPAY
    )
    assert digest.hex() == ACP_SIGHASHES[0]


@pytest.mark.parametrize("sighash_type", sorted(MULTI_SIGHASHES))
def test_bip143_all_sighash_types(sighash_type: int) -> None:
    tx = Transaction.from_hex(MULTI_UNSIGNED)
    digest = segwit_v0_sighash(tx, 0, H(MULTI_WITNESS_SCRIPT), MULTI_AMOUNT, sighash_type)
    assert digest.hex() == MULTI_SIGHASHES[sighash_type]


def test_cache_intermediate_hashes() -> None:
    cache = SighashCache(Transaction.from_hex(MULTI_UNSIGNED))
    assert cache.hash_prevouts().hex() == MULTI_HASH_PREVOUTS
    assert cache.hash_sequence().hex() == MULTI_HASH_SEQUENCE
    assert cache.hash_outputs().hex() == MULTI_HASH_OUTPUTS
    with pytest.raises(IndexError):
        cache.segwit_v0(1, b"", 0)


# ---------------------------------------------------------------------------------------------
# BOLT 3

V = load_vector("bolt03_commitments.json")
PARAMS = V["commitment_params"]
FUNDING_SCRIPT = H(PARAMS["funding_witness_script"])
FUNDING_AMOUNT = PARAMS["funding_amount_satoshi"]
LOCAL_FUNDING = H(PARAMS["local_funding_pubkey"])
REMOTE_FUNDING = H(PARAMS["remote_funding_pubkey"])


@pytest.mark.parametrize(
    "case", V["static_remotekey_no_anchors"], ids=lambda c: c["name"][:50]
)
def test_bolt3_commitment_signatures(case: dict) -> None:
    tx = Transaction.from_hex(case["commit_tx"])
    witness = tx.inputs[0].witness
    assert len(witness) == 4 and witness[0] == b"" and witness[3] == FUNDING_SCRIPT
    digest = segwit_v0_sighash(tx, 0, FUNDING_SCRIPT, FUNDING_AMOUNT, SIGHASH_ALL)
    # the witness holds the signatures in the order of the keys in the funding script
    sig_a, type_a = split_witness_signature(witness[1])
    sig_b, type_b = split_witness_signature(witness[2])
    assert type_a == type_b == SIGHASH_ALL
    local_sig, remote_sig = H(case["local_signature"]), H(case["remote_signature"])
    assert {sig_a, sig_b} == {local_sig, remote_sig}
    assert verify(LOCAL_FUNDING, digest, local_sig)
    assert verify(REMOTE_FUNDING, digest, remote_sig)
    assert not verify(LOCAL_FUNDING, digest, remote_sig)
    local_privkey = H(PARAMS["local_funding_privkey"])[:32]
    assert sign(local_privkey, digest) == local_sig  # RFC 6979, as the spec's signer
    # the HTLC transactions spend the commitment outputs; check both of their signatures
    local_htlc = H(PARAMS["local_htlcpubkey"])
    remote_htlc = H(PARAMS["remote_htlcpubkey"])
    for h in case["htlc_txs"]:
        htlc_tx = Transaction.from_hex(h["tx"])
        spent = tx.outputs[h["commit_output_index"]]
        w = htlc_tx.inputs[0].witness
        wscript = w[-1]
        remote, rtype = split_witness_signature(w[1])
        local, ltype = split_witness_signature(w[2])
        assert remote.hex() == h["remote_htlc_signature"]
        cache = SighashCache(htlc_tx)
        assert verify(remote_htlc, cache.segwit_v0(0, wscript, spent.value_sat, rtype), remote)
        assert verify(local_htlc, cache.segwit_v0(0, wscript, spent.value_sat, ltype), local)


@pytest.mark.parametrize("case", V["anchors"], ids=lambda c: c["Name"][:50])
def test_bolt3_anchor_commitment_signatures(case: dict) -> None:
    tx = Transaction.from_hex(case["ExpectedCommitmentTxHex"])
    digest = segwit_v0_sighash(tx, 0, FUNDING_SCRIPT, FUNDING_AMOUNT)
    assert verify(REMOTE_FUNDING, digest, H(case["RemoteSigHex"]))
    sigs = [split_witness_signature(item)[0] for item in tx.inputs[0].witness[1:3]]
    assert verify(LOCAL_FUNDING, digest, sigs[0]) or verify(LOCAL_FUNDING, digest, sigs[1])
    for h in case["HtlcDescs"]:
        htlc_tx = Transaction.from_hex(h["ResolutionTxHex"])
        w = htlc_tx.inputs[0].witness
        spent = tx.outputs[htlc_tx.inputs[0].prevout.vout]
        remote, rtype = split_witness_signature(w[1])
        assert remote.hex() == h["RemoteSigHex"]
        assert rtype == SIGHASH_SINGLE | SIGHASH_ANYONECANPAY  # option_anchors
        digest = segwit_v0_sighash(htlc_tx, 0, w[-1], spent.value_sat, rtype)
        assert verify(H(PARAMS["remote_htlcpubkey"]), digest, remote)


# ---------------------------------------------------------------------------------------------
# Legacy sighash: the BOLT 3 funding transaction spends a P2PKH coinbase output


def test_legacy_sighash_p2pkh() -> None:
    funding = Transaction.from_hex(V["funding_tx"]["funding_tx"])
    coinbase = Transaction.from_hex(V["funding_tx"]["block1_coinbase_tx"])
    (_, sig_item), (_, pubkey) = parse_script(funding.inputs[0].script_sig)
    sig, sighash_type = split_witness_signature(sig_item)
    assert sighash_type == SIGHASH_ALL
    digest = legacy_sighash(funding, 0, coinbase.outputs[0].script_pubkey, sighash_type)
    assert verify(pubkey, digest, sig)
    privkey = H(V["funding_tx"]["block1_coinbase_privkey"])[:32]
    assert sign(privkey, digest) == sig
    # OP_CODESEPARATOR is removed from the script code
    spk = coinbase.outputs[0].script_pubkey
    assert legacy_sighash(funding, 0, b"\xab" + spk + b"\xab") == digest


def test_legacy_sighash_single_bug() -> None:
    tx = Transaction.from_hex(P2WSH_UNSIGNED)  # 2 inputs, 1 output
    assert legacy_sighash(tx, 1, b"", SIGHASH_SINGLE) == (1).to_bytes(32, "little")
    assert legacy_sighash(tx, 0, b"", SIGHASH_SINGLE) != legacy_sighash(tx, 0, b"", SIGHASH_ALL)
    assert legacy_sighash(tx, 0, b"", SIGHASH_NONE | SIGHASH_ANYONECANPAY) != legacy_sighash(
        tx, 0, b"", SIGHASH_NONE
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 255), st.integers(0, 1))
def test_cache_matches_fresh(sighash_type: int, index: int) -> None:
    tx = Transaction.from_hex(ACP_UNSIGNED)
    cache = SighashCache(tx)
    cache.segwit_v0(0, b"\x51", 1)
    assert cache.segwit_v0(index, b"\x51", 7, sighash_type) == segwit_v0_sighash(
        tx, index, b"\x51", 7, sighash_type
    )


def _bip143_preimage_reference(tx: Transaction, index: int, script_code: bytes, amount: int, sighash_type: int) -> bytes:
    """BIP 143's message written out plainly from the BIP's description, without any cache."""
    from lncli.bitcoin.tx import encode_compact_size, sha256d

    def le(n: int, size: int) -> bytes:
        return n.to_bytes(size, "little")

    base, acp = sighash_type & 0x1F, bool(sighash_type & 0x80)
    zero = bytes(32)
    prevouts = zero if acp else sha256d(b"".join(i.prevout.txid + le(i.prevout.vout, 4) for i in tx.inputs))
    seqs = zero if acp or base in (2, 3) else sha256d(b"".join(le(i.sequence, 4) for i in tx.inputs))
    if base not in (2, 3):
        outs = sha256d(b"".join(le(o.value_sat, 8) + encode_compact_size(len(o.script_pubkey)) + o.script_pubkey for o in tx.outputs))
    elif base == 3 and index < len(tx.outputs):
        o = tx.outputs[index]
        outs = sha256d(le(o.value_sat, 8) + encode_compact_size(len(o.script_pubkey)) + o.script_pubkey)
    else:
        outs = zero
    txin = tx.inputs[index]
    return (
        le(tx.version, 4) + prevouts + seqs + txin.prevout.txid + le(txin.prevout.vout, 4)
        + encode_compact_size(len(script_code)) + script_code + le(amount, 8) + le(txin.sequence, 4)
        + outs + le(tx.locktime, 4) + le(sighash_type & 0xFFFFFFFF, 4)
    )


def _random_tx():
    from lncli.bitcoin.tx import OutPoint, TxIn, TxOut

    u32 = st.integers(0, 2**32 - 1)
    txin = st.builds(TxIn, st.builds(OutPoint, st.binary(min_size=32, max_size=32), u32), st.sampled_from([b""]) | st.binary(max_size=40), u32)
    txout = st.builds(TxOut, st.integers(0, 2**64 - 1), st.binary(max_size=40) | st.binary(min_size=253, max_size=260))
    return st.builds(Transaction, u32, st.lists(txin, min_size=1, max_size=3).map(tuple), st.lists(txout, max_size=3).map(tuple), u32)


@settings(max_examples=200, deadline=None)
@given(_random_tx(), st.data())
def test_preimage_matches_a_plain_bip143_reference(tx: Transaction, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(tx.inputs) - 1))
    script_code = data.draw(st.binary(max_size=300))
    amount = data.draw(st.integers(0, 2**64 - 1))
    sighash_type = data.draw(st.sampled_from([1, 2, 3, 0x81, 0x82, 0x83]) | st.integers(0, 2**32 - 1))
    cache = SighashCache(tx)
    for _ in range(2):  # fresh, then with the intermediate hashes cached
        assert cache.segwit_v0_preimage(index, script_code, amount, sighash_type) == _bip143_preimage_reference(
            tx, index, script_code, amount, sighash_type
        )
    assert segwit_v0_preimage(tx, index, script_code, amount, sighash_type) == _bip143_preimage_reference(
        tx, index, script_code, amount, sighash_type
    )
