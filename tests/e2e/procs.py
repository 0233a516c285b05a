"""Running real ``lncli`` processes from the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env_for(tmp_path: Path) -> dict:
    """A process environment with a private embedded chain and no inherited datadir or network."""
    e = dict(os.environ)
    e["LNCLI_CHAINDIR"] = str(tmp_path / "chain")
    e.pop("LNCLI_DATADIR", None)
    e.pop("LNCLI_NETWORK", None)
    return e


def lncli(env, datadir, *args, check=True, timeout=60, input=None):
    """``lncli --datadir DATADIR ARGS...``; with ``check``, a non-zero exit fails the test with stderr."""
    p = subprocess.run(
        [sys.executable, "-m", "lncli", "--datadir", str(datadir), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout, input=input,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"lncli {' '.join(args)} -> {p.returncode}: {p.stderr}")
    return p


def out(p):
    return json.loads(p.stdout)


def one_line_error(p, code):
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("lncli: error: ") and len(p.stderr.strip().splitlines()) == 1
    return p.stderr
