"""One capture point per executed step, in the step's own process.

START is emitted just before the op's compute function runs, so files the step reads and
writes and MLflow runs it starts are attributed to it. The point stays current while
Dagster's IO manager stores the outputs, and is finished when the step's STEP_SUCCESS or
STEP_FAILURE event is stored — by then every ASSET_MATERIALIZATION of the step, with the
IO manager's ``path``/``dagster/uri``/``dagster/table_name`` metadata, has been seen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from provlink.capturing.digest import DEFAULT_MAX_BYTES
from provlink.capturing.point import CapturePoint
from provlink.delivery.runtime import get_runtime
from provlink.events.model import DatasetRef, JobKind
from provlink.events.parameters import flatten
from provlink.mlflow.context import STATE_ADOPT_ACTIVE_RUN
from provlink_dagster import _compat
from provlink_dagster.actor import run_actor
from provlink_dagster.asset_metadata import (
    asset_dataset,
    latest_datasets,
    run_datasets,
    storage_kind,
)
from provlink_dagster.executor import ensure_in_process_tracker
from provlink_dagster.mlflow_resource import resource_runs, tag_resource_runs
from provlink_dagster.observe import FINISHED_STEPS, RunObserver, count_failure, observer_for
from provlink_dagster.translator import DagsterLineageTranslator, run_parent, step_uuid

log = logging.getLogger(__name__)

MATERIALIZED = "materialized"  # RunObserver.state: asset key -> dataset written in this run
RUN_ID_METADATA = "provlink/openlineage_run_id"
LINK_METADATA = "provlink/lineage"


def start_step(context: Any, translator: DagsterLineageTranslator, *,
               code_dir: Path | None = None) -> StepCapture | None:
    """Start capturing the step behind ``context``; never raises into the step."""
    try:
        return _start(context, translator, code_dir)
    except Exception:  # lineage must never fail a Dagster step
        log.warning("provlink: could not start lineage capture for a Dagster step",
                    exc_info=True)
        count_failure()
        return None


def _start(context: Any, translator: DagsterLineageTranslator,
           code_dir: Path | None) -> StepCapture | None:
    runtime = get_runtime()
    if runtime.config.disabled:
        return None
    step = _compat.step_context(context)
    run = step.dagster_run
    namespace = translator.get_namespace(runtime.config.namespace)
    observer = observer_for(step.instance, run.run_id)

    ensure_in_process_tracker(step, observer, translator, namespace)

    layer = step.job_def.asset_layer
    outputs = sorted(step.get_output_asset_keys(), key=lambda k: k.to_user_string())
    asset_keys = [k.to_user_string() for k in outputs]
    storage_kinds = {k.to_user_string(): storage_kind(layer, k) for k in outputs}
    upstream = upstream_datasets(step, translator, namespace,
                                 observer.state.setdefault(MATERIALIZED, {}),
                                 partition=context.partition_key if context.has_partition_key
                                 else None,
                                 digest_max_bytes=runtime.config.digest_max_bytes)
    key = step.step.key
    nominal_start, nominal_end = _nominal_time(context)
    point = CapturePoint(
        translator.get_step_job_name(run.job_name, key, asset_keys),
        namespace=namespace, run_id=step_uuid(run.run_id, key, step.previous_attempt_count),
        parent=run_parent(namespace, translator.get_run_job_name(run.job_name), run.run_id),
        kind=JobKind(integration="DAGSTER", job_type="ASSET" if asset_keys else "JOB"),
        parameters=_parameters(context, step, layer, outputs),
        orchestrator="dagster", orchestrator_version=_compat.dagster_version(),
        tags=_tags(run, key, asset_keys),
        nominal_start=nominal_start, nominal_end=nominal_end, code_dir=code_dir,
        actor=run_actor(run.tags),
    )
    for dataset in upstream.values():
        point.add_input(dataset)
    # Only a step that requires dagster-mlflow's resource owns the MLflow run active now.
    point.state[STATE_ADOPT_ACTIVE_RUN] = _uses_mlflow_resource(context)
    capture = StepCapture(point, observer, key, translator, namespace, upstream, storage_kinds)
    observer.subscribers.append(capture.on_event)
    point.start()
    _link_back(step, point, runtime.config.lineage_url)
    _tag_mlflow_resource_runs(context, point, asset_keys)
    return capture


class StepCapture:
    """Collects the step's materializations and finishes its point on the step's end."""

    def __init__(self, point: CapturePoint, observer: RunObserver, step_key: str,
                 translator: DagsterLineageTranslator, namespace: str,
                 upstream: Mapping[str, DatasetRef], storage_kinds: Mapping[str, str | None]):
        self.point = point
        self.observer = observer
        self.step_key = step_key
        self.translator = translator
        self.namespace = namespace
        self.upstream = upstream
        self.storage_kinds = storage_kinds

    def on_event(self, entry: Any) -> None:
        event = entry.dagster_event
        if event.step_key != self.step_key:
            return
        kind = event.event_type.name
        if kind == "ASSET_MATERIALIZATION":
            mat = event.step_materialization_data.materialization
            key = mat.asset_key.to_user_string()
            dataset = asset_dataset(
                self.translator, key, mat.metadata, mat.tags, namespace=self.namespace,
                storage_kind=self.storage_kinds.get(key), upstream=self.upstream,
                digest_max_bytes=self.point.runtime.config.digest_max_bytes)
            self.observer.state.setdefault(MATERIALIZED, {})[key] = dataset
            self.point.add_output(dataset)
        elif kind == "STEP_SUCCESS":
            self._finish(None)
        elif kind in ("STEP_FAILURE", "STEP_UP_FOR_RETRY"):
            self._finish(_error_text(event) or kind)

    def _finish(self, error: str | None) -> None:
        self.observer.state.setdefault(FINISHED_STEPS, set()).add(self.step_key)
        if self.on_event in self.observer.subscribers:
            self.observer.subscribers.remove(self.on_event)
        self.point.finish(error)


def upstream_datasets(step: Any, translator: DagsterLineageTranslator, namespace: str,
                      seen: Mapping[str, DatasetRef], *, partition: str | None = None,
                      digest_max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, DatasetRef]:
    """The upstream assets' datasets: those this run materialized (seen by this process, or
    by another step process of the run, in the run's event log), else the materialization
    Dagster reads for provenance (the asset record's last materialization: the one its
    ``input_event_pointer`` names) — of the step's ``partition``, for an upstream
    partitioned as the step's assets are."""
    layer = step.job_def.asset_layer
    outputs = set(step.get_output_asset_keys())
    parents = {p for key in outputs if layer.has(key) for p in layer.get(key).parent_keys}
    parents -= outputs
    found = {p.to_user_string(): seen[p.to_user_string()] for p in parents
             if p.to_user_string() in seen}
    own = [_partitions_def(layer, key) for key in outputs]
    step_def = own[0] if own and all(d == own[0] for d in own) else None
    partitions = {p: partition for p in parents if partition is not None
                  and step_def is not None and _partitions_def(layer, p) == step_def}
    for lookup in (partial(run_datasets, step.instance, step.dagster_run.run_id),
                   partial(latest_datasets, step.instance, partitions=partitions)):
        missing = sorted((p for p in parents if p.to_user_string() not in found), key=str)
        if missing:
            found.update(lookup(layer, missing, translator, namespace,
                                digest_max_bytes=digest_max_bytes))
    return found


def _partitions_def(layer: Any, key: Any) -> Any:
    return layer.get(key).partitions_def if layer.has(key) else None


def _parameters(context: Any, step: Any, layer: Any, outputs: list[Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    config = step.op_config
    if config not in (None, {}):
        params.update(flatten("config", config))
    if context.has_partition_key:
        params["dagster.partition_key"] = context.partition_key
    for key in outputs:
        code_version = layer.get(key).code_version if layer.has(key) else None
        if code_version:
            params[f"dagster.code_version.{key.to_user_string()}"] = code_version
    return params


def _tags(run: Any, step_key: str, asset_keys: list[str]) -> dict[str, str]:
    tags = {"dagster.run_id": run.run_id, "dagster.step_key": step_key}
    if asset_keys:
        tags["dagster.asset_keys"] = ",".join(asset_keys)
    return tags


def _nominal_time(context: Any) -> tuple[datetime | None, datetime | None]:
    if not context.has_partition_key:
        return None, None
    try:
        window = context.partition_time_window
    except Exception:  # noqa: BLE001 - static/dynamic partitions have no time window
        return None, None
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


def lineage_link(lineage_url: str, namespace: str, job: str, run_id: str) -> str:
    """The page of the step's job on ``provlink serve`` (Marquez's ``job:<ns>:<name>`` node
    id, as the page reads it), naming the run so the page shows that run first."""
    node = quote(f"job:{namespace}:{job}", safe="")
    return f"{lineage_url.rstrip('/')}/?nodeId={node}&runId={quote(run_id, safe='')}"


def _link_back(step: Any, point: CapturePoint, lineage_url: str) -> None:
    """Each materialization names its OpenLineage run and links to the lineage page."""
    from dagster import MetadataValue

    url = lineage_link(lineage_url, point.job.namespace, point.job.name, point.run_id)
    metadata = {RUN_ID_METADATA: MetadataValue.text(point.run_id),
                LINK_METADATA: MetadataValue.url(url)}
    for output in step.step.step_outputs:
        if output.properties.asset_key is not None:
            step.add_output_metadata(metadata, output_name=output.name)


def _uses_mlflow_resource(context: Any) -> bool:
    try:
        return bool(resource_runs(context))
    except Exception:  # noqa: BLE001 - lineage never fails the step
        log.warning("provlink: could not read the step's resources", exc_info=True)
        return False


def _tag_mlflow_resource_runs(context: Any, point: CapturePoint, asset_keys: list[str]) -> None:
    try:
        tag_resource_runs(context, point, asset_keys)
    except Exception:  # a tracking server hiccup must not cost the step its lineage
        count_failure()
        log.warning("provlink: could not tag dagster-mlflow's run", exc_info=True)


def _error_text(event: Any) -> str | None:
    data = event.event_specific_data
    error = getattr(data, "error", None)
    return error.to_string() if error is not None else None
