"""The store over a SQL database: a small connection pool, transactions with retry, migrations.

Dialect subclasses (:mod:`sqlite_store`, :mod:`postgres_store`) only open connections and
say which errors are worth retrying; ingestion (:mod:`ingest`), read queries
(:mod:`queries`) and the lineage graph (:mod:`lineage`) are shared.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import partial
from typing import Any, TypeVar

import provlink.server.dataset_queries as dataset_queries  # noqa: PLR0402 (cycle)
import provlink.server.job_queries as job_queries  # noqa: PLR0402 (cycle)
import provlink.server.lineage as lineage  # noqa: PLR0402 (cycle)
import provlink.server.queries as queries  # noqa: PLR0402 (cycle)
from provlink.server.ingest import now_iso, store_events
from provlink.server.schema import MIGRATIONS
from provlink.server.tx import Tx
from provlink.server.validation import validate_event

T = TypeVar("T")
_RETRIES = 8


def _event_page(tx: Tx, *, after: int, limit: int) -> list[tuple[Any, ...]]:
    return tx.rows(
        "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    )


class SqlStore:
    """Everything the API needs, over any connection that speaks DB-API with ``execute``."""

    dialect = "sql"
    serial = "INTEGER PRIMARY KEY"
    driver_errors: tuple[type[Exception], ...] = ()

    def __init__(self, *, pool_size: int = 8) -> None:
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self.write(self._migrate)

    # dialect hooks -------------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def _translate(self, sql: str) -> str:
        return sql

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def _pipeline(self, conn: Any) -> AbstractContextManager[Any]:
        """Batch statements whose results are not read (PostgreSQL pipeline mode)."""
        return nullcontext()

    def _lock_migrations(self, tx: Tx) -> None:
        """Serialise concurrent first opens (SQLite's BEGIN IMMEDIATE already does)."""

    def _transient(self, error: BaseException) -> bool:
        return False

    # connections ---------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._closed:
            raise RuntimeError("store is closed")
        self._slots.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                with self._lock:
                    self._all.append(conn)
            try:
                yield conn
            except BaseException:
                self._discard_if_broken(conn)
                raise
            else:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def _discard_if_broken(self, conn: Any) -> None:
        try:
            conn.execute("SELECT 1")
        except self.driver_errors:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            return
        self._idle.put(conn)

    def write(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction, retrying on lock conflicts and deadlocks."""
        for attempt in range(_RETRIES):
            with self._connection() as conn:
                try:
                    with self._pipeline(conn):
                        self._begin(conn)
                        result = work(Tx(conn, self._translate, self.dialect))
                        conn.execute("COMMIT")
                    return result
                except BaseException as error:
                    with suppress(*self.driver_errors):
                        conn.execute("ROLLBACK")
                    if not self._transient(error) or attempt == _RETRIES - 1:
                        raise
            time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Tx], T]) -> T:
        with self._connection() as conn:
            return work(Tx(conn, self._translate, self.dialect))

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(*self.driver_errors):
                conn.close()

    def _migrate(self, tx: Tx) -> None:
        self._lock_migrations(tx)
        tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = tx.value("SELECT MAX(version) FROM schema_version") or 0
        for number, statements in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            for step in statements:
                if isinstance(step, str):
                    tx.run(step.replace("{serial}", self.serial))
                else:
                    step(tx)
            tx.run("INSERT INTO schema_version (version) VALUES (?)", (number,))

    # ingestion -----------------------------------------------------------------------------
    def ingest(self, event: dict[str, Any]) -> bool:
        """Validate and store one event; ``False`` when the identical event was already stored."""
        validate_event(event)
        received = now_iso()
        return self.write(lambda tx: store_events(tx, [event], received))[0]

    def ingest_many(
        self, events: list[dict[str, Any]], *, validated: bool = False
    ) -> list[bool]:
        """Store events in one transaction; one ``True`` per newly stored event.

        ``validated``: the caller (the API) has already run :func:`validate_event` on each.
        """
        for event in [] if validated else events:
            validate_event(event)
        received = now_iso()
        return self.write(lambda tx: store_events(tx, events, received))

    # raw events ----------------------------------------------------------------------------
    def iter_events(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every stored event in arrival order, read in pages so exports stream."""
        last = 0
        while True:
            rows = self.read(partial(_event_page, after=last, limit=batch))
            if not rows:
                return
            for _, payload in rows:
                yield json.loads(payload)
            last = rows[-1][0]

    def counts(self) -> dict[str, int]:
        return self.read(queries.counts)

    def list_events(self, **kw: Any) -> dict[str, Any]:
        return self.read(lambda tx: queries.list_events(tx, **kw))

    # Marquez resources ----------------------------------------------------------------------
    def namespaces(self, limit: int, offset: int) -> dict[str, Any]:
        return self.read(lambda tx: queries.namespaces(tx, limit, offset))

    def namespace(self, name: str) -> dict[str, Any] | None:
        return self.read(lambda tx: queries.namespace(tx, name))

    def datasets(self, namespace: str, limit: int, offset: int) -> dict[str, Any]:
        return self.read(lambda tx: dataset_queries.datasets(tx, namespace, limit, offset))

    def dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.read(lambda tx: dataset_queries.dataset(tx, namespace, name))

    def dataset_versions(
        self, namespace: str, name: str, limit: int, offset: int
    ) -> dict[str, Any] | None:
        return self.read(
            lambda tx: dataset_queries.dataset_versions(tx, namespace, name, limit, offset)
        )

    def dataset_version(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        return self.read(lambda tx: dataset_queries.dataset_version(tx, namespace, name, version))

    def delete_dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.write(lambda tx: dataset_queries.delete_dataset(tx, namespace, name))

    def tag_dataset(
        self, namespace: str, name: str, tag: str, field: str | None, add: bool
    ) -> dict[str, Any] | None:
        return self.write(
            lambda tx: dataset_queries.tag_dataset(tx, namespace, name, tag, field, add)
        )

    def jobs(
        self, namespace: str | None, states: list[str], limit: int, offset: int
    ) -> dict[str, Any]:
        return self.read(lambda tx: job_queries.jobs(tx, namespace, states, limit, offset))

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.read(lambda tx: job_queries.job(tx, namespace, name))

    def delete_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.write(lambda tx: job_queries.delete_job(tx, namespace, name))

    def tag_job(self, namespace: str, name: str, tag: str, add: bool) -> dict[str, Any] | None:
        return self.write(lambda tx: job_queries.tag_job(tx, namespace, name, tag, add))

    def job_runs(self, namespace: str, name: str, limit: int, offset: int) -> dict[str, Any] | None:
        return self.read(lambda tx: job_queries.job_runs(tx, namespace, name, limit, offset))

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self.read(lambda tx: job_queries.run(tx, run_id))

    def run_facets(self, run_id: str, kind: str) -> dict[str, Any] | None:
        return self.read(lambda tx: job_queries.run_facets(tx, run_id, kind))

    def tags(self, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self.read(lambda tx: queries.tags(tx, limit, offset))

    def put_tag(self, name: str, description: str | None) -> dict[str, Any]:
        return self.write(lambda tx: queries.put_tag(tx, name, description))

    def search(self, **kw: Any) -> dict[str, Any]:
        return self.read(lambda tx: queries.search(tx, **kw))

    def lineage(self, node_id: str, depth: int) -> dict[str, Any]:
        return self.read(lambda tx: lineage.lineage_graph(tx, node_id, depth))

    def column_lineage(self, node_id: str, depth: int, with_downstream: bool) -> dict[str, Any]:
        return self.read(
            lambda tx: lineage.column_lineage_graph(tx, node_id, depth, with_downstream)
        )
