"""The chain watcher sits below the node: no module of lncli.monitor imports lncli.node,
lncli.cli or lncli.wallet (not even inside a function)."""

import ast
from pathlib import Path

import lncli.monitor

FORBIDDEN = ("lncli.node", "lncli.cli", "lncli.wallet")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_monitor_imports_nothing_above_it():
    bad = [
        f"{path.name}: {name}"
        for path in sorted(Path(lncli.monitor.__file__).parent.glob("*.py"))
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    ]
    assert not bad, bad
