"""`lncli decode-onion` through the console script, on the BOLT 4 vectors."""

import io
import json

from tests.conftest import load_vector


def run(script_runner, *args, stdin=""):
    return script_runner.run(["lncli", *args], stdin=io.StringIO(stdin))


def test_peel_every_hop_to_the_final_one(script_runner):
    vec = load_vector("bolt04/onion-test.json")
    packet = vec["onion"]
    ad = vec["generate"]["associated_data"]
    keys = vec["decode"]
    for i, key in enumerate(keys):
        r = run(script_runner, "decode-onion", "-", "--node-key", key, "--assoc-data", ad, stdin=packet + "\n")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        # the spec's payloads carry their BigSize length prefix; ours is without it
        assert vec["generate"]["hops"][i]["payload"].endswith(out["payload"])
        assert out["is_final"] == (i == len(keys) - 1)
        packet = out["next_packet"]
    assert packet is None


def test_named_fields(script_runner):
    vec = load_vector("bolt04/onion-test.json")
    r = run(script_runner, "decode-onion", vec["onion"], "--node-key", vec["decode"][0], "--payment-hash", vec["generate"]["associated_data"])
    hop = json.loads(r.stdout)["hop_payload"]
    assert hop["amt_to_forward"] == 15000
    assert hop["outgoing_cltv_value"] == 1500
    assert hop["short_channel_id"] == "0x0x1"


def test_wrong_key_is_a_clear_error(script_runner):
    vec = load_vector("bolt04/onion-test.json")
    r = run(script_runner, "decode-onion", vec["onion"], "--node-key", vec["decode"][1], "--assoc-data", vec["generate"]["associated_data"])
    assert r.returncode == 1
    assert r.stderr.startswith("lncli: error: ") and "hmac" in r.stderr.lower()


def test_failure_with_shared_secrets_and_with_session_key(script_runner):
    vec = load_vector("bolt04_onion.json")["onion_error_legacy_json"]
    hops = vec["generate"]["hops"]
    secrets = [a for h in hops for a in ("--shared-secret", h["hop_shared_secret"])]
    r1 = run(script_runner, "decode-onion", "--failure", vec["errorpacket"], *secrets)
    assert r1.returncode == 0, r1.stderr
    out = json.loads(r1.stdout)
    assert out["hop_index"] == 4
    assert out["failure_code"] == 0x2002 and out["name"] == "temporary_node_failure"
    route = [a for h in hops for a in ("--hop", h["pubkey"])]
    r2 = run(script_runner, "decode-onion", "--failure", "-", "--session-key", vec["generate"]["session_key"], *route, stdin=vec["errorpacket"])
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout) == {"failing_node": hops[4]["pubkey"], **out}


def test_usage_errors(script_runner):
    assert run(script_runner, "decode-onion").returncode == 2
    assert run(script_runner, "decode-onion", "00" * 1366).returncode == 2  # no --node-key
    r = run(script_runner, "decode-onion", "--failure", "00" * 292)
    assert r.returncode == 2 and "shared-secret" in r.stderr


def test_node_key_from_the_datadir(script_runner, tmp_path):
    """Without --node-key the datadir's node key peels an onion built to that node."""
    import hashlib

    from lncli.proto.onion import HopPayload, build_onion
    from lncli.proto.transport import public_key
    from lncli.wallet.seed import derive

    seed = bytes(range(32))
    datadir = tmp_path / "d"
    (datadir / "regtest").mkdir(parents=True)
    (datadir / "regtest" / "seed").write_bytes(seed)
    node_id = public_key(derive(seed, "node key"))
    payment_hash = hashlib.sha256(b"preimage").digest()
    payload = HopPayload(amt_to_forward=1000, outgoing_cltv_value=500)
    packet, _ = build_onion(b"\x11" * 32, [(node_id, payload)], payment_hash)
    r = run(script_runner, "--datadir", str(datadir), "decode-onion", packet.hex(), "--assoc-data", payment_hash.hex())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["is_final"] and out["hop_payload"]["amt_to_forward"] == 1000
    r = run(script_runner, "--datadir", str(tmp_path / "empty"), "decode-onion", packet.hex(), "--assoc-data", payment_hash.hex())
    assert r.returncode == 2 and "--node-key" in r.stderr
