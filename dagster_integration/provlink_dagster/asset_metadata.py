"""Dagster materialization metadata -> what OpenLineage says about a dataset.

Reads the standard keys Dagster and its IO managers write: ``dagster/column_schema``,
``dagster/column_lineage``, ``dagster/row_count`` and the ``dagster/data_version`` and
``dagster/code_version`` tags. Accepts MetadataValue objects or raw values, so events,
records and tests all work.

A local file's ``version`` is its content digest, computed by the core exactly as for
Airflow or plain Python, so the same bytes have one identity in every orchestrator.
Dagster's data and code versions are kept, in a ``dagster_version`` facet of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openlineage.client.generated import column_lineage_dataset as cl

from provlink.capturing.datasets import FILE_NAMESPACE, file_dataset
from provlink.capturing.digest import DEFAULT_MAX_BYTES
from provlink.events import facets as custom
from provlink.events.model import DatasetRef, SchemaField
from provlink_dagster.translator import DagsterLineageTranslator

DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
STORAGE_KIND_TAG = "dagster/storage_kind"


def asset_dataset(translator: DagsterLineageTranslator, asset_key: str,
                  metadata: Mapping[str, Any], tags: Mapping[str, str] | None = None, *,
                  namespace: str, storage_kind: str | None = None,
                  upstream: Mapping[str, DatasetRef] | None = None,
                  digest_max_bytes: int = DEFAULT_MAX_BYTES) -> DatasetRef:
    """The dataset one materialization wrote, with schema, row count, version and columns."""
    base = translator.get_asset_dataset(asset_key, metadata, default_namespace=namespace,
                                        storage_kind=storage_kind)
    facets: dict[str, Any] = dict(base.facets)
    lineage = _column_lineage(translator, metadata.get("dagster/column_lineage"), namespace,
                              upstream or {})
    if lineage is not None:
        facets["columnLineage"] = lineage
    versions = _dagster_versions(asset_key, tags or {})
    if versions is not None:
        facets[custom.DAGSTER_VERSION] = versions
    schema = _schema(metadata.get("dagster/column_schema")) or base.schema
    version, size = base.version, base.size_bytes
    if base.namespace == FILE_NAMESPACE:
        content = file_dataset(Path(base.name), max_bytes=digest_max_bytes,
                               with_schema=not schema)
        version, size = content.version, content.size_bytes
        schema = schema or content.schema
    return dataclasses.replace(
        base,
        schema=schema,
        row_count=_int(metadata.get("dagster/row_count")),
        version=version,
        size_bytes=size,
        facets=facets,
    )


def _dagster_versions(asset_key: str, tags: Mapping[str, str]
                      ) -> custom.DagsterVersionDatasetFacet | None:
    data, code = tags.get(DATA_VERSION_TAG), tags.get(CODE_VERSION_TAG)
    if data is None and code is None:
        return None
    return custom.ours(custom.DagsterVersionDatasetFacet(assetKey=asset_key, dataVersion=data,
                                                         codeVersion=code))


def _schema(value: Any) -> tuple[SchemaField, ...]:
    schema = getattr(value, "schema", value)  # TableSchemaMetadataValue -> TableSchema
    columns = getattr(schema, "columns", None) or ()
    return tuple(SchemaField(name=c.name, type=c.type, description=c.description)
                 for c in columns)


def _int(value: Any) -> int | None:
    raw = getattr(value, "value", value)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _column_lineage(translator: DagsterLineageTranslator, value: Any, namespace: str,
                    upstream: Mapping[str, DatasetRef]) -> cl.ColumnLineageDatasetFacet | None:
    lineage = getattr(value, "column_lineage", value)  # metadata value -> TableColumnLineage
    deps_by_column = getattr(lineage, "deps_by_column", None)
    if not deps_by_column:
        return None
    fields: dict[str, cl.Fields] = {}
    for column, deps in deps_by_column.items():
        inputs = []
        for dep in deps:
            key = dep.asset_key.to_user_string()
            source = upstream.get(key) or translator.get_asset_dataset(
                key, {}, default_namespace=namespace)
            inputs.append(cl.InputField(namespace=source.namespace, name=source.name,
                                        field=dep.column_name))
        fields[column] = cl.Fields(inputFields=inputs)
    return custom.ours(cl.ColumnLineageDatasetFacet(fields=fields))


def run_datasets(instance: Any, run_id: str, layer: Any, keys: list[Any],
                 translator: DagsterLineageTranslator, namespace: str, *,
                 digest_max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, DatasetRef]:
    """The datasets this run itself last materialized for ``keys``, from the run's event
    log: under the multiprocess executor an upstream step ran in another process, and the
    asset's latest materialization may be another run's (a concurrent run, another
    partition)."""
    from dagster import DagsterEventType

    wanted = set(keys)
    last: dict[Any, Any] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.asset_materialization
        if mat is not None and mat.asset_key in wanted:
            last[mat.asset_key] = mat  # the log is in order: the last one wins
    return {key.to_user_string(): asset_dataset(
        translator, key.to_user_string(), mat.metadata, mat.tags, namespace=namespace,
        storage_kind=storage_kind(layer, key), digest_max_bytes=digest_max_bytes)
        for key, mat in last.items()}


def latest_datasets(instance: Any, layer: Any, keys: list[Any],
                    translator: DagsterLineageTranslator, namespace: str, *,
                    partitions: Mapping[Any, str] | None = None,
                    digest_max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, DatasetRef]:
    """Each asset's dataset from its latest materialization, of the partition ``partitions``
    names for it (each partition has its own path or table); the asset key when none."""
    records = {r.asset_entry.asset_key: r for r in instance.get_asset_records(keys)}
    found: dict[str, DatasetRef] = {}
    for key in keys:
        name = key.to_user_string()
        partition = (partitions or {}).get(key)
        if partition is not None:
            last = _partition_materialization(instance, key, partition)
        else:
            record = records.get(key)
            last = record.asset_entry.last_materialization_record if record else None
        mat = last.asset_materialization if last is not None else None
        found[name] = asset_dataset(
            translator, name, mat.metadata if mat else {}, mat.tags if mat else {},
            namespace=namespace, storage_kind=storage_kind(layer, key),
            digest_max_bytes=digest_max_bytes)
    return found


def _partition_materialization(instance: Any, key: Any, partition: str) -> Any:
    from dagster import AssetRecordsFilter

    result = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1)
    return result.records[0] if result.records else None


def storage_kind(layer: Any, key: Any) -> str | None:
    """The asset's ``dagster/storage_kind`` tag, if the asset layer knows the asset."""
    if layer is None or not layer.has(key):
        return None
    return (getattr(layer.get(key), "tags", None) or {}).get(STORAGE_KIND_TAG)
