"""Versioned DDL shared by the SQLite and PostgreSQL stores.

Each migration is a list of steps: SQL statements, where ``{serial}`` stands for the
dialect's auto-increment primary key, or functions of the open transaction for data
migrations. Timestamps are ISO-8601 UTC text (sortable as text on both
databases); JSON documents are text. ``events`` is the source of truth; every other table
is derived from it and could be rebuilt by replaying the events.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from provlink.canonical import canonical_json, sha256_hex
from provlink.server.tx import Tx

_PAGE = 1000


def rehash_events(tx: Tx) -> None:
    """Re-key stored events by their RFC 8785 hash (older stores keyed a sorted,
    ASCII-escaped ``json.dumps``), so a redelivered old event is still recognised and every
    stored hash matches the spool's and the ledger's. Rows whose new key another row already
    holds, or that have no RFC 8785 form, keep their old key and text."""
    last = 0
    while rows := tx.rows(
        "SELECT id, hash, payload FROM events WHERE id > ? ORDER BY id LIMIT ?", (last, _PAGE)
    ):
        for row_id, old_hash, payload in rows:
            try:
                data = canonical_json(json.loads(payload))
            except ValueError:
                continue
            digest = sha256_hex(data)
            if digest == old_hash or tx.value("SELECT 1 FROM events WHERE hash = ?", (digest,)):
                continue
            tx.run(
                "UPDATE events SET hash = ?, payload = ? WHERE id = ?",
                (digest, data.decode("utf-8"), row_id),
            )
        last = rows[-1][0]


Step = str | Callable[[Tx], None]

MIGRATIONS: list[list[Step]] = [
    [
        """CREATE TABLE events (
            id {serial},
            hash TEXT NOT NULL UNIQUE,
            event_time TEXT NOT NULL,
            event_type TEXT,
            run_id TEXT,
            job_namespace TEXT,
            job_name TEXT,
            received_at TEXT NOT NULL,
            payload TEXT NOT NULL)""",
        "CREATE INDEX events_time ON events (event_time)",
        """CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            owner_name TEXT,
            description TEXT)""",
        """CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            type TEXT,
            connection_url TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE jobs (
            id {serial},
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            facets TEXT NOT NULL,
            location TEXT,
            description TEXT,
            parent_job_name TEXT,
            current_version TEXT,
            latest_run_id TEXT,
            latest_run_at TEXT,
            deleted INTEGER NOT NULL DEFAULT 0,
            UNIQUE (namespace, name))""",
        "CREATE INDEX jobs_name ON jobs (name)",
        """CREATE TABLE job_versions (
            version TEXT PRIMARY KEY,
            job_id BIGINT NOT NULL,
            created_at TEXT NOT NULL,
            location TEXT,
            inputs TEXT NOT NULL,
            outputs TEXT NOT NULL,
            run_id TEXT)""",
        "CREATE INDEX job_versions_job ON job_versions (job_id, created_at)",
        "CREATE TABLE job_tags (job_id BIGINT NOT NULL, tag TEXT NOT NULL,"
        " PRIMARY KEY (job_id, tag))",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            job_id BIGINT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            transitioned_at TEXT NOT NULL,
            terminal INTEGER NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            nominal_start TEXT,
            nominal_end TEXT,
            facets TEXT NOT NULL,
            job_facets TEXT NOT NULL,
            job_version TEXT,
            parent_run_id TEXT)""",
        "CREATE INDEX runs_job ON runs (job_id, created_at)",
        """CREATE TABLE datasets (
            id {serial},
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            source_name TEXT NOT NULL,
            fields TEXT NOT NULL,
            facets TEXT NOT NULL,
            description TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_modified_at TEXT,
            lifecycle_state TEXT,
            current_version TEXT,
            deleted INTEGER NOT NULL DEFAULT 0,
            UNIQUE (namespace, name))""",
        "CREATE INDEX datasets_name ON datasets (name)",
        "CREATE TABLE dataset_tags (dataset_id BIGINT NOT NULL, tag TEXT NOT NULL,"
        " PRIMARY KEY (dataset_id, tag))",
        """CREATE TABLE field_tags (
            dataset_id BIGINT NOT NULL, field TEXT NOT NULL, tag TEXT NOT NULL,
            PRIMARY KEY (dataset_id, field, tag))""",
        """CREATE TABLE dataset_versions (
            version TEXT PRIMARY KEY,
            dataset_id BIGINT NOT NULL,
            run_id TEXT,
            created_at TEXT NOT NULL,
            fields TEXT NOT NULL,
            facets TEXT NOT NULL,
            lifecycle_state TEXT)""",
        "CREATE INDEX dataset_versions_ds ON dataset_versions (dataset_id, created_at)",
        """CREATE TABLE run_io (
            run_id TEXT NOT NULL,
            dataset_id BIGINT NOT NULL,
            direction TEXT NOT NULL,
            version TEXT,
            facets TEXT NOT NULL,
            PRIMARY KEY (run_id, direction, dataset_id))""",
        """CREATE TABLE edges (
            job_id BIGINT NOT NULL,
            dataset_id BIGINT NOT NULL,
            direction TEXT NOT NULL,
            PRIMARY KEY (job_id, dataset_id, direction))""",
        "CREATE INDEX edges_dataset ON edges (dataset_id)",
        """CREATE TABLE column_lineage (
            dataset_id BIGINT NOT NULL,
            field TEXT NOT NULL,
            input_namespace TEXT NOT NULL,
            input_name TEXT NOT NULL,
            input_field TEXT NOT NULL,
            description TEXT,
            type TEXT,
            PRIMARY KEY (dataset_id, field, input_namespace, input_name, input_field))""",
        "CREATE INDEX column_lineage_input ON column_lineage (input_namespace, input_name)",
        """CREATE TABLE tags (
            name TEXT PRIMARY KEY,
            description TEXT,
            created_at TEXT NOT NULL)""",
    ],
    [
        # lineage walks skip soft-deleted nodes; these keep finding them cheap
        "CREATE INDEX jobs_deleted ON jobs (id) WHERE deleted = 1",
        "CREATE INDEX datasets_deleted ON datasets (id) WHERE deleted = 1",
    ],
    [rehash_events],
    [
        # provlink serve as a witness of provlink ledgers (server/witness.py): every
        # checkpoint received, append-only, with the decision made about it
        """CREATE TABLE witness_checkpoints (
            id {serial},
            origin TEXT NOT NULL,
            tree_size BIGINT NOT NULL,
            root_hash TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            note TEXT NOT NULL,
            cosigned TEXT,
            source TEXT NOT NULL,
            received_at TEXT NOT NULL)""",
        "CREATE INDEX witness_checkpoints_origin ON witness_checkpoints (origin, id)",
    ],
]
