"""Table- and column-level lineage graphs, in Marquez's ``{"graph": [...]}`` shape.

Marquez walks jobs that share a dataset (either direction) up to ``depth`` job hops; so do
we, but over the indexed ``edges`` table one BFS level at a time, and then fetch the node
data in bulk. That keeps a depth-20 query at a few dozen indexed lookups however large the
store is (Marquez's recursive CTE over array overlaps is what makes it slow:
MarquezProject/marquez#3058).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from provlink.server.dataset_queries import dataset_shape
from provlink.server.job_queries import job_shape
from provlink.server.nodeid import dataset_node, field_node, job_node, parse_node_id
from provlink.server.queries import DATASET_COLUMNS, JOB_COLUMNS, compact
from provlink.server.tx import Tx


class NodeNotFound(LookupError):
    """The node id is well formed but names nothing in the store."""


def lineage_graph(tx: Tx, node_id: str, depth: int) -> dict[str, Any]:
    node = parse_node_id(node_id)
    if node.kind == "datasetField":
        raise ValueError(
            "table lineage needs a job: or dataset: nodeId; use /column-lineage for fields"
        )
    table = "jobs" if node.kind == "job" else "datasets"
    start = tx.value(
        f"SELECT id FROM {table} WHERE namespace = ? AND name = ? AND deleted = 0",
        (node.namespace, node.name),
    )
    if start is None:
        raise NodeNotFound(node_id)
    deleted_jobs = {i for (i,) in tx.rows("SELECT id FROM jobs WHERE deleted = 1")}
    deleted_datasets = {i for (i,) in tx.rows("SELECT id FROM datasets WHERE deleted = 1")}
    if node.kind == "job":
        frontier = {start}
    else:
        frontier = {job for job, _, _ in _edges(tx, "dataset_id", [start])} - deleted_jobs
        if not frontier:
            return {"graph": [_dataset_nodes(tx, [start], [])[0]]}
    jobs_seen: set[int] = set(frontier)
    datasets_seen: set[int] = set()
    edges: list[tuple[int, int, str]] = []
    for level in range(max(depth, 0) + 1):
        found = [e for e in _edges(tx, "job_id", frontier) if e[1] not in deleted_datasets]
        edges.extend(found)
        fresh = {dataset for _, dataset, _ in found} - datasets_seen
        datasets_seen |= fresh
        if level == depth or not fresh:
            break
        frontier = {job for job, _, _ in _edges(tx, "dataset_id", fresh)} - jobs_seen - deleted_jobs
        jobs_seen |= frontier
        if not frontier:
            break
    return {"graph": _job_nodes(tx, jobs_seen, edges) + _dataset_nodes(tx, datasets_seen, edges)}


def _edges(tx: Tx, column: str, ids: Iterable[int]) -> list[tuple[int, int, str]]:
    """Edges touching ``ids`` (by ``job_id`` or ``dataset_id``): one index lookup, no joins."""
    return tx.select_in(
        f"SELECT job_id, dataset_id, direction FROM edges WHERE {column} IN (?)", ids
    )


def _job_nodes(tx: Tx, ids: set[int], edges: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    jobs = {
        row[0]: row
        for row in tx.select_in(f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id IN (?)", ids)
    }
    names = _dataset_names(tx, {dataset for _, dataset, _ in edges})
    versions = {
        version: (json.loads(inputs), json.loads(outputs))
        for version, inputs, outputs in tx.select_in(
            "SELECT version, inputs, outputs FROM job_versions WHERE version IN (?)",
            {row[10] for row in jobs.values() if row[10]},
        )
    }
    runs = {
        row[0]: row
        for row in tx.select_in(
            "SELECT id, state, created_at, updated_at, started_at, ended_at, job_version FROM runs"
            " WHERE id IN (?)",
            {row[11] for row in jobs.values() if row[11]},
        )
    }
    tags: dict[int, list[str]] = defaultdict(list)
    for job_id, tag in tx.select_in("SELECT job_id, tag FROM job_tags WHERE job_id IN (?)", ids):
        tags[job_id].append(tag)
    in_edges: dict[int, list[dict[str, str]]] = defaultdict(list)
    out_edges: dict[int, list[dict[str, str]]] = defaultdict(list)
    for job_id, dataset_id, direction in edges:
        if job_id not in jobs or dataset_id not in names:
            continue
        me, other = job_node(*jobs[job_id][1:3]), dataset_node(*names[dataset_id])
        if direction == "INPUT":
            in_edges[job_id].append({"origin": other, "destination": me})
        else:
            out_edges[job_id].append({"origin": me, "destination": other})
    nodes = []
    for job_id, row in jobs.items():
        ns, name, version, latest = row[1], row[2], row[10], row[11]
        inputs, outputs = versions.get(version, ([], []))
        latest_row = runs.get(latest)
        nodes.append(
            {
                "id": job_node(ns, name),
                "type": "JOB",
                "data": compact(
                    job_shape(
                        row,
                        inputs=[{"namespace": n, "name": d} for n, d in inputs],
                        outputs=[{"namespace": n, "name": d} for n, d in outputs],
                        latest_run=_run_summary(latest_row, ns, name) if latest_row else None,
                        tags=sorted(tags.get(job_id, [])),
                    )
                ),
                "inEdges": in_edges.get(job_id, []),
                "outEdges": out_edges.get(job_id, []),
            }
        )
    return nodes


def _run_summary(row: tuple[Any, ...], ns: str, name: str) -> dict[str, Any]:
    run_id, state, created, updated, started, ended, version = row
    return compact(
        {
            "id": run_id,
            "state": state,
            "createdAt": created,
            "updatedAt": updated,
            "startedAt": started,
            "endedAt": ended,
            "jobVersion": {"namespace": ns, "name": name, "version": version} if version else None,
        }
    )


def _dataset_names(tx: Tx, ids: set[int]) -> dict[int, tuple[str, str]]:
    return {
        ds_id: (ns, name)
        for ds_id, ns, name in tx.select_in(
            "SELECT id, namespace, name FROM datasets WHERE id IN (?)", ids
        )
    }


def _dataset_nodes(
    tx: Tx, ids: Iterable[int], edges: list[tuple[int, int, str]]
) -> list[dict[str, Any]]:
    rows = tx.select_in(f"SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.id IN (?)", ids)
    job_names = {
        job_id: (ns, name)
        for job_id, ns, name in tx.select_in(
            "SELECT id, namespace, name FROM jobs WHERE id IN (?)", {job for job, _, _ in edges}
        )
    }
    tags: dict[int, list[str]] = defaultdict(list)
    for ds_id, tag in tx.select_in(
        "SELECT dataset_id, tag FROM dataset_tags WHERE dataset_id IN (?)", ids
    ):
        tags[ds_id].append(tag)
    in_edges: dict[int, list[dict[str, str]]] = defaultdict(list)
    out_edges: dict[int, list[dict[str, str]]] = defaultdict(list)
    names = {row[0]: dataset_node(row[1], row[2]) for row in rows}
    for job_id, dataset_id, direction in edges:
        if dataset_id not in names or job_id not in job_names:
            continue
        other = job_node(*job_names[job_id])
        if direction == "OUTPUT":
            in_edges[dataset_id].append({"origin": other, "destination": names[dataset_id]})
        else:
            out_edges[dataset_id].append({"origin": names[dataset_id], "destination": other})
    nodes = []
    for row in rows:
        ds_id = row[0]
        nodes.append(
            {
                "id": names[ds_id],
                "type": "DATASET",
                "data": compact(
                    dataset_shape(row, tags=sorted(tags.get(ds_id, [])), fields=json.loads(row[5]))
                ),
                "inEdges": in_edges.get(ds_id, []),
                "outEdges": out_edges.get(ds_id, []),
            }
        )
    return nodes


# column lineage -----------------------------------------------------------------------------
FieldKey = tuple[str, str, str]
DatasetKey = tuple[str, str]
Meta = tuple[str | None, str | None]
_COLUMN_SELECT = (
    "SELECT d.namespace, d.name, c.field, c.input_namespace, c.input_name, c.input_field,"
    " c.description, c.type FROM column_lineage c JOIN datasets d ON d.id = c.dataset_id"
)


def column_lineage_graph(tx: Tx, node_id: str, depth: int, with_downstream: bool) -> dict[str, Any]:
    """Fields upstream (and with ``with_downstream`` downstream) of a dataset, field or job.

    Linear in the number of fields: each BFS level reads the column-lineage rows of the
    *datasets* on its frontier (one query per dataset, not per field), and the nodes are
    built from link indexes made once.
    """
    node = parse_node_id(node_id)
    start: set[FieldKey] = set()
    if node.kind == "job":
        row = tx.row(
            "SELECT current_version FROM jobs WHERE namespace = ? AND name = ? AND deleted = 0",
            (node.namespace, node.name),
        )
        if row is None:
            raise NodeNotFound(node_id)
        written = (
            tx.value("SELECT outputs FROM job_versions WHERE version = ?", (row[0],))
            if row[0]
            else None
        )
        for ns, name in json.loads(written or "[]"):
            start |= _dataset_fields(tx, ns, name)
    else:
        if (
            tx.value(
                "SELECT id FROM datasets WHERE namespace = ? AND name = ? AND deleted = 0",
                (node.namespace, node.name),
            )
            is None
        ):
            raise NodeNotFound(node_id)
        if node.kind == "datasetField":
            start = {(node.namespace, node.name, node.field or "")}
        else:
            start = _dataset_fields(tx, node.namespace, node.name)
    links: dict[tuple[FieldKey, FieldKey], Meta] = {}
    for upstream in (True, False) if with_downstream else (True,):
        frontier, seen = set(start), set(start)
        for _ in range(max(depth, 0)):
            found = _frontier_links(tx, frontier, upstream)
            links.update({(out, src): meta for out, src, meta in found})
            frontier = {src if upstream else out for out, src, _ in found} - seen
            seen |= frontier
            if not frontier:
                break
    nodes: set[FieldKey] = set(start)
    inputs: dict[FieldKey, list[tuple[FieldKey, Meta]]] = defaultdict(list)
    outputs: dict[FieldKey, list[FieldKey]] = defaultdict(list)
    for (out, src), meta in sorted(links.items(), key=str):
        nodes.update((out, src))
        inputs[out].append((src, meta))
        outputs[src].append(out)
    types = _field_types(tx, {(ns, name) for ns, name, _ in nodes})
    return {
        "graph": [
            _field_node(key, inputs.get(key, []), outputs.get(key, []), types)
            for key in sorted(nodes)
        ]
    }


def _dataset_fields(tx: Tx, namespace: str, name: str) -> set[FieldKey]:
    row = tx.row(
        "SELECT id, fields FROM datasets WHERE namespace = ? AND name = ?", (namespace, name)
    )
    if row is None:
        return set()
    fields = {f["name"] for f in json.loads(row[1])}
    fields |= {
        f
        for (f,) in tx.rows(
            "SELECT DISTINCT field FROM column_lineage WHERE dataset_id = ?", (row[0],)
        )
    }
    return {(namespace, name, field) for field in fields}


def _frontier_links(
    tx: Tx, frontier: set[FieldKey], upstream: bool
) -> list[tuple[FieldKey, FieldKey, Meta]]:
    """Links into (``upstream``) or out of the frontier's fields, read per dataset."""
    by_dataset: dict[DatasetKey, set[str]] = defaultdict(set)
    for ns, name, field in frontier:
        by_dataset[(ns, name)].add(field)
    where = "d.namespace = ? AND d.name = ?"
    if not upstream:
        where = "c.input_namespace = ? AND c.input_name = ?"
    found = []
    for key, fields in sorted(by_dataset.items()):
        for row in tx.rows(f"{_COLUMN_SELECT} WHERE {where}", key):
            out, src, meta = _link(row)
            if (out if upstream else src)[2] in fields:
                found.append((out, src, meta))
    return found


def _field_types(tx: Tx, datasets: set[DatasetKey]) -> dict[FieldKey, str | None]:
    types: dict[FieldKey, str | None] = {}
    for ns, name in sorted(datasets):
        fields = tx.value(
            "SELECT fields FROM datasets WHERE namespace = ? AND name = ?", (ns, name)
        )
        for candidate in json.loads(fields or "[]"):
            types[(ns, name, candidate.get("name"))] = candidate.get("type")
    return types


def _link(row: tuple[Any, ...]) -> tuple[FieldKey, FieldKey, Meta]:
    ns, name, field, in_ns, in_name, in_field, description, kind = row
    return (ns, name, field), (in_ns, in_name, in_field), (description, kind)


def _field_node(
    key: FieldKey,
    inputs: list[tuple[FieldKey, Meta]],
    outputs: list[FieldKey],
    types: dict[FieldKey, str | None],
) -> dict[str, Any]:
    ns, name, field = key
    me = field_node(ns, name, field)
    description, kind = inputs[0][1] if inputs else (None, None)
    return {
        "id": me,
        "type": "DATASET_FIELD",
        "data": compact(
            {
                "namespace": ns,
                "dataset": name,
                "field": field,
                "fieldType": types.get(key),
                "transformationDescription": description,
                "transformationType": kind,
                "inputFields": [
                    compact(
                        {
                            "namespace": s[0],
                            "dataset": s[1],
                            "field": s[2],
                            "transformationDescription": m[0],
                            "transformationType": m[1],
                        }
                    )
                    for s, m in inputs
                ],
            }
        ),
        "inEdges": [{"origin": field_node(*src), "destination": me} for src, _ in inputs],
        "outEdges": [{"origin": me, "destination": field_node(*out)} for out in outputs],
    }
