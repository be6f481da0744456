"""With file capture on, MLflow's own files (artifacts, tracking DB, telemetry) are not
datasets: the run and the model version already stand for them."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

import provlink
from provlink.testing import capture_events


def test_only_data_and_the_model_version_are_lineage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    data = tmp_path / "train.csv"
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]}).to_csv(data, index=False)
    with capture_events() as events:
        with provlink.capture("train_with_files"):
            frame = pd.read_csv(data)
            model = LogisticRegression().fit(frame[["x"]], frame["y"])
            with mlflow.start_run():
                mlflow.sklearn.log_model(model, name="model", registered_model_name="files_demo")
    done = events[-1]
    inputs = {(d["namespace"], d["name"]) for d in done["inputs"]}
    outputs = {(d["namespace"], d["name"]) for d in done["outputs"]}
    assert inputs == {("file", str(data.resolve()))}
    assert outputs == {(uri, "models/files_demo/1")}
    assert list(tmp_path.glob("mlruns/**/MLmodel")), "MLflow wrote artifacts that were dropped"
