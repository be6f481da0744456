"""The run coordinator's view: an executor that wraps the job's own executor.

Whatever executes the steps (in-process, multiprocess, a step-delegating executor), its
event stream passes through here in the coordinator process, so the run gets START before
the first step and sees every step's outcome, including steps of crashed child processes.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Any

from dagster import Executor, ExecutorDefinition

from provlink_dagster import _compat
from provlink_dagster.observe import RunObserver
from provlink_dagster.runs import TRACKER, RunLineage, track_run
from provlink_dagster.translator import DagsterLineageTranslator

log = logging.getLogger(__name__)

_wrapped: weakref.WeakSet[ExecutorDefinition] = weakref.WeakSet()


def is_lineage_executor(definition: Any) -> bool:
    return definition in _wrapped


def wrap_executor_def(definition: ExecutorDefinition | Executor,
                      translator: DagsterLineageTranslator) -> ExecutorDefinition:
    """The same executor (name, config, requirements), reporting the run's lineage."""
    if isinstance(definition, Executor):
        return wrap_executor_def(ExecutorDefinition.hardcoded_executor(definition), translator)
    if is_lineage_executor(definition):
        return definition
    create = definition.executor_creation_fn
    if create is None:
        return definition

    def creation_fn(init_context: Any) -> Executor:
        return LineageExecutor(create(init_context), translator)

    wrapped = _compat.executor_with_creation_fn(definition, creation_fn)
    _wrapped.add(wrapped)
    return wrapped


def ensure_in_process_tracker(step: Any, observer: RunObserver,
                              translator: DagsterLineageTranslator, namespace: str) -> None:
    """``materialize()`` and ``execute_in_process()`` replace the executor, so the lineage
    executor never runs; there every step shares one process and the first one tracks."""
    if TRACKER in observer.state or is_lineage_executor(step.job_def.executor_def):
        return
    track_run(instance=step.instance, run=step.dagster_run, plan=step.execution_plan,
              layer=step.job_def.asset_layer, translator=translator)


class LineageExecutor(Executor):
    """Delegates everything to the wrapped executor and watches its events."""

    def __init__(self, inner: Executor, translator: DagsterLineageTranslator) -> None:
        self._inner = inner
        self._translator = translator

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        tracker = self._track(plan_context, execution_plan)
        for event in self._inner.execute(plan_context, execution_plan):
            if tracker is not None:
                try:
                    tracker.observe(event)
                except Exception:  # lineage must never fail a run
                    log.warning("provlink: run tracking failed", exc_info=True)
            yield event

    def _track(self, plan_context: Any, execution_plan: Any) -> RunLineage | None:
        try:
            job_def = plan_context.job.get_definition()
            return track_run(instance=plan_context.instance, run=plan_context.dagster_run,
                             plan=execution_plan, layer=job_def.asset_layer,
                             translator=self._translator)
        except Exception:
            log.warning("provlink: could not start run lineage", exc_info=True)
            return None

    @property
    def retries(self) -> Any:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> Any:
        return self._inner.step_dependency_config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
