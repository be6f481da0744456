"""The durable local spool: one SQLite append per event, shared by every process.

Appending is the only work a capture point does on the task's critical path. Each row also
carries a link of a tamper-evident hash chain (``entry_hash = sha256(seq, prev_hash,
payload_sha256)``), computed inside the same ``BEGIN IMMEDIATE`` transaction, so the chain
is serialised across processes without a second write. SQLite in WAL mode survives the
writer being SIGKILLed after commit; ``spool_sync='full'`` also survives power loss.

The payload is the event's RFC 8785 form and ``payload_sha256`` its
:func:`provlink.canonical.json_digest`, the hash the backend keys the event by. Rows written
before that (sorted JSON, non-ASCII kept) stay readable and verifiable: the chain hashes
the stored text. The file and its WAL/SHM are private to their owner
(:mod:`provlink.private_files`).

Delivery state per event: ``state`` (pending, sent, dead-lettered), ``attempts`` (failures
the backend or target charged to this event) and ``last_error``. Every write of
``last_error`` goes through :meth:`Spool._error_text` (bounded, and the one place a filter
such as redaction applies).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provlink.canonical import NotCanonicalError, canonical_json, sha256_hex
from provlink.errors import PrivateFileError, SpoolError
from provlink.private_files import private_dir, private_file

PENDING, SENT, DEAD = 0, 1, 2
GENESIS = "0" * 64
ERROR_MAX_CHARS = 4000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    payload TEXT,
    payload_sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL
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
"""


def entry_hash(seq: int, prev_hash: str, payload_sha256: str) -> str:
    """One link of the ledger's hash chain."""
    return sha256_hex(f"{seq}\n{prev_hash}\n{payload_sha256}".encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolEntry:
    seq: int
    run_id: str
    payload: str | None
    payload_sha256: str
    prev_hash: str
    entry_hash: str
    created_at: float
    state: int
    attempts: int
    last_error: str | None


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
    """A SQLite-backed append log of events with delivery state."""

    def __init__(self, path: Path, *, sync: str = "normal",
                 error_filter: Callable[[str], str] | None = None) -> None:
        self.path = path
        self._error_filter = error_filter
        try:
            private_file(private_dir(path.parent) / path.name)
            self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            self._conn.executescript(_SCHEMA)
        except PrivateFileError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool at {path}: {exc} "
                             "(set PROVLINK_HOME to a writable directory)") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- the critical path -------------------------------------------------------------
    def append(self, event: dict[str, Any]) -> tuple[int, str]:
        """Durably append one event; returns its sequence number and ledger entry hash."""
        try:
            data = canonical_json(event)
        except NotCanonicalError as exc:
            raise SpoolError(f"cannot spool an event without an RFC 8785 form: {exc}") from exc
        payload, digest = data.decode("utf-8"), sha256_hex(data)
        run_id = str(event.get("run", {}).get("runId", ""))
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute(
                    "SELECT seq, entry_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                link = entry_hash(seq, prev, digest)
                self._conn.execute(
                    "INSERT INTO events (seq, run_id, payload, payload_sha256, prev_hash, "
                    "entry_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, run_id, payload, digest, prev, link, time.time()),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot append to the spool at {self.path}: {exc}") from exc
        return seq, link

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    # -- the sender's side -------------------------------------------------------------
    def pending(self, limit: int) -> list[tuple[int, str]]:
        """The oldest pending events, in append order (bounded: at most ``limit``)."""
        with self._lock:
            return self._conn.execute(
                "SELECT seq, payload FROM events WHERE state = 0 ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()

    def mark_sent(self, seqs: list[int]) -> None:
        self._update("UPDATE events SET state = 1, sent_at = ?, attempts = attempts + 1 "
                     "WHERE seq = ?", [(time.time(), s) for s in seqs])

    def mark_dead(self, seq: int, error: str) -> None:
        self._update("UPDATE events SET state = 2, last_error = ?, attempts = attempts + 1 "
                     "WHERE seq = ?", [(self._error_text(error), seq)])

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
        text = self._error_text(error)
        limit = max_attempts if max_attempts is not None else -1
        step = 1 if counted else 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "UPDATE events SET attempts = attempts + ?, last_error = ?, "
                    "state = CASE WHEN ? > 0 AND attempts + ? >= ? THEN 2 ELSE state END "
                    "WHERE seq = ? AND state = 0", (step, text, limit, step, limit, seq))
                row = self._conn.execute("SELECT attempts, state FROM events WHERE seq = ?",
                                         (seq,)).fetchone()
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot update the spool at {self.path}: {exc}") from exc
        return (row[0], row[1] == DEAD) if row else (0, False)

    def _error_text(self, error: str) -> str:
        """The one place ``last_error`` text is shaped before it is stored."""
        if self._error_filter is not None:
            error = self._error_filter(error)
        return error[:ERROR_MAX_CHARS]

    def requeue_dead(self) -> int:
        with self._lock:
            cur = self._conn.execute("UPDATE events SET state = 0, attempts = 0 WHERE state = 2")
            return cur.rowcount

    def _update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self._lock:
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
        with self._lock:
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
        with self._lock:
            return self._conn.execute(
                "SELECT 1 FROM events WHERE state = 0 LIMIT 1").fetchone() is not None

    def prune_payloads(self, older_than: float) -> int:
        """Drop the payloads of events sent before ``older_than`` (epoch seconds).

        Their digests stay, so the ledger still verifies; disk stays bounded.
        """
        with self._lock:
            cur = self._conn.execute(
                "UPDATE events SET payload = NULL WHERE state = 1 AND payload IS NOT NULL "
                "AND sent_at < ?", (older_than,))
            return cur.rowcount

    def latest_for_run(self, run_id: str) -> tuple[int, str] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, entry_hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
                (run_id,)).fetchone()
        return (row[0], row[1]) if row else None

    # -- inspection ----------------------------------------------------------------------
    def status(self) -> SpoolStatus:
        with self._lock:
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
            with self._lock:
                sql = ("SELECT seq, run_id, payload, payload_sha256, prev_hash, entry_hash, "
                       "created_at, state, attempts, last_error FROM events WHERE seq > ?")
                args: tuple[Any, ...] = (last,)
                if state is not None:
                    sql += " AND state = ?"
                    args += (state,)
                rows = self._conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield SpoolEntry(seq=row[0], run_id=row[1], payload=row[2], payload_sha256=row[3],
                                 prev_hash=row[4], entry_hash=row[5], created_at=row[6],
                                 state=row[7], attempts=row[8], last_error=row[9])
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
