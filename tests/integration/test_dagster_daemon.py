"""The backstop sensor under a real ``dagster-daemon``: a run canceled while still queued
never had a coordinator, so only the sensor can close its lineage."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

dagster = pytest.importorskip("dagster")

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from provlink_dagster.runs import CLOSED_TAG

from tests.conformance import validate_event
from tests.integration import dagster_defs
from tests.integration.dagster_support import (
    DEFS_MODULE,
    ROOT,
    spooled_env,
    spooled_events,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
__all__ = ["spooled_env"]  # the fixture, imported for pytest

LOCATION = "provlink_tests"
SENSOR = "provlink_lineage_backstop_canceled"


def test_daemon_backstop_closes_a_canceled_queued_run(spooled_env: Path) -> None:
    dagster_home = spooled_env / "dagster_home"
    # An empty run queue: the run stays queued until it is canceled.
    (dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 0\n")
    workspace = spooled_env / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_module:\n      module_name: {DEFS_MODULE}\n"
        f"      attribute: defs\n      working_directory: {ROOT}\n"
        f"      location_name: {LOCATION}\n")
    log = (spooled_env / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        with DagsterInstance.get() as instance, WorkspaceProcessContext(
                instance, WorkspaceFileTarget(paths=[str(workspace)])) as process:
            context = process.create_request_context()
            remote = context.get_code_location(LOCATION).get_repository(
                "__repository__").get_full_job("held")
            run = instance.create_run_for_job(
                job_def=dagster_defs.held_job(), remote_job_origin=remote.get_remote_origin(),
                job_code_origin=remote.get_python_origin())
            instance.submit_run(run.run_id, context)
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.QUEUED
            # A run status sensor's first tick only sets its cursor (past every event so
            # far): cancel once it is stored.
            wait_for(lambda: _cursor_set(instance, SENSOR), timeout=90)
            assert instance.run_coordinator.cancel_run(run.run_id)
            wait_for(lambda: CLOSED_TAG in instance.get_run_by_id(run.run_id).tags, timeout=90)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(30)
        log.close()

    events = spooled_events(spooled_env)
    for event in events:
        validate_event(event)
    assert sorted((e["job"]["name"], e["eventType"]) for e in events) == [
        ("after_blocking", "ABORT"), ("blocking", "ABORT"), ("held", "ABORT"),
        ("numbers", "ABORT")]
    steps = [e for e in events if e["job"]["name"] != "held"]
    for event in steps:
        assert event["run"]["runId"] == str(uuid.uuid5(uuid.UUID(run.run_id),
                                                        event["job"]["name"]))
        assert event["run"]["facets"]["parent"]["run"]["runId"] == run.run_id


def _cursor_set(instance: DagsterInstance, sensor_name: str) -> bool:
    return any(state.instigator_data is not None and state.instigator_data.cursor
               for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
               if state.instigator_name == sensor_name)
