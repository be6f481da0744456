"""``diff`` separates causes from consequences: a dataset an unchanged job rebuilt from a
changed input and a changed metric follow from the changed raw file and parameter; an
orchestrator's config path (``config.c``) and MLflow's name (``C``) are one parameter."""

from __future__ import annotations

import dataclasses

from provlink.governance.diff import diff_traces
from provlink.governance.trace import Trace, TracedDataset, TracedRun

RAW, FEATURES = ("file", "/data/raw.csv"), ("file", "/data/features.parquet")


def _trace(version: str, raw: str, features: str, c: str, accuracy: float,
           featurize_params: dict[str, str] | None = None) -> Trace:
    featurize = TracedRun(run_id=f"f{version}", job_namespace="default", job_name="featurize",
                          parameters=featurize_params or {"window": "7"},
                          inputs=(RAW,), outputs=(FEATURES,))
    train = TracedRun(run_id=f"t{version}", job_namespace="default", job_name="train",
                      parameters={"config.c": c}, inputs=(FEATURES,),
                      outputs=(("mlflow", f"models/m/{version}"),),
                      mlflow_runs=({"params": {"C": c}, "metrics": {"accuracy": accuracy}},))
    return Trace(model=f"models:/m/{version}", namespace="mlflow", dataset=f"models/m/{version}",
                 datasets=(TracedDataset(namespace="file", name=RAW[1], digest=raw),
                           TracedDataset(namespace="file", name=FEATURES[1], digest=features,
                                         produced_by=f"f{version}")),
                 runs=(train, featurize))


def test_the_causes_are_the_file_and_the_parameter() -> None:
    report = diff_traces(_trace("1", "sha256:r1", "sha256:f1", "1.0", 0.9),
                         _trace("2", "sha256:r2", "sha256:f2", "0.5", 0.8))
    assert [(c.kind, c.key, c.sources) for c in report.causes] == [
        ("dataset", RAW[1], ()), ("parameter", "config.c", ("run", "mlflow"))]
    assert [(c.kind, c.key) for c in report.derived] == [
        ("dataset", FEATURES[1]), ("mlflow_metric", "accuracy")]


def test_a_dataset_rebuilt_by_a_changed_job_is_a_cause() -> None:
    report = diff_traces(
        _trace("1", "sha256:r1", "sha256:f1", "1.0", 0.9),
        _trace("2", "sha256:r2", "sha256:f2", "1.0", 0.9, featurize_params={"window": "14"}))
    assert [(c.kind, c.key) for c in report.causes] == [
        ("dataset", FEATURES[1]), ("dataset", RAW[1]), ("parameter", "window")]
    assert report.derived == ()


def test_names_that_only_look_alike_stay_apart() -> None:
    a = _trace("1", "sha256:r", "sha256:f", "1.0", 0.9)
    b = _trace("2", "sha256:r", "sha256:f", "0.5", 0.9)
    # MLflow logged C differently from the run's config.c: two facts, not one parameter
    train = dataclasses.replace(b.runs[0], mlflow_runs=(
        {"params": {"C": "0.25"}, "metrics": {"accuracy": 0.9}},))
    b = dataclasses.replace(b, runs=(train, b.runs[1]))
    assert [(c.kind, c.key) for c in diff_traces(a, b).causes] == [
        ("mlflow_param", "C"), ("parameter", "config.c")]
