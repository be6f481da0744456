"""Everything that touches Dagster internals, in one place (checked: Dagster 1.13.27).

Each entry names what it reaches; ``tests/unit/test_compat_dagster.py`` exercises every one
against the installed Dagster in a real ``materialize()``, so an upgrade that moves one
fails CI, not a user's run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

CHECKED_VERSIONS = ">=1.13,<1.14"  # dagster, as pinned in pyproject.toml

if TYPE_CHECKING:
    from dagster import Executor, ExecutorDefinition, OpDefinition
    from dagster._core.execution.context.system import StepExecutionContext
    from dagster._core.instance import DagsterInstance


def step_context(context: Any) -> StepExecutionContext:
    """``OpExecutionContext._step_execution_context``: the system step context behind an
    Op/AssetExecutionContext. steps.py reads, on it: ``dagster_run``, ``instance``,
    ``job_def.asset_layer``, ``execution_plan``, ``step.key``, ``step.step_outputs``,
    ``get_output_asset_keys()``, ``previous_attempt_count``, ``op_config``,
    ``add_output_metadata()`` (all internal API)."""
    op_context = getattr(context, "op_execution_context", context)
    return cast("StepExecutionContext", op_context._step_execution_context)


def add_event_listener(instance: DagsterInstance, run_id: str, callback: Any) -> None:
    """``DagsterInstance.add_event_listener`` (undocumented): called synchronously for every
    event this process stores for the run."""
    instance.add_event_listener(run_id, callback)


def dagster_version() -> str:
    """``dagster.version.__version__``."""
    from dagster.version import __version__

    return __version__


def op_compute(op: Any) -> tuple[Callable[[Any, Any], Any], inspect.Parameter | None]:
    """The op's compute as Dagster calls it ``(context, inputs)``, and the user's ``context``
    parameter (whose annotation picks the context class), if it declared one:
    ``DecoratedOpFunction`` and ``create_op_compute_wrapper`` from ``dagster._core``."""
    from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction
    from dagster._core.execution.plan.compute_generator import create_op_compute_wrapper

    original = op.compute_fn
    if isinstance(original, DecoratedOpFunction):
        param = original.get_context_arg() if original.has_context_arg() else None
        return create_op_compute_wrapper(op), param
    return original, None


def op_source_file(op: Any) -> Path | None:
    """The file defining the op's (or asset's) function, for its code location:
    ``DecoratedOpFunction.decorated_fn`` from ``dagster._core``."""
    from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction

    fn = op.compute_fn
    fn = fn.decorated_fn if isinstance(fn, DecoratedOpFunction) else fn
    try:
        source = inspect.getsourcefile(inspect.unwrap(fn))
    except TypeError:  # a builtin or a callable object without a source file
        return None
    return Path(source).resolve() if source else None


def op_with_compute(op: Any, compute: Callable[[Any, Any], Any]) -> OpDefinition:
    """The same op (ins, outs, config, resources, retry policy, code version) running
    ``compute``: ``OpDefinition.dagster_internal_init`` and ``op._version``."""
    from dagster import OpDefinition

    return OpDefinition.dagster_internal_init(
        compute_fn=compute, name=op.name, ins=op.ins, outs=op.outs,
        description=op.description, config_schema=op.config_schema,
        required_resource_keys=op.required_resource_keys, tags=op.tags, version=None,
        retry_policy=op.retry_policy, code_version=op._version, pool=op.pool)


def executor_with_creation_fn(definition: ExecutorDefinition,
                              creation_fn: Callable[[Any], Executor]) -> ExecutorDefinition:
    """The same executor (name, config, requirements, description) built by ``creation_fn``.

    ``config_schema`` is the definition's resolved schema (a configured executor keeps its
    config mapping); the constructor passes it through, though its annotation says not."""
    from dagster import ExecutorDefinition

    return ExecutorDefinition(
        name=definition.name,
        config_schema=definition.config_schema,  # type: ignore[arg-type]  # see docstring
        requirements=definition.get_requirements, executor_creation_fn=creation_fn,
        description=definition.description)


def is_unresolved_asset_job(job: Any) -> bool:
    """``dagster._core...UnresolvedAssetJobDefinition``: what ``define_asset_job`` returns."""
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

    return isinstance(job, UnresolvedAssetJobDefinition)


def with_asset_job_executor(job: Any, executor_def: Any) -> Any:
    """A ``define_asset_job`` job with another executor (a ``@record``: copied with
    ``dagster_shared.record.copy``; 1.13's ``_replace`` refuses records)."""
    from dagster_shared.record import copy

    return copy(job, executor_def=executor_def)


def copy_job(job: Any, *, graph_def: Any, executor_def: Any) -> Any:
    """A JobDefinition with another graph and executor; everything else kept
    (``JobDefinition._copy``)."""
    return job._copy(graph_def=graph_def, executor_def=executor_def)


def asset_with_node_def(asset: Any, node_def: Any) -> Any:
    """The same AssetsDefinition computed by another op/graph: its constructor fed back its
    undocumented ``get_attributes_dict()`` (beta parameters warn, hence the silence)."""
    with no_dagster_warnings():
        return asset.__class__(**{**asset.get_attributes_dict(), "node_def": node_def})


@contextmanager
def no_dagster_warnings() -> Iterator[None]:
    """``dagster._utils.warnings.disable_dagster_warnings``."""
    from dagster._utils.warnings import disable_dagster_warnings

    with disable_dagster_warnings():
        yield
