"""The Dagster run as an OpenLineage run, and the closing of steps that never reported.

A :class:`RunLineage` lives in the run coordinator (the executor wrapper) or, for
``materialize()``/``execute_in_process()`` whose executor Dagster replaces, in the process
that runs every step. It emits the run's START, and on RUN_SUCCESS/RUN_FAILURE/RUN_CANCELED
the terminal event — after FAIL or ABORT for each planned step no step process finished
(a crashed step, a canceled run, a step skipped behind a failure). The backstop sensor
replays the event log into the same class when the coordinator itself died.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from provlink.capturing.point import CapturePoint
from provlink.delivery.runtime import get_runtime
from provlink.events.model import ErrorInfo, EventType, JobKind
from provlink_dagster import _compat
from provlink_dagster.actor import run_actor
from provlink_dagster.asset_metadata import latest_datasets
from provlink_dagster.observe import (
    FINISHED_STEPS,
    RunObserver,
    count_failure,
    forget,
    observer_for,
)
from provlink_dagster.translator import (
    DagsterLineageTranslator,
    run_parent,
    run_uuid,
    step_uuid,
)

log = logging.getLogger(__name__)

CLOSED_TAG = "provlink/lineage_closed"
TRACKER = "run_tracker"  # RunObserver.state key
_RUN_END = {"RUN_SUCCESS": EventType.COMPLETE, "RUN_FAILURE": EventType.FAIL,
            "RUN_CANCELED": EventType.ABORT}


class RunLineage:
    """OpenLineage events of one Dagster run and its planned-but-unreported steps."""

    def __init__(self, *, instance: Any, run: Any, planned: Mapping[str, tuple[Any, ...]],
                 translator: DagsterLineageTranslator, namespace: str, layer: Any = None,
                 coordinator_pid: int | None = None) -> None:
        self.instance = instance
        self.run = run
        self.planned = dict(planned)  # step key -> asset keys it materializes
        self.translator = translator
        self.namespace = namespace
        self.layer = layer
        self.pid = coordinator_pid if coordinator_pid is not None else os.getpid()
        self.job_name = translator.get_run_job_name(run.job_name)
        self.started: set[str] = set()
        self.reported: set[str] = set()  # a step process finished these itself
        self.retries: dict[str, int] = {}  # step key -> attempts that went up for retry
        self.ended = False
        self.observer: RunObserver | None = None

    # -- events ------------------------------------------------------------------------
    def start(self) -> None:
        point = self._point(self.job_name, run_uuid(self.run.run_id), None, "JOB")
        point.add_parameters(_run_parameters(self.run))
        point.runtime.emit(point.record(EventType.START, with_environment=False))

    def on_entry(self, entry: Any) -> None:
        """Instance listener form."""
        self.observe(entry.dagster_event)

    def observe(self, event: Any) -> None:
        kind = event.event_type.name
        key = event.step_key
        if kind == "STEP_START":
            self.started.add(key)
        elif kind == "STEP_UP_FOR_RETRY":
            self.retries[key] = self.retries.get(key, 0) + 1
        elif kind == "STEP_SUCCESS" or (kind == "STEP_FAILURE" and event.pid != self.pid):
            self.reported.add(key)
        elif kind in _RUN_END:
            error = getattr(event.event_specific_data, "error", None)
            self.end(_RUN_END[kind], error.to_string() if error is not None else None)

    def end(self, outcome: EventType, message: str | None = None) -> None:
        """FAIL/ABORT every planned step nobody finished, then the run itself."""
        if self.ended:
            return
        self.ended = True
        finished = set(self.reported)
        if self.observer is not None:
            finished |= self.observer.state.get(FINISHED_STEPS, set())
        unfinished = [k for k in self.planned if k not in finished]
        datasets = self._planned_datasets(unfinished)
        for key in unfinished:
            crashed = key in self.started and outcome is not EventType.ABORT
            assets = [a.to_user_string() for a in self.planned[key]]
            point = self._point(self.translator.get_step_job_name(self.run.job_name, key, assets),
                                step_uuid(self.run.run_id, key, self.retries.get(key, 0)),
                                self._parent(),
                                "ASSET" if assets else "JOB")
            for name in assets:
                point.add_output(datasets[name])
            if crashed:  # the run's error says why its step process went away
                reason = f"step {key} did not finish" + (f": {message}" if message else "")
            else:
                reason = f"step {key} did not run: the Dagster run ended {outcome.value}"
            _emit(point, EventType.FAIL if crashed else EventType.ABORT, reason)
        run_point = self._point(self.job_name, run_uuid(self.run.run_id), None, "JOB")
        _emit(run_point, outcome, message if outcome is not EventType.COMPLETE else None)
        try:
            self.instance.add_run_tags(self.run.run_id, {CLOSED_TAG: "true"})
        except Exception:  # the tag only spares the backstop some work
            log.debug("provlink: could not tag run %s", self.run.run_id, exc_info=True)
        forget(self.instance, self.run.run_id)

    # -- helpers -----------------------------------------------------------------------
    def _parent(self) -> Any:
        return run_parent(self.namespace, self.job_name, self.run.run_id)

    def _point(self, job_name: str, run_id: str, parent: Any, job_type: str) -> CapturePoint:
        return CapturePoint(job_name, namespace=self.namespace, run_id=run_id, parent=parent,
                            kind=JobKind(integration="DAGSTER", job_type=job_type),
                            orchestrator="dagster", orchestrator_version=_compat.dagster_version(),
                            tags={"dagster.run_id": self.run.run_id}, capture_files=False,
                            emit_start=False, actor=run_actor(self.run.tags))

    def _planned_datasets(self, steps: Iterable[str]) -> dict[str, Any]:
        keys = sorted({a for s in steps for a in self.planned[s]}, key=str)
        if not keys:
            return {}
        return latest_datasets(self.instance, self.layer, keys, self.translator, self.namespace)


def _emit(point: CapturePoint, outcome: EventType, message: str | None) -> None:
    try:
        error = ErrorInfo(message=message) if message else None
        point.runtime.emit(point.record(outcome, error, with_environment=False))
    except Exception:
        count_failure()
        log.warning("provlink: could not emit %s for %s", outcome.value, point.job.name,
                    exc_info=True)


def _run_parameters(run: Any) -> dict[str, Any]:
    params: dict[str, Any] = {f"run_config.{k}": v for k, v in (run.run_config or {}).items()}
    if partition := run.tags.get("dagster/partition"):
        params["dagster.partition_key"] = partition
    return params


def planned_steps(plan: Any) -> dict[str, tuple[Any, ...]]:
    """Step key -> selected asset keys, from an ExecutionPlan or its stored snapshot."""
    to_run = set(plan.step_keys_to_execute)
    planned: dict[str, tuple[Any, ...]] = {}
    for step in plan.steps:
        if step.key in to_run:
            outputs = getattr(step, "step_outputs", None) or getattr(step, "outputs", None) or ()
            planned[step.key] = tuple(o.properties.asset_key for o in outputs
                                      if o.properties is not None and o.properties.asset_key)
    return planned


def track_run(*, instance: Any, run: Any, plan: Any, layer: Any,
              translator: DagsterLineageTranslator) -> RunLineage | None:
    """Start tracking ``run`` in this process (once); emits the run's START."""
    runtime = get_runtime()
    if runtime.config.disabled:
        return None
    observer = observer_for(instance, run.run_id)
    existing = observer.state.get(TRACKER)
    if isinstance(existing, RunLineage):
        return existing
    tracker = RunLineage(instance=instance, run=run, planned=planned_steps(plan),
                         translator=translator,
                         namespace=translator.get_namespace(runtime.config.namespace),
                         layer=layer)
    tracker.observer = observer
    observer.state[TRACKER] = tracker
    observer.subscribers.append(tracker.on_entry)
    tracker.start()
    return tracker
