"""The fleet spool: the same spool and ledger in PostgreSQL, shared by every worker.

``spool_url: postgresql://…`` (or ``PROVLINK_SPOOL_URL``) puts the events, their delivery
state and the Merkle ledger in one database, so a worker (a Celery worker, a Kubernetes
pod, a Dagster run process) can die or vanish right after its task and whichever process
holds the sending lease (or ``provlink sender``) delivers what it spooled. One log for
the whole fleet: every write takes ``pg_advisory_xact_lock`` first, so appends are
serialised across hosts exactly as ``BEGIN IMMEDIATE`` serialises them on one SQLite file.

Only the storage differs from :class:`provlink.delivery.spool.Spool`: this class reuses
its methods and :class:`provlink.delivery.ledger_store.LedgerTables` through a thin
connection adapter (``?`` placeholders -> ``%s``; SQLite's ``INSERT OR IGNORE/REPLACE``
-> ``ON CONFLICT``), so the ledger's code (entries, Merkle tree, checkpoints, verify) is
the one already tested on SQLite. Each write transaction is pipelined (psycopg's pipeline
mode): the client waits only where the code reads a result and for the COMMIT, which
returns once PostgreSQL has flushed it, so a commit's WAL flush, not the round trips, is
what an append costs. Written by hand because no library maps SQLite's SQL
dialect onto psycopg for this handful of statements.

Connections come from a small ``psycopg_pool`` pool per spool: each use checks one out,
and reads run beside writes. One idle for a while is checked first with a round trip, so a
connection PostgreSQL dropped (a restart) is replaced rather than failing an append; one in
steady use is not, which keeps that round trip off every append. Every connection has a connect
timeout and a statement timeout, and a checkout waits at most ``spool_timeout``: a
PostgreSQL that is down or slow fails an append within that bound. At open, a refused
first connection fails at once rather than after the whole wait, and the capture point
falls back to the local SQLite spool (:mod:`provlink.delivery.spool_open`). The pool's own
warnings (a reconnection attempt each) go through :mod:`provlink.pg_pool_log`: the user's
log gets one provlink warning and a count, not the stream.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, TypeVar

from provlink import pg_pool_log as pool_log
from provlink.canonical import sha256_hex
from provlink.delivery.ledger_store import META_QUERY, LedgerTables
from provlink.delivery.spool import Spool
from provlink.errors import SpoolError
from provlink.events.redact import scrub_text
from provlink.governance import entry as entries
from provlink.pg_pool_log import redact_url

T = TypeVar("T")
LOCK_KEY = 0x70726F766C696E6B  # "provlink": the advisory lock every write takes
FALLBACK = "fleet.fallback"  # ledger entry: events that reached this log via a local spool
IDLE_CHECK = 1.0  # seconds a pooled connection may sit idle before a checkout checks it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT PRIMARY KEY,
    run_id TEXT NOT NULL,
    payload TEXT,
    payload_sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL DEFAULT '',
    entry_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at DOUBLE PRECISION,
    leaf_index BIGINT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS events_dead ON events (seq) WHERE state = 2;
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);
CREATE TABLE IF NOT EXISTS sender_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT,
    expires DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO sender_lease (id, owner, expires) VALUES (1, NULL, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ledger_leaves (
    leaf_index BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    entry TEXT NOT NULL,
    leaf_hash BYTEA NOT NULL,
    payload TEXT
);
CREATE TABLE IF NOT EXISTS ledger_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    root_hash BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_KEYS = {"ledger_meta": ("key",), "ledger_nodes": ("level", "idx")}
_UPSERT = re.compile(r"INSERT OR (IGNORE|REPLACE) INTO (\w+) \(([^)]*)\)(.*)", re.S)


def _translate(sql: str) -> str:
    """SQLite's dialect as the spool writes it -> PostgreSQL's."""
    match = _UPSERT.match(sql)
    if match:
        how, table, cols, rest = match.groups()
        keys = _KEYS[table]
        if how == "IGNORE":
            tail = f" ON CONFLICT ({', '.join(keys)}) DO NOTHING"
        else:
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in
                             (c.strip() for c in cols.split(",")) if c not in keys)
            tail = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        sql = f"INSERT INTO {table} ({cols}){rest}{tail}"
    return sql.replace("?", "%s")


class _Checkout:
    """The spool's ``_lock``: ``with`` it, this thread has a pooled connection for the block
    (nested blocks share it, so a transaction stays on one connection). A connection that
    cannot be had within ``timeout``, or a PostgreSQL error in the block, is a
    :class:`SpoolError`."""

    def __init__(self, pool: Any, timeout: float, describe: Callable[[Exception], str]) -> None:
        import psycopg

        self._pool, self._timeout, self._describe = pool, timeout, describe
        self._error = psycopg.Error
        self._local = threading.local()

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("the PostgreSQL spool was used outside its checkout")
        return conn

    def __enter__(self) -> None:
        local = self._local
        if getattr(local, "depth", 0) == 0:
            try:
                local.conn = self._pool.getconn(self._timeout)
            except self._error as exc:
                raise SpoolError(self._describe(exc)) from exc
        local.depth = getattr(local, "depth", 0) + 1

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        local = self._local
        local.depth -= 1
        if local.depth == 0:
            conn, local.conn = local.conn, None
            conn.returned_at = time.monotonic()
            self._pool.putconn(conn)  # a broken one, or one left in a transaction, is dropped
        if isinstance(exc, self._error):
            raise SpoolError(self._describe(exc)) from exc


class _Connection:
    """The slice of ``sqlite3.Connection`` the spool and the ledger tables use, on the
    connection this thread checked out."""

    def __init__(self, checkout: _Checkout) -> None:
        self._checkout = checkout

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._checkout.conn.execute(_translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cur = self._checkout.conn.cursor()
        if rows:
            cur.executemany(_translate(sql), [tuple(r) for r in rows])
        return cur

    def script(self, sql: str) -> None:
        """Several statements in one simple query (no parameters)."""
        self._checkout.conn.execute(sql)


def _watched(first: threading.Event, failed: list[Exception], bound: float) -> type[Any]:
    """The pool's connection class: it reports the end of each connection attempt, so the
    open waits for the first one, not for the pool's whole bounded wait; and it waits at
    most ``bound`` seconds for each answer. ``statement_timeout`` is the server's to
    enforce: a hung server (or a partitioned network) never sends its error, and an append
    would wait forever. A connection that does not answer in time is closed (its state is
    unknown), so the transaction fails at once and the pool replaces it."""
    import psycopg
    from psycopg import errors

    class Watched(psycopg.Connection):
        returned_at = 0.0  # when it last went back to the pool (monotonic)

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval, bound if timeout is None else timeout)
            except errors._WaitTimeout as exc:  # raised for this very parameter
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"no answer from PostgreSQL within {bound:g}s") from exc

        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().connect(*args, **kwargs)
            except psycopg.Error as exc:
                failed.append(exc)
                raise
            finally:
                first.set()

    return Watched


def _check_if_idle(conn: Any) -> None:
    """The pool's check on checkout: a round trip only for a connection idle a while."""
    if time.monotonic() - conn.returned_at > IDLE_CHECK:
        conn.execute("")


class PgLedgerTables(LedgerTables):
    """The ledger tables on PostgreSQL; in a write, the counters in ``ledger_meta`` are
    asked for up front, so their answer comes back with the lock's (no round trip of its
    own)."""

    _meta_query: Any = None

    def prefetch_meta(self) -> None:
        self._meta_query = self.conn.execute(META_QUERY)

    def _meta(self) -> dict[str, str]:
        if self._meta_read is None and self._meta_query is not None:
            self._meta_read = dict(self._meta_query.fetchall())
        self._meta_query = None
        return super()._meta()

    def begin(self) -> None:
        super().begin()
        self._meta_query = None

    def add_checkpoint(self, size: int, root: bytes, time_ms: int, note: str) -> int:
        row = self.conn.execute("INSERT INTO ledger_checkpoints (tree_size, root_hash, time_ms, "
                                "note) VALUES (?, ?, ?, ?) RETURNING id",
                                (size, root, time_ms, note)).fetchone()
        return int(row[0])


class PgSpool(Spool):
    """:class:`Spool` on PostgreSQL (one database per fleet); see the module docstring."""

    def __init__(self, url: str, *, timeout: float = 2.0, pool_size: int = 4,
                 error_filter: Callable[[str], str] | None = None) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        self.path = redact_url(url)  # type: ignore[assignment]  # shown in errors
        self._error_filter = error_filter if error_filter is not None else scrub_text
        self._psycopg_error = psycopg.Error
        millis = max(1, int(timeout * 1000))
        first, failed = threading.Event(), list[Exception]()
        self._pool_name = pool_log.pool_name("spool")
        pool_log.watch(self._pool_name, redact_url(url))
        self._pool = ConnectionPool(
            url, connection_class=_watched(first, failed, timeout), min_size=1, max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout)),
                    "options": f"-c statement_timeout={millis} -c lock_timeout={millis}"},
            check=_check_if_idle, timeout=timeout, num_workers=1,
            configure=pool_log.tag(self._pool_name),
            name=self._pool_name, open=False)
        self._pool.open()
        deadline = time.monotonic() + timeout
        if not first.wait(timeout) or failed:
            # a connect under way ends on its own timeout: wait for it only within the bound
            self._close_pool(min(0.1, max(0.0, deadline - time.monotonic())))
            reason = (self._error_filter(" ".join(str(failed[0]).split())) if failed
                      else f"no connection within {timeout:g}s")
            raise SpoolError(f"cannot reach the PostgreSQL spool at {self.path}: {reason} "
                             "(check spool_url / PROVLINK_SPOOL_URL; captures fall back to "
                             "the local spool)")
        checkout = _Checkout(self._pool, timeout, self._describe)
        self._lock = self._checkout = checkout  # type: ignore[assignment]
        self._pg = _Connection(checkout)
        self._conn = self._pg  # type: ignore[assignment]
        self._tables_lock = threading.Lock()  # the ledger tables' per-transaction state
        self._tables: PgLedgerTables = PgLedgerTables(self._conn)
        self._origin = None
        try:
            # several statements in one simple query: not in a pipeline (extended protocol)
            self._transaction(lambda _t: self._pg.script(_SCHEMA), "initialise",
                              pipelined=False)
        except SpoolError:
            self.close()
            raise
        pool_log.opened(self._pool_name)

    def _describe(self, exc: Exception) -> str:
        return (f"cannot use the PostgreSQL spool at {self.path}: "
                f"{self._error_filter(str(exc))}")

    def close(self) -> None:
        self._close_pool(1.0)

    def _close_pool(self, timeout: float) -> None:
        pool_log.closing(self._pool_name)
        self._pool.close(timeout=timeout)
        pool_log.closed(self._pool_name)

    def read(self, work: Callable[[LedgerTables], T]) -> T:
        with self._tables_lock, self._lock:
            self._tables.begin()
            return work(self._tables)

    def write(self, work: Callable[[LedgerTables], T], what: str = "write to") -> T:
        """Run ``work`` in one transaction holding the fleet's advisory lock, its statements
        pipelined: the client waits only where ``work`` reads a result (the lock's answer
        comes with the first one) and for the COMMIT, which returns once it is durable."""
        return self._transaction(work, what, pipelined=True)

    def _transaction(self, work: Callable[[LedgerTables], T], what: str, *,
                     pipelined: bool) -> T:
        with self._tables_lock, self._lock:
            try:
                with self._checkout.conn.pipeline() if pipelined else nullcontext():
                    self._conn.execute("BEGIN")
                    self._conn.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
                    self._tables.begin()
                    if pipelined:
                        self._tables.prefetch_meta()
                    result = work(self._tables)
                    self._tables.before_commit()
                    self._conn.execute("COMMIT")
            except self._psycopg_error as exc:
                self._rollback()
                raise SpoolError(f"cannot {what} the spool at {self.path}: "
                                 f"{self._error_filter(str(exc))}") from exc
            except BaseException:
                self._rollback()
                raise
        return result

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone; nothing to undo then
            pass

    def _update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.write(lambda _t: self._conn.executemany(sql, rows), "update")

    def acquire_lease(self, owner: str, ttl: float) -> bool:
        from provlink.delivery.spool import _dead_local

        def take(_tables: LedgerTables) -> bool:
            now = time.time()
            holder, expires = self._conn.execute(
                "SELECT owner, expires FROM sender_lease WHERE id = 1").fetchone()
            free = holder is None or holder == owner or expires < now or _dead_local(holder)
            if free:
                self._conn.execute("UPDATE sender_lease SET owner = ?, expires = ? WHERE id = 1",
                                   (owner, now + ttl))
            return bool(free)

        try:
            return self.write(take, "take the lease of")
        except SpoolError:
            return False

    def adopt(self, payloads: list[str], source: str) -> int:
        """Append events spooled locally while this database was unreachable, and one
        ``fleet.fallback`` entry naming them and where they came from: one transaction.

        An event already in this log is not appended again: its append (or an earlier
        adoption) committed here but the answer was lost, so the process spooled it locally
        too. The same event has the same digest, or, for a terminal event, the same run,
        type, time and job: retried locally, it differs only in its ledger facet (it anchors
        to the local log), and the one anchored to this log is kept. The entry lists the
        digests left out apart."""
        import json

        def insert(tables: LedgerTables) -> int:
            now = time.time_ns()
            row = self._conn.execute("SELECT (SELECT MAX(seq) FROM events), "
                                     "(SELECT MAX(leaf_index) FROM ledger_leaves)").fetchone()
            seq, index = (row[0] or 0), (-1 if row[1] is None else row[1])
            offered = [(payload, json.loads(payload)) for payload in payloads]
            present = self._present({_run_id(event) for _, event in offered})
            seqs, digests, already = [], [], []
            for payload, event in offered:
                digest = sha256_hex(payload.encode())
                identity = _identity(event)
                if digest in present or (identity is not None and identity in present):
                    already.append(digest)
                    continue
                present |= {digest, identity}
                seq, index = seq + 1, index + 1
                _, leaf = tables.add(entries.EVENT, entries.event_fields(event, digest, seq),
                                     time_ms=now // 1_000_000, index=index)
                self._conn.execute(
                    "INSERT INTO events (seq, run_id, payload, payload_sha256, entry_hash, "
                    "created_at, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, _run_id(event), payload, digest, leaf.hex(), now / 1e9, index))
                seqs.append(seq)
                digests.append(digest)
            if seqs:
                fields: dict[str, Any] = {"source": source, "events": seqs,
                                          "payload_sha256": digests}
                if already:
                    fields["already_in_log"] = already
                tables.add(FALLBACK, fields, index=index + 1)
            return len(seqs)

        return self.write(insert, "append to")

    def _present(self, run_ids: set[str]) -> set[Any]:
        """Digests and identities of the events this log holds for these runs (a pruned
        event by its digest only)."""
        import json

        present: set[Any] = set()
        for payload, digest in self._conn.execute(
                "SELECT payload, payload_sha256 FROM events WHERE run_id = ANY(?)",
                (sorted(run_ids),)).fetchall():
            present.add(digest)
            if payload is not None:
                present.add(_identity(json.loads(payload)))
        present.discard(None)
        return present


_TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})


def _run_id(event: dict[str, Any]) -> str:
    return str(event.get("run", {}).get("runId", ""))


def _identity(event: dict[str, Any]) -> tuple[str, ...] | None:
    """What makes two payloads one terminal event: its run, type, time and job. Only a
    terminal event is retried with other bytes (its ledger facet anchors to the log it went
    to); any other event is known by its digest alone (a run may send several RUNNING
    events at one time)."""
    job = event.get("job", {})
    if not _run_id(event) or event.get("eventType") not in _TERMINAL:
        return None
    return (_run_id(event), str(event.get("eventType", "")), str(event.get("eventTime", "")),
            str(job.get("namespace", "")), str(job.get("name", "")))
