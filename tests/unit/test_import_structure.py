"""The folders' import direction (docs/architecture.md): harness on top; chaos, scenarios
and reports beside each other below it; common (and sut, the system under test) at the
bottom. No import goes up or sideways between folders, and no modules import each other
in a circle.

Every import statement counts: at module level, inside functions (a late import hides
a circle, it does not break it) and under `if TYPE_CHECKING:`. A submodule importing
its own package's `__init__` only by being imported is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Rank of each top-level folder: an import must go to a strictly lower rank.
LAYERS = {"harness": 2, "chaos": 1, "scenarios": 1, "reports": 1, "common": 0, "sut": 0}

Graph = dict[str, set[str]]


def import_graph(root: Path, packages: tuple[str, ...]) -> Graph:
    """Module name -> the modules of `packages` it imports (any import statement)."""
    files: dict[str, tuple[Path, bool]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)

    def known(name: str | None) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for module, (path, is_package) in files.items():
        package = module if is_package else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(t for a in node.names if (t := known(a.name)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    # `from pkg import mod` imports the submodule; `from mod import name` the module.
                    target = known(f"{source}.{alias.name}")
                    if target is None or target == module:
                        target = known(source)
                    if target:
                        targets.add(target)
        targets.discard(module)
        graph[module] = targets
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Every set of modules that import each other in a circle (strongly connected
    components of more than one module), iteratively so deep graphs need no recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward_imports(graph: Graph, layers: dict[str, int]) -> list[tuple[str, str]]:
    """(importer, imported) pairs whose folders are not in strictly descending rank."""
    def folder(module: str) -> str:
        return module.split(".")[0]

    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if folder(m) != folder(t) and layers[folder(t)] >= layers[folder(m)])


def test_no_import_circle_and_no_upward_import_between_folders():
    graph = import_graph(ROOT, tuple(LAYERS))
    assert len(graph) > 150, "the checker must see the whole code base"
    assert cycles(graph) == []
    assert upward_imports(graph, LAYERS) == []


def test_the_checker_catches_a_late_circle_and_an_upward_or_sideways_import(tmp_path):
    """Negative control: the same functions on a small tree that breaks each rule."""
    files = {
        "common/__init__.py": "",
        "common/units.py": "def later():\n    from harness import cli  # up, hidden in a function\n",
        "harness/__init__.py": "",
        "harness/cli.py": "from common.units import later\nfrom reports import html\n",
        "reports/__init__.py": "",
        "reports/html.py": "from .verdict import run\n",
        "reports/verdict.py": "def run():\n    from reports.html import page  # circle, late\n",
        "chaos/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scenarios import x\n",
        "scenarios/__init__.py": "",
        "scenarios/x.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    layers = {"harness": 2, "chaos": 1, "scenarios": 1, "reports": 1, "common": 0}
    graph = import_graph(tmp_path, tuple(layers))
    assert graph["harness.cli"] == {"common.units", "reports.html"}
    assert sorted(cycles(graph)) == [["common.units", "harness.cli"], ["reports.html", "reports.verdict"]]
    assert upward_imports(graph, layers) == [("chaos", "scenarios.x"), ("common.units", "harness.cli")]
