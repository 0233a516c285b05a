"""The one output path: JSON by default, the same data as tables with -H."""

import io
import json
from pathlib import Path

from lncli.cli.context import Env
from lncli.cli.output import emit, emit_line


def _env(human=False):
    return Env(datadir=Path("/nonexistent"), network="regtest", human=human, stdout=io.StringIO(), stderr=io.StringIO())


def test_json_is_indented_and_renders_bytes_as_hex():
    env = _env()
    emit(env, {"amount_msat": 5, "txid": b"\x01\x02"})
    assert json.loads(env.stdout.getvalue()) == {"amount_msat": 5, "txid": "0102"}


def test_json_lines():
    env = _env()
    emit_line(env, {"a": 1})
    emit_line(env, {"a": 2})
    assert [json.loads(x) for x in env.stdout.getvalue().splitlines()] == [{"a": 1}, {"a": 2}]


def test_human_dict_and_narrow_list():
    env = _env(human=True)
    emit(env, {"balance_sat": 1234567, "paid_at": 1_700_000_000, "features": ["a", "b"], "note": None})
    out = env.stdout.getvalue()
    assert "1,234,567" in out and "2023-11-14 22:13:20 UTC" in out and "-" in out
    env = _env(human=True)
    emit(env, [{"x": 1, "y": 2}, {"x": 3, "y": 4}])
    assert "x" in env.stdout.getvalue() and "3" in env.stdout.getvalue()


def test_human_wide_list_prints_one_block_per_record():
    env = _env(human=True)
    rows = [{f"c{i}": f"v{n}{i}" for i in range(10)} for n in range(2)]
    emit(env, rows, title="channels")
    out = env.stdout.getvalue()
    assert "channels 1/2" in out and "channels 2/2" in out and "v19" in out


def test_human_empty_list():
    env = _env(human=True)
    emit(env, [])
    assert "(none)" in env.stdout.getvalue()


def test_human_progress_fraction_is_a_bar():
    env = _env(human=True)
    emit(env, {"verification_progress": 0.5, "wallet_balance": {"confirmed_sat": 1234567}}, title="chain status")
    out = env.stdout.getvalue()
    assert "chain status" in out and "verification progress" in out and "50.00%" in out
    assert "1,234,567" in out
    env = _env()
    emit(env, {"verification_progress": 0.5}, title="chain status")
    assert json.loads(env.stdout.getvalue()) == {"verification_progress": 0.5}
