"""dagster-mlflow's ``mlflow_tracking`` resource: its one MLflow run per Dagster run is
linked to every step that uses it and tagged with the asset keys they materialize."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("dagster_mlflow")

import mlflow
from dagster import Definitions, asset, define_asset_job
from dagster_mlflow import end_mlflow_on_run_finished, mlflow_tracking
from provlink_dagster import with_lineage
from provlink_dagster.mlflow_resource import TAG_ASSET_KEY

from provlink.testing import capture_events
from tests.conformance import validate_event


@asset(required_resource_keys={"mlflow"})
def trained() -> int:
    mlflow.log_metric("accuracy", 0.9)
    return 1


@asset(required_resource_keys={"mlflow"})
def evaluated(trained: int) -> int:
    mlflow.log_metric("auc", 0.8)
    return trained


@asset
def reported(evaluated: int) -> int:
    """Needs no MLflow: the run dagster-mlflow left active is not this step's."""
    return evaluated


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "provlink"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    return tmp_path


def test_resource_run_is_linked_and_tagged(env: Path) -> None:
    uri = f"sqlite:///{env / 'mlflow.db'}"
    train = define_asset_job("train", selection=[trained, evaluated, reported],
                             hooks={end_mlflow_on_run_finished})
    defs = with_lineage(Definitions(
        assets=[trained, evaluated, reported], jobs=[train],
        resources={"mlflow": mlflow_tracking.configured(
            {"experiment_name": "dagster", "mlflow_tracking_uri": uri})}))
    with capture_events() as events:
        result = defs.resolve_job_def("train").execute_in_process()
    assert result.success
    for event in events:
        validate_event(event)

    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("dagster").experiment_id])
    assert len(runs) == 1
    mlflow_run = runs[0]
    done = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    for step in ("trained", "evaluated"):
        linked = [r["runId"] for r in done[step]["run"]["facets"]["mlflow"]["runs"]]
        assert linked == [mlflow_run.info.run_id], step
        assert mlflow_run.data.tags[f"{TAG_ASSET_KEY}.{step}"] == done[step]["run"]["runId"]
    assert "mlflow" not in done["reported"]["run"]["facets"]
    assert f"{TAG_ASSET_KEY}.reported" not in mlflow_run.data.tags
    assert mlflow_run.data.tags["openlineage.parent.run_id"] == result.run_id
    assert set(mlflow_run.data.metrics) == {"accuracy", "auc"}
