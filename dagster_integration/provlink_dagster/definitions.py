"""Rewriting Definitions: every op's compute function starts a capture point, every
executor reports its run, and the backstop sensors are added. Asset code is untouched."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import (
    AssetsDefinition,
    Definitions,
    GraphDefinition,
    JobDefinition,
    OpDefinition,
    multi_or_in_process_executor,
)

from provlink_dagster import _compat
from provlink_dagster.executor import wrap_executor_def
from provlink_dagster.sensor import backstop_sensors
from provlink_dagster.steps import start_step
from provlink_dagster.translator import DagsterLineageTranslator

_WRAPPED = "__provlink_wrapped__"


class Rewriter:
    """Wraps definitions once each, so a job shared by a schedule stays one object."""

    def __init__(self, translator: DagsterLineageTranslator) -> None:
        self.translator = translator
        self._done: dict[int, Any] = {}

    def asset(self, asset: Any) -> Any:
        if not isinstance(asset, AssetsDefinition) or not asset.is_executable or not asset.keys:
            return asset  # specs, source assets, checks-only definitions
        return self._memo(asset, lambda: _rebuilt_asset(asset, self.node(asset.node_def)))

    def node(self, node: Any) -> Any:
        if isinstance(node, OpDefinition):
            return self._memo(node, lambda: _wrap_op(node, self.translator))
        if isinstance(node, GraphDefinition):
            return self._memo(node, lambda: GraphDefinition(
                name=node.name, description=node.description,
                node_defs=[self.node(n) for n in node.node_defs],
                dependencies=node.dependencies, input_mappings=node.input_mappings,
                output_mappings=node.output_mappings, config=node.config_mapping,
                tags=node.tags, input_assets=node.input_assets))
        return node

    def job(self, job: Any) -> Any:
        if _compat.is_unresolved_asset_job(job):
            if job.executor_def is None:
                return job  # takes the wrapped Definitions executor
            return self._memo(job, lambda: _compat.with_asset_job_executor(
                job, self.executor(job.executor_def)))
        if isinstance(job, JobDefinition):
            return self._memo(job, lambda: _compat.copy_job(
                job, graph_def=self.node(job.graph),
                executor_def=self.executor(job.executor_def)))
        return job

    def executor(self, executor: Any) -> Any:
        return self._memo(executor, lambda: wrap_executor_def(executor, self.translator))

    def targeting(self, definitions: Iterable[Any] | None) -> list[Any]:
        """Schedules and sensors pointing at jobs get the wrapped jobs."""
        out = []
        for item in definitions or ():
            jobs = [t for t in _jobs_of(item)]
            if len(jobs) == 1 and hasattr(item, "with_updated_job"):
                item = item.with_updated_job(self.job(jobs[0]))
            elif len(jobs) > 1 and hasattr(item, "with_updated_jobs"):
                item = item.with_updated_jobs([self.job(j) for j in jobs])
            out.append(item)
        return out

    def _memo(self, original: Any, build: Any) -> Any:
        if id(original) not in self._done:
            self._done[id(original)] = (original, build())
        return self._done[id(original)][1]


def _rebuilt_asset(asset: AssetsDefinition, node_def: Any) -> AssetsDefinition:
    rebuilt: AssetsDefinition = _compat.asset_with_node_def(asset, node_def)
    return rebuilt


def _jobs_of(item: Any) -> list[Any]:
    try:
        if getattr(item, "has_jobs", False) or getattr(item, "has_job", False):
            return list(item.jobs) if hasattr(item, "jobs") else [item.job]
    except Exception:  # noqa: BLE001 - sensors without targets raise on .jobs
        return []
    return []


def _wrap_op(op: OpDefinition, translator: DagsterLineageTranslator) -> OpDefinition:
    if getattr(op.compute_fn, _WRAPPED, False):
        return op
    inner, context_param = _compat.op_compute(op)
    source = _compat.op_source_file(op)
    code_dir = source.parent if source is not None else None

    def compute(context: Any, inputs: Mapping[str, Any]) -> Any:
        start_step(context, translator, code_dir=code_dir)
        return inner(context, inputs)

    # Dagster picks the context class from this annotation: keep the user's, drop ours.
    annotation = context_param.annotation if context_param is not None else inspect.Parameter.empty
    compute.__annotations__ = {} if annotation is inspect.Parameter.empty else {
        "context": annotation}
    setattr(compute, _WRAPPED, True)
    return _compat.op_with_compute(op, compute)


def rewrite(defs: Definitions, translator: DagsterLineageTranslator, *, backstop: bool,
            backstop_interval_seconds: int) -> Definitions:
    rw = Rewriter(translator)
    sensors = rw.targeting(defs.sensors)
    if backstop:
        sensors += backstop_sensors(translator, minimum_interval_seconds=backstop_interval_seconds)
    return Definitions(
        assets=[rw.asset(a) for a in defs.assets or ()],
        schedules=rw.targeting(defs.schedules),
        sensors=sensors,
        jobs=[rw.job(j) for j in defs.jobs or ()],
        resources=defs.resources,
        executor=rw.executor(defs.executor or multi_or_in_process_executor),
        loggers=defs.loggers,
        asset_checks=defs.asset_checks,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )


def wrap_assets(assets: Iterable[Any], translator: DagsterLineageTranslator) -> list[Any]:
    rw = Rewriter(translator)
    return [rw.asset(a) for a in assets]
