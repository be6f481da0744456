"""The public capture API: START/COMPLETE/FAIL, inputs/outputs, never failing user code."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

import provlink
from provlink.delivery.failures import counted_apart
from provlink.testing import capture_events
from tests.conformance import validate_event


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))


def test_context_manager_emits_start_and_complete_with_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("a,b\n1,2\n3,4\n")
    with capture_events() as events:
        with provlink.capture("features", parameters={"window": 7}) as cp:
            df = pd.read_csv(raw)
            df.to_parquet(tmp_path / "features.parquet")
            cp.add_input("warehouse.public.customers", namespace="postgres://db:5432")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, done = events
    assert start["run"]["runId"] == done["run"]["runId"]
    inputs = {(d["namespace"], d["name"]) for d in done["inputs"]}
    assert ("file", str(raw.resolve())) in inputs
    assert ("postgres://db:5432", "warehouse.public.customers") in inputs
    out = done["outputs"][0]
    assert out["name"] == str((tmp_path / "features.parquet").resolve())
    assert out["facets"]["version"]["datasetVersion"].startswith("sha256:")
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["a", "b"]
    params = done["run"]["facets"]["executionParameters"]["parameters"]
    assert {"key": "window", "value": "7"} in params
    assert "provlink_environment" in done["run"]["facets"]
    for event in events:
        validate_event(event)


def test_user_exception_emits_fail_and_propagates() -> None:
    with capture_events() as events:
        with pytest.raises(ZeroDivisionError):
            with provlink.capture("boom"):
                _ = 1 / 0
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    error = events[1]["run"]["facets"]["errorMessage"]
    assert error["message"] == "ZeroDivisionError: division by zero"
    assert "1 / 0" in error["stackTrace"]


def test_decorator_and_module_helpers_reach_the_current_point(tmp_path: Path) -> None:
    @provlink.captured(job_name="score")
    def score() -> int:
        provlink.add_parameters({"threshold": 0.5})
        provlink.add_output("predictions", namespace="s3://bucket")
        return 42

    with capture_events() as events:
        assert score() == 42
    done = events[-1]
    assert done["job"]["name"] == "score"
    assert done["outputs"][0]["namespace"] == "s3://bucket"
    params = done["run"]["facets"]["executionParameters"]["parameters"]
    assert {"key": "threshold", "value": "0.5"} in params
    assert provlink.current() is None


def test_helpers_outside_a_capture_point_do_nothing() -> None:
    with capture_events() as events:
        assert provlink.add_input("x", namespace="y") is None
        assert provlink.add_output("x", namespace="y") is None
        provlink.add_parameters(a=1)
        assert provlink.current() is None
        with provlink.capture("later", capture_files=False):
            pass
    assert events, "the capture point after the helpers must still emit"
    done = events[-1]
    assert done["inputs"] == [] and done["outputs"] == []  # nothing leaked into a later point
    params = done["run"]["facets"].get("executionParameters", {}).get("parameters", [])
    assert all(p["key"] != "a" for p in params)


def test_threads_started_by_the_task_see_the_capture_point(tmp_path: Path) -> None:
    seen = []
    with capture_events() as events:
        with provlink.capture("threaded"):
            t = threading.Thread(target=lambda: seen.append(provlink.add_output(
                "t", namespace="kafka://broker")))
            t.start()
            t.join()
    assert seen[0] is not None
    assert events[-1]["outputs"][0]["namespace"] == "kafka://broker"


def test_a_broken_capture_step_never_fails_the_task(tmp_path: Path) -> None:
    class Broken:
        def on_start(self, point):
            raise RuntimeError("extension start failed")

        def on_finish(self, point):
            raise RuntimeError("extension finish failed")

    from provlink.capturing import point as capture_module

    capture_module.register_extension(Broken())
    try:
        with counted_apart() as in_process, capture_events() as events:
            with provlink.capture("robust") as cp:
                result = "task ran"
            failures = (cp.runtime.capture_failures, in_process())
    finally:
        capture_module._extensions.pop()
    assert result == "task ran"
    assert failures == (2, 2)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]


def test_nested_points_and_parent(tmp_path: Path) -> None:
    from provlink.events.model import JobRef, ParentRef

    with capture_events() as events:
        with provlink.capture("pipeline", capture_files=False) as outer:
            parent = ParentRef(job=outer.job, run_id=outer.run_id)
            with provlink.capture("step", parent=parent):
                assert provlink.current().job.name == "step"
            assert provlink.current() is outer
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("pipeline", "START"), ("step", "START"), ("step", "COMPLETE"), ("pipeline", "COMPLETE")]
    step_done = events[2]
    assert step_done["run"]["facets"]["parent"]["run"]["runId"] == outer.run_id
    assert step_done["run"]["facets"]["parent"]["job"]["name"] == "pipeline"
    assert "parent" not in events[3]["run"]["facets"]
    assert outer.job == JobRef(namespace=events[0]["job"]["namespace"], name="pipeline")


def test_disabled_captures_nothing_and_runs_the_code(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVLINK_DISABLED", "true")
    with capture_events() as events:
        with provlink.capture("off") as cp:
            (tmp_path / "out.txt").write_text("x")
            cp.add_output("t", namespace="n")
            ran = True
    assert ran and events == []
    assert provlink.current() is None
