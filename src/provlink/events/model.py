"""The neutral record of one capture point, independent of any orchestrator.

Adapters (Airflow, Dagster, plain Python) fill a :class:`CaptureRecord`; the core turns it
into an OpenLineage event. Everything here is a frozen, slotted, keyword-only value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventType(enum.StrEnum):
    """OpenLineage run event types."""

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    OTHER = "OTHER"

    @property
    def terminal(self) -> bool:
        return self in (EventType.COMPLETE, EventType.FAIL, EventType.ABORT)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentRef:
    """The run this capture point belongs to (a DAG run, a Dagster run)."""

    job: JobRef
    run_id: str
    root_job: JobRef | None = None
    root_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaField:
    name: str
    type: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Symlink:
    """Another name of the same physical dataset (e.g. a Dagster asset key for a file)."""

    namespace: str
    name: str
    type: str = "TABLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetRef:
    """A dataset read or written: OpenLineage naming plus what we learned about it."""

    namespace: str
    name: str
    version: str | None = None
    schema: tuple[SchemaField, ...] = ()
    row_count: int | None = None
    size_bytes: int | None = None
    symlinks: tuple[Symlink, ...] = ()
    data_source: str | None = None
    facets: Mapping[str, Any] = field(default_factory=dict)
    input_facets: Mapping[str, Any] = field(default_factory=dict)
    output_facets: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class MlflowRunLink:
    """An MLflow run started inside the capture point."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_name: str | None = None
    status: str | None = None
    parent_run_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    model_ids: tuple[str, ...] = ()
    registered_models: tuple[str, ...] = ()
    dataset_inputs: tuple[Mapping[str, Any], ...] = ()  # what mlflow.log_input recorded
    user: str | None = None  # the run's ``mlflow.user``: who MLflow says started it


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeVersion:
    """Where the pipeline code came from: a git checkout, possibly with local edits."""

    vcs: str = "git"
    repo_url: str | None = None
    commit: str | None = None
    branch: str | None = None
    path: str | None = None
    dirty: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentInfo:
    """The runtime that executed the capture point."""

    python_version: str
    platform: str
    orchestrator: str
    orchestrator_version: str | None = None
    packages_digest: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None
    container_image: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who ran a capture point, as the orchestrator knows it.

    ``user`` is the person or account that launched the run, ``triggered_by`` how it was
    launched in provlink's words (manual, schedule, sensor, backfill, asset, operator, api),
    ``trigger`` the schedule/sensor/backfill that did it, ``run_type`` the orchestrator's own
    word, ``owner`` the job's declared owner, ``os_user`` the operating-system account of the
    process that emitted the event. ``sources`` names where each field was read (field name
    -> e.g. ``airflow:dag_run.triggering_user_name``), so a reader can weigh it.
    """

    user: str | None = None
    triggered_by: str | None = None
    trigger: str | None = None
    run_type: str | None = None
    owner: str | None = None
    os_user: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    message: str
    stack_trace: str | None = None
    language: str = "python"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobKind:
    """OpenLineage ``jobType`` facet values."""

    integration: str = "PYTHON"
    job_type: str = "JOB"
    processing_type: str = "BATCH"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureRecord:
    """One event's worth of facts about one capture point (a task, an asset step, a run)."""

    job: JobRef
    run_id: str
    event_type: EventType
    event_time: datetime
    parent: ParentRef | None = None
    kind: JobKind = field(default_factory=JobKind)
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    mlflow_runs: tuple[MlflowRunLink, ...] = ()
    code: CodeVersion | None = None
    environment: EnvironmentInfo | None = None
    error: ErrorInfo | None = None
    nominal_start: datetime | None = None
    nominal_end: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    actor: Actor | None = None
    run_facets: Mapping[str, Any] = field(default_factory=dict)
    job_facets: Mapping[str, Any] = field(default_factory=dict)
