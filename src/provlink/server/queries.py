"""Read queries and small write actions behind the Marquez resources, in Marquez's shapes.

Optional properties that have no value are left out instead of sent as ``null``:
Marquez's own OpenAPI types them as plain strings, and clients treat absence and ``null``
alike.
"""

from __future__ import annotations

import json
from datetime import datetime
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


def compact(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}


def page(limit: int, offset: int) -> tuple[int, int]:
    return max(0, min(limit, 10_000)), max(0, offset)


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
        "SELECT name, created_at, updated_at, owner_name, description FROM namespaces WHERE name = ?",
        (name,),
    )
    return _namespace(row) if row else None


# datasets -----------------------------------------------------------------------------------
def dataset_data(tx: Tx, row: tuple[Any, ...]) -> dict[str, Any]:
    """One dataset in Marquez's ``Dataset`` shape (also the ``data`` of a lineage node)."""
    (
        ds_id,
        ns,
        name,
        kind,
        source,
        fields,
        facets,
        description,
        created,
        updated,
        modified,
        lifecycle,
        version,
    ) = row
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
    return compact(
        {
            "id": {"namespace": ns, "name": name},
            "type": kind,
            "name": name,
            "physicalName": name,
            "createdAt": created,
            "updatedAt": updated,
            "namespace": ns,
            "sourceName": source,
            "fields": [_field(f, field_tags) for f in json.loads(fields)],
            "tags": tags,
            "lastModifiedAt": modified,
            "lastLifecycleState": lifecycle,
            "description": description,
            "currentVersion": version,
            "facets": json.loads(facets),
            "deleted": False,
        }
    )


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
        _ensure_tag(tx, tag)
    if field is None:
        sql = (
            "INSERT INTO dataset_tags (dataset_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING"
            if add
            else "DELETE FROM dataset_tags WHERE dataset_id = ? AND tag = ?"
        )
        tx.run(sql, (row[0], tag))
    else:
        sql = (
            "INSERT INTO field_tags (dataset_id, field, tag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            if add
            else "DELETE FROM field_tags WHERE dataset_id = ? AND field = ? AND tag = ?"
        )
        tx.run(sql, (row[0], field, tag))
    return dataset_data(tx, row)


# jobs and runs ------------------------------------------------------------------------------
def job_data(tx: Tx, row: tuple[Any, ...], *, latest_runs: int = 1) -> dict[str, Any]:
    """One job in Marquez's ``Job`` shape (also the ``data`` of a lineage node)."""
    (
        job_id,
        ns,
        name,
        kind,
        created,
        updated,
        facets,
        location,
        description,
        parent,
        version,
        latest_run_id,
    ) = row
    inputs: list[dict[str, str]] = []
    outputs: list[dict[str, str]] = []
    if version:
        io = tx.row("SELECT inputs, outputs FROM job_versions WHERE version = ?", (version,))
        if io:
            inputs = [{"namespace": n, "name": d} for n, d in json.loads(io[0])]
            outputs = [{"namespace": n, "name": d} for n, d in json.loads(io[1])]
    runs = (
        [run(tx, latest_run_id)]
        if latest_runs == 1 and latest_run_id
        else [
            _run(tx, r)
            for r in tx.rows(
                f"SELECT {RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.job_id = ?"
                " ORDER BY r.created_at DESC LIMIT ?",
                (job_id, latest_runs),
            )
        ]
        if latest_run_id
        else []
    )
    tags = [
        t for (t,) in tx.rows("SELECT tag FROM job_tags WHERE job_id = ? ORDER BY tag", (job_id,))
    ]
    return compact(
        {
            "id": {"namespace": ns, "name": name},
            "type": kind,
            "name": name,
            "simpleName": name.rsplit(".", 1)[-1] if parent else name,
            "parentJobName": parent,
            "createdAt": created,
            "updatedAt": updated,
            "namespace": ns,
            "inputs": inputs,
            "outputs": outputs,
            "location": location,
            "description": description,
            "latestRun": runs[0] if runs else None,
            "latestRuns": runs,
            "facets": json.loads(facets),
            "currentVersion": version,
            "tags": tags,
        }
    )


def _job_row(tx: Tx, namespace: str, name: str) -> tuple[Any, ...] | None:
    return tx.row(
        f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.namespace = ? AND j.name = ? AND j.deleted = 0",
        (namespace, name),
    )


def jobs(
    tx: Tx, namespace: str | None, states: list[str], limit: int, offset: int
) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    where = ["j.deleted = 0"]
    params: list[Any] = []
    if namespace is not None:
        where.append("j.namespace = ?")
        params.append(namespace)
    if states:
        where.append(f"lr.state IN ({','.join('?' * len(states))})")
        params.extend(states)
    base = "FROM jobs j LEFT JOIN runs lr ON lr.id = j.latest_run_id WHERE " + " AND ".join(where)
    rows = tx.rows(
        f"SELECT {JOB_COLUMNS} {base} ORDER BY j.namespace, j.name LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = tx.value(f"SELECT COUNT(*) {base}", params)
    return {"jobs": [job_data(tx, row) for row in rows], "totalCount": total}


def job(tx: Tx, namespace: str, name: str) -> dict[str, Any] | None:
    row = _job_row(tx, namespace, name)
    return job_data(tx, row, latest_runs=10) if row else None


def delete_job(tx: Tx, namespace: str, name: str) -> dict[str, Any] | None:
    found = job(tx, namespace, name)
    if found is not None:
        tx.run("UPDATE jobs SET deleted = 1 WHERE namespace = ? AND name = ?", (namespace, name))
    return found


def tag_job(tx: Tx, namespace: str, name: str, tag: str, add: bool) -> dict[str, Any] | None:
    row = _job_row(tx, namespace, name)
    if row is None:
        return None
    if add:
        _ensure_tag(tx, tag)
        tx.run(
            "INSERT INTO job_tags (job_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", (row[0], tag)
        )
    else:
        tx.run("DELETE FROM job_tags WHERE job_id = ? AND tag = ?", (row[0], tag))
    return job_data(tx, row, latest_runs=10)


def _run(tx: Tx, row: tuple[Any, ...]) -> dict[str, Any]:
    (run_id, state, created, updated, started, ended, n_start, n_end, facets, version, ns, name) = (
        row
    )
    io: dict[str, list[dict[str, Any]]] = {"INPUT": [], "OUTPUT": []}
    for direction, d_ns, d_name, d_version, d_facets in tx.rows(
        "SELECT r.direction, d.namespace, d.name, r.version, r.facets FROM run_io r"
        " JOIN datasets d ON d.id = r.dataset_id WHERE r.run_id = ? ORDER BY d.namespace, d.name",
        (run_id,),
    ):
        if d_version:
            io[direction].append(
                {
                    "datasetVersionId": {"namespace": d_ns, "name": d_name, "version": d_version},
                    "facets": json.loads(d_facets),
                }
            )
    return compact(
        {
            "id": run_id,
            "createdAt": created,
            "updatedAt": updated,
            "nominalStartTime": n_start,
            "nominalEndTime": n_end,
            "state": state,
            "jobVersion": {"namespace": ns, "name": name, "version": version} if version else None,
            "startedAt": started,
            "endedAt": ended,
            "durationMs": _duration_ms(started, ended),
            "args": {},
            "inputDatasetVersions": io["INPUT"],
            "outputDatasetVersions": io["OUTPUT"],
            "context": {},
            "facets": json.loads(facets),
        }
    )


def _duration_ms(started: str | None, ended: str | None) -> int | None:
    if not started or not ended:
        return None
    delta = datetime.fromisoformat(ended) - datetime.fromisoformat(started)
    return max(0, int(delta.total_seconds() * 1000))


def run(tx: Tx, run_id: str) -> dict[str, Any] | None:
    row = tx.row(
        f"SELECT {RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?",
        (run_id.lower(),),
    )
    return _run(tx, row) if row else None


def job_runs(tx: Tx, namespace: str, name: str, limit: int, offset: int) -> dict[str, Any] | None:
    row = _job_row(tx, namespace, name)
    if row is None:
        return None
    limit, offset = page(limit, offset)
    rows = tx.rows(
        f"SELECT {RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.job_id = ?"
        " ORDER BY r.created_at DESC, r.id LIMIT ? OFFSET ?",
        (row[0], limit, offset),
    )
    total = tx.value("SELECT COUNT(*) FROM runs WHERE job_id = ?", (row[0],))
    return {"runs": [_run(tx, r) for r in rows], "totalCount": total}


def run_facets(tx: Tx, run_id: str, kind: str) -> dict[str, Any] | None:
    column = "job_facets" if kind == "job" else "facets"
    found = tx.value(f"SELECT {column} FROM runs WHERE id = ?", (run_id.lower(),))
    return None if found is None else {"runId": run_id.lower(), "facets": json.loads(found)}


# tags ---------------------------------------------------------------------------------------
def _ensure_tag(tx: Tx, name: str) -> None:
    tx.run(
        "INSERT INTO tags (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, now_iso()),
    )


def tags(tx: Tx) -> dict[str, Any]:
    rows = tx.rows("SELECT name, description FROM tags ORDER BY name")
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
