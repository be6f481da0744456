"""Everything that touches Dagster internals, in one place (Dagster 1.13)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster._core.execution.context.system import StepExecutionContext
    from dagster._core.instance import DagsterInstance


def step_context(context: Any) -> StepExecutionContext:
    """The system step context behind an Op/AssetExecutionContext."""
    op_context = getattr(context, "op_execution_context", context)
    return op_context._step_execution_context


def add_event_listener(instance: DagsterInstance, run_id: str, callback: Any) -> None:
    """Called synchronously for every event this process stores for the run."""
    instance.add_event_listener(run_id, callback)


def dagster_version() -> str:
    from dagster.version import __version__

    return __version__
