"""The durable local spool: one SQLite append per event, shared by every process.

Appending is the only work a capture point does on the task's critical path. The same
``BEGIN IMMEDIATE`` transaction that stores the event also stores its ledger entry, the
next leaf of the Merkle log (:mod:`provlink.governance.log`), so the log is serialised
across processes without a second write. Delivery-state changes (sent, dead-lettered,
requeued) and payload pruning append entries of their own in the transaction that makes
them: the ``state`` column is a cache the log can check. The ledger tables are in
:mod:`provlink.delivery.ledger_store`. SQLite in WAL mode survives the writer being
SIGKILLed after commit; ``spool_sync='full'`` also survives power loss.

The payload is the event's RFC 8785 form and ``payload_sha256`` its
:func:`provlink.canonical.json_digest`, the hash the backend keys the event by. The file
and its WAL/SHM are private to their owner (:mod:`provlink.private_files`).

Delivery state per event: ``state`` (pending, sent, dead-lettered), ``attempts`` (failures
the backend or target charged to this event) and ``last_error``. Every write of
``last_error`` goes through :meth:`Spool.error_text`: bounded, and redacted (the runtime's
redactor, or :func:`provlink.events.redact.scrub_text` when none is given): a target's
error can quote a URL with credentials or the event's own text.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from provlink.canonical import NotCanonicalError, canonical_json, sha256_hex
from provlink.delivery.fork_guard import section
from provlink.delivery.ledger_store import LEDGER_SCHEMA, LedgerTables
from provlink.errors import PrivateFileError, SpoolError
from provlink.events.redact import scrub_text
from provlink.governance import entry as entries
from provlink.private_files import private_dir, private_file
from provlink.sqlite_wal import enable_wal

PENDING, SENT, DEAD = 0, 1, 2
ERROR_MAX_CHARS = 4000
# ``PRAGMA user_version`` of a spool whose schema is current: a reopen runs no schema
# statement (the script's INSERT takes the write lock, so every task process's open waited
# behind any writer). Raise it with any change to the schema below.
SCHEMA_VERSION = 1
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    payload TEXT,
    payload_sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL DEFAULT '',
    entry_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL,
    leaf_index INTEGER
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS events_dead ON events (seq) WHERE state = 2;
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);
CREATE TABLE IF NOT EXISTS sender_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT,
    expires REAL NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO sender_lease (id, owner, expires) VALUES (1, NULL, 0);
""" + LEDGER_SCHEMA


class Appended(NamedTuple):
    seq: int  # the event's spool row
    entry_hash: str  # hex leaf hash of its ledger entry
    leaf_index: int
    then: Any = None  # what ``append(then=...)`` returned


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolEntry:
    seq: int
    run_id: str
    payload: str | None
    payload_sha256: str
    entry_hash: str  # hex leaf hash of its ledger entry
    created_at: float
    state: int
    attempts: int
    last_error: str | None
    leaf_index: int | None  # None only for rows spooled before the Merkle ledger


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolStatus:
    pending: int
    sent: int
    dead: int
    oldest_pending_age: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "sent": self.sent, "dead_letter": self.dead,
                "oldest_pending_age_seconds": self.oldest_pending_age}


class Spool:
    """A SQLite-backed append log of events with delivery state, and the ledger's storage
    (:class:`provlink.governance.log.LedgerStore`)."""

    def __init__(self, path: Path, *, sync: str = "normal",
                 error_filter: Callable[[str], str] | None = None) -> None:
        self.path = path
        self._error_filter = error_filter if error_filter is not None else scrub_text
        try:
            private_file(private_dir(path.parent) / path.name)
            self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
            enable_wal(self._conn, timeout=30.0)
            self._conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            if self._conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._create_schema()
        except PrivateFileError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool at {path}: {exc} "
                             "(set PROVLINK_HOME to a writable directory)") from exc
        self._lock = threading.Lock()
        self._tables = LedgerTables(self._conn)
        self._origin: str | None = None

    def _create_schema(self) -> None:
        """Create or upgrade the tables and stamp :data:`SCHEMA_VERSION`, in one transaction
        (processes opening a new spool together each run it, one after the other)."""
        try:
            self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
            if "leaf_index" not in columns:  # a spool from before the Merkle ledger
                self._conn.execute("ALTER TABLE events ADD COLUMN leaf_index INTEGER")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def close(self) -> None:
        with self._lock, section():
            self._conn.close()

    def write(self, work: Callable[[LedgerTables], T], what: str = "write to") -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction: serialised across processes."""
        with self._lock, section():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._tables.begin()
                result = work(self._tables)
                self._tables.before_commit()
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot {what} the spool at {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
        return result

    def read(self, work: Callable[[LedgerTables], T]) -> T:
        with self._lock, section():
            self._tables.begin()
            return work(self._tables)

    @property
    def origin(self) -> str:
        """The log's identity in its checkpoints: made once per spool file, then stable."""
        if self._origin is None:
            self._origin = self.write(lambda tables: tables.origin(), "initialise")
        return self._origin

    # -- the critical path -------------------------------------------------------------
    def append(self, event: dict[str, Any] | Callable[[LedgerTables], dict[str, Any]],
               then: Callable[[LedgerTables], T] | None = None) -> Appended:
        """Durably append one event and its ledger entry; ``then`` runs in the same
        transaction (a checkpoint covering the event: one commit for both). ``event`` may
        be made in the transaction, before its entry (from an anchor checkpoint made there:
        see :func:`provlink.delivery.runtime.append_terminal`)."""
        encoded = None if callable(event) else self._encode(event)  # fails before the lock

        def insert(tables: LedgerTables) -> Appended:
            made = event(tables) if callable(event) else event
            payload, digest = encoded if encoded is not None else self._encode(made)
            now = time.time_ns()
            row = self._conn.execute("SELECT (SELECT MAX(seq) FROM events), "
                                     "(SELECT MAX(leaf_index) FROM ledger_leaves)").fetchone()
            seq = (row[0] or 0) + 1
            index, leaf = tables.add(entries.EVENT, entries.event_fields(made, digest, seq),
                                     time_ms=now // 1_000_000,
                                     index=0 if row[1] is None else row[1] + 1)
            self._conn.execute(
                "INSERT INTO events (seq, run_id, payload, payload_sha256, entry_hash, "
                "created_at, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, str(made.get("run", {}).get("runId", "")), payload, digest,
                 leaf.hex(), now / 1e9, index))
            return Appended(seq, leaf.hex(), index, None if then is None else then(tables))

        return self.write(insert, "append to")

    @staticmethod
    def _encode(event: dict[str, Any]) -> tuple[str, str]:
        """(RFC 8785 payload, its SHA-256)."""
        try:
            data = canonical_json(event)
        except NotCanonicalError as exc:
            raise SpoolError(f"cannot spool an event without an RFC 8785 form: {exc}") from exc
        return data.decode("utf-8"), sha256_hex(data)

    def append_entry(self, kind: str, fields: Mapping[str, Any],
                     payload: str | None = None) -> tuple[int, bytes]:
        """Append a ledger entry that is not a spooled event (a registry action, ...)."""
        return self.write(lambda tables: tables.add(kind, fields, payload), "append to")

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    # -- the sender's side -------------------------------------------------------------
    def pending(self, limit: int, *, after: int = 0) -> list[tuple[int, str]]:
        """The oldest pending events past seq ``after``, in append order (at most ``limit``)."""
        with self._lock, section():
            return self._conn.execute(
                "SELECT seq, payload FROM events WHERE state = 0 AND seq > ? ORDER BY seq "
                "LIMIT ?", (after, limit)).fetchall()

    def mark_sent(self, seqs: list[int]) -> None:
        self._transition(seqs, SENT, "UPDATE events SET state = 1, sent_at = ?, "
                         "attempts = attempts + 1 WHERE seq = ?",
                         [(time.time(), s) for s in seqs])

    def mark_dead(self, seq: int, error: str) -> None:
        text = self.error_text(error)
        self._transition([seq], DEAD, "UPDATE events SET state = 2, last_error = ?, "
                         "attempts = attempts + 1 WHERE seq = ?", [(text, seq)],
                         {"error_sha256": sha256_hex(text.encode())})

    def _transition(self, seqs: list[int], state: int, sql: str, rows: list[tuple[Any, ...]],
                    extra: Mapping[str, Any] | None = None) -> None:
        """A delivery-state change: the rows' update and its ledger entry, one transaction."""
        if not seqs:
            return

        def apply(tables: LedgerTables) -> None:
            self._conn.executemany(sql, rows)
            tables.add(entries.DELIVERY, {**(extra or {}), "state": entries.STATE_NAMES[state],
                                          "events": sorted(seqs)})

        self.write(apply, "update")

    def mark_failed_attempt(self, seq: int, error: str) -> None:
        self.record_failure(seq, error)

    def record_failure(self, seq: int, error: str, *, max_attempts: int | None = None,
                       counted: bool = True) -> tuple[int, bool]:
        """Record a failed delivery of one event; returns (attempts, dead-lettered).

        A ``counted`` failure (the backend or target answered and failed this event) adds
        an attempt, and the event is dead-lettered once it reaches ``max_attempts``; an
        uncounted one (the backend was unreachable) only records the error: an outage
        must never dead-letter what it delayed.
        """
        text = self.error_text(error)
        limit = max_attempts if max_attempts is not None else -1
        step = 1 if counted else 0

        def record(tables: LedgerTables) -> Any:
            before = self._conn.execute("SELECT state FROM events WHERE seq = ?",
                                        (seq,)).fetchone()
            self._conn.execute(
                "UPDATE events SET attempts = attempts + ?, last_error = ?, "
                "state = CASE WHEN ? > 0 AND attempts + ? >= ? THEN 2 ELSE state END "
                "WHERE seq = ? AND state = 0", (step, text, limit, step, limit, seq))
            row = self._conn.execute("SELECT attempts, state FROM events WHERE seq = ?",
                                     (seq,)).fetchone()
            if row and before and row[1] == DEAD and before[0] != DEAD:  # a state change
                tables.add(entries.DELIVERY, {"error_sha256": sha256_hex(text.encode()),
                                              "state": "dead", "events": [seq]})
            return row

        row = self.write(record, "update")
        return (row[0], row[1] == DEAD) if row else (0, False)

    def error_text(self, error: str) -> str:
        """The one place ``last_error`` text is shaped before it is stored (or logged):
        redacted, then bounded."""
        return self._error_filter(error)[:ERROR_MAX_CHARS]

    def requeue_dead(self) -> int:
        def requeue(tables: LedgerTables) -> int:
            seqs = [r[0] for r in self._conn.execute(
                "SELECT seq FROM events WHERE state = 2 ORDER BY seq").fetchall()]
            if seqs:
                tables.add(entries.DELIVERY, {"state": "pending", "events": seqs})
                self._conn.execute("UPDATE events SET state = 0, attempts = 0 WHERE state = 2")
            return len(seqs)

        return self.write(requeue, "update")

    def _update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self._lock, section():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot update the spool at {self.path}: {exc}") from exc

    # -- the lease: one sending process at a time keeps order within a run -------------
    def acquire_lease(self, owner: str, ttl: float) -> bool:
        """Take or renew the sending lease; a holder on this host whose process died
        loses it at once, any other holder when its lease expires."""
        now = time.time()
        with self._lock, section():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                holder, expires = self._conn.execute(
                    "SELECT owner, expires FROM sender_lease WHERE id = 1").fetchone()
                free = holder is None or holder == owner or expires < now or _dead_local(holder)
                if free:
                    self._conn.execute(
                        "UPDATE sender_lease SET owner = ?, expires = ? WHERE id = 1",
                        (owner, now + ttl))
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()
                return False
            return free

    def release_lease(self, owner: str) -> None:
        self._update("UPDATE sender_lease SET owner = NULL, expires = 0 WHERE id = 1 AND owner = ?",
                     [(owner,)])

    def has_pending(self) -> bool:
        with self._lock, section():
            return self._conn.execute(
                "SELECT 1 FROM events WHERE state = 0 LIMIT 1").fetchone() is not None

    def prune_payloads(self, older_than: float) -> int:
        """Drop the payloads of events sent before ``older_than`` (epoch seconds).

        Leaves, their digests and every checkpoint stay, so verification and proofs still
        work; a ``retention.prune`` entry records which payloads went (a payload missing
        without one is reported by ``provlink verify``). Disk stays bounded.
        """
        def prune(tables: LedgerTables) -> int:
            seqs = [r[0] for r in self._conn.execute(
                "SELECT seq FROM events WHERE state = 1 AND payload IS NOT NULL AND sent_at < ? "
                "ORDER BY seq", (older_than,)).fetchall()]
            if seqs:
                tables.add(entries.PRUNE, {"events": seqs})
                self._conn.execute(
                    "UPDATE events SET payload = NULL WHERE state = 1 AND payload IS NOT NULL "
                    "AND sent_at < ?", (older_than,))
            return len(seqs)

        return self.write(prune, "prune")

    def latest_for_run(self, run_id: str) -> tuple[int, str] | None:
        """(leaf index, hex leaf hash) of the newest ledger entry of one OpenLineage run."""
        with self._lock, section():
            row = self._conn.execute(
                "SELECT leaf_index, entry_hash FROM events WHERE run_id = ? "
                "ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
        return (row[0], row[1]) if row else None

    # -- inspection ----------------------------------------------------------------------
    def status(self) -> SpoolStatus:
        with self._lock, section():
            counts = dict(self._conn.execute(
                "SELECT state, COUNT(*) FROM events GROUP BY state").fetchall())
            oldest = self._conn.execute(
                "SELECT MIN(created_at) FROM events WHERE state = 0").fetchone()[0]
        return SpoolStatus(pending=counts.get(PENDING, 0), sent=counts.get(SENT, 0),
                           dead=counts.get(DEAD, 0),
                           oldest_pending_age=None if oldest is None else time.time() - oldest)

    def entries(self, *, state: int | None = None, batch: int = 500) -> Iterator[SpoolEntry]:
        """Every entry in order (optionally of one state), read in bounded batches."""
        last = 0
        while True:
            with self._lock, section():
                sql = ("SELECT seq, run_id, payload, payload_sha256, entry_hash, created_at, "
                       "state, attempts, last_error, leaf_index FROM events WHERE seq > ?")
                args: tuple[Any, ...] = (last,)
                if state is not None:
                    sql += " AND state = ?"
                    args += (state,)
                rows = self._conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield SpoolEntry(seq=row[0], run_id=row[1], payload=row[2],
                                 payload_sha256=row[3], entry_hash=row[4], created_at=row[5],
                                 state=row[6], attempts=row[7], last_error=row[8],
                                 leaf_index=row[9])
            last = rows[-1][0]


def default_owner() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"


def _dead_local(owner: str) -> bool:
    """Whether a lease owner names a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != os.uname().nodename or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
