"""MLflow's tracking store on PostgreSQL (a fresh database), skipped where 127.0.0.1:5432
is not reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from provlink.mlflow.context import TAG_RUN_ID
from provlink.testing import capture_events
from provlink.tracking_uri import tracking_namespace
from tests.integration.mlflow_support import complete_event, run_pipeline

ADMIN = os.environ.get("PROVLINK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_tracking_uri() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {ADMIN}: {exc}")
    name = f"provlink_mlflow_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_pipeline_on_a_postgres_tracking_store(postgres_tracking_uri: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_tracking_uri)
    monkeypatch.chdir(tmp_path)  # the fresh store's default experiment keeps artifacts in ./mlruns
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    with capture_events() as events:
        run = run_pipeline(tmp_path / "work", "iris_pg")

    client = mlflow.MlflowClient(tracking_uri=postgres_tracking_uri)
    assert client.get_run(run.nested_run_id).data.tags[TAG_RUN_ID] == run.train_run_id
    assert client.get_model_version("iris_pg", run.version).tags[TAG_RUN_ID] == run.train_run_id
    namespace = tracking_namespace(postgres_tracking_uri)
    assert "@" not in namespace
    model = (namespace, f"models/iris_pg/{run.version}")
    outputs = complete_event(events, run.train_run_id)["outputs"]
    inputs = complete_event(events, run.score_run_id)["inputs"]
    assert model in {(o["namespace"], o["name"]) for o in outputs}
    assert model in {(i["namespace"], i["name"]) for i in inputs}
