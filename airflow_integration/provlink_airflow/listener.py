"""Airflow 3 listener: task instance and DAG run state changes -> provlink capture points.

Where each hook fires, and what provlink does there:

- task process (``RuntimeTaskInstance``): ``running`` starts a capture point (START event,
  then file capture and MLflow run tagging for the task's own code); ``success`` /
  ``failed`` / ``skipped`` finish it (COMPLETE, FAIL with ``errorMessage``, COMPLETE tagged
  ``airflow.state=skipped``). The task's parent is the DAG run, with the provider's ids.
- scheduler (ORM ``DagRun``): DAG START / COMPLETE / FAIL.
- API server (ORM ``TaskInstance``, e.g. "mark success" in the UI): no capture point exists
  in that process, so a terminal event is emitted for the same run id without a START.
- ``dag.test()`` runs everything in one process and never calls ``on_dag_run_running``, so
  the first task of a run started by ``dag.test()`` emits the DAG START itself.

Every hook catches everything and logs a warning: lineage never fails or slows a task
beyond building the event and one durable append.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

from provlink import CapturePoint
from provlink.delivery.runtime import Runtime
from provlink.events.model import ErrorInfo, EventType, JobKind, JobRef, ParentRef
from provlink_airflow import config, identity
from provlink_airflow.actor import actor
from provlink_airflow.extraction import (
    BashFiles,
    OperatorLineage,
    bash_files,
    parameters,
    scrub,
    sync_secrets,
)

log = logging.getLogger(__name__)

_DAG_TEST_USER = "dag_test"  # triggering_user_name of runs created by dag.test()


@dataclass(slots=True)
class _Running:
    point: CapturePoint
    bash: BashFiles | None


class ProvlinkListener:
    """One instance per process, registered by :class:`provlink_airflow.plugin.ProvlinkPlugin`."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, str, str, int, int], _Running] = {}
        self._dag_started: set[str] = set()
        self._lineage = OperatorLineage()
        self._lock = threading.Lock()

    # -- task instances --------------------------------------------------------------------
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        _safely("on_task_instance_running", self._task_running, task_instance)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        _safely("on_task_instance_success", self._task_finished, task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any,
                                error: None | str | BaseException) -> None:
        _safely("on_task_instance_failed", self._task_finished, task_instance, "failed",
                error if error is not None else "task failed")

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        _safely("on_task_instance_skipped", self._task_finished, task_instance, "skipped")

    # -- DAG runs (scheduler, API server, dag.test) -----------------------------------------
    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        _safely("on_dag_run_running", self._dag_event, dag_run, EventType.START)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        _safely("on_dag_run_success", self._dag_event, dag_run, EventType.COMPLETE)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        _safely("on_dag_run_failed", self._dag_event, dag_run, EventType.FAIL,
                msg or "DAG run failed")

    # -- implementation --------------------------------------------------------------------
    def _task_running(self, ti: Any) -> None:
        rt = config.runtime()
        if rt.config.disabled:
            return
        context = ti.get_template_context()
        dag_run, task = context["dag_run"], context["task"]
        sync_secrets(rt.redactor)
        if getattr(dag_run, "triggering_user_name", None) == _DAG_TEST_USER:
            self._dag_event(dag_run, EventType.START)
        point = self._task_point(rt, ti, dag_run, task, context.get("dag"))
        point.add_parameters(parameters(
            context, task, rt.redactor, max_chars=rt.config.parameter_max_chars,
            total_chars=rt.config.parameters_max_chars))
        self._add_operator_lineage(point, dag_run, task, ti, "running")
        # A sensor in reschedule mode runs again under the same try (same run id).
        point.emit_start = not (getattr(task, "reschedule", False)
                                and context.get("task_reschedule_count", 0))
        bash = point._guard(bash_files, task)
        point.start()
        with self._lock:
            self._running[_key(ti)] = _Running(point, bash)

    def _task_finished(self, ti: Any, state: str, error: BaseException | str | None = None
                       ) -> None:
        rt = config.runtime()
        if rt.config.disabled:
            return
        sync_secrets(rt.redactor)
        with self._lock:
            running = self._running.pop(_key(ti), None)
        event_type = EventType.FAIL if state == "failed" else EventType.COMPLETE
        if running is None:  # state set from outside the task (API server), or no START seen
            self._external_state_change(rt, ti, state, event_type, error)
            return
        point = running.point
        if hasattr(ti, "get_template_context"):
            context = ti.get_template_context()
            self._add_operator_lineage(point, context["dag_run"], context["task"], ti, state)
        if running.bash is not None:
            accesses = running.bash.accesses()
            for path in accesses.reads:
                point.add_input(path)
            for path in accesses.writes:
                point.add_output(path)
        if state == "skipped":
            point.tags["airflow.state"] = "skipped"
        point.finish(error, event_type=event_type)

    def _external_state_change(self, rt: Runtime, ti: Any, state: str, event_type: EventType,
                               error: BaseException | str | None) -> None:
        if hasattr(ti, "get_template_context"):
            context = ti.get_template_context()
            dag_run, task, dag = context["dag_run"], context["task"], context.get("dag")
        else:  # ORM TaskInstance in the API server or scheduler
            dag_run, task, dag = ti.dag_run, getattr(ti, "task", None), None
        point = self._task_point(rt, ti, dag_run, task, dag)
        point.tags["airflow.state"] = state
        rt.emit(point.record(event_type, _error(error), with_environment=False))

    def _task_point(self, rt: Runtime, ti: Any, dag_run: Any, task: Any, dag: Any
                    ) -> CapturePoint:
        namespace = identity.namespace()
        dag_job = JobRef(namespace=namespace, name=identity.dag_job_name(ti.dag_id))
        dag_run_id = identity.dag_run_id(dag_run)
        parent = ParentRef(job=dag_job, run_id=dag_run_id, root_job=dag_job,
                           root_run_id=dag_run_id)
        tags = {"airflow.dag_id": ti.dag_id, "airflow.task_id": ti.task_id,
                "airflow.run_id": dag_run.run_id, "airflow.try_number": str(ti.try_number)}
        if ti.map_index is not None and ti.map_index >= 0:
            tags["airflow.map_index"] = str(ti.map_index)
        if task is not None:
            tags["airflow.operator"] = getattr(task, "task_type", type(task).__name__)
        fileloc = getattr(dag, "fileloc", None)
        return CapturePoint(
            identity.task_job_name(ti.dag_id, ti.task_id), namespace=namespace,
            run_id=identity.task_run_id(dag_run, ti.task_id, ti.try_number,
                                        ti.map_index if ti.map_index is not None else -1),
            parent=parent, kind=JobKind(integration="AIRFLOW", job_type="TASK"),
            code_dir=Path(fileloc).parent if fileloc else None, orchestrator="airflow",
            orchestrator_version=_airflow_version(), nominal_start=dag_run.data_interval_start,
            nominal_end=dag_run.data_interval_end, tags=tags, actor=actor(dag_run, task, dag),
            runtime=rt)

    def _add_operator_lineage(self, point: CapturePoint, dag_run: Any, task: Any, ti: Any,
                              state: str) -> None:
        found = point._guard(self._lineage.extract, dag_run, task, ti, state)
        if not found:
            return
        inputs, outputs, run_facets, job_facets = found
        for dataset in inputs:
            point.add_input(dataset)
        for dataset in outputs:
            point.add_output(dataset)
        # The provider's "no extractor for this operator" marker is wrong here: provlink
        # captures such tasks' files itself.
        run_facets.pop("unknownSourceAttribute", None)
        point.run_facets.update(run_facets)
        point.job_facets.update(job_facets)

    def _dag_event(self, dag_run: Any, event_type: EventType,
                   error: str | None = None) -> None:
        rt = config.runtime()
        if rt.config.disabled:
            return
        run_id = identity.dag_run_id(dag_run)
        with self._lock:
            if event_type is EventType.START:
                if run_id in self._dag_started:
                    return
                self._dag_started.add(run_id)
            else:
                self._dag_started.discard(run_id)
        sync_secrets(rt.redactor)
        conf = getattr(dag_run, "conf", None) or {}
        params = {f"conf.{k}": scrub(v, k, rt.redactor) for k, v in sorted(conf.items())}
        point = CapturePoint(
            identity.dag_job_name(dag_run.dag_id), namespace=identity.namespace(),
            run_id=run_id, kind=JobKind(integration="AIRFLOW", job_type="DAG"),
            parameters=params, orchestrator="airflow", orchestrator_version=_airflow_version(),
            nominal_start=dag_run.data_interval_start, nominal_end=dag_run.data_interval_end,
            tags={"airflow.dag_id": dag_run.dag_id, "airflow.run_id": dag_run.run_id},
            capture_files=False, actor=actor(dag_run), runtime=rt)
        rt.emit(point.record(event_type, _error(error), with_environment=False))


def _key(ti: Any) -> tuple[str, str, str, int, int]:
    return (ti.dag_id, ti.task_id, ti.run_id, ti.map_index if ti.map_index is not None else -1,
            ti.try_number)


def _error(error: BaseException | str | None) -> ErrorInfo | None:
    if error is None:
        return None
    if isinstance(error, str):
        return ErrorInfo(message=error)
    return ErrorInfo(message=f"{type(error).__name__}: {error}", stack_trace="".join(
        traceback.format_exception(type(error), error, error.__traceback__)))


def _airflow_version() -> str:
    from airflow import __version__

    return __version__


def _safely(hook: str, fn: Callable[..., None], *args: Any) -> None:
    """Listener entry points: lineage must never fail the task or the scheduler."""
    try:
        fn(*args)
    except Exception as exc:
        log.warning("provlink: %s failed; lineage for this event is incomplete", hook,
                    exc_info=True)
        from provlink.delivery.runtime import record_failure

        record_failure(f"airflow {hook}", exc)


listener = ProvlinkListener()
