"""``lncli penalty --offline``: a BOLT 3 vector commitment punished with keys given by hand, no
datadir (``--datadir`` points nowhere); and the command's one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from lncli.bitcoin.tx import Transaction
from lncli.proto.commitment import verify_input
from lncli.proto.scripts import to_local_script
from tests.conftest import load_vector

V = load_vector("bolt03_commitments.json")
P = V["commitment_params"]
I = V["internal_derivation_values"]  # noqa: E741
ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
CASE = next(c for c in V["static_remotekey_no_anchors"] if len(c["htlc_ids"]) == 5)


def run(script_runner, tmp_path, *args, stdin=""):
    return script_runner.run(["lncli", "--datadir", str(tmp_path / "nowhere"), *args], stdin=io.StringIO(stdin))


def offline_args(case=CASE, htlcs=True):
    """We are the vector's remote; its local (the holder of commitment 42) is the cheater."""
    import hashlib

    args = [
        "--offline",
        "--per-commitment-secret", I["x_local_per_commitment_secret"][:64],
        "--revocation-basepoint-secret", I["remote_revocation_basepoint_secret"][:64],
        "--remote-delayed-payment-basepoint", I["local_delayed_payment_basepoint"],
        "--to-self-delay", str(P["local_delay"]),
        "--destination", ADDRESS, "--feerate", "2",
    ]
    if htlcs:
        args += ["--remote-htlc-basepoint", P["local_htlc_basepoint"], "--local-htlc-basepoint", P["remote_htlc_basepoint"]]
        for h in V["htlcs"]:
            if h["id"] in case["htlc_ids"]:
                direction = "offered" if h["direction"] == "local->remote" else "received"
                payment_hash = hashlib.sha256(bytes.fromhex(h["payment_preimage"])).hexdigest()
                args += ["--htlc", f"{direction}:{payment_hash}:{h['expiry']}"]
    return args


def test_offline_on_the_vector(script_runner, tmp_path):
    numbering = [
        "--local-payment-basepoint", P["remote_payment_basepoint"],
        "--remote-payment-basepoint", P["local_payment_basepoint"], "--opener", "remote",
    ]
    r = run(script_runner, tmp_path, "penalty", "-", *offline_args(), *numbering, stdin=CASE["commit_tx"] + "\n")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["kind"], j["owner"], j["commitment_number"], j["revoked"]) == ("commitment", "remote", P["commitment_number"], True)
    assert j["per_commitment_secret"] == I["x_local_per_commitment_secret"][:64]
    types = [o["type"] for o in j["outputs"]]
    assert sorted(types) == sorted(["to_local", "to_remote"] + ["offered_htlc"] * 2 + ["received_htlc"] * 3)
    js = j["justice"]
    assert len(js["swept"]) == 6 and js["destination"] == ADDRESS and not j["broadcast"]
    assert js["feerate_per_kw"] == 500
    # the justice tx's to_local input: the vector's to_local script, a signature by the revocation key
    commit = Transaction.from_hex(CASE["commit_tx"])
    justice = Transaction.from_hex(js["hex"])
    (vec_to_local,) = [o for o in CASE["outputs_in_comments"] if o["type"] == "to_local"]
    wscript = bytes.fromhex(vec_to_local["wscript"])
    revocation_pubkey = bytes.fromhex(P["local_revocation_pubkey"])
    assert wscript == to_local_script(revocation_pubkey, P["local_delay"], bytes.fromhex(P["local_delayedpubkey"]))
    (i,) = [i for i, t in enumerate(justice.inputs) if t.witness[-1] == wscript]
    vout = justice.inputs[i].prevout.vout
    assert commit.outputs[vout].value_sat == vec_to_local["amount_sat"]
    sig, one, _ = justice.inputs[i].witness
    assert one == b"\x01" and verify_input(justice, i, wscript, vec_to_local["amount_sat"], revocation_pubkey, sig[:-1])
    # -H: the breakdown
    h = run(script_runner, tmp_path, "-H", "penalty", CASE["commit_tx"], *offline_args())
    assert h.returncode == 0, h.stderr
    assert "the peer's revoked commitment" in h.stdout and "justice transaction" in h.stdout and js["txid"] in h.stdout
    assert not (tmp_path / "nowhere").exists()  # no datadir made


def test_offline_without_htlc_keys_takes_to_local_only(script_runner, tmp_path):
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"], *offline_args(htlcs=False))
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert [s["kind"] for s in j["justice"]["swept"]] == ["to_local"] and j["commitment_number"] is None
    assert sum(o["type"] == "unknown" for o in j["outputs"]) == 6  # five HTLCs and to_remote, unrecognised


@pytest.mark.parametrize("args,code,message", [
    (["zz" * 300], 1, "neither a transaction in hex nor a txid"),
    (["00" * 300], 1, "lncli: error:"),
    (["--per-commitment-secret", "11" * 32], 2, "--per-commitment-secret goes with --offline"),
    (["--offline", "--to-self-delay", "144"], 2, "--offline needs --per-commitment-secret"),
    (["--offline", "--channel", "1x1x1"], 2, "--offline reads no datadir"),
])
def test_errors_are_one_line(script_runner, tmp_path, args, code, message):
    tx = [] if args[0] in ("zz" * 300, "00" * 300) else [CASE["commit_tx"]]
    r = run(script_runner, tmp_path, "penalty", *tx, *args)
    assert r.returncode == code and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and len(r.stderr) < 300


def test_offline_refusals(script_runner, tmp_path):
    bad_secret = offline_args(htlcs=False)
    bad_secret[bad_secret.index("--per-commitment-secret") + 1] = "22" * 32
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"], *bad_secret)
    assert r.returncode == 1 and "no output of this transaction matches the keys given" in r.stderr
    no_dest = [a for a in offline_args(htlcs=False) if a not in ("--destination", ADDRESS)]
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"], *no_dest)
    assert r.returncode == 1 and "--destination" in r.stderr
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"], *offline_args(htlcs=False), "--htlc", "sideways:00:1")
    assert r.returncode == 1 and "offered|received" in r.stderr
    # a txid needs a chain: offline takes hex
    r = run(script_runner, tmp_path, "penalty", "ab" * 32, *offline_args(htlcs=False))
    assert r.returncode == 1 and "give its hex" in r.stderr


def test_no_datadir_explains_as_no_channel(script_runner, tmp_path):
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"])
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["spends_channel"], j["kind"], j["justice"]) == (False, "commitment", None)
    r = run(script_runner, tmp_path, "penalty", CASE["commit_tx"], "--broadcast")
    assert r.returncode == 1 and "does not spend a channel of ours" in r.stderr
