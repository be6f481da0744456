"""Store validated events and derive Marquez's model from them, a batch at a time.

The raw events are written first, as their RFC 8785 form and keyed by that form's SHA-256
(:mod:`provlink.canonical`, the same digest the spool and the ledger record), so a
redelivered event is recognised, nothing is derived twice, and a stored event can be matched
to its ledger entry. The derivation follows Marquez
(``OpenLineageDao.updateMarquezModel``): a run's state follows its latest event (terminal
states win over earlier non-terminal ones), an output gets a new dataset version per run,
a batch job gets a job version only on COMPLETE/FAIL/ABORT, and the job's current version's
inputs and outputs become the lineage edges. Facets are read defensively: a producer may
send any shape inside a facet and that must never fail ingestion.

A batch is set-based, so its cost is three round trips however many events it holds, and
the client does Python work during the first two (a database on another machine, or on the
same cores, pays for every wait it is idle in): **load** sends a few bulk statements that
create and read every job, dataset and run the batch touches (locking them on PostgreSQL, so
concurrent servers serialise on shared rows instead of losing writes), which need only the
events' keys, and hashes the events while the database runs them; **insert** sends the
events' insert and meanwhile **applies** the events in order on the loaded rows in memory,
as if every event were new (redone with the new events only when some were not);
**flush** sends the final rows, one statement per table, answered with the commit.
Everything a batch's events could touch is loaded before the insert tells which events are
new, so a redelivered batch locks rows it then leaves alone, and derives twice: that costs
only a redelivery, not every batch.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from provlink.canonical import canonical_json, sha256_hex
from provlink.server.tx import Pending, Tx
from provlink.server.validation import parse_time

TERMINAL_STATES = {"COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED"}
RUN_STATES = {"START": "RUNNING", "RUNNING": "RUNNING", **TERMINAL_STATES}
_VERSION_NS = uuid.UUID("6f1c1b5e-6a55-4c3e-9a62-70726f766c6b")
Key = tuple[str, str]


def event_record(event: dict[str, Any]) -> tuple[str, str]:
    """The stored text of ``event`` (RFC 8785) and its hash, the key that de-duplicates it."""
    data = canonical_json(event)
    return data.decode("utf-8"), sha256_hex(data)


_IDENTITY = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _canonical_text(value: Any) -> str:
    """RFC 8785 text of a version identity (a dataset's fields, a job's inputs and outputs).

    Ingest builds these from text only (names the validator passed, :func:`_text` values),
    in lists and ASCII-keyed objects: no numbers, no lone surrogates. For such values
    ``json.dumps`` writes the RFC 8785 bytes (:mod:`provlink.canonical`), so the general
    canonicaliser's walk is skipped; a test pins the two to the same text.
    """
    return _IDENTITY.encode(value)


def _json_text(value: Any) -> str:
    """Compact JSON for derived columns (facets); never hashed, so the fast encoder does."""
    return _COMPACT.encode(value)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 text with microseconds, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


@dataclass(slots=True)
class _Raw:
    event: dict[str, Any]
    time: str
    payload: str = ""
    digest: str = ""

    @property
    def kind(self) -> str:
        """``run``, ``dataset`` or ``job``, told apart as the spec does (a null counts absent)."""
        if isinstance(self.event.get("run"), dict):
            return "run"
        return "dataset" if isinstance(self.event.get("dataset"), dict) else "job"


def store_events(tx: Tx, events: Sequence[dict[str, Any]], received_at: str) -> list[bool]:
    """Insert the events not already stored, derive the model from those; one flag per event.

    Each wait on the database is spent on Python work: the load statements need only the
    events' keys, so the database creates and locks the rows while the events are hashed;
    the events' insert then runs while the batch is derived on the loaded rows, as if every
    event were new. When some were not (a redelivery), the derivation is redone from the
    loaded rows with the new events only.
    """
    raws = []
    for event in events:
        moment = parse_time(event["eventTime"])
        assert moment is not None, "validate_event must run before store_events"
        raws.append(_Raw(event, iso(moment)))
    if tx.dialect == "postgresql":
        # every statement below looks rows up by key; on fast-growing tables whose statistics
        # are stale the planner would scan them whole for a batch's keys (cost growing with
        # the store), so index access is the one to take, for this transaction only
        tx.run("SET LOCAL enable_seqscan = off")
    read_loaded = _load(tx, raws)
    first: dict[str, _Raw] = {}
    for raw in raws:
        raw.payload, raw.digest = event_record(raw.event)
        first.setdefault(raw.digest, raw)
    unique = list(first.values())
    loaded = read_loaded()
    insert = _insert_events(tx, unique, received_at)
    model = _derive(tx, loaded, unique)
    inserted = {digest for (digest,) in insert()}
    fresh = [raw for raw in unique if raw.digest in inserted]
    if len(fresh) != len(unique):
        model = _derive(tx, loaded, fresh)
    if fresh:
        model.flush()
    flags, claimed = [], set()
    for raw in raws:
        new = raw.digest in inserted and raw.digest not in claimed
        claimed.add(raw.digest)
        flags.append(new)
    return flags


def _derive(tx: Tx, loaded: _Loaded, raws: list[_Raw]) -> _Model:
    model = _Model(tx, loaded)
    for raw in raws:
        model.apply(raw.kind, raw.event, raw.time)
    return model


def _insert_events(tx: Tx, raws: list[_Raw], received_at: str) -> Pending:
    """Send the insert of ``raws``; the result reads the hashes not stored before."""
    rows = []
    for raw in raws:
        run = raw.event["run"] if raw.kind == "run" else None
        job = raw.event.get("job") if isinstance(raw.event.get("job"), dict) else None
        rows.append(
            (
                raw.digest,
                raw.time,
                raw.event.get("eventType") if run else None,
                run["runId"].lower() if run else None,
                job["namespace"] if job else None,
                job["name"] if job else None,
                received_at,
                raw.payload,
            )
        )
    columns = "hash, event_time, event_type, run_id, job_namespace, job_name, received_at, payload"
    return tx.insert_later(
        "events", columns.split(", "), rows, " ON CONFLICT (hash) DO NOTHING RETURNING hash"
    )


_JOB_COLUMNS = (
    "id, namespace, name, type, facets, location, description, parent_job_name,"
    " current_version, latest_run_id, latest_run_at, deleted, updated_at"
)
_DATASET_COLUMNS = (
    "id, namespace, name, facets, fields, source_name, description, current_version,"
    " last_modified_at, lifecycle_state, deleted, updated_at"
)
_RUN_COLUMNS = (
    "state, transitioned_at, terminal, facets, job_facets, started_at, ended_at, nominal_start,"
    " nominal_end, parent_run_id, updated_at, job_version"
)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """The stored rows a batch touches, as read (locked on PostgreSQL) in its load phase."""

    jobs: list[tuple[Any, ...]]
    datasets: list[tuple[Any, ...]]
    runs: list[tuple[Any, ...]]
    run_io: list[tuple[Any, ...]]


def _load(tx: Tx, raws: list[_Raw]) -> Callable[[], _Loaded]:
    """Send the statements that create and lock the rows ``raws`` touch; the returned
    function reads them all (one round trip on PostgreSQL)."""
    namespaces: dict[str, str] = {}
    jobs: dict[Key, str] = {}
    datasets: dict[Key, str] = {}
    run_ids: list[str] = []
    for raw in raws:
        event, t = raw.event, raw.time
        if raw.kind != "dataset":
            job = event["job"]
            jobs.setdefault((job["namespace"], job["name"]), t)
            for item in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
                datasets.setdefault((item["namespace"], item["name"]), t)
            if raw.kind == "run":
                run_ids.append(event["run"]["runId"].lower())
        else:
            datasets.setdefault((event["dataset"]["namespace"], event["dataset"]["name"]), t)
    for (ns, _), t in [*jobs.items(), *datasets.items()]:
        namespaces.setdefault(ns, t)
    tx.write_rows(
        "namespaces",
        ("name", "created_at", "updated_at", "owner_name"),
        [(name, t, t, "anonymous") for name, t in sorted(namespaces.items())],
        " ON CONFLICT (name) DO NOTHING",
    )
    tx.write_rows(
        "jobs",
        ("namespace", "name", "type", "created_at", "updated_at", "facets"),
        [(*key, "BATCH", t, t, "{}") for key, t in sorted(jobs.items())],
        " ON CONFLICT (namespace, name) DO NOTHING",
    )
    job_rows = tx.select_keys_later(f"SELECT {_JOB_COLUMNS} FROM jobs", sorted(jobs), lock=True)
    # jobs first, then datasets, each created then locked in key order: two servers
    # taking the same rows take them in the same order, so they queue, not deadlock
    tx.write_rows(
        "datasets",
        (
            "namespace",
            "name",
            "type",
            "source_name",
            "fields",
            "facets",
            "created_at",
            "updated_at",
        ),
        [(*key, "DB_TABLE", key[0], "[]", "{}", t, t) for key, t in sorted(datasets.items())],
        " ON CONFLICT (namespace, name) DO NOTHING",
    )
    dataset_rows = tx.select_keys_later(
        f"SELECT {_DATASET_COLUMNS} FROM datasets", sorted(datasets), lock=True
    )
    unique_runs = sorted(set(run_ids))
    run_rows = tx.select_in_later(
        f"SELECT id, {_RUN_COLUMNS} FROM runs WHERE id IN (?)", unique_runs, lock=True
    )
    io_rows = tx.select_in_later(
        "SELECT r.run_id, r.direction, r.dataset_id, d.namespace, d.name FROM run_io r"
        " JOIN datasets d ON d.id = r.dataset_id WHERE r.run_id IN (?)",
        unique_runs,
    )
    return lambda: _Loaded(job_rows(), dataset_rows(), run_rows(), io_rows())


class _Model:
    """The rows one batch touches: loaded in bulk, changed in memory, written back in bulk."""

    def __init__(self, tx: Tx, loaded: _Loaded) -> None:
        self.tx = tx
        self.jobs: dict[Key, dict[str, Any]] = {}
        self.datasets: dict[Key, dict[str, Any]] = {}
        self.loaded: dict[tuple[str, int], tuple[Any, ...]] = {}
        self.dataset_names: dict[int, Key] = {}
        self.runs: dict[str, tuple[Any, ...] | None] = {}
        self.new_runs: dict[str, tuple[int, str]] = {}
        self.touched_runs: set[str] = set()
        self.run_io: dict[str, dict[tuple[str, int], tuple[str | None, str] | None]] = defaultdict(
            dict
        )
        self.dataset_versions: dict[str, list[Any]] = {}
        self.job_versions: dict[str, list[Any]] = {}
        self.edges: dict[int, set[tuple[int, str]]] = {}
        self.column_lineage: dict[int, list[tuple[Any, ...]]] = {}
        self.sources: dict[str, tuple[Any, ...]] = {}
        columns = _JOB_COLUMNS.split(", ")
        for row in loaded.jobs:
            self.jobs[(row[1], row[2])] = dict(zip(columns, row, strict=True))
            self.loaded[("job", row[0])] = row
        columns = _DATASET_COLUMNS.split(", ")
        for row in loaded.datasets:
            self.datasets[(row[1], row[2])] = dict(zip(columns, row, strict=True))
            self.loaded[("dataset", row[0])] = row
            self.dataset_names[row[0]] = (row[1], row[2])
        for run_id, *state in loaded.runs:
            self.runs[run_id] = tuple(state)
        for run_id, direction, dataset_id, ns, name in loaded.run_io:
            self.run_io[run_id][(direction, dataset_id)] = None  # known, unchanged
            self.dataset_names[dataset_id] = (ns, name)

    # apply ---------------------------------------------------------------------------------
    def apply(self, kind: str, event: dict[str, Any], t: str) -> None:
        if kind == "run":
            self._run_event(event, t)
        elif kind == "dataset":
            self._dataset(event["dataset"], t, None, modified=False, new_version=True)
        else:
            self._job_event(event, t)

    def _run_event(self, event: dict[str, Any], t: str) -> None:
        job, run = event["job"], event["run"]
        event_type = event.get("eventType") or "OTHER"
        run_id = run["runId"].lower()
        run_facets, job_facets = _facets(run, "facets"), _facets(job, "facets")
        row = self._job(job, job_facets, run_facets, t, run_id)
        terminal = event_type in TERMINAL_STATES
        io = self.run_io[run_id]
        for direction, key, extra in (
            ("INPUT", "inputs", "inputFacets"),
            ("OUTPUT", "outputs", "outputFacets"),
        ):
            for item in sorted(event.get(key) or [], key=lambda d: (d["namespace"], d["name"])):
                dataset_id, version = self._dataset(
                    item, t, run_id if direction == "OUTPUT" else None, modified=terminal
                )
                io[(direction, dataset_id)] = (version, _json_or_empty(_facets(item, extra)))
        job_version = None
        if terminal or (row["type"] == "STREAM" and event_type in ("START", "RUNNING")):
            edges = [(d, i, *self.dataset_names[i]) for d, i in io]
            job_version = self._job_version(job, row, edges, t, run_id)
        self._write_run(run_id, row["id"], event_type, run_facets, job_facets, t, job_version)

    def _job_event(self, event: dict[str, Any], t: str) -> None:
        job = event["job"]
        row = self._job(job, _facets(job, "facets"), {}, t, None)
        io: list[tuple[Any, ...]] = []
        for direction, key in (("INPUT", "inputs"), ("OUTPUT", "outputs")):
            for item in sorted(event.get(key) or [], key=lambda d: (d["namespace"], d["name"])):
                dataset_id, _ = self._dataset(item, t, None, modified=False)
                io.append((direction, dataset_id, item["namespace"], item["name"]))
        self._job_version(job, row, io, t, None)

    def _job(
        self,
        job: dict[str, Any],
        job_facets: dict[str, Any],
        run_facets: dict[str, Any],
        t: str,
        run_id: str | None,
    ) -> dict[str, Any]:
        """Apply one event to its job row and return the row."""
        row = self.jobs[(job["namespace"], job["name"])]
        row["updated_at"] = max(row["updated_at"], t)
        latest_at = row["latest_run_at"]
        newer = latest_at is None or t >= latest_at
        facets = _merge(json.loads(row["facets"]), job_facets, newer=newer)
        row["type"] = _job_type(facets) or row["type"]
        row["location"] = _text(_get(facets, "sourceCodeLocation", "url")) or row["location"]
        row["description"] = (
            _text(_get(facets, "documentation", "description")) or row["description"]
        )
        row["parent_job_name"] = (
            _text(_get(run_facets, "parent", "job", "name")) or row["parent_job_name"]
        )
        if job_facets:
            row["facets"] = _json_text(facets)
        if run_id is not None and newer:
            row["latest_run_id"], row["latest_run_at"] = run_id, t
        row["deleted"] = 0
        return row

    def _write_run(
        self,
        run_id: str,
        job_id: int,
        event_type: str,
        run_facets: dict[str, Any],
        job_facets: dict[str, Any],
        t: str,
        job_version: str | None,
    ) -> None:
        """Apply one event to the run: the latest event sets the state, a terminal one wins."""
        old = self.runs.get(run_id)
        if old is None:
            self.new_runs.setdefault(run_id, (job_id, t))
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
        self.runs[run_id] = (
            new_state,
            new_at,
            new_terminal,
            _json_text(facets) if run_facets else old_facets,
            _json_text(_merge(json.loads(old_job_facets), job_facets, newer=newer))
            if job_facets
            else old_job_facets,
            started,
            ended,
            n_start,
            n_end,
            parent_run.lower() if parent_run else parent,
            max(updated, t),
            job_version or old_version,
        )
        self.touched_runs.add(run_id)

    def _dataset(
        self,
        item: dict[str, Any],
        t: str,
        run_id: str | None,
        *,
        modified: bool,
        new_version: bool = False,
    ) -> tuple[int, str | None]:
        """Apply one mention of a dataset; for an output (``run_id``) add a version."""
        namespace, name = item["namespace"], item["name"]
        row = self.datasets[(namespace, name)]
        incoming = _facets(item, "facets")
        row["updated_at"] = max(row["updated_at"], t)
        newer = row["updated_at"] == t
        facets_text, fields_text = row["facets"], row["fields"]
        if incoming:
            facets = _merge(json.loads(facets_text), incoming, newer=newer)
            facets_text = _json_text(facets)
        else:
            facets = json.loads(facets_text) if facets_text != "{}" else {}
        if "schema" in incoming:
            fields_text = _canonical_text(_fields(incoming["schema"]))
        source = self._source(incoming, t) or row["source_name"]
        lifecycle = (
            _text(_get(incoming, "lifecycleStateChange", "lifecycleStateChange"))
            or row["lifecycle_state"]
        )
        version = row["current_version"]
        explicit = _text(_get(incoming, "version", "datasetVersion"))
        # an input read at a new content version (its ``version`` facet changed) is a new
        # dataset version too, so each run's inputDatasetVersions names the bytes that run read
        read_anew = explicit and explicit != _text(
            _get(json.loads(row["facets"]), "version", "datasetVersion")
        )
        if run_id is not None or new_version or version is None or read_anew:
            identity = "\x1f".join(
                [namespace, name, source, fields_text, run_id or "", explicit or ""]
            )
            version = str(uuid.uuid5(_VERSION_NS, identity))
            known = self.dataset_versions.get(version)
            if known is None:
                self.dataset_versions[version] = [
                    version,
                    row["id"],
                    run_id,
                    t,
                    fields_text,
                    facets_text,
                    lifecycle,
                ]
            else:
                known[5], known[6] = facets_text, lifecycle
            if modified:
                row["last_modified_at"] = t
        row.update(
            facets=facets_text,
            fields=fields_text,
            source_name=source,
            description=_text(_get(facets, "documentation", "description")) or row["description"],
            current_version=version,
            lifecycle_state=lifecycle,
            deleted=0,
        )
        if "columnLineage" in incoming:
            self.column_lineage[row["id"]] = _column_rows(row["id"], incoming["columnLineage"])
        return row["id"], version

    def _job_version(
        self,
        job: dict[str, Any],
        row: dict[str, Any],
        io: Iterable[tuple[Any, ...]],
        t: str,
        run_id: str | None,
    ) -> str:
        """Record the job version for this set of inputs/outputs; its I/O become the edges."""
        io = list(io)
        inputs = sorted({(ns, name) for direction, _, ns, name in io if direction == "INPUT"})
        outputs = sorted({(ns, name) for direction, _, ns, name in io if direction == "OUTPUT"})
        location = _text(_get(_facets(job, "facets"), "sourceCodeLocation", "url"))
        version = str(
            uuid.uuid5(
                _VERSION_NS,
                _canonical_text([job["namespace"], job["name"], inputs, outputs, location]),
            )
        )
        known = self.job_versions.get(version)
        if known is None:
            self.job_versions[version] = [
                version,
                row["id"],
                t,
                location,
                _json_text(inputs),
                _json_text(outputs),
                run_id,
            ]
        else:
            known[6] = run_id
        if version != row["current_version"]:
            row["current_version"] = version
            self.edges[row["id"]] = {(dataset_id, direction) for direction, dataset_id, _, _ in io}
        return version

    def _source(self, facets: dict[str, Any], t: str) -> str | None:
        name = _text(_get(facets, "dataSource", "name"))
        if name is None:
            return None
        uri = _text(_get(facets, "dataSource", "uri"))
        kind = uri.split(":", 1)[0].upper() if uri and ":" in uri else "UNKNOWN"
        self.sources.setdefault(name, (name, kind, uri, t, t))
        return name

    # flush ---------------------------------------------------------------------------------
    def flush(self) -> None:
        tx = self.tx
        tx.write_rows(
            "sources",
            ("name", "type", "connection_url", "created_at", "updated_at"),
            [self.sources[name] for name in sorted(self.sources)],
            " ON CONFLICT (name) DO NOTHING",
        )
        job_columns = _JOB_COLUMNS.split(", ")[3:]
        tx.update_rows(
            "jobs",
            job_columns,
            [
                (*(row[c] for c in job_columns), row["id"])
                for _, row in sorted(self.jobs.items())
                if tuple(row.values()) != self.loaded[("job", row["id"])]
            ],
        )
        dataset_columns = _DATASET_COLUMNS.split(", ")[3:]
        tx.update_rows(
            "datasets",
            dataset_columns,
            [
                (*(row[c] for c in dataset_columns), row["id"])
                for _, row in sorted(self.datasets.items())
                if tuple(row.values()) != self.loaded[("dataset", row["id"])]
            ],
        )
        tx.write_rows(
            "dataset_versions",
            (
                "version",
                "dataset_id",
                "run_id",
                "created_at",
                "fields",
                "facets",
                "lifecycle_state",
            ),
            [self.dataset_versions[v] for v in sorted(self.dataset_versions)],
            " ON CONFLICT (version) DO UPDATE SET"
            " facets = excluded.facets, lifecycle_state = excluded.lifecycle_state",
        )
        tx.write_rows(
            "job_versions",
            ("version", "job_id", "created_at", "location", "inputs", "outputs", "run_id"),
            [self.job_versions[v] for v in sorted(self.job_versions)],
            " ON CONFLICT (version) DO UPDATE SET run_id = excluded.run_id",
        )
        tx.write_rows(
            "run_io",
            ("run_id", "dataset_id", "direction", "version", "facets"),
            [
                (run_id, dataset_id, direction, *value)
                for run_id, io in sorted(self.run_io.items())
                for (direction, dataset_id), value in sorted(io.items())
                if value is not None
            ],
            " ON CONFLICT (run_id, direction, dataset_id)"
            " DO UPDATE SET version = excluded.version, facets = excluded.facets",
        )
        set_columns = _RUN_COLUMNS.split(", ")
        tx.write_rows(
            "runs",
            ("id", "job_id", "created_at", *set_columns),
            [
                (run_id, *self.new_runs.get(run_id, (0, "")), *state)
                for run_id in sorted(self.touched_runs)
                if (state := self.runs[run_id]) is not None
            ],
            " ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in set_columns),
        )
        tx.delete_in("DELETE FROM edges WHERE job_id IN (?)", sorted(self.edges))
        tx.write_rows(
            "edges",
            ("job_id", "dataset_id", "direction"),
            [
                (job, dataset_id, direction)
                for job, edges in sorted(self.edges.items())
                for dataset_id, direction in sorted(edges)
            ],
            " ON CONFLICT DO NOTHING",
        )
        tx.delete_in(
            "DELETE FROM column_lineage WHERE dataset_id IN (?)", sorted(self.column_lineage)
        )
        tx.write_rows(
            "column_lineage",
            (
                "dataset_id",
                "field",
                "input_namespace",
                "input_name",
                "input_field",
                "description",
                "type",
            ),
            [row for _, rows in sorted(self.column_lineage.items()) for row in rows],
        )


def _column_rows(dataset_id: int, facet: Any) -> list[tuple[Any, ...]]:
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if not isinstance(fields, dict):
        return []
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
    return [(dataset_id, *key, *value) for key, value in rows.items()]


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
