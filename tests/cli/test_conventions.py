"""The CLI conventions, through the installed console script."""

import io
import subprocess
import sys

import pytest

from lncli.cli import gendocs


def _one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lncli: error: ")
    assert "Traceback" not in result.stderr


def test_help(script_runner):
    r = script_runner.run(["lncli", "--help"])
    assert r.returncode == 0
    assert "channel-id" in r.stdout


def test_version(script_runner):
    r = script_runner.run(["lncli", "--version"])
    assert r.returncode == 0 and r.stdout.startswith("lncli ")


def test_unknown_command_is_usage_error(script_runner):
    r = script_runner.run(["lncli", "no-such-command"])
    assert r.returncode == 2
    _one_error_line(r)


def test_unknown_option_is_usage_error(script_runner):
    r = script_runner.run(["lncli", "channel-id", "--frobnicate", "1x1x1"])
    assert r.returncode == 2
    _one_error_line(r)


def test_bad_network_is_usage_error(script_runner):
    r = script_runner.run(["lncli", "--network", "dogecoin", "channel-id", "1x1x1"])
    assert r.returncode == 2
    _one_error_line(r)


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "lncli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "lncli" in r.stdout


def test_completions_and_man_are_current():
    assert gendocs.main(["--check"]) == 0, "run: python -m lncli.cli.gendocs"


@pytest.mark.parametrize("garbage", ["", "-", "\x01\x02\xff", "lnbc1" + "q" * 50, "x" * 5000])
def test_garbage_never_tracebacks(script_runner, garbage):
    for argv in (["invoice", "decode", garbage], ["channel-id", garbage], ["decode-onion", garbage, "--node-key", "00" * 32, "--assoc-data", "00"]):
        r = script_runner.run(["lncli", *argv], stdin=io.StringIO("garbage\n" if garbage == "-" else ""))
        assert r.returncode in (1, 2), (argv, r.stderr)
        _one_error_line(r)
