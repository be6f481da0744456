"""Jobs and runs in Marquez's ``Job`` / ``Run`` shapes, with their tags and facets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from provlink.server.queries import JOB_COLUMNS, RUN_COLUMNS, compact, ensure_tag, page
from provlink.server.tx import Tx


def job_shape(
    row: tuple[Any, ...],
    *,
    inputs: list[dict[str, str]],
    outputs: list[dict[str, str]],
    latest_run: dict[str, Any] | None,
    tags: list[str],
) -> dict[str, Any]:
    """Marquez's ``Job`` shape of a ``JOB_COLUMNS`` row; the caller supplies what takes
    queries (one per job here, one per graph for lineage nodes)."""
    _, ns, name, kind, created, updated, facets, location, description, parent, version, _ = row
    return {
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
        "latestRun": latest_run,
        "facets": json.loads(facets),
        "currentVersion": version,
        "tags": tags,
    }


def job_data(tx: Tx, row: tuple[Any, ...], *, latest_runs: int = 1) -> dict[str, Any]:
    """One job in Marquez's ``Job`` shape, with its latest runs."""
    job_id, version, latest_run_id = row[0], row[10], row[11]
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
                f"SELECT {RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id"
                " WHERE r.job_id = ? ORDER BY r.created_at DESC LIMIT ?",
                (job_id, latest_runs),
            )
        ]
        if latest_run_id
        else []
    )
    tags = [
        t for (t,) in tx.rows("SELECT tag FROM job_tags WHERE job_id = ? ORDER BY tag", (job_id,))
    ]
    shape = job_shape(row, inputs=inputs, outputs=outputs, latest_run=runs[0] if runs else None,
                      tags=tags)
    return compact({**shape, "latestRuns": runs})


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
        ensure_tag(tx, tag)
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
