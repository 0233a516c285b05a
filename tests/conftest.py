"""Shared test fixtures.

The spec's test vectors live outside the repo, in ../shared/vectors (see its README for where each
file came from). ``load_vector("bolt11_invoices.json")`` reads one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LNCLI_SHARED", ROOT.parent / "shared"))
VECTORS = SHARED / "vectors"
DATA = SHARED / "data"


def load_vector(name: str):
    path = VECTORS / name
    if not path.exists():
        pytest.fail(f"spec vector {path} is missing: the shared/ folder must sit beside the repo")
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def vectors():
    return load_vector


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """No test touches ~/.lncli: the default datadir and the shared embedded chain live in a tmp dir
    (tests that want their own set these variables again, or pass --datadir)."""
    base = tmp_path_factory.mktemp("lncli-home")
    monkeypatch.setenv("LNCLI_DATADIR", str(base / "datadir"))
    monkeypatch.setenv("LNCLI_CHAINDIR", str(base / "chain"))
