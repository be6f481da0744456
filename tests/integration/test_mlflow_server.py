"""MLflow over HTTP: an ``mlflow server`` subprocess started by the test on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests

from provlink.mlflow.context import TAG_JOB_NAME, TAG_RUN_ID
from provlink.testing import capture_events
from tests.integration.mlflow_support import complete_event, run_pipeline
from tests.server.support import free_port


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server (exit {process.poll()}) not healthy: "
                                   + (root / "server.log").read_text()[-3000:])
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_pipeline_against_a_tracking_server(mlflow_server: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    with capture_events() as events:
        run = run_pipeline(tmp_path / "work", "iris_http")

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    for run_id in (run.mlflow_run_id, run.nested_run_id, run.thread_run_id):
        assert client.get_run(run_id).data.tags[TAG_RUN_ID] == run.train_run_id
    version = client.get_model_version("iris_http", run.version)
    assert version.tags[TAG_RUN_ID] == run.train_run_id
    assert version.tags[TAG_JOB_NAME] == "train"

    train = complete_event(events, run.train_run_id)
    assert {r["runId"] for r in train["run"]["facets"]["mlflow"]["runs"]} == {
        run.mlflow_run_id, run.nested_run_id, run.thread_run_id}
    model = (mlflow_server, f"models/iris_http/{run.version}")
    assert model in {(o["namespace"], o["name"]) for o in train["outputs"]}
    score = complete_event(events, run.score_run_id)
    assert model in {(i["namespace"], i["name"]) for i in score["inputs"]}
