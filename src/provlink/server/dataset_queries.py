"""Datasets, their versions and tags, in Marquez's ``Dataset`` / ``DatasetVersion`` shapes."""

from __future__ import annotations

import json
from typing import Any

from provlink.server.job_queries import run
from provlink.server.queries import DATASET_COLUMNS, compact, ensure_tag, page
from provlink.server.tx import Tx


def dataset_shape(
    row: tuple[Any, ...], *, tags: list[str], fields: list[dict[str, Any]]
) -> dict[str, Any]:
    """Marquez's ``Dataset`` shape of a ``DATASET_COLUMNS`` row; the caller supplies the tags
    and fields (one query per dataset here, one per graph for lineage nodes)."""
    (
        _,
        ns,
        name,
        kind,
        source,
        _,
        facets,
        description,
        created,
        updated,
        modified,
        lifecycle,
        version,
    ) = row
    return {
        "id": {"namespace": ns, "name": name},
        "type": kind,
        "name": name,
        "physicalName": name,
        "createdAt": created,
        "updatedAt": updated,
        "namespace": ns,
        "sourceName": source,
        "fields": fields,
        "tags": tags,
        "lastModifiedAt": modified,
        "lastLifecycleState": lifecycle,
        "description": description,
        "currentVersion": version,
        "facets": json.loads(facets),
    }


def dataset_data(tx: Tx, row: tuple[Any, ...]) -> dict[str, Any]:
    """One dataset in Marquez's ``Dataset`` shape, with field tags."""
    ds_id, fields = row[0], row[5]
    tags = [
        t
        for (t,) in tx.rows(
            "SELECT tag FROM dataset_tags WHERE dataset_id = ? ORDER BY tag", (ds_id,)
        )
    ]
    field_tags: dict[str, list[str]] = {}
    for field, tag in tx.rows(
        "SELECT field, tag FROM field_tags WHERE dataset_id = ? ORDER BY tag", (ds_id,)
    ):
        field_tags.setdefault(field, []).append(tag)
    shape = dataset_shape(row, tags=tags,
                          fields=[_field(f, field_tags) for f in json.loads(fields)])
    return compact({**shape, "deleted": False})


def _field(field: dict[str, Any], field_tags: dict[str, list[str]]) -> dict[str, Any]:
    return compact({**field, "tags": field_tags.get(field["name"], [])})


def _dataset_row(tx: Tx, namespace: str, name: str) -> tuple[Any, ...] | None:
    return tx.row(
        f"SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.namespace = ? AND d.name = ?"
        " AND d.deleted = 0",
        (namespace, name),
    )


def datasets(tx: Tx, namespace: str, limit: int, offset: int) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    rows = tx.rows(
        f"SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.namespace = ? AND d.deleted = 0"
        " ORDER BY d.name LIMIT ? OFFSET ?",
        (namespace, limit, offset),
    )
    total = tx.value(
        "SELECT COUNT(*) FROM datasets WHERE namespace = ? AND deleted = 0", (namespace,)
    )
    return {"datasets": [dataset_data(tx, row) for row in rows], "totalCount": total}


def dataset(tx: Tx, namespace: str, name: str) -> dict[str, Any] | None:
    row = _dataset_row(tx, namespace, name)
    return dataset_data(tx, row) if row else None


def _dataset_version(tx: Tx, head: dict[str, Any], row: tuple[Any, ...]) -> dict[str, Any]:
    version, run_id, created, fields, facets, lifecycle = row
    created_by = run(tx, run_id) if run_id else None
    return compact(
        {
            "id": {"namespace": head["namespace"], "name": head["name"], "version": version},
            "type": head["type"],
            "name": head["name"],
            "physicalName": head["physicalName"],
            "createdAt": created,
            "version": version,
            "namespace": head["namespace"],
            "sourceName": head["sourceName"],
            "fields": json.loads(fields),
            "tags": head["tags"],
            "lifecycleState": lifecycle,
            "description": head.get("description"),
            "createdByRun": created_by,
            "facets": json.loads(facets),
        }
    )


def dataset_versions(
    tx: Tx, namespace: str, name: str, limit: int, offset: int
) -> dict[str, Any] | None:
    row = _dataset_row(tx, namespace, name)
    if row is None:
        return None
    head = dataset_data(tx, row)
    limit, offset = page(limit, offset)
    rows = tx.rows(
        "SELECT version, run_id, created_at, fields, facets, lifecycle_state FROM dataset_versions"
        " WHERE dataset_id = ? ORDER BY created_at DESC, version LIMIT ? OFFSET ?",
        (row[0], limit, offset),
    )
    total = tx.value("SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = ?", (row[0],))
    return {"versions": [_dataset_version(tx, head, r) for r in rows], "totalCount": total}


def dataset_version(tx: Tx, namespace: str, name: str, version: str) -> dict[str, Any] | None:
    row = _dataset_row(tx, namespace, name)
    if row is None:
        return None
    found = tx.row(
        "SELECT version, run_id, created_at, fields, facets, lifecycle_state FROM dataset_versions"
        " WHERE dataset_id = ? AND version = ?",
        (row[0], version),
    )
    return _dataset_version(tx, dataset_data(tx, row), found) if found else None


def delete_dataset(tx: Tx, namespace: str, name: str) -> dict[str, Any] | None:
    """Soft delete, as Marquez does: the dataset disappears until an event mentions it again."""
    found = dataset(tx, namespace, name)
    if found is not None:
        tx.run(
            "UPDATE datasets SET deleted = 1 WHERE namespace = ? AND name = ?", (namespace, name)
        )
        found["deleted"] = True
    return found


def tag_dataset(
    tx: Tx, namespace: str, name: str, tag: str, field: str | None, add: bool
) -> dict[str, Any] | None:
    row = _dataset_row(tx, namespace, name)
    if row is None:
        return None
    if field is not None and field not in {f["name"] for f in json.loads(row[5])}:
        return None
    if add:
        ensure_tag(tx, tag)
    if field is None:
        sql = (
            "INSERT INTO dataset_tags (dataset_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING"
            if add
            else "DELETE FROM dataset_tags WHERE dataset_id = ? AND tag = ?"
        )
        tx.run(sql, (row[0], tag))
    else:
        sql = (
            "INSERT INTO field_tags (dataset_id, field, tag) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING"
            if add
            else "DELETE FROM field_tags WHERE dataset_id = ? AND field = ? AND tag = ?"
        )
        tx.run(sql, (row[0], field, tag))
    return dataset_data(tx, row)
