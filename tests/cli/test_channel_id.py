import io
import json

import pytest

TXID = "8984484a580b825b9972d7adb15050b3ab624ccd731946b3eeddb92f4e7ef6be"


def run(script_runner, *args, stdin=""):
    return script_runner.run(["lncli", *args], stdin=io.StringIO(stdin))


def test_outpoint_to_channel_id(script_runner):
    r = run(script_runner, "channel-id", f"{TXID}:1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # BOLT 2: the txid in internal byte order, output index XORed into the last two bytes
    internal = bytes.fromhex(TXID)[::-1]
    expect = internal[:30] + bytes([internal[30], internal[31] ^ 1])
    assert out["channel_id"] == expect.hex()
    assert out["funding_output_index"] == 1


def test_txid_and_vout_as_two_arguments(script_runner):
    a = json.loads(run(script_runner, "channel-id", TXID, "1").stdout)
    b = json.loads(run(script_runner, "channel-id", f"{TXID}:1").stdout)
    assert a == b


@pytest.mark.parametrize("form", ["539268x845x1", "592931436542885889", "0x083a8400034d0001", "539268:845:1"])
def test_scid_forms(script_runner, form):
    r = run(script_runner, "channel-id", form)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["short_channel_id"] == "539268x845x1"
    assert out["short_channel_id_u64"] == "592931436542885889"
    assert out["short_channel_id_hex"] == "083a8400034d0001"


def test_stdin(script_runner):
    r = run(script_runner, "channel-id", "-", stdin="539268x845x1\n")
    assert json.loads(r.stdout)["block_height"] == 539268


def test_human(script_runner):
    r = run(script_runner, "-H", "channel-id", "539268x845x1")
    assert r.returncode == 0 and "539268x845x1" in r.stdout


@pytest.mark.parametrize("bad", ["1x2", "16777216x0x0", f"{TXID}:70000", f"{TXID[:-1]}:0", TXID, "hello", "18446744073709551616", "0" * 2732, "0" * 21, "0x" + "0" * 17])
def test_bad_input(script_runner, bad):
    r = run(script_runner, "channel-id", bad)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("lncli: error: ") and len(r.stderr.strip().splitlines()) == 1


def test_bad_input_quoted_short(script_runner):
    """A long bad input is quoted by a short prefix (40 characters and an ellipsis), not whole."""
    r = run(script_runner, "channel-id", "0" * 2732)
    assert r.returncode == 1, r.stdout
    assert "0" * 40 + "'…" in r.stderr and "0" * 41 not in r.stderr and len(r.stderr) < 300
