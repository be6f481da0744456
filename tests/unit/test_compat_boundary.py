"""Private APIs of Airflow, Dagster, MLflow and openlineage-python only inside a ``_compat``.

An ``ast`` scan of src/provlink and both integrations (every module but the four
``_compat.py``) for what reaches into those libraries' internals:

- importing an underscore module or name (``from dagster._core... import``, ``from x import _y``);
- a dotted module path with an underscore part, as a string (``import_module``/``sys.modules``);
- ``name._attr`` where ``name`` was imported from one of the libraries;
- ``obj._attr`` on any other object when no module of ours defines ``_attr`` (a def, a class,
  a module-level name, ``self._attr = ...``, a parameter, a dataclass field), so our own
  privates pass and a library object's do not; ``self``/``cls`` and dunders are ours.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = (ROOT / "src" / "provlink", ROOT / "airflow_integration" / "provlink_airflow",
         ROOT / "dagster_integration" / "provlink_dagster")
OUR_PACKAGES = {"provlink", "provlink_airflow", "provlink_dagster"}
LIBRARIES = {"airflow", "dagster", "dagster_mlflow", "mlflow", "openlineage"}
_MODULE_STRING = re.compile(r"^(?:" + "|".join(sorted(LIBRARIES)) + r")(?:\.\w+)+$")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _sources() -> list[Path]:
    return [p for tree in TREES for p in sorted(tree.rglob("*.py")) if p.name != "_compat.py"]


def _all_sources() -> list[Path]:
    return [p for tree in TREES for p in sorted(tree.rglob("*.py"))]


def _own_privates() -> set[str]:
    """Underscore names our own code defines anywhere (compat modules included)."""
    names: set[str] = set()
    for path in _all_sources():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
    return {n for n in names if _private(n)}


OWN = _own_privates()


def _library(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in LIBRARIES


def findings(path: Path, own: set[str] = OWN) -> Iterator[str]:
    """Each private access in one module, as ``file:line: what``."""
    text = path.read_text("utf-8")
    tree = ast.parse(text)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    from_libs: set[str] = set()  # local names bound to a library module or object
    elsewhere: set[str] = set()  # bound to anything else imported (stdlib: sys._getframe)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if not _library(alias.name):
                    elsewhere.add(bound)
                    continue
                from_libs.add(bound)
                if any(_private(p) for p in alias.name.split(".")):
                    yield f"{where}:{node.lineno}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            bound_names = {alias.asname or alias.name for alias in node.names}
            if node.level or module.split(".")[0] in OUR_PACKAGES:
                continue
            if not _library(module):
                elsewhere.update(bound_names)
                continue
            from_libs.update(bound_names)
            if any(_private(p) for p in module.split(".")):
                yield f"{where}:{node.lineno}: imports from {module}"
            for alias in node.names:
                if _private(alias.name):
                    yield f"{where}:{node.lineno}: imports {module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _MODULE_STRING.match(node.value) and any(
                    _private(p) for p in node.value.split(".")):
                yield f"{where}:{node.lineno}: names module {node.value!r}"
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in {"self", "cls"} | elsewhere:
            continue
        if isinstance(base, ast.Name) and base.id in from_libs:
            yield f"{where}:{node.lineno}: {base.id}.{node.attr} (a library name)"
        elif node.attr not in own:
            yield f"{where}:{node.lineno}: {ast.unparse(node)} (not one of our names)"
    for node in ast.walk(tree):  # getattr(obj, "_private") is the same reach
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                and _private(node.args[1].value) and node.args[1].value not in own):
            yield f"{where}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})"


def test_no_private_library_access_outside_compat() -> None:
    found = [f for path in _sources() for f in findings(path)]
    if found:
        pytest.fail("private Airflow/Dagster/MLflow/openlineage-python API outside a _compat"
                    " module (move it into that library's _compat.py, with a comment saying"
                    " what it reaches and the versions checked):\n  " + "\n  ".join(found),
                    pytrace=False)


def test_the_scan_flags_each_kind_of_reach(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "import mlflow\n"
        "from dagster._core.instance import DagsterInstance\n"
        "from openlineage.client.transport import http_common as hc, _private_name\n"
        "def f(op, facet):\n"
        "    mlflow._registry_uri = None\n"
        "    facet._producer = 'x'\n"
        "    self_like = op._version\n"
        "    getattr(op, '_get_registry_client')\n"
        "    return 'mlflow.tracking._model_registry.utils', self_like._ours\n"
        "class Ours:\n"
        "    def __init__(self):\n"
        "        self._ours = 1\n")
    lines = sorted(int(f.split(":")[1]) for f in findings(module, own={"_ours"}))
    assert lines == [2, 3, 5, 6, 7, 8, 9]
