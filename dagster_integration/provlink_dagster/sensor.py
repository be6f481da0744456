"""Backstop: close the lineage of runs whose coordinator could not (killed run workers,
runs canceled before they started). Runs the coordinator closed carry a tag and are skipped.
"""

from __future__ import annotations

import logging
from typing import Any

from dagster import DagsterRunStatus, DefaultSensorStatus, SensorDefinition, run_status_sensor

from provlink.delivery.runtime import get_runtime
from provlink.events.model import EventType
from provlink_dagster.observe import count_failure
from provlink_dagster.runs import CLOSED_TAG, RunLineage, planned_steps
from provlink_dagster.translator import DagsterLineageTranslator

log = logging.getLogger(__name__)

_OUTCOMES = {DagsterRunStatus.FAILURE: EventType.FAIL, DagsterRunStatus.CANCELED: EventType.ABORT}


def backstop_sensors(translator: DagsterLineageTranslator, *,
                     minimum_interval_seconds: int = 5) -> list[SensorDefinition]:
    """One ``run_status_sensor`` per terminal failure status, running by default."""
    sensors: list[SensorDefinition] = []
    for status, outcome in _OUTCOMES.items():

        def evaluate(context: Any, outcome: EventType = outcome) -> None:
            close_run(context.instance, context.dagster_run, outcome, translator)

        sensors.append(run_status_sensor(
            run_status=status, name=f"provlink_lineage_backstop_{status.value.lower()}",
            minimum_interval_seconds=minimum_interval_seconds,
            default_status=DefaultSensorStatus.RUNNING,
            description="provlink: FAIL/ABORT lineage events for runs that could not send them",
        )(evaluate))
    return sensors


def close_run(instance: Any, run: Any, outcome: EventType,
              translator: DagsterLineageTranslator) -> bool:
    """Replay the run's event log and emit what its coordinator never did; True if it did."""
    try:
        if run.tags.get(CLOSED_TAG) or get_runtime().config.disabled:
            return False
        snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        records = instance.all_logs(run.run_id)
        start = next((r for r in records if r.dagster_event is not None
                      and r.dagster_event.event_type.name == "RUN_START"), None)
        tracker = RunLineage(
            instance=instance, run=run, planned=planned_steps(snapshot), translator=translator,
            namespace=translator.get_namespace(get_runtime().config.namespace),
            coordinator_pid=start.dagster_event.pid if start else -1)
        for record in records:
            event = record.dagster_event
            if event is not None and event.event_type.name not in (
                    "RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"):
                tracker.observe(event)
        tracker.end(outcome, f"Dagster run {run.run_id} ended {run.status.value}")
        return True
    except Exception:  # a sensor error would only hide the next run
        count_failure()
        log.warning("provlink: backstop could not close run %s", run.run_id, exc_info=True)
        return False
