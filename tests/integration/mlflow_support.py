"""The known pipeline the MLflow tests run against real MLflow, and what it should produce:
raw.csv → features → features.csv → train (MLflow run + nested run + a run in a thread,
registers the model) → models/<name>/1 → score (loads models:/<name>@champion) →
predictions.csv."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import provlink


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRun:
    model_name: str
    version: str
    raw: Path
    features: Path
    predictions: Path
    features_run_id: str
    train_run_id: str
    score_run_id: str
    mlflow_run_id: str
    nested_run_id: str
    thread_run_id: str


def run_pipeline(workdir: Path, model_name: str, *, namespace: str = "tests") -> PipelineRun:
    workdir.mkdir(parents=True, exist_ok=True)
    raw, features, predictions = (workdir / n for n in ("raw.csv", "features.csv", "preds.csv"))
    iris = load_iris(as_frame=True).frame
    iris.to_csv(raw, index=False)

    with provlink.capture("features", namespace=namespace, capture_files=False,
                          parameters={"scale": "minmax"}) as point:
        point.add_input(raw)
        frame = pd.read_csv(raw)
        cols = [c for c in frame.columns if c != "target"]
        frame[cols] = (frame[cols] - frame[cols].min()) / (frame[cols].max() - frame[cols].min())
        frame.to_csv(features, index=False)
        point.add_output(features)
        features_run_id = point.run_id

    thread_run: list[str] = []
    with provlink.capture("train", namespace=namespace, capture_files=False,
                          parameters={"C": 0.5}) as point:
        point.add_input(features)
        frame = pd.read_csv(features)
        x, y = frame.drop(columns="target"), frame["target"]
        with mlflow.start_run(run_name="train") as run:
            mlflow.log_param("C", 0.5)
            mlflow.log_input(mlflow.data.from_pandas(frame, source=str(features), name="features"),
                             context="training")
            with mlflow.start_run(run_name="cv", nested=True) as nested:
                mlflow.log_metric("cv_accuracy", 0.9)
            model = LogisticRegression(C=0.5, max_iter=500).fit(x, y)
            mlflow.log_metric("train_accuracy", float(model.score(x, y)))
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name,
                                            pip_requirements=["scikit-learn"])

        def evaluate() -> None:
            with mlflow.start_run(run_name="holdout") as evaluation:
                mlflow.log_metric("holdout_accuracy", 0.95)
                thread_run.append(evaluation.info.run_id)

        worker = threading.Thread(target=evaluate)
        worker.start()
        worker.join()
        train_run_id = point.run_id

    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(model_name, "champion", version)

    with provlink.capture("score", namespace=namespace, capture_files=False) as point:
        point.add_input(features)
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
        frame = pd.read_csv(features)
        frame["prediction"] = loaded.predict(frame.drop(columns="target"))
        frame.to_csv(predictions, index=False)
        point.add_output(predictions)
        score_run_id = point.run_id

    return PipelineRun(model_name=model_name, version=version, raw=raw, features=features,
                       predictions=predictions, features_run_id=features_run_id,
                       train_run_id=train_run_id, score_run_id=score_run_id,
                       mlflow_run_id=run.info.run_id, nested_run_id=nested.info.run_id,
                       thread_run_id=thread_run[0])


def complete_event(events: list[dict], run_id: str) -> dict:
    return next(e for e in events if e["run"]["runId"] == run_id and e["eventType"] == "COMPLETE")


@contextlib.contextmanager
def mlflow_server(root: Path, **env: str) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, one worker) on a free port, until exit; in
    its own session, so the job consumers it starts are stopped with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    from tests.server.support import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": "", **env})
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
                                   + (root / "mlflow-server.log").read_text()[-3000:])
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
