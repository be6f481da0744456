"""Who ran it: the ``provlink_actor`` run facet, the ``ownership`` job facet, the OS user,
and what Airflow's DAG runs and Dagster's run tags say about the launcher."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime
from types import SimpleNamespace

from provlink_airflow.actor import actor as airflow_actor
from provlink_dagster.actor import run_actor

from provlink.capturing.actor import OS_SOURCE, os_user, with_os_user
from provlink.config import DEFAULT_SECRET_KEY_PATTERNS
from provlink.events.build import to_event
from provlink.events.model import Actor, CaptureRecord, EventType, JobRef, MlflowRunLink
from provlink.events.redact import MASK, Redactor
from provlink.governance.trace import who_ran
from tests.conformance import validate_event


def _event(actor: Actor | None, *, mlflow_user: str | None = None) -> dict:
    runs = (MlflowRunLink(run_id="r1", experiment_id="0", tracking_uri="sqlite:///m.db",
                          user=mlflow_user),) if mlflow_user else ()
    return to_event(CaptureRecord(job=JobRef(namespace="ns", name="j"),
                                  run_id="01932b6a-0000-7000-8000-0000000000aa",
                                  event_type=EventType.COMPLETE,
                                  event_time=datetime.now(UTC), actor=actor, mlflow_runs=runs))


def test_actor_facet_and_standard_ownership_facet() -> None:
    event = _event(Actor(user="ana", triggered_by="schedule", trigger="nightly",
                         run_type="scheduled", owner="ml-team, data", os_user="airflow",
                         sources={"user": "airflow:dag_run.triggering_user_name"}))
    facet = event["run"]["facets"]["provlink_actor"]
    assert {k: v for k, v in facet.items() if not k.startswith("_")} == {
        "user": "ana", "triggeredBy": "schedule", "trigger": "nightly", "runType": "scheduled",
        "owner": "ml-team, data", "osUser": "airflow",
        "sources": {"user": "airflow:dag_run.triggering_user_name"}}
    assert facet["_schemaURL"].endswith("ProvlinkActorRunFacet.json#/$defs/ProvlinkActorRunFacet")
    owners = event["job"]["facets"]["ownership"]["owners"]
    assert [o["name"] for o in owners] == ["ml-team", "data"]
    validate_event(event)  # both facets against their schemas (provlink's and OpenLineage's)


def test_no_actor_means_no_facets_and_unknown_fields_are_left_out() -> None:
    event = _event(None)
    assert "provlink_actor" not in event["run"]["facets"]
    assert "ownership" not in event["job"]["facets"]
    only_os = _event(Actor(os_user="bob"))
    facet = only_os["run"]["facets"]["provlink_actor"]
    assert facet["osUser"] == "bob" and "user" not in facet and "owner" not in facet
    assert "ownership" not in only_os["job"]["facets"]


def test_mlflow_user_is_kept_on_the_linked_run() -> None:
    event = _event(Actor(os_user="bob"), mlflow_user="carla")
    assert event["run"]["facets"]["mlflow"]["runs"][0]["user"] == "carla"
    validate_event(event)


def test_os_user_is_the_effective_uid_not_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert os_user() == pwd.getpwuid(os.geteuid()).pw_name
    filled = with_os_user(Actor(user="ana", sources={"user": "x"}))
    assert filled.os_user == os_user() and filled.sources == {"user": "x", "osUser": OS_SOURCE}
    assert with_os_user(Actor(os_user="given")).os_user == "given"


def test_redaction_reaches_the_actor_facet() -> None:
    event = _event(Actor(user="svc-token-s3cr3t-value", os_user="bob"))
    redacted = Redactor(DEFAULT_SECRET_KEY_PATTERNS, ["svc-token-s3cr3t-value"],
                        include_environment=False)(event)
    assert redacted["run"]["facets"]["provlink_actor"]["user"] == MASK


def test_airflow_dag_run_and_task_give_user_type_and_owner() -> None:
    # attribute bags standing in for the task SDK's DagRun and a task: actor() reads
    # attributes only (the real ones are exercised by the dag.test() integration test)
    manual = SimpleNamespace(triggering_user_name="ana", run_type="manual")
    got = airflow_actor(manual, SimpleNamespace(owner="ml-team"))
    assert (got.user, got.triggered_by, got.run_type, got.owner) == (
        "ana", "manual", "manual", "ml-team")
    assert got.sources["owner"] == "airflow:task.owner"
    scheduled = SimpleNamespace(triggering_user_name=None, run_type="scheduled",
                                triggered_by="timetable")
    dag = SimpleNamespace(owner="b, airflow, a")
    got = airflow_actor(scheduled, SimpleNamespace(owner="airflow"), dag)
    assert (got.user, got.triggered_by, got.owner) == (None, "schedule", "a, airflow, b")
    assert got.sources["triggeredBy"] == "airflow:dag_run.triggered_by"
    backfill = airflow_actor(SimpleNamespace(run_type="backfill", backfill_id=7))
    assert (backfill.triggered_by, backfill.trigger) == ("backfill", "backfill 7")


def test_dagster_run_tags_name_the_launcher() -> None:
    scheduled = run_actor({"dagster/schedule_name": "nightly", "dagster/user": "ana"})
    assert (scheduled.user, scheduled.triggered_by, scheduled.trigger) == (
        "ana", "schedule", "nightly")
    assert scheduled.sources == {"user": "dagster:tag:dagster/user",
                                 "triggeredBy": "dagster:tag:dagster/schedule_name",
                                 "trigger": "dagster:tag:dagster/schedule_name"}
    backfill = run_actor({"dagster/backfill": "bf1", "dagster/sensor_name": "s"})
    assert (backfill.triggered_by, backfill.trigger) == ("backfill", "bf1")
    assert run_actor({"user": "bo"}).triggered_by == "manual"
    assert run_actor({}) == Actor()


def test_who_ran_reads_as_one_line() -> None:
    assert who_ran({"user": "ana", "triggeredBy": "schedule", "trigger": "nightly",
                    "owner": "ml", "osUser": "airflow"}) == (
        "user ana; via schedule nightly; owner ml; os user airflow")
    assert who_ran({}) == "not recorded"
