"""The same bytes have the same dataset version in every orchestrator (issue 10, item 5).

Airflow (``dag.test()``), Dagster (``materialize()``) and plain Python each write one file
with the same content; each event's output has the version ``sha256:<sha256sum of the
file>``. Dagster's own data and code versions travel in the ``dagster_version`` facet.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, MaterializeResult, asset, materialize
from provlink_dagster import lineage_assets

import provlink
from provlink.testing import capture_events
from tests.conformance import validate_event
from tests.integration.airflow_support import TEST_DAGS, dag_test, migrate, spooled_events

pytestmark = pytest.mark.timeout(600)

CONTENT = "id,value\n1,0.5\n2,0.25\n"


def _sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def _output(event: dict[str, Any], path: Path) -> dict[str, Any]:
    (found,) = [o for o in event["outputs"] if (o["namespace"], o["name"]) ==
                ("file", str(path.resolve()))]
    return found


def test_airflow_dagster_and_python_agree_on_a_files_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared" / "scores.csv"
    shared.parent.mkdir()

    airflow = migrate(tmp_path / "airflow_home")
    work = tmp_path / "airflow_run"
    work.mkdir()
    result = dag_test(airflow, work, TEST_DAGS / "shared_file_dag.py", "shared_file",
                      AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS), SHARED_FILE=str(shared),
                      SHARED_CONTENT=CONTENT)
    assert result["state"] == "success"
    (airflow_done,) = [e for e in spooled_events(work / "provlink")
                       if e["job"]["name"] == "shared_file.write_shared"
                       and e["eventType"] == "COMPLETE"]
    expected = "sha256:" + _sha256sum(shared)
    assert _output(airflow_done, shared)["facets"]["version"]["datasetVersion"] == expected

    shared.unlink()  # Dagster writes it afresh
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "provlink"))
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")

    @asset(code_version="7")
    def scores() -> MaterializeResult:
        shared.write_text(CONTENT)
        return MaterializeResult(metadata={"path": str(shared)})

    with capture_events() as dagster_events:
        assert materialize(lineage_assets([scores]),
                           instance=DagsterInstance.ephemeral()).success
    (dagster_done,) = [e for e in dagster_events
                       if e["job"]["name"] == "scores" and e["eventType"] == "COMPLETE"]
    validate_event(dagster_done)
    out = _output(dagster_done, shared)
    assert out["facets"]["version"]["datasetVersion"] == expected == "sha256:" + _sha256sum(shared)
    versions = out["facets"]["dagster_version"]
    assert versions["assetKey"] == "scores"
    assert versions["codeVersion"] == "7"
    assert versions["dataVersion"] and versions["dataVersion"] != expected.split(":")[1]
    assert versions["_schemaURL"].endswith("DagsterVersionDatasetFacet.json#/$defs/"
                                           "DagsterVersionDatasetFacet")

    shared.unlink()
    with capture_events() as python_events, provlink.capture("plain_python_writer"):
        shared.write_text(CONTENT)
    python_done = python_events[-1]
    assert _output(python_done, shared)["facets"]["version"]["datasetVersion"] == expected
