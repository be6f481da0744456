"""Shared helpers and the small Marquez resources: namespaces, tags, search, raw events.

Datasets live in :mod:`dataset_queries`, jobs and runs in :mod:`job_queries`; all answer in
Marquez's shapes.

Optional properties that have no value are left out instead of sent as ``null``:
Marquez's own OpenAPI types them as plain strings, and clients treat absence and ``null``
alike.
"""

from __future__ import annotations

import json
from typing import Any

from provlink.server.ingest import now_iso
from provlink.server.nodeid import dataset_node, job_node
from provlink.server.tx import Tx

RUN_COLUMNS = (
    "r.id, r.state, r.created_at, r.updated_at, r.started_at, r.ended_at, r.nominal_start,"
    " r.nominal_end, r.facets, r.job_version, j.namespace, j.name"
)
JOB_COLUMNS = (
    "j.id, j.namespace, j.name, j.type, j.created_at, j.updated_at, j.facets, j.location,"
    " j.description, j.parent_job_name, j.current_version, j.latest_run_id"
)
DATASET_COLUMNS = (
    "d.id, d.namespace, d.name, d.type, d.source_name, d.fields, d.facets, d.description,"
    " d.created_at, d.updated_at, d.last_modified_at, d.lifecycle_state, d.current_version"
)

MAX_LIMIT = 10_000  # rows any list endpoint returns at most, whatever ``limit`` asks


def compact(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}


def page(limit: int, offset: int) -> tuple[int, int]:
    return max(0, min(limit, MAX_LIMIT)), max(0, offset)


# namespaces ---------------------------------------------------------------------------------
def _namespace(row: tuple[Any, ...]) -> dict[str, Any]:
    name, created, updated, owner, description = row
    return compact(
        {
            "name": name,
            "createdAt": created,
            "updatedAt": updated,
            "ownerName": owner,
            "description": description,
            "isHidden": False,
        }
    )


def namespaces(tx: Tx, limit: int, offset: int) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    rows = tx.rows(
        "SELECT name, created_at, updated_at, owner_name, description FROM namespaces"
        " ORDER BY name LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return {"namespaces": [_namespace(row) for row in rows]}


def namespace(tx: Tx, name: str) -> dict[str, Any] | None:
    row = tx.row(
        "SELECT name, created_at, updated_at, owner_name, description FROM namespaces"
        " WHERE name = ?",
        (name,),
    )
    return _namespace(row) if row else None


# tags ---------------------------------------------------------------------------------------
def ensure_tag(tx: Tx, name: str) -> None:
    tx.run(
        "INSERT INTO tags (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, now_iso()),
    )


def tags(tx: Tx, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    rows = tx.rows(
        "SELECT name, description FROM tags ORDER BY name LIMIT ? OFFSET ?", (limit, offset)
    )
    return {"tags": [compact({"name": n, "description": d}) for n, d in rows]}


def put_tag(tx: Tx, name: str, description: str | None) -> dict[str, Any]:
    tx.run(
        "INSERT INTO tags (name, description, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        (name, description, now_iso()),
    )
    return compact({"name": name, "description": description})


# search and events --------------------------------------------------------------------------
def search(
    tx: Tx,
    *,
    q: str,
    kind: str | None,
    sort: str,
    limit: int,
    namespace: str | None,
    before: str | None,
    after: str | None,
) -> dict[str, Any]:
    """Case-insensitive substring search over job and dataset names, like Marquez's."""
    limit, _ = page(limit, 0)
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    parts = []
    params: list[Any] = []
    for table, label in (("datasets", "DATASET"), ("jobs", "JOB")):
        if kind not in (None, label):
            continue
        where = ["deleted = 0", "LOWER(name) LIKE ? ESCAPE '\\'"]
        params.append(pattern)
        if namespace:
            where.append("namespace = ?")
            params.append(namespace)
        if after:
            where.append("updated_at >= ?")
            params.append(after)
        if before:
            where.append("updated_at < ?")
            params.append(before)
        parts.append(
            f"SELECT '{label}' AS kind, name, updated_at, namespace FROM {table}"
            f" WHERE {' AND '.join(where)}"
        )
    order = "updated_at DESC, name" if sort == "UPDATE_AT" else "name, namespace"
    union = " UNION ALL ".join(parts)
    rows = tx.rows(f"SELECT * FROM ({union}) found ORDER BY {order} LIMIT ?", (*params, limit))
    total = tx.value(f"SELECT COUNT(*) FROM ({union}) found", params)
    return {
        "totalCount": total,
        "results": [
            {
                "type": label,
                "name": name,
                "updatedAt": updated,
                "namespace": ns,
                "nodeId": dataset_node(ns, name) if label == "DATASET" else job_node(ns, name),
            }
            for label, name, updated, ns in rows
        ],
    }


def list_events(
    tx: Tx, *, before: str | None, after: str | None, ascending: bool, limit: int, offset: int
) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    where, params = [], []
    if after:
        where.append("event_time >= ?")
        params.append(after)
    if before:
        where.append("event_time <= ?")
        params.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    direction = "ASC" if ascending else "DESC"
    rows = tx.rows(
        f"SELECT payload FROM events {clause} ORDER BY event_time {direction}, id {direction}"
        " LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = tx.value(f"SELECT COUNT(*) FROM events {clause}", params)
    return {"events": [json.loads(payload) for (payload,) in rows], "totalCount": total}


def counts(tx: Tx) -> dict[str, int]:
    """Row counts per table: what tests and ``provlink serve`` report as the store's size."""
    tables = (
        "events",
        "namespaces",
        "jobs",
        "runs",
        "datasets",
        "dataset_versions",
        "job_versions",
        "edges",
    )
    return {table: int(tx.value(f"SELECT COUNT(*) FROM {table}")) for table in tables}
