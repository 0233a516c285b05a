"""`lncli demo`, the README's main job, end to end."""

import json


def test_demo_runs_and_cleans_up(script_runner, tmp_path):
    work = tmp_path / "demo"
    r = script_runner.run(["lncli", "demo", "--payments", "2", "--dir", str(work)])
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line) for line in r.stdout.splitlines()]
    names = [s["step"] for s in steps]
    assert names[0] == "start alice's node" and "alice closes the channel cooperatively" in names
    assert all(s["command"].startswith("lncli --datadir ") for s in steps)
    pays = [s for s in steps if s["step"].startswith("alice pays")]
    assert len(pays) == 2 and all(p["result"]["status"] == "succeeded" for p in pays)
    # bob received both payments on chain after the close
    bob = [s for s in steps if s["step"] == "bob's wallet after the close"][0]["result"]
    assert bob["confirmed_sat"] == 2000
    # the nodes were stopped: no control sockets left
    assert not list(work.glob("*/regtest/lncli-rpc"))


def test_narration_summary_picks_the_telling_fields():
    from lncli.cli.commands.demo import _summary

    assert _summary({"status": "succeeded", "amount_msat": 1000000, "fee_msat": 0, "payment_hash": "ab"}) == (
        "status succeeded, amount msat 1,000,000, fee msat 0"
    )
    assert _summary([{"payment_hash": "x", "status": "paid"}, {"status": "unpaid"}]) == "paid, unpaid"
    assert _summary("text") == "" and _summary([]) == ""
