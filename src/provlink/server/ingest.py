"""Store one validated event and derive Marquez's model from it.

The raw event is written first, as its RFC 8785 form and keyed by that form's SHA-256
(:mod:`provlink.canonical`, the same digest the spool and the ledger record), so a
redelivered event is recognised, nothing is derived twice, and a stored event can be matched
to its ledger entry. The derivation follows Marquez
(``OpenLineageDao.updateMarquezModel``): a run's state follows its latest event (terminal
states win over earlier non-terminal ones), an output gets a new dataset version per run,
a batch job gets a job version only on COMPLETE/FAIL/ABORT, and the job's current version's
inputs and outputs become the lineage edges. Facets are read defensively: a producer may
send any shape inside a facet and that must never fail ingestion.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from provlink.canonical import canonical_json, sha256_hex
from provlink.server.tx import Tx
from provlink.server.validation import parse_time

TERMINAL_STATES = {"COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED"}
RUN_STATES = {"START": "RUNNING", "RUNNING": "RUNNING", **TERMINAL_STATES}
_VERSION_NS = uuid.UUID("6f1c1b5e-6a55-4c3e-9a62-70726f766c6b")


def event_record(event: dict[str, Any]) -> tuple[str, str]:
    """The stored text of ``event`` (RFC 8785) and its hash, the key that de-duplicates it."""
    data = canonical_json(event)
    return data.decode("utf-8"), sha256_hex(data)


def _canonical_text(value: Any) -> str:
    """RFC 8785 text, for JSON that goes into a version hash."""
    return canonical_json(value).decode("utf-8")


def _json_text(value: Any) -> str:
    """Compact JSON for derived columns (facets); never hashed, so the fast encoder does."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 text with microseconds, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def store_event(tx: Tx, event: dict[str, Any], received_at: str) -> bool:
    """Insert ``event`` unless an identical one is stored; derive the model when it is new."""
    payload, digest = event_record(event)
    moment = parse_time(event["eventTime"])
    assert moment is not None, "validate_event must run before store_event"
    event_time = iso(moment)
    run = event.get("run") if isinstance(event.get("run"), dict) else None
    job = event.get("job") if isinstance(event.get("job"), dict) else None
    inserted = tx.row(
        "INSERT INTO events (hash, event_time, event_type, run_id, job_namespace, job_name,"
        " received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (hash) DO NOTHING RETURNING id",
        (
            digest,
            event_time,
            event.get("eventType") if run else None,
            run["runId"].lower() if run else None,
            job["namespace"] if job else None,
            job["name"] if job else None,
            received_at,
            payload,
        ),
    )
    if inserted is None:
        return False
    if run is not None:
        _run_event(tx, event, event_time)
    elif isinstance(event.get("dataset"), dict):
        _dataset_event(tx, event["dataset"], event_time)
    else:
        _job_event(tx, event, event_time)
    return True


def _run_event(tx: Tx, event: dict[str, Any], t: str) -> None:
    job, run = event["job"], event["run"]
    event_type = event.get("eventType") or "OTHER"
    run_id = run["runId"].lower()
    run_facets, job_facets = _facets(run, "facets"), _facets(job, "facets")
    job_id, job_type, current_version = _upsert_job(tx, job, job_facets, run_facets, t, run_id)
    # the job row is now locked until commit, so no other writer creates this run meanwhile
    old = tx.row(f"SELECT {_RUN_STATE} FROM runs WHERE id = ?", (run_id,))
    terminal = event_type in TERMINAL_STATES
    io: list[tuple[Any, ...]] = []
    for direction, key, extra in (
        ("INPUT", "inputs", "inputFacets"),
        ("OUTPUT", "outputs", "outputFacets"),
    ):
        for item in sorted(event.get(key) or [], key=lambda d: (d["namespace"], d["name"])):
            dataset_id, version = _upsert_dataset(
                tx, item, t, run_id if direction == "OUTPUT" else None, modified=terminal
            )
            io.append((direction, dataset_id, item["namespace"], item["name"]))
            tx.run(
                "INSERT INTO run_io (run_id, dataset_id, direction, version, facets)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, direction, dataset_id)"
                " DO UPDATE SET version = excluded.version, facets = excluded.facets",
                (run_id, dataset_id, direction, version, _json_or_empty(_facets(item, extra))),
            )
    job_version = None
    if terminal or (job_type == "STREAM" and event_type in ("START", "RUNNING")):
        if old is not None:  # earlier events of this run may have named other datasets
            io = tx.rows(
                "SELECT r.direction, r.dataset_id, d.namespace, d.name FROM run_io r"
                " JOIN datasets d ON d.id = r.dataset_id WHERE r.run_id = ?",
                (run_id,),
            )
        job_version = _job_version(tx, job, job_id, current_version, io, t, run_id)
    _write_run(tx, run_id, job_id, event_type, run_facets, job_facets, t, old, job_version)


def _job_event(tx: Tx, event: dict[str, Any], t: str) -> None:
    job = event["job"]
    job_id, _, current_version = _upsert_job(tx, job, _facets(job, "facets"), {}, t, None)
    io: list[tuple[Any, ...]] = []
    for direction, key in (("INPUT", "inputs"), ("OUTPUT", "outputs")):
        for item in sorted(event.get(key) or [], key=lambda d: (d["namespace"], d["name"])):
            dataset_id, _ = _upsert_dataset(tx, item, t, None, modified=False)
            io.append((direction, dataset_id, item["namespace"], item["name"]))
    _job_version(tx, job, job_id, current_version, io, t, None)


def _dataset_event(tx: Tx, dataset: dict[str, Any], t: str) -> None:
    _upsert_dataset(tx, dataset, t, None, modified=False, new_version=True)


def _namespace(tx: Tx, name: str, t: str) -> None:
    if ("namespace", name) in tx.seen:
        return
    tx.seen.add(("namespace", name))
    tx.run(
        "INSERT INTO namespaces (name, created_at, updated_at, owner_name) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        (name, t, t, "anonymous"),
    )


def _upsert_job(
    tx: Tx,
    job: dict[str, Any],
    job_facets: dict[str, Any],
    run_facets: dict[str, Any],
    t: str,
    run_id: str | None,
) -> tuple[int, str, str | None]:
    """Create or update the job; return its id, type and current version."""
    namespace, name = job["namespace"], job["name"]
    _namespace(tx, namespace, t)
    row = tx.row(
        "INSERT INTO jobs (namespace, name, type, created_at, updated_at, facets)"
        " VALUES (?, ?, 'BATCH', ?, ?, '{}') ON CONFLICT (namespace, name) DO UPDATE SET"
        " updated_at = CASE WHEN excluded.updated_at > jobs.updated_at"
        " THEN excluded.updated_at ELSE jobs.updated_at END"
        " RETURNING id, type, facets, location, description, parent_job_name, current_version,"
        " latest_run_id, latest_run_at, deleted",
        (namespace, name, t, t),
    )
    assert row is not None
    (
        job_id,
        job_type,
        old_facets,
        location,
        description,
        parent,
        current,
        latest_id,
        latest_at,
        deleted,
    ) = row
    old_row = (job_type, old_facets, location, description, parent, latest_id, latest_at, deleted)
    facets = _merge(json.loads(old_facets), job_facets, newer=latest_at is None or t >= latest_at)
    job_type = _job_type(facets) or job_type
    location = _text(_get(facets, "sourceCodeLocation", "url")) or location
    description = _text(_get(facets, "documentation", "description")) or description
    parent = _text(_get(run_facets, "parent", "job", "name")) or parent
    if run_id is not None and (latest_at is None or t >= latest_at):
        latest_id, latest_at = run_id, t
    new_row = (
        job_type,
        _json_text(facets) if job_facets else old_facets,
        location,
        description,
        parent,
        latest_id,
        latest_at,
        0,
    )
    if new_row != old_row:
        tx.run(
            "UPDATE jobs SET type = ?, facets = ?, location = ?, description = ?,"
            " parent_job_name = ?, latest_run_id = ?, latest_run_at = ?, deleted = ? WHERE id = ?",
            (*new_row, job_id),
        )
    return job_id, job_type, current


_RUN_STATE = (
    "state, transitioned_at, terminal, facets, job_facets, started_at, ended_at, nominal_start,"
    " nominal_end, parent_run_id, updated_at, job_version"
)


def _write_run(
    tx: Tx,
    run_id: str,
    job_id: int,
    event_type: str,
    run_facets: dict[str, Any],
    job_facets: dict[str, Any],
    t: str,
    old: tuple[Any, ...] | None,
    job_version: str | None,
) -> None:
    """Apply one event to the run: the latest event sets the state, a terminal one wins."""
    state = RUN_STATES.get(event_type)
    terminal = 1 if event_type in TERMINAL_STATES else 0
    fresh = ("NEW", t, 0, "{}", "{}", None, None, None, None, None, t, None)
    old_state, old_at, old_terminal, old_facets, old_job_facets = (old or fresh)[:5]
    started, ended, n_start, n_end, parent, updated, old_version = (old or fresh)[5:]
    newer = (terminal, t) >= (old_terminal, old_at)
    new_state, new_at, new_terminal = old_state, old_at, old_terminal
    if state is not None and newer:
        new_state, new_at, new_terminal = state, t, terminal
    if event_type in ("START", "RUNNING") and (started is None or t < started):
        started = t
    if terminal and newer:
        ended = t
    facets = _merge(json.loads(old_facets), run_facets, newer=newer)
    n_start = _time_text(_get(facets, "nominalTime", "nominalStartTime")) or n_start
    n_end = _time_text(_get(facets, "nominalTime", "nominalEndTime")) or n_end
    parent_run = _text(_get(facets, "parent", "run", "runId"))
    values = (
        new_state,
        new_at,
        new_terminal,
        started,
        ended,
        n_start,
        n_end,
        _json_text(facets) if run_facets else old_facets,
        _json_text(_merge(json.loads(old_job_facets), job_facets, newer=newer))
        if job_facets
        else old_job_facets,
        parent_run.lower() if parent_run else parent,
        max(updated, t),
        job_version or old_version,
    )
    if old is None:
        inserted = tx.row(
            "INSERT INTO runs (state, transitioned_at, terminal, started_at, ended_at,"
            " nominal_start, nominal_end, facets, job_facets, parent_run_id, updated_at,"
            " job_version, id, job_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (*values, run_id, job_id, t),
        )
        if inserted is not None:
            return
    tx.run(
        "UPDATE runs SET state = ?, transitioned_at = ?, terminal = ?, started_at = ?,"
        " ended_at = ?, nominal_start = ?, nominal_end = ?, facets = ?, job_facets = ?,"
        " parent_run_id = ?,"
        " updated_at = ?, job_version = ? WHERE id = ?",
        (*values, run_id),
    )


def _upsert_dataset(
    tx: Tx,
    item: dict[str, Any],
    t: str,
    run_id: str | None,
    *,
    modified: bool,
    new_version: bool = False,
) -> tuple[int, str | None]:
    """Create or update a dataset; for an output (``run_id``) add a version. Return id, version."""
    namespace, name = item["namespace"], item["name"]
    _namespace(tx, namespace, t)
    incoming = _facets(item, "facets")
    row = tx.row(
        "INSERT INTO datasets (namespace, name, type, source_name, fields, facets, created_at,"
        " updated_at) VALUES (?, ?, 'DB_TABLE', ?, '[]', '{}', ?, ?)"
        " ON CONFLICT (namespace, name) DO UPDATE SET updated_at = CASE"
        " WHEN excluded.updated_at > datasets.updated_at THEN excluded.updated_at"
        " ELSE datasets.updated_at END"
        " RETURNING id, facets, fields, source_name, description, current_version,"
        " last_modified_at, lifecycle_state, updated_at, deleted",
        (namespace, name, namespace, t, t),
    )
    assert row is not None
    dataset_id, old_facets, old_fields, source, description = row[:5]
    version, last_modified, lifecycle, updated, deleted = row[5:]
    old_row = (*row[1:8], deleted)  # everything but the id and updated_at
    newer = updated == t
    facets_text, fields_text = old_facets, old_fields
    if incoming:
        facets = _merge(json.loads(old_facets), incoming, newer=newer)
        facets_text = _json_text(facets)
    else:
        facets = json.loads(old_facets) if old_facets != "{}" else {}
    if "schema" in incoming:
        fields_text = _canonical_text(_fields(incoming["schema"]))
    source = _source(tx, incoming, t) or source
    description = _text(_get(facets, "documentation", "description")) or description
    lifecycle = _text(_get(incoming, "lifecycleStateChange", "lifecycleStateChange")) or lifecycle
    explicit = _text(_get(incoming, "version", "datasetVersion"))
    # an input read at a new content version (its ``version`` facet changed) is a new dataset
    # version too, so each run's inputDatasetVersions names the bytes that run read
    if (run_id is not None or new_version or version is None
            or (explicit and explicit != _text(_get(json.loads(old_facets), "version",
                                                    "datasetVersion")))):
        identity = "\x1f".join([namespace, name, source, fields_text, run_id or "", explicit or ""])
        version = str(uuid.uuid5(_VERSION_NS, identity))
        tx.run(
            "INSERT INTO dataset_versions (version, dataset_id, run_id, created_at, fields, facets,"
            " lifecycle_state) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET"
            " facets = excluded.facets, lifecycle_state = excluded.lifecycle_state",
            (version, dataset_id, run_id, t, fields_text, facets_text, lifecycle),
        )
        if modified:
            last_modified = t
    new_row = (facets_text, fields_text, source, description, version, last_modified, lifecycle, 0)
    if new_row != old_row:
        tx.run(
            "UPDATE datasets SET facets = ?, fields = ?, source_name = ?, description = ?,"
            " current_version = ?, last_modified_at = ?, lifecycle_state = ?, deleted = ?"
            " WHERE id = ?",
            (*new_row, dataset_id),
        )
    if "columnLineage" in incoming:
        _column_lineage(tx, dataset_id, incoming["columnLineage"])
    return dataset_id, version


def _job_version(
    tx: Tx,
    job: dict[str, Any],
    job_id: int,
    current: str | None,
    io: list[tuple[Any, ...]],
    t: str,
    run_id: str | None,
) -> str:
    """Record the job version for this set of inputs/outputs and make its I/O the job's edges."""
    inputs = sorted({(ns, name) for direction, _, ns, name in io if direction == "INPUT"})
    outputs = sorted({(ns, name) for direction, _, ns, name in io if direction == "OUTPUT"})
    location = _text(_get(_facets(job, "facets"), "sourceCodeLocation", "url"))
    version = str(
        uuid.uuid5(
            _VERSION_NS,
            _canonical_text([job["namespace"], job["name"], inputs, outputs, location]),
        )
    )
    tx.run(
        "INSERT INTO job_versions (version, job_id, created_at, location, inputs, outputs, run_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (version) DO UPDATE SET run_id = excluded.run_id",
        (version, job_id, t, location, _json_text(inputs), _json_text(outputs), run_id),
    )
    if version != current:
        tx.run("UPDATE jobs SET current_version = ? WHERE id = ?", (version, job_id))
        tx.run("DELETE FROM edges WHERE job_id = ?", (job_id,))
        tx.run_many(
            "INSERT INTO edges (job_id, dataset_id, direction) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(job_id, dataset_id, direction) for direction, dataset_id, _, _ in io],
        )
    return version


def _column_lineage(tx: Tx, dataset_id: int, facet: Any) -> None:
    tx.run("DELETE FROM column_lineage WHERE dataset_id = ?", (dataset_id,))
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if not isinstance(fields, dict):
        return
    rows: dict[tuple[str, str, str, str], tuple[str | None, str | None]] = {}
    for out_field, spec in fields.items():
        if _text(out_field) is None or not isinstance(spec, dict):
            continue
        inputs = spec.get("inputFields")
        for source in inputs if isinstance(inputs, list) else []:
            if not isinstance(source, dict):
                continue
            in_ns, in_name, in_field = (
                _text(source.get("namespace")),
                _text(source.get("name")),
                _text(source.get("field")),
            )
            if in_ns is None or in_name is None or in_field is None:
                continue
            transformations = source.get("transformations")
            first = (
                transformations[0] if isinstance(transformations, list) and transformations else {}
            )
            first = first if isinstance(first, dict) else {}
            description = _text(spec.get("transformationDescription")) or _text(
                first.get("description")
            )
            kind = _text(spec.get("transformationType")) or _text(first.get("type"))
            rows[(out_field, in_ns, in_name, in_field)] = (description, kind)
    tx.run_many(
        "INSERT INTO column_lineage (dataset_id, field, input_namespace, input_name, input_field,"
        " description, type) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(dataset_id, *key, *value) for key, value in rows.items()],
    )


def _source(tx: Tx, facets: dict[str, Any], t: str) -> str | None:
    name = _text(_get(facets, "dataSource", "name"))
    if name is None:
        return None
    uri = _text(_get(facets, "dataSource", "uri"))
    kind = uri.split(":", 1)[0].upper() if uri and ":" in uri else "UNKNOWN"
    tx.run(
        "INSERT INTO sources (name, type, connection_url, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        (name, kind, uri, t, t),
    )
    return name


def _fields(schema: Any) -> list[dict[str, Any]]:
    raw = schema.get("fields") if isinstance(schema, dict) else None
    fields = []
    for field in raw if isinstance(raw, list) else []:
        name = _text(field.get("name")) if isinstance(field, dict) else None
        if name is None:
            continue
        entry = {"name": name, "type": _text(field.get("type")) or "UNKNOWN", "tags": []}
        description = _text(field.get("description"))
        if description is not None:
            entry["description"] = description
        fields.append(entry)
    return fields


def _job_type(facets: dict[str, Any]) -> str | None:
    processing = _text(_get(facets, "jobType", "processingType"))
    if processing is None:
        return None
    return "STREAM" if processing.upper() == "STREAMING" else "BATCH"


def _json_or_empty(value: dict[str, Any]) -> str:
    return _json_text(value) if value else "{}"


def _merge(old: dict[str, Any], new: dict[str, Any], *, newer: bool) -> dict[str, Any]:
    return {**old, **new} if newer else {**new, **old}


def _facets(owner: dict[str, Any], key: str) -> dict[str, Any]:
    facets = owner.get(key)
    return facets if isinstance(facets, dict) else {}


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    """``value`` if it is a non-empty string a database column can hold, else ``None``."""
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > 4096:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _time_text(value: Any) -> str | None:
    parsed = parse_time(value) if isinstance(value, str) else None
    return iso(parsed) if parsed else None
