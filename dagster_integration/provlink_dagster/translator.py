"""How Dagster things are named in OpenLineage: jobs, run ids and asset datasets.

Subclass :class:`DagsterLineageTranslator` and override a ``get_*`` method to change one
naming rule; pass the instance to :func:`provlink_dagster.with_lineage`.

>>> class MyTranslator(DagsterLineageTranslator):
...     def get_step_job_name(self, job_name, step_key, asset_keys):
...         return f"analytics.{step_key}"
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provlink.events.model import DatasetRef, JobRef, ParentRef, Symlink

FILE_NAMESPACE = "file"
IMPLICIT_ASSET_JOBS = ("__ASSET_JOB", "__ephemeral_asset_job__")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageSettings:
    """Naming settings; ``namespace=None`` takes provlink's configured namespace."""

    namespace: str | None = None
    asset_namespace: str | None = None


class DagsterLineageTranslator:
    """Overridable naming rules (dagster-dbt's translator pattern)."""

    def __init__(self, settings: LineageSettings | None = None) -> None:
        self.settings = settings or LineageSettings()

    def get_namespace(self, default: str) -> str:
        """OpenLineage namespace of Dagster runs and steps."""
        return self.settings.namespace or default

    def get_asset_namespace(self, default: str) -> str:
        """Namespace of datasets named by asset key (and of the asset-key symlinks)."""
        return self.settings.asset_namespace or f"dagster://{self.get_namespace(default)}"

    def get_run_job_name(self, job_name: str) -> str:
        """The Dagster job; ``materialize()``'s implicit job reads as ``assets``."""
        return "assets" if job_name in IMPLICIT_ASSET_JOBS else job_name

    def get_step_job_name(self, job_name: str, step_key: str, asset_keys: Sequence[str]) -> str:
        """Asset steps are named by their op, independent of the Dagster job that ran them,
        so one asset keeps one lineage job however it is launched; op steps by job and op."""
        if asset_keys:
            return step_key
        return f"{self.get_run_job_name(job_name)}.{step_key}"

    def get_asset_dataset(self, asset_key: str, metadata: Mapping[str, Any], *,
                          default_namespace: str, storage_kind: str | None = None) -> DatasetRef:
        """The physical dataset behind an asset (its path, URI or table) with the asset key as
        a symlink; the asset key itself when Dagster recorded no location."""
        asset_ns = self.get_asset_namespace(default_namespace)
        link = Symlink(namespace=asset_ns, name=asset_key, type="TABLE")
        physical = physical_location(metadata, storage_kind)
        if physical is None:
            return DatasetRef(namespace=asset_ns, name=asset_key)
        namespace, name = physical
        return DatasetRef(namespace=namespace, name=name, symlinks=(link,))


def physical_location(metadata: Mapping[str, Any],
                      storage_kind: str | None) -> tuple[str, str] | None:
    """(namespace, name) from ``path``, ``dagster/uri`` or ``dagster/table_name`` metadata."""
    path = _text(metadata.get("path"))
    if path:
        return FILE_NAMESPACE, str(Path(path).expanduser().resolve())
    uri = _text(metadata.get("dagster/uri"))
    if uri:
        parts = urlsplit(uri)
        if parts.scheme in ("", "file"):
            return FILE_NAMESPACE, str(Path(parts.path or uri).expanduser().resolve())
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
    table = _text(metadata.get("dagster/table_name"))
    if table:
        return storage_kind or "table", table
    return None


def _text(value: Any) -> str | None:
    """Metadata arrives as MetadataValue objects or raw values."""
    if value is None:
        return None
    inner = getattr(value, "value", value)
    inner = getattr(inner, "path", inner)  # PathMetadataValue.value is already the str
    return str(inner) if inner not in (None, "") else None


def run_uuid(dagster_run_id: str) -> str:
    """Dagster run ids are UUIDs already; anything else gets a stable UUIDv5."""
    try:
        return str(uuid.UUID(dagster_run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dagster-run:{dagster_run_id}"))


def step_uuid(dagster_run_id: str, step_key: str, attempt: int = 0) -> str:
    """Deterministic: the step, the sensor and the run coordinator compute the same id.
    A retry (``attempt`` > 0, Dagster's previous attempt count) is a run of its own."""
    name = step_key if attempt == 0 else f"{step_key}#attempt={attempt}"
    return str(uuid.uuid5(uuid.UUID(run_uuid(dagster_run_id)), name))


def run_parent(namespace: str, run_job_name: str, dagster_run_id: str) -> ParentRef:
    job = JobRef(namespace=namespace, name=run_job_name)
    run_id = run_uuid(dagster_run_id)
    return ParentRef(job=job, run_id=run_id, root_job=job, root_run_id=run_id)
