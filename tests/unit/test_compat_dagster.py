"""Every entry of provlink_dagster._compat, against the installed Dagster."""


import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

dagster = pytest.importorskip("dagster")

from dagster import (  # noqa: E402
    AssetExecutionContext,
    DagsterInstance,
    Definitions,
    ExecutorDefinition,
    JobDefinition,
    OpDefinition,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    materialize,
    op,
)
from provlink_dagster import _compat  # noqa: E402


def test_installed_dagster_is_the_checked_range() -> None:
    assert version("dagster") in SpecifierSet(_compat.CHECKED_VERSIONS)
    assert _compat.dagster_version() == version("dagster")


def test_step_context_and_the_attributes_steps_reads() -> None:
    seen: dict[str, Any] = {}

    @asset
    def compat_probe(context: AssetExecutionContext) -> int:
        step = _compat.step_context(context)
        seen["run_id"] = step.dagster_run.run_id
        seen["instance"] = step.instance
        seen["has_layer"] = step.job_def.asset_layer.has(compat_probe.key)
        seen["plan_keys"] = list(step.execution_plan.step_keys_to_execute)
        seen["key"] = step.step.key
        seen["outputs"] = [o.name for o in step.step.step_outputs]
        seen["assets"] = [k.to_user_string() for k in step.get_output_asset_keys()]
        seen["attempts"] = step.previous_attempt_count
        seen["config"] = step.op_config
        step.add_output_metadata({"probe": "yes"}, output_name="result")
        return 1

    instance = DagsterInstance.ephemeral()
    result = materialize([compat_probe], instance=instance)
    assert result.success
    assert seen["run_id"] == result.run_id and seen["instance"] is instance
    assert seen["has_layer"] and seen["plan_keys"] == [seen["key"]] == ["compat_probe"]
    assert seen["outputs"] == ["result"] and seen["assets"] == ["compat_probe"]
    assert seen["attempts"] == 0 and seen["config"] is None
    mat = result.asset_materializations_for_node("compat_probe")[0]
    assert mat.metadata["probe"].value == "yes"


def test_add_event_listener_sees_the_runs_events() -> None:
    events: list[str] = []

    @op
    def hello() -> int:
        return 1

    @job
    def listened() -> None:
        hello()

    instance = DagsterInstance.ephemeral()
    run_id = str(uuid.uuid4())
    _compat.add_event_listener(instance, run_id,
                               lambda entry: events.append(entry.dagster_event.event_type.name)
                               if entry.dagster_event else None)
    listened.execute_in_process(instance=instance, run_id=run_id)
    assert "STEP_SUCCESS" in events and "RUN_SUCCESS" in events


def test_op_compute_and_op_with_compute_keep_the_op() -> None:
    @op(tags={"team": "ml"})
    def doubled(context, x: int = 3) -> int:  # type: ignore[no-untyped-def]  # Dagster reads it
        return 2 * x

    compute, param = _compat.op_compute(doubled)
    assert param is not None and param.name == "context"
    calls: list[str] = []

    def wrapped(context: Any, inputs: Any) -> Any:
        calls.append("wrapped")
        return compute(context, inputs)

    wrapped.__annotations__ = {}  # as definitions.py does: Dagster reads `context`'s type
    copy = _compat.op_with_compute(doubled, wrapped)
    assert isinstance(copy, OpDefinition) and copy is not doubled
    assert (copy.name, set(copy.ins), set(copy.outs), copy.tags) == (
        "doubled", {"x"}, {"result"}, {"team": "ml"})
    from dagster import GraphDefinition

    ran = GraphDefinition(name="compat_graph", node_defs=[copy]).to_job().execute_in_process()
    assert ran.output_for_node("doubled") == 6 and calls == ["wrapped"]


def test_op_source_file_is_the_file_defining_the_function() -> None:
    @op
    def here() -> int:
        return 1

    assert _compat.op_source_file(here) == Path(__file__).resolve()


def test_asset_jobs_jobs_and_executors_are_rebuilt() -> None:
    @asset
    def a() -> int:
        return 1

    unresolved = define_asset_job("asset_job", selection="*")
    assert _compat.is_unresolved_asset_job(unresolved)
    swapped = _compat.with_asset_job_executor(unresolved, in_process_executor)
    assert _compat.is_unresolved_asset_job(swapped) and swapped.executor_def is in_process_executor

    @op
    def one() -> int:
        return 1

    @job
    def plain() -> None:
        one()

    assert not _compat.is_unresolved_asset_job(plain)
    copied = _compat.copy_job(plain, graph_def=plain.graph, executor_def=in_process_executor)
    assert isinstance(copied, JobDefinition) and copied.name == "plain"
    assert copied.executor_def is in_process_executor

    def creation(init_context: Any) -> Any:
        assert in_process_executor.executor_creation_fn is not None
        return in_process_executor.executor_creation_fn(init_context)

    rebuilt = _compat.executor_with_creation_fn(in_process_executor, creation)
    assert isinstance(rebuilt, ExecutorDefinition) and rebuilt is not in_process_executor
    assert rebuilt.executor_creation_fn is creation
    assert (rebuilt.name, rebuilt.description) == (
        in_process_executor.name, in_process_executor.description)
    assert rebuilt.config_schema is in_process_executor.config_schema
    defs = Definitions(assets=[a], jobs=[define_asset_job("run_a", selection="*")],
                       executor=rebuilt)
    assert defs.resolve_job_def("run_a").executor_def is rebuilt


def test_asset_with_node_def_keeps_keys_and_metadata() -> None:
    @asset(metadata={"owner": "ml"})
    def features() -> int:
        return 1

    with _compat.no_dagster_warnings():
        rebuilt = _compat.asset_with_node_def(features, features.node_def)
    assert rebuilt is not features
    assert rebuilt.keys == features.keys
    assert rebuilt.metadata_by_key == features.metadata_by_key
