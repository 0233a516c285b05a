"""The layers of ARCHITECTURE.md, checked on the source: each package imports only from the layers
below it, and no two modules import each other (directly or round a longer cycle), counting the
imports made inside functions too (not those under ``if TYPE_CHECKING:``, which never run)."""

from __future__ import annotations

import ast
from collections import defaultdict

from tests.conftest import ROOT

_BASE = {"(top)", "errors", "amount", "config"}
# What each package of lncli may import, bottom up (ARCHITECTURE.md, "Layers").
ALLOWED = {
    "errors": set(),
    "amount": {"errors"},
    "config": {"errors", "amount"},
    "bitcoin": _BASE,
    "proto": _BASE | {"bitcoin"},
    "store": _BASE,
    "chain": _BASE | {"bitcoin", "proto", "store"},
    "wallet": _BASE | {"bitcoin", "proto", "store", "chain"},
    "channel": _BASE | {"bitcoin", "proto"},
    "gossip": _BASE | {"bitcoin", "proto"},
    "monitor": _BASE | {"bitcoin", "proto", "chain", "store", "channel"},
    "rpc": _BASE,
    "node": _BASE | {"bitcoin", "proto", "chain", "wallet", "store", "channel", "gossip", "monitor", "rpc"},
    "demo": _BASE | {"bitcoin", "proto", "chain", "wallet", "store", "channel", "gossip", "monitor", "rpc", "node"},
}


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but what sits under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def import_graph(root=ROOT) -> dict[str, set[str]]:
    """module -> the lncli modules it imports (``from lncli.x import y`` counts y if it is a module)."""
    files = {}
    for path in (root / "lncli").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in files.items():
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lncli"):
                targets = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files]
                graph[mod].update(targets or [node.module])
            elif isinstance(node, ast.Import):
                graph[mod].update(a.name for a in node.names if a.name.startswith("lncli"))
    return graph


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "(top)"


def upward_imports(graph) -> list[str]:
    bad = []
    for mod, targets in sorted(graph.items()):
        pkg = _package(mod)
        allowed = ALLOWED.get(pkg)
        if allowed is None:  # the CLI (and __main__) may use every layer
            continue
        bad += [f"{mod} imports {t}" for t in sorted(targets) if _package(t) not in allowed | {pkg}]
    return bad


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_runs_upward():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_type_checking_imports_do_not_count():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lncli.node import x\nimport lncli.proto\n")
    found = [n for n in _runtime_nodes(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert sorted(ast.unparse(n) for n in found) == ["from typing import TYPE_CHECKING", "import lncli.proto"]


def test_the_checks_catch_what_they_should():
    graph = {"lncli.monitor.penalty": {"lncli.node.channels"}, "lncli.proto.a": {"lncli.proto.b"},
             "lncli.proto.b": {"lncli.proto.a"}, "lncli.cli.x": {"lncli.node.y"}}
    assert upward_imports(graph) == ["lncli.monitor.penalty imports lncli.node.channels"]
    assert cycles(graph) == [["lncli.proto.a", "lncli.proto.b"]]
