"""The example ML DAG under a real scheduler: LocalExecutor, DAG processor and API server
started here, the run triggered by the CLI, the graph read back from the embedded backend
(filled by whichever Airflow process's sender drained the shared spool)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.airflow_support import (
    AIRFLOW,
    AirflowEnv,
    airflow_processes,
    api_server_ready,
    free_port,
    migrate,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

RUN_TIMEOUT = 240.0


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[AirflowEnv, dict[str, str]]]:
    af = migrate(tmp_path / "airflow_home")
    port = free_port()
    env = af.env(tmp_path,
                 AIRFLOW__CORE__EXECUTOR="LocalExecutor",
                 AIRFLOW__CORE__PARALLELISM="2",
                 AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
                 AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
                 AIRFLOW__API__PORT=str(port),
                 AIRFLOW__API_AUTH__JWT_SECRET="provlink-test-jwt-secret-0123456789",
                 AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
                 AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5")
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True,
                   timeout=180)
    with airflow_processes(env, tmp_path, ["api-server", "--port", str(port)],
                           ["dag-processor"], ["scheduler"]):
        api_server_ready(port)
        yield af, env


def test_ml_dag_under_scheduler(scheduler, tmp_path: Path) -> None:
    af, env = scheduler
    subprocess.run([AIRFLOW, "dags", "trigger", "ml_pipeline", "-c", '{"C": 0.25}'], env=env,
                   check=True, capture_output=True, timeout=120)

    def finished() -> str | None:
        with sqlite3.connect(af.home / "airflow.db") as db:
            row = db.execute("SELECT state FROM dag_run WHERE dag_id='ml_pipeline'").fetchone()
        return row[0] if row and row[0] in ("success", "failed") else None

    assert wait_for(finished, RUN_TIMEOUT, "the DAG run to finish") == "success"

    from provlink.server.store import open_store

    demo = (tmp_path / "demo").resolve()
    preds = f"dataset:file:{demo / 'predictions' / 'wine_predictions.parquet'}"
    expected_jobs = {f"job:default:ml_pipeline.{t}"
                     for t in ("raw_data", "features", "train", "score")}

    def graph_complete() -> dict | None:
        lineage_db = tmp_path / "provlink" / "lineage.db"
        if not lineage_db.exists():
            return None
        store = open_store(f"sqlite:///{lineage_db}")
        try:
            events = list(store.iter_events())
            graph = store.lineage(preds, 20)
        except LookupError:
            return None
        finally:
            store.close()
        nodes = {n["id"] for n in graph["graph"]}
        done = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"}
        if expected_jobs <= nodes and "ml_pipeline" in done:
            return {"nodes": nodes, "events": events}
        return None

    found = wait_for(graph_complete, 90, "the graph in the embedded backend")
    nodes, events = found["nodes"], found["events"]
    assert any(n.startswith("dataset:sqlite:") and "models/wine_classifier/" in n for n in nodes)
    assert f"dataset:file:{demo / 'raw' / 'wine.csv'}" in nodes
    starts = [e for e in events if e["job"]["name"] == "ml_pipeline" and e["eventType"] == "START"]
    assert len(starts) == 1  # from the scheduler's on_dag_run_running, not per task process
    train = next(e for e in events
                 if e["job"]["name"] == "ml_pipeline.train" and e["eventType"] == "COMPLETE")
    assert train["run"]["facets"]["mlflow"]["runs"][0]["runId"]
    params = {p["key"]: p["value"]
              for p in train["run"]["facets"]["executionParameters"]["parameters"]}
    assert params["params.C"] == "0.25" and params["conf.C"] == "0.25"
