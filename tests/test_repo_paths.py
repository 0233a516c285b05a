"""No absolute path of any machine in the repo: shared data is found through LNCLI_SHARED or ../shared
(tests/conftest.py), benchmarks are run from the repo root with the venv's python."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

# The home and work folders of the machines this was written on, and the usual others.
_MACHINE_PATH = re.compile(r"(?<![\w.])/(work|home|Users|root|opt|srv|mnt)/[\w.-]")


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_machine_paths_in_tracked_files():
    found = []
    for path in _tracked_files():
        if path.suffix not in {".py", ".md", ".toml", ".cfg", ".ini", ".sh", ""} or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not found, "absolute machine paths:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_should():
    # Built from pieces so that this file does not match its own scan.
    assert _MACHINE_PATH.search('SAMPLE = Path("/' + 'work/shared/data/x")')
    assert _MACHINE_PATH.search("Run: /" + "home/me/venv/bin/python")
    assert not _MACHINE_PATH.search("lncli --datadir ~/alice node start")
    assert not _MACHINE_PATH.search("see lncli/node/work/x.py")
