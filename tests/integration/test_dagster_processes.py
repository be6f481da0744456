"""Steps in other processes: the multiprocess executor, and a run launched through a code
server and canceled while a step is running. Child processes spool their events."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import DagsterInstance, DagsterRunStatus, execute_job, reconstructable

from provlink.testing import capture_events
from tests.conformance import validate_event
from tests.integration import dagster_defs
from tests.integration.dagster_support import (
    DEFS_MODULE,
    ROOT,
    spooled_env,
    spooled_events,
    wait_for,
)

__all__ = ["spooled_env"]  # the fixture, imported for pytest


def by_job(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["job"]["name"] == name]


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_multiprocess_executor(spooled_env: Path) -> None:
    """The coordinator (this process) reports the run; each step's own process its step."""
    with DagsterInstance.get() as instance, capture_events() as coordinator:
        result = execute_job(reconstructable(dagster_defs.sums_job), instance=instance)
        assert result.success
        step_pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
    assert len(step_pids) == 2 and result.all_events[0].pid not in step_pids

    run_id = result.run_id
    assert [(e["job"]["name"], e["eventType"]) for e in coordinator] == [
        ("sums", "START"), ("sums", "COMPLETE")]
    assert {e["run"]["runId"] for e in coordinator} == {run_id}

    children = spooled_events(spooled_env)
    for event in coordinator + children:
        validate_event(event)
    done = {}
    for step in ("numbers", "total"):
        events = by_job(children, step)
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"], step
        assert {e["run"]["runId"] for e in events} == {str(uuid.uuid5(uuid.UUID(run_id), step))}
        parent = events[0]["run"]["facets"]["parent"]
        assert (parent["job"]["name"], parent["run"]["runId"]) == ("sums", run_id)
        done[step] = events[-1]
    written = names(done["numbers"]["outputs"])
    assert written and written == names(done["total"]["inputs"])
    assert names(done["total"]["outputs"])
    assert len(children) == 4  # no second run START from a child process


def test_step_process_names_the_upstream_this_run_wrote(spooled_env: Path) -> None:
    """A step in its own process reads its upstream's dataset from this run's event log,
    not from the asset's latest materialization: another run's, reported in between (as a
    concurrent run or another partition would)."""
    with DagsterInstance.get() as instance, capture_events():
        result = execute_job(reconstructable(dagster_defs.interleaved_job), instance=instance)
        assert result.success
    events = spooled_events(spooled_env)
    wrote = names(by_job(events, "source")[-1]["outputs"])
    assert wrote == {("file", str(spooled_env / f"source-{result.run_id}.csv"))}
    for event in by_job(events, "sink"):  # START and COMPLETE
        read = names(event["inputs"])
        assert wrote <= read, read
        assert not any("another-run" in name for _, name in read), read


def test_canceled_run_aborts_what_did_not_finish(spooled_env: Path) -> None:
    """Launched as ``dagster dev`` launches (code server, run worker, step processes) and
    canceled through the run coordinator (as the UI cancels) while ``blocking`` waits."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(module_name=DEFS_MODULE, attribute="defs",
                          working_directory=str(ROOT), location_name="provlink_tests")
    with DagsterInstance.get() as instance, WorkspaceProcessContext(instance, target) as process:
        workspace = process.create_request_context()
        remote = workspace.get_code_location("provlink_tests").get_repository(
            "__repository__").get_full_job("held")
        run = instance.create_run_for_job(
            job_def=dagster_defs.held_job(), remote_job_origin=remote.get_remote_origin(),
            job_code_origin=remote.get_python_origin())
        instance.launch_run(run.run_id, workspace)
        wait_for(lambda: _step_started(instance, run.run_id, "blocking"))
        assert instance.run_coordinator.cancel_run(run.run_id)  # as the UI does
        wait_for(lambda: instance.get_run_by_id(run.run_id).is_finished)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
        # the run worker spools the ABORTs after Dagster has stored RUN_CANCELED (seen: a
        # read at once found neither): wait for them, bounded, rather than read too early
        wait_for(lambda: _aborted(spooled_events(spooled_env), "held", "after_blocking"))

    events = spooled_events(spooled_env)
    for event in events:
        validate_event(event)
    outcome = {name: [e["eventType"] for e in by_job(events, name)]
               for name in ("held", "numbers", "blocking", "after_blocking")}
    assert outcome == {"held": ["START", "ABORT"], "numbers": ["START", "COMPLETE"],
                       "blocking": ["START", "FAIL"], "after_blocking": ["ABORT"]}
    assert "Interrupted" in by_job(events, "blocking")[-1]["run"]["facets"]["errorMessage"][
        "message"]
    aborted = by_job(events, "after_blocking")[0]
    assert aborted["run"]["runId"] == str(uuid.uuid5(uuid.UUID(run.run_id), "after_blocking"))
    assert aborted["run"]["facets"]["parent"]["run"]["runId"] == run.run_id


def _aborted(events: list[dict[str, Any]], *jobs: str) -> bool:
    return all(any(e["eventType"] == "ABORT" for e in by_job(events, job)) for job in jobs)


def _step_started(instance: DagsterInstance, run_id: str, step_key: str) -> bool:
    return any(r.dagster_event is not None and r.dagster_event.event_type_value == "STEP_START"
               and r.step_key == step_key for r in instance.all_logs(run_id))
