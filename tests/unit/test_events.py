"""CaptureRecord -> OpenLineage event: standard facets, custom facets, conformance."""

from __future__ import annotations

from datetime import UTC, datetime

from provlink.events.build import cap_parameters, to_event
from provlink.events.model import (
    Actor,
    CaptureRecord,
    CodeVersion,
    DatasetRef,
    EnvironmentInfo,
    ErrorInfo,
    EventType,
    JobKind,
    JobRef,
    MlflowRunLink,
    ParentRef,
    SchemaField,
    Symlink,
)
from tests.conformance import require_spec, validate_event

T0 = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)


def full_record(event_type: EventType = EventType.COMPLETE) -> CaptureRecord:
    return CaptureRecord(
        job=JobRef(namespace="airflow", name="ml.train"),
        run_id="01932b6a-0000-7000-8000-000000000001",
        event_type=event_type,
        event_time=T0,
        parent=ParentRef(job=JobRef(namespace="airflow", name="ml"),
                         run_id="01932b6a-0000-7000-8000-000000000000",
                         root_job=JobRef(namespace="airflow", name="ml"),
                         root_run_id="01932b6a-0000-7000-8000-000000000000"),
        kind=JobKind(integration="AIRFLOW", job_type="TASK"),
        inputs=(DatasetRef(namespace="file", name="/data/features.parquet", version="sha256:ab",
                           schema=(SchemaField(name="x", type="double"),), row_count=10,
                           size_bytes=100),),
        outputs=(DatasetRef(namespace="sqlite:///mlflow.db", name="models/wine/3",
                            symlinks=(Symlink(namespace="dagster", name="model", type="ASSET"),),
                            data_source="sqlite:///mlflow.db", row_count=1),),
        parameters={"alpha": 0.5, "layers": [1, 2], "name": "x" * 50},
        mlflow_runs=(MlflowRunLink(run_id="abc", experiment_id="1", tracking_uri="sqlite:///m.db",
                                   params={"alpha": "0.5"}, metrics={"rmse": 0.1},
                                   user="ana"),),
        code=CodeVersion(repo_url="https://example.com/r.git", commit="deadbeef", branch="main",
                         path="/src/dags", dirty=True),
        environment=EnvironmentInfo(python_version="3.11.7", platform="Linux",
                                    orchestrator="airflow", orchestrator_version="3.3.2",
                                    packages_digest="sha256:00",
                                    packages={"mlflow": "3.17.2"}, host="h"),
        error=(ErrorInfo(message="boom", stack_trace="Traceback...")
               if event_type is EventType.FAIL else None),
        nominal_start=T0,
        nominal_end=T0,
        tags={"team": "ml"},
        actor=Actor(user="ana", triggered_by="manual", run_type="manual", owner="ml, data",
                    os_user="airflow", sources={"user": "airflow:dag_run.triggering_user_name"}),
    )


def test_complete_event_carries_standard_and_custom_facets() -> None:
    event = to_event(full_record())
    run = event["run"]["facets"]
    assert event["eventType"] == "COMPLETE"
    assert event["eventTime"] == "2026-11-22T01:02:03+00:00"
    assert (run["parent"]["job"]["namespace"], run["parent"]["job"]["name"]) == ("airflow", "ml")
    assert run["parent"]["root"]["run"]["runId"].endswith("0000")
    params = {p["key"]: p["value"] for p in run["executionParameters"]["parameters"]}
    assert params == {"alpha": "0.5", "layers": "[1, 2]", "name": "x" * 50}
    assert run["processing_engine"] == {**run["processing_engine"], "name": "airflow",
                                        "version": "3.3.2"}
    assert run["provlink_code"]["dirty"] is True
    assert run["mlflow"]["runs"][0]["metrics"] == {"rmse": 0.1}
    assert run["nominalTime"]["nominalStartTime"] == "2026-11-22T01:02:03+00:00"
    job = event["job"]["facets"]
    assert job["sourceCodeLocation"]["version"] == "deadbeef"
    assert job["jobType"]["integration"] == "AIRFLOW"
    out = event["outputs"][0]
    assert out["facets"]["symlinks"]["identifiers"][0]["type"] == "ASSET"
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 1
    assert event["inputs"][0]["facets"]["version"]["datasetVersion"] == "sha256:ab"
    fields = event["inputs"][0]["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [("x", "double")]


def test_every_facet_names_provlink_as_producer() -> None:
    event = to_event(full_record())
    producers = {f["_producer"] for f in event["run"]["facets"].values()}
    producers |= {f["_producer"] for f in event["job"]["facets"].values()}
    assert producers == {event["producer"]}
    assert event["producer"].startswith("https://github.com/provlink/provlink")


def test_fail_event_has_error_message() -> None:
    event = to_event(full_record(EventType.FAIL))
    assert event["eventType"] == "FAIL"
    assert event["run"]["facets"]["errorMessage"]["message"] == "boom"
    assert event["run"]["facets"]["errorMessage"]["programmingLanguage"] == "python"


def test_long_parameters_are_built_whole_and_capped_afterwards() -> None:
    record = full_record()
    record = CaptureRecord(**{**{f: getattr(record, f) for f in record.__dataclass_fields__},
                              "parameters": {"blob": "y" * 10_000}})
    event = to_event(record)
    assert event["run"]["facets"]["executionParameters"]["parameters"][0]["value"] == "y" * 10_000
    value = cap_parameters(event, 100)["run"]["facets"]["executionParameters"][
        "parameters"][0]["value"]
    assert value.startswith("y" * 100) and "truncated 9900 chars" in value


def test_events_validate_against_the_openlineage_spec() -> None:
    require_spec()
    for event_type in EventType:
        validate_event(to_event(full_record(event_type)))


def test_minimal_start_event_validates() -> None:
    record = CaptureRecord(job=JobRef(namespace="default", name="j"),
                           run_id="01932b6a-0000-7000-8000-00000000000a",
                           event_type=EventType.START, event_time=datetime.now(UTC))
    event = to_event(record)
    validate_event(event)
    assert event["inputs"] == [] and event["outputs"] == []


def test_conformance_check_catches_a_broken_event() -> None:
    import pytest

    require_spec()
    event = to_event(full_record())
    event["run"]["runId"] = "not-a-uuid"
    event["run"]["facets"]["parent"]["_schemaURL"] = "https://example.com/Unknown.json#/$defs/X"
    with pytest.raises(AssertionError, match="no schema found") as info:
        validate_event(event)
    assert "runId" in str(info.value)


def test_producer_stays_ours_when_another_integration_changes_the_global() -> None:
    from openlineage.client.facet_v2 import PRODUCER, set_producer

    set_producer("https://example.com/some-other-integration")
    try:
        event = to_event(full_record())
    finally:
        set_producer(PRODUCER)
    assert {f["_producer"] for f in event["run"]["facets"].values()} == {event["producer"]}
