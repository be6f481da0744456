"""provlink_dagster's public API is what its ``__init__`` exports; Dagster internals are
reached only through ``_compat``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

provlink_dagster = pytest.importorskip("provlink_dagster")


def test_public_api_is_pinned() -> None:
    assert sorted(provlink_dagster.__all__) == [
        "DagsterLineageTranslator", "LINK_METADATA", "LineageSettings", "RUN_ID_METADATA",
        "backstop_sensors", "lineage_assets", "with_lineage",
    ]
    for name in provlink_dagster.__all__:
        assert getattr(provlink_dagster, name) is not None


def test_dagster_internals_only_in_compat() -> None:
    package = Path(provlink_dagster.__file__).parent
    private = re.compile(r"\bdagster\._"
                         r"|(?<!provlink)\._(copy|replace|version|step_execution_context)\b")
    offenders = [f"{path.name}:{n}" for path in sorted(package.glob("*.py"))
                 if path.name != "_compat.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if private.search(line)]
    assert offenders == []
