"""`lncli demo`, the README's main job, end to end."""

import json


def test_demo_runs_and_cleans_up(script_runner, tmp_path):
    work = tmp_path / "demo"
    r = script_runner.run(["lncli", "demo", "--payments", "2", "--dir", str(work)])
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line) for line in r.stdout.splitlines()]
    names = [s["step"] for s in steps]
    assert names[0] == "start alice's node" and "alice closes her channel to bob cooperatively" in names
    assert all(s["command"].startswith("lncli --datadir ") for s in steps)
    assert [s["step"] for s in steps[:3]] == ["start alice's node", "start bob's node", "start carol's node"]
    pays = [s for s in steps if s["step"].startswith("alice pays invoice")]
    assert len(pays) == 2 and all(p["result"]["status"] == "succeeded" and p["result"]["fee_msat"] == 0 for p in pays)
    # across the network: alice pays carol through bob, and bob's forward earned the fee alice paid
    (through,) = [s for s in steps if s["step"].startswith("alice pays carol through bob")]
    assert through["result"]["status"] == "succeeded" and through["result"]["fee_msat"] > 0
    (fwd,) = [s for s in steps if s["step"].startswith("bob forwarded it")][0]["result"]
    assert fwd["status"] == "settled" and fwd["fee_msat"] == through["result"]["fee_msat"]
    assert fwd["out_msat"] == 1_000_000 and fwd["in_msat"] == 1_000_000 + fwd["fee_msat"]
    # in parts: 600k sat, more than either of alice's channels to bob can send, one part over each
    (mpp,) = [s for s in steps if s["step"].startswith("alice pays it in parts over")]
    res = mpp["result"]
    assert res["status"] == "succeeded" and res["amount_msat"] == 600_000_000 and res["parts"] >= 2, res
    won = [a for a in res["attempts"] if a["status"] == "succeeded"]
    assert len({a["channels"][0] for a in won}) == 2 and sum(a["amount_msat"] for a in won) == 600_000_000 and len(won) == res["parts"]
    # the nodes were stopped: no control sockets left
    assert not list(work.glob("*/regtest/lncli-rpc"))


def test_narration_summary_picks_the_telling_fields():
    from lncli.cli.commands.demo import _summary

    assert _summary({"status": "succeeded", "amount_msat": 1000000, "fee_msat": 0, "payment_hash": "ab"}) == (
        "status succeeded, amount msat 1,000,000, fee msat 0"
    )
    assert _summary([{"payment_hash": "x", "status": "paid"}, {"status": "unpaid"}]) == "paid, unpaid"
    assert _summary("text") == "" and _summary([]) == ""
    assert _summary([{"status": "settled", "fee_msat": 1001}]) == "settled (fee msat 1,001)"
    assert _summary({"channels": [{}, {}, {}, {}], "nodes": [{}, {}, {}]}) == "4 channel directions, 3 nodes"


def test_narration_summary_of_a_connect():
    from lncli.cli.commands.demo import _summary

    peer = {"node_id": "02" * 33, "address": "127.0.0.1:9736", "direction": "outbound", "connected": True,
            "features": ["var_onion_optin"], "connected_since": 1700000000, "last_error": None}
    assert _summary(peer) == "connected to 127.0.0.1:9736"
    assert _summary(dict(peer, connected=False)) == "not connected to 127.0.0.1:9736"


def test_human_demo_prints_a_result_line_for_every_step(script_runner, tmp_path):
    import re

    r = script_runner.run(["lncli", "-H", "demo", "--payments", "1", "--dir", str(tmp_path / "demo")])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = re.compile(r"^\s*\d+\. ")
    steps = [i for i, line in enumerate(lines) if header.match(line)]
    assert any("alice connects to bob" in lines[i] for i in steps)
    for i in steps:  # the step, "$ lncli ...", then its result
        shown = lines[i : i + 3]
        assert len(shown) == 3 and shown[1].lstrip().startswith("$ lncli "), shown
        assert shown[2].strip() and not header.match(shown[2]), shown
    connect = next(i for i in steps if "alice connects to bob" in lines[i])
    assert lines[connect + 2].strip().startswith("connected to 127.0.0.1:")
