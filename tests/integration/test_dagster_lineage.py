"""provlink_dagster with real Dagster: materialize(), execute_in_process(), op jobs, backstop."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import (
    AssetOut,
    DagsterInstance,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    Output,
    RetryPolicy,
    asset,
    build_run_status_sensor_context,
    job,
    materialize,
    multi_asset,
    op,
)
from provlink_dagster import RUN_ID_METADATA, lineage_assets, with_lineage

from provlink.testing import capture_events
from tests.conformance import validate_event
from tests.lineage_graph import edges

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the demo data dir lives under ~
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "provlink"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    return tmp_path


def by_job(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["job"]["name"] == name]


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_example_pipeline_is_connected_end_to_end(env: Path) -> None:
    sys.path.insert(0, str(ROOT / "example_pipelines" / "dagster"))
    import ml_pipeline

    with capture_events() as events:
        result = ml_pipeline.defs.resolve_job_def("ml_pipeline").execute_in_process(
            instance=DagsterInstance.ephemeral(),
            run_config={"ops": {"wine_model": {"config": {"c": 0.5}}}})
    assert result.success
    for event in events:
        validate_event(event)

    run_id = result.run_id
    run_events = by_job(events, "ml_pipeline")
    assert [e["eventType"] for e in run_events] == ["START", "COMPLETE"]
    assert run_events[0]["run"]["runId"] == run_id

    steps = ["raw_wine", "wine_features", "wine_model", "wine_predictions"]
    complete = {}
    for step in steps:
        step_events = by_job(events, step)
        assert [e["eventType"] for e in step_events] == ["START", "COMPLETE"], step
        assert {e["run"]["runId"] for e in step_events} == {
            str(uuid.uuid5(uuid.UUID(run_id), step))}
        assert step_events[0]["run"]["facets"]["parent"]["run"]["runId"] == run_id
        complete[step] = step_events[-1]
        mat = result.asset_materializations_for_node(step)[0]
        assert mat.metadata[RUN_ID_METADATA].value == step_events[-1]["run"]["runId"]

    raw, features = complete["raw_wine"], complete["wine_features"]
    home = env / "home" / "provlink-demo"
    assert ("file", str(home / "raw" / "wine.csv")) in names(raw["outputs"])
    assert names(raw["outputs"]) & names(features["inputs"])
    assert names(features["outputs"]) & names(complete["wine_model"]["inputs"])
    feature_out = next(o for o in features["outputs"] if o["name"].endswith(".parquet"))
    assert feature_out["facets"]["symlinks"]["identifiers"][0]["name"] == "wine_features"
    assert "columnLineage" in feature_out["facets"]
    assert feature_out["outputFacets"]["outputStatistics"]["rowCount"] == 178
    model_versions = {o["name"] for o in complete["wine_model"]["outputs"]
                      if o["name"].startswith("models/")}
    assert model_versions == {"models/wine_classifier/1"}
    assert model_versions <= {i["name"] for i in complete["wine_predictions"]["inputs"]}
    params = {p["key"]: p["value"] for p in
              complete["wine_model"]["run"]["facets"]["executionParameters"]["parameters"]}
    assert params["config.c"] == "0.5"
    assert params["dagster.code_version.wine_model"] == "1"


def test_partitioned_asset_has_nominal_time(env: Path) -> None:
    sys.path.insert(0, str(ROOT / "example_pipelines" / "dagster"))
    import ml_pipeline

    instance = DagsterInstance.ephemeral()
    with capture_events() as events:
        assert materialize(lineage_assets([ml_pipeline.raw_wine, ml_pipeline.wine_features]),
                           instance=instance).success
        assert materialize(lineage_assets([ml_pipeline.daily_feature_stats]),
                           partition_key="2026-03-04", instance=instance).success
    for event in events:
        validate_event(event)
    done = by_job(events, "daily_feature_stats")[-1]
    assert done["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith("2026-03-04T00:00")
    assert done["run"]["facets"]["nominalTime"]["nominalEndTime"].startswith("2026-03-05T00:00")
    features = names(by_job(events, "wine_features")[-1]["outputs"])
    assert features & names(done["inputs"])


DAILY = DailyPartitionsDefinition(start_date="2026-03-01")


@asset(partitions_def=DAILY)
def daily_raw(context) -> MaterializeResult:  # type: ignore[no-untyped-def]
    return MaterializeResult(metadata={"dagster/table_name": f"raw_{context.partition_key}"})


@asset(partitions_def=DAILY, deps=[daily_raw])
def daily_clean() -> None:
    return None


def test_partitioned_upstream_is_the_steps_partition(env: Path) -> None:
    """Each partition has its own table: a step reads its own partition's upstream, not
    the asset's latest materialization (another day's)."""
    instance = DagsterInstance.ephemeral()
    assets = lineage_assets([daily_raw, daily_clean])
    with capture_events() as events:
        for day in ("2026-03-04", "2026-03-05"):
            assert materialize(assets, selection=["daily_raw"], partition_key=day,
                               instance=instance).success
        assert materialize(assets, selection=["daily_clean"], partition_key="2026-03-04",
                           instance=instance).success
    for event in by_job(events, "daily_clean"):  # START and COMPLETE
        assert names(event["inputs"]) == {("table", "raw_2026-03-04")}


@asset
def upstream() -> MaterializeResult:
    return MaterializeResult(metadata={"dagster/table_name": "warehouse.upstream",
                                       "dagster/row_count": 3})


@asset(deps=[upstream])
def broken() -> None:
    raise ValueError("no rows today")


@asset(deps=[broken])
def after_broken() -> None:
    return None


def test_failing_asset_fails_and_downstream_aborts(env: Path) -> None:
    with capture_events() as events:
        result = materialize(lineage_assets([upstream, broken, after_broken]),
                             raise_on_error=False)
    assert not result.success
    for event in events:
        validate_event(event)
    assert [e["eventType"] for e in by_job(events, "upstream")] == ["START", "COMPLETE"]
    assert names(by_job(events, "upstream")[-1]["outputs"]) == {("table", "warehouse.upstream")}
    failed = by_job(events, "broken")
    assert [e["eventType"] for e in failed] == ["START", "FAIL"]
    assert "no rows today" in failed[-1]["run"]["facets"]["errorMessage"]["message"]
    assert names(failed[0]["inputs"]) == {("table", "warehouse.upstream")}
    assert [e["eventType"] for e in by_job(events, "after_broken")] == ["ABORT"]
    assert [e["eventType"] for e in by_job(events, "assets")] == ["START", "FAIL"]


@multi_asset(outs={"left": AssetOut(), "right": AssetOut()})
def split():  # type: ignore[no-untyped-def]
    yield Output([1, 2], output_name="left", metadata={"dagster/row_count": 2})
    yield Output([3], output_name="right", metadata={"dagster/row_count": 1})


def test_multi_asset_emits_every_output(env: Path) -> None:
    """... and every event names who launched the run (its run tags) and the OS user."""
    import os
    import pwd

    tags = {"dagster/schedule_name": "nightly", "dagster/user": "ana@example.com"}
    with capture_events() as events:
        assert materialize(lineage_assets([split]), tags=tags).success
    for event in events:
        validate_event(event)
        actor = event["run"]["facets"]["provlink_actor"]
        assert (actor["user"], actor["triggeredBy"], actor["trigger"], actor["osUser"]) == (
            "ana@example.com", "schedule", "nightly", pwd.getpwuid(os.geteuid()).pw_name)
        assert actor["sources"]["user"] == "dagster:tag:dagster/user"
    assert {e["job"]["name"] for e in events} == {"split", "assets"}  # the step and the run
    done = by_job(events, "split")[-1]
    assert done["eventType"] == "COMPLETE"
    outs = {o["facets"]["symlinks"]["identifiers"][0]["name"]: o for o in done["outputs"]
            if "symlinks" in o.get("facets", {})}
    assert set(outs) == {"left", "right"}
    assert outs["right"]["outputFacets"]["outputStatistics"]["rowCount"] == 1


@op(config_schema={"rows": int, "password": str})
def extract(context):  # type: ignore[no-untyped-def]
    return list(range(context.op_config["rows"]))


@op
def load(rows):  # type: ignore[no-untyped-def]
    return len(rows)


@job
def etl():  # type: ignore[no-untyped-def]
    load(extract())


def test_op_job(env: Path) -> None:
    defs = with_lineage(Definitions(jobs=[etl]))
    with capture_events() as events:
        result = defs.resolve_job_def("etl").execute_in_process(
            run_config={"ops": {"extract": {"config": {"rows": 3, "password": "hunter2"}}}})
    assert result.success
    for event in events:
        validate_event(event)
        assert "hunter2" not in str(event)
    assert [e["eventType"] for e in by_job(events, "etl")] == ["START", "COMPLETE"]
    for step in ("etl.extract", "etl.load"):
        step_events = by_job(events, step)
        assert [e["eventType"] for e in step_events] == ["START", "COMPLETE"]
        assert step_events[0]["job"]["facets"]["jobType"]["jobType"] == "JOB"
    extract = by_job(events, "etl.extract")[0]
    params = {p["key"]: p["value"]
              for p in extract["run"]["facets"]["executionParameters"]["parameters"]}
    assert params["config.rows"] == "3"


def test_backstop_closes_a_run_canceled_before_it_started(env: Path) -> None:
    defs = with_lineage(Definitions(assets=[upstream, broken]))
    sensors = {s.name: s for s in defs.sensors or []}
    instance = DagsterInstance.get()
    job_def = defs.resolve_implicit_global_asset_job_def()
    run = instance.create_run_for_job(job_def=job_def)
    instance.report_run_canceling(run)
    instance.report_run_canceled(run)
    run = instance.get_run_by_id(run.run_id)
    assert run is not None and run.status == DagsterRunStatus.CANCELED
    sensor = sensors["provlink_lineage_backstop_canceled"]
    with capture_events() as events:
        context = build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=_last_run_event(instance, run.run_id),
            dagster_instance=instance, dagster_run=run)
        sensor(context)
    for event in events:
        validate_event(event)
    assert {(e["job"]["name"], e["eventType"]) for e in events} == {
        ("upstream", "ABORT"), ("broken", "ABORT"), ("assets", "ABORT")}


def _last_run_event(instance: DagsterInstance, run_id: str) -> Any:
    records = [r.dagster_event for r in instance.all_logs(run_id) if r.dagster_event]
    return records[-1]


_flaky_calls: list[int] = []


@asset(retry_policy=RetryPolicy(max_retries=1))
def flaky() -> int:
    _flaky_calls.append(1)
    if len(_flaky_calls) == 1:
        raise RuntimeError("transient")
    return 1


def test_step_retry_is_a_run_of_its_own(env: Path) -> None:
    with capture_events() as events:
        result = materialize(lineage_assets([flaky]))
    assert result.success
    for event in events:
        validate_event(event)
    attempts = by_job(events, "flaky")
    assert [e["eventType"] for e in attempts] == ["START", "FAIL", "START", "COMPLETE"]
    first, retry = attempts[0]["run"]["runId"], attempts[2]["run"]["runId"]
    assert attempts[1]["run"]["runId"] == first and attempts[3]["run"]["runId"] == retry
    assert first == str(uuid.uuid5(uuid.UUID(result.run_id), "flaky")) != retry
    assert retry == str(uuid.uuid5(uuid.UUID(result.run_id), "flaky#attempt=1"))


def test_example_pipeline_graph_in_the_backend(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real spool and sender into the embedded store: raw → features → model
    → model version → predictions, as the backend's lineage graph answers it."""
    from provlink.config import ProvlinkConfig
    from provlink.delivery.runtime import Runtime, set_runtime
    from provlink.server.store import open_store

    monkeypatch.delenv("OPENLINEAGE_DISABLED")
    sys.path.insert(0, str(ROOT / "example_pipelines" / "dagster"))
    import ml_pipeline
    import pipeline_steps

    runtime = Runtime(ProvlinkConfig.load())
    old = set_runtime(runtime)
    try:
        result = ml_pipeline.defs.resolve_job_def("ml_pipeline").execute_in_process(
            instance=DagsterInstance.ephemeral())
        assert result.success
        assert runtime.flush(60)
    finally:
        runtime.close()
        set_runtime(old)
    paths = pipeline_steps.Paths(root=pipeline_steps.data_dir())
    tracking = pipeline_steps.tracking_uri(paths.root)
    model = f"dataset:{tracking}:models/wine_classifier/1"
    job = "job:default:{}".format
    expected = {
        (job("raw_wine"), f"dataset:file:{paths.raw}"),
        (f"dataset:file:{paths.raw}", job("wine_features")),
        (job("wine_features"), f"dataset:file:{paths.features}"),
        (f"dataset:file:{paths.features}", job("wine_model")),
        (job("wine_model"), model),
        (model, job("wine_predictions")),
        (job("wine_predictions"), f"dataset:file:{paths.predictions}"),
    }
    store = open_store(f"sqlite:///{env / 'provlink' / 'lineage.db'}")
    try:
        graph = store.lineage(f"dataset:file:{paths.predictions}", 20)
    finally:
        store.close()
    found = edges(graph)
    assert expected <= found, sorted(expected - found)
