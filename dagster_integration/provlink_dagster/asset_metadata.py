"""Dagster materialization metadata -> what OpenLineage says about a dataset.

Reads the standard keys Dagster and its IO managers write: ``dagster/column_schema``,
``dagster/column_lineage``, ``dagster/row_count`` and the ``dagster/data_version`` tag.
Accepts MetadataValue objects or raw values, so events, records and tests all work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from openlineage.client.generated import column_lineage_dataset as cl

from provlink.events.model import DatasetRef, SchemaField
from provlink_dagster.translator import DagsterLineageTranslator

DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
STORAGE_KIND_TAG = "dagster/storage_kind"


def asset_dataset(translator: DagsterLineageTranslator, asset_key: str,
                  metadata: Mapping[str, Any], tags: Mapping[str, str] | None = None, *,
                  namespace: str, storage_kind: str | None = None,
                  upstream: Mapping[str, DatasetRef] | None = None) -> DatasetRef:
    """The dataset one materialization wrote, with schema, row count, version and columns."""
    base = translator.get_asset_dataset(asset_key, metadata, default_namespace=namespace,
                                        storage_kind=storage_kind)
    facets: dict[str, Any] = dict(base.facets)
    lineage = _column_lineage(translator, metadata.get("dagster/column_lineage"), namespace,
                              upstream or {})
    if lineage is not None:
        facets["columnLineage"] = lineage
    return dataclasses.replace(
        base,
        schema=_schema(metadata.get("dagster/column_schema")) or base.schema,
        row_count=_int(metadata.get("dagster/row_count")),
        version=(tags or {}).get(DATA_VERSION_TAG) or base.version,
        facets=facets,
    )


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
    return cl.ColumnLineageDatasetFacet(fields=fields)


def latest_datasets(instance: Any, layer: Any, keys: list[Any],
                    translator: DagsterLineageTranslator, namespace: str) -> dict[str, DatasetRef]:
    """Each asset's dataset from its latest materialization (asset key when none)."""
    records = {r.asset_entry.asset_key: r for r in instance.get_asset_records(keys)}
    found: dict[str, DatasetRef] = {}
    for key in keys:
        name = key.to_user_string()
        record = records.get(key)
        last = record.asset_entry.last_materialization_record if record else None
        mat = last.asset_materialization if last is not None else None
        found[name] = asset_dataset(
            translator, name, mat.metadata if mat else {}, mat.tags if mat else {},
            namespace=namespace, storage_kind=storage_kind(layer, key))
    return found


def storage_kind(layer: Any, key: Any) -> str | None:
    """The asset's ``dagster/storage_kind`` tag, if the asset layer knows the asset."""
    if layer is None or not layer.has(key):
        return None
    return (getattr(layer.get(key), "tags", None) or {}).get(STORAGE_KIND_TAG)
