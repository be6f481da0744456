"""With file capture on, MLflow's own files (artifacts, tracking DB, telemetry) are not
datasets: the run and the model version already stand for them, the version with the
manifest of its artifact files."""

from __future__ import annotations

import hashlib
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


def _expected_manifest(directory: Path) -> tuple[str, dict[str, str]]:
    """model-signing's files serialization, recomputed here with hashlib alone."""
    files = sorted(p for p in directory.rglob("*")
                   if p.is_file() and p.name != "registered_model_meta")
    digests = {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in files}
    root = hashlib.sha256(b"".join(bytes.fromhex(digests[k]) for k in sorted(digests)))
    return f"sha256:{root.hexdigest()}", digests


def test_a_scoring_task_reads_exactly_the_model_version_and_the_features(
        tmp_path: Path, monkeypatch) -> None:
    """File capture on: loading ``models:/…@champion`` reads MLmodel, the model file,
    requirements and writes ``registered_model_meta``; all of it is the one model version."""
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    features, predictions = tmp_path / "features.csv", tmp_path / "predictions.csv"
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]}).to_csv(features, index=False)
    with capture_events() as events:
        with provlink.capture("train_model"):
            frame = pd.read_csv(features)
            model = LogisticRegression().fit(frame[["x"]], frame["y"])
            with mlflow.start_run():
                mlflow.sklearn.log_model(model, name="model", registered_model_name="scorer",
                                         input_example=frame[["x"]].head(2))
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("scorer", "champion", "1")
        with provlink.capture("score") as point:
            loaded = mlflow.pyfunc.load_model("models:/scorer@champion")
            frame = pd.read_csv(features)
            frame["prediction"] = loaded.predict(frame[["x"]])
            frame.to_csv(predictions, index=False)
            score_run = point.run_id
    train = next(e for e in events if e["job"]["name"] == "train_model"
                 and e["eventType"] == "COMPLETE")
    score = next(e for e in events if e["run"]["runId"] == score_run
                 and e["eventType"] == "COMPLETE")
    inputs = {(d["namespace"], d["name"]) for d in score["inputs"]}
    assert inputs == {("file", str(features.resolve())), (uri, "models/scorer/1")}
    assert {(d["namespace"], d["name"]) for d in score["outputs"]} == {
        ("file", str(predictions.resolve()))}

    artifacts = Path(client.get_model_version_download_uri("scorer", "1").removeprefix("file://"))
    assert (artifacts / "MLmodel").is_file() and (artifacts / "input_example.json").is_file()
    digest, files = _expected_manifest(artifacts)
    [loaded_version] = [d for d in score["inputs"] if d["name"] == "models/scorer/1"]
    facet = loaded_version["facets"]["mlflow_model_version"]
    assert facet["artifactDigest"] == digest
    manifest = facet["artifactManifest"]
    assert {f["name"]: f["digest"]["sha256"] for f in manifest["files"]} == files
    assert [f["name"] for f in manifest["files"]] == sorted(files)
    assert manifest["exact"] is True and manifest["method"] == "sha256-files"
    [registered] = [d for d in train["outputs"] if d["name"] == "models/scorer/1"]
    assert registered["facets"]["mlflow_model_version"]["artifactDigest"] == digest
    assert not [d for d in train["outputs"] + train["inputs"]
                if d["namespace"] == "file" and str(artifacts) in d["name"]]
