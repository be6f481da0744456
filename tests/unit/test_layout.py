"""The import graph, read from the source with ``ast``: no cycles, dependencies one way.

Every ``import``/``from ... import`` counts, at module level and inside functions (a lazy
import is still a dependency); only ``if TYPE_CHECKING:`` blocks are left out. The rules are
DESIGN.md's: adapters -> core; server and governance never import adapters; delivery never
imports capturing; events import neither capturing nor delivery; the server imports none of
capturing, delivery, mlflow, cli; ``src/provlink`` never imports Airflow, Dagster or MLflow
at module top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "provlink": ROOT / "src" / "provlink",
    "provlink_airflow": ROOT / "airflow_integration" / "provlink_airflow",
    "provlink_dagster": ROOT / "dagster_integration" / "provlink_dagster",
}
ADAPTERS = ("provlink_airflow", "provlink_dagster")
ORCHESTRATION_LIBS = {"airflow", "dagster", "mlflow"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (ours: resolved to a module of the tree when it is one)
    line: int
    top: bool  # runs at import time (not inside a function)

    def __str__(self) -> str:
        where = "" if self.top else " (inside a function)"
        return f"{self.source} -> {self.target}  [{module_path(self.source)}:{self.line}{where}]"


def module_path(module: str) -> str:
    path = MODULES[module]
    return str(path.relative_to(ROOT))


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = [top, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, top: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:  # the ``else:`` of ``if TYPE_CHECKING`` runs
                yield from _walk_one(sub, top)
            continue
        yield from _walk_one(child, top)


def _walk_one(node: ast.AST, top: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, top
        return
    inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
    yield from _walk(node, inner)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text("utf-8"), filename=str(MODULES[module]))
    out: list[Import] = []
    for node, top in _walk(tree, True):
        if isinstance(node, ast.Import):
            out.extend(Import(module, alias.name, node.lineno, top) for alias in node.names)
            continue
        base = _resolve(module, node)
        for alias in node.names:  # ``from pkg import submodule`` depends on the submodule
            target = f"{base}.{alias.name}"
            out.append(Import(module, target if target in MODULES else base, node.lineno, top))
    return out


IMPORTS = [imp for module in MODULES for imp in _imports_of(module)]


def _ours(target: str) -> str | None:
    """The module of our tree an import loads (the longest known prefix), if any."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in MODULES:
            return name
    return None


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _internal_edges() -> list[Import]:
    edges = []
    for imp in IMPORTS:
        target = _ours(imp.target)
        if target is not None and target != imp.source:
            edges.append(Import(imp.source, target, imp.line, imp.top))
    return edges


EDGES = _internal_edges()


def _cycles(edges: list[Import]) -> list[list[Import]]:
    """One concrete cycle per strongly connected component (Tarjan)."""
    graph: dict[str, list[Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph.get(node, ()):
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[str], graph: dict[str, list[Import]]) -> list[Import]:
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in graph.get(node, ()):
                if edge.target not in component:
                    continue
                if edge.target == start:
                    return [*paths[node], edge]
                if edge.target not in paths:
                    paths[edge.target] = [*paths[node], edge]
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # unreachable for a real component


def _report(title: str, found: list[Import]) -> str:
    return title + ":\n" + "\n".join(f"  {imp}" for imp in found)


def _forbid(title: str, found: list[Import]) -> None:
    if found:
        pytest.fail(_report(title, found), pytrace=False)


def test_the_scan_sees_the_tree() -> None:
    """Guards the test itself: it found the packages and the imports everyone knows."""
    assert {"provlink.capturing.point", "provlink_dagster.steps", "provlink_airflow.listener"} \
        <= set(MODULES)
    assert any(e.source == "provlink_dagster.steps" and e.target == "provlink.capturing.point"
               for e in EDGES)
    lazy = [e for e in EDGES if not e.top]
    assert lazy, "function-level imports were not collected"


def test_no_import_cycles() -> None:
    cycles = _cycles(EDGES)
    if cycles:
        pytest.fail("\n".join(
            _report("import cycle " + " -> ".join([c[0].source, *(e.target for e in c)]), c)
            for c in cycles), pytrace=False)


def test_adapters_import_only_the_core_and_themselves() -> None:
    bad = [e for e in EDGES if _in(e.source, *ADAPTERS)
           and not (_in(e.target, "provlink") or e.target.split(".")[0] == e.source.split(".")[0])]
    _forbid("an adapter imports another adapter", bad)


def test_adapters_hand_records_to_the_core_and_talk_to_no_backend() -> None:
    """Adapters build records; the backend, the ledger and the CLI are not theirs to call."""
    bad = [e for e in EDGES if _in(e.source, *ADAPTERS)
           and _in(e.target, "provlink.server", "provlink.governance", "provlink.cli")]
    _forbid("an adapter imports the server, governance or the CLI", bad)


def test_the_core_never_imports_an_adapter() -> None:
    bad = [e for e in EDGES if _in(e.source, "provlink") and _in(e.target, *ADAPTERS)]
    _forbid("provlink (core, server, governance) imports an adapter", bad)


def test_delivery_never_imports_capturing() -> None:
    bad = [e for e in EDGES
           if _in(e.source, "provlink.delivery") and _in(e.target, "provlink.capturing")]
    _forbid("delivery imports capturing", bad)


def test_events_import_neither_capturing_nor_delivery() -> None:
    bad = [e for e in EDGES if _in(e.source, "provlink.events")
           and _in(e.target, "provlink.capturing", "provlink.delivery")]
    _forbid("events import capturing or delivery", bad)


def test_the_server_is_independent_of_capture_delivery_mlflow_and_cli() -> None:
    bad = [e for e in EDGES if _in(e.source, "provlink.server") and _in(
        e.target, "provlink.capturing", "provlink.delivery", "provlink.mlflow", "provlink.cli")]
    _forbid("the server imports capturing/delivery/mlflow/cli", bad)


def test_the_core_imports_no_orchestrator_or_mlflow_at_module_top() -> None:
    bad = [imp for imp in IMPORTS if imp.top and _in(imp.source, "provlink")
           and imp.target.split(".")[0] in ORCHESTRATION_LIBS]
    _forbid("src/provlink imports airflow/dagster/mlflow at module top", bad)


def test_the_rules_catch_what_they_forbid() -> None:
    """The checks fire on a known-bad graph (so a green run means something)."""
    bad = [Import("provlink_dagster.a", "provlink_dagster.b", 1, True),
           Import("provlink_dagster.b", "provlink_dagster.c", 2, False),
           Import("provlink_dagster.c", "provlink_dagster.a", 3, False)]
    cycles = _cycles(bad)
    assert [[e.line for e in c] for c in cycles] == [[1, 2, 3]]
    source = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mlflow\n"
                       "def f():\n    import dagster\nimport airflow\n")
    seen = [(n.names[0].name, top) for n, top in _walk(source, True)
            if isinstance(n, ast.Import)]
    assert seen == [("dagster", False), ("airflow", True)]
