"""Airflow on Celery: a real CeleryExecutor deployment (scheduler, dag-processor, api-server
and two Celery workers on the machine's Redis), each worker with its own ``PROVLINK_HOME``
as if on its own host, delivering to a real ``provlink serve`` over HTTP.

The example DAG's every event must reach the backend exactly once, with parents and the
graph intact, and every host's ledger must verify.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.airflow_support import (
    AIRFLOW,
    AirflowEnv,
    airflow_processes,
    api_server_ready,
    free_port,
    wait_for,
)
from tests.server.support import api_get, serve_process

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

PROVLINK = str(Path(AIRFLOW).with_name("provlink"))
TASKS = ("raw_data", "features", "train", "score")
REDIS = ("127.0.0.1", 6379)


def _reachable(address: tuple[str, int]) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(address) == 0


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata and Celery's results (Celery
    refuses SQLite)."""
    psycopg = pytest.importorskip("psycopg")
    if not _reachable(("127.0.0.1", 5432)):
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    name = f"provlink_celery_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[str]:
    """``provlink serve`` on its own home: the backend every host delivers to."""
    with serve_process(tmp_path / "backend", tmp_path / "serve.log") as url:
        yield url


def test_example_dag_on_two_celery_workers(tmp_path: Path, postgres_db: str,
                                           backend: str) -> None:
    if not _reachable(REDIS):
        pytest.skip("Redis is not listening on 127.0.0.1:6379 (the Celery broker)")
    home = tmp_path / "airflow_home"
    home.mkdir()
    port = free_port()
    redis_db = 5 + uuid.uuid4().int % 10  # a db of its own on the machine's Redis
    af = AirflowEnv(home)
    env = af.env(
        tmp_path,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg://{postgres_db}",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=f"postgresql+psycopg_async://{postgres_db}",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql+psycopg://{postgres_db}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API_AUTH__JWT_SECRET="provlink-celery-test-jwt-secret-0123456789",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        OPENLINEAGE_URL=backend,
        PROVLINK_HOME=str(tmp_path / "hosts" / "scheduler"),
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True,
                   timeout=180)
    hosts = {name: tmp_path / "hosts" / name for name in ("worker1", "worker2")}
    workers = [(["celery", "worker", "--concurrency", "1", "--celery-hostname",
                 f"{name}@%h"], {"PROVLINK_HOME": str(path)}) for name, path in hosts.items()]
    with airflow_processes(env, tmp_path, ["api-server", "--port", str(port)],
                           ["dag-processor"], ["scheduler"], *workers):
        api_server_ready(port)
        subprocess.run([AIRFLOW, "dags", "trigger", "ml_pipeline", "-c", '{"C": 0.25}'],
                       env=env, check=True, capture_output=True, timeout=120)

        def dag_finished() -> dict[str, Any] | None:
            runs = api_get(backend, "/api/v1/namespaces/default/jobs/ml_pipeline/runs")
            done = [r for r in (runs or {}).get("runs", [])
                    if r["state"] in ("COMPLETED", "FAILED")]
            return done[0] if done else None

        run = wait_for(dag_finished, 420, "the DAG run's terminal event in the backend")
        assert run["state"] == "COMPLETED", run
        subprocess.run([PROVLINK, "spool", "flush", "--timeout", "60"], check=True,
                       env={**env, "PROVLINK_HOME": str(tmp_path / "hosts" / "scheduler")},
                       capture_output=True, timeout=120)
        for path in hosts.values():
            if path.exists():
                subprocess.run([PROVLINK, "spool", "flush", "--timeout", "60"], check=True,
                               env={**env, "PROVLINK_HOME": str(path)}, capture_output=True,
                               timeout=120)

    events = api_get(backend, "/api/v1/events/lineage", limit=1000)["events"]
    jobs = Counter((e["job"]["name"], e["eventType"]) for e in events)
    expected = {("ml_pipeline", "START"), ("ml_pipeline", "COMPLETE")} | {
        (f"ml_pipeline.{t}", kind) for t in TASKS for kind in ("START", "COMPLETE")}
    assert expected <= set(jobs), sorted(jobs)
    assert all(jobs[key] == 1 for key in expected), jobs  # exactly once, across hosts

    dag_run = next(e["run"]["runId"] for e in events if e["job"]["name"] == "ml_pipeline")
    for event in events:
        if event["job"]["name"].startswith("ml_pipeline."):
            assert event["run"]["facets"]["parent"]["run"]["runId"] == dag_run

    # Each task ran on one worker host, whose own spool holds its events.
    ran_on: dict[str, set[str]] = {}
    for name, path in hosts.items():
        if not (path / "spool.db").exists():
            continue
        done = subprocess.run([PROVLINK, "spool", "status", "--json"], env={
            **env, "PROVLINK_HOME": str(path)}, capture_output=True, text=True, check=True)
        assert json.loads(done.stdout)["pending"] == 0
        verify = subprocess.run([PROVLINK, "verify"], env={**env, "PROVLINK_HOME": str(path)},
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        import sqlite3
        with sqlite3.connect(path / "spool.db") as db:
            names = {json.loads(p)["job"]["name"] for (p,) in db.execute(
                "SELECT payload FROM events WHERE payload IS NOT NULL")}
        registry = {n for n in names if n.startswith("mlflow_registry.")}
        if registry:  # the registry actions of `train` are recorded where it ran
            assert "train" in {n.removeprefix("ml_pipeline.") for n in names}, (name, names)
        ran_on[name] = {n.removeprefix("ml_pipeline.") for n in names - registry
                        if n != "ml_pipeline"}
    assert set().union(*ran_on.values()) == set(TASKS), ran_on
    assert sum(len(tasks) for tasks in ran_on.values()) == len(TASKS), ran_on  # no task twice

    preds = (tmp_path / "demo" / "predictions" / "wine_predictions.parquet").resolve()
    graph = api_get(backend, "/api/v1/lineage", nodeId=f"dataset:file:{preds}", depth=20)
    nodes = {n["id"] for n in graph["graph"]}
    assert {f"job:default:ml_pipeline.{t}" for t in TASKS} <= nodes
    assert any("models/wine_classifier/" in n for n in nodes)
    assert f"dataset:file:{(tmp_path / 'demo' / 'raw' / 'wine.csv').resolve()}" in nodes
