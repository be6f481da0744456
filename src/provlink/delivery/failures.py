"""Failed capture points, counted durably so that a silent loss of lineage is visible.

Lineage never fails a task, so a broken capture shows up nowhere unless it is counted.
Each failure is added to one row in ``PROVLINK_HOME/status.db`` (SQLite, shared by every
process on the host): how many failed, since when, and the last error (already redacted by
the caller). ``provlink status`` and ``provlink spool status`` show it; at process exit a
log line (on stderr when logging's stream is already closed) says how many failed in this
process. Nothing is written until something fails.

>>> log = FailureLog(Path("/tmp/provlink-doctest/status.db"))  # doctest: +SKIP
>>> log.record("file capture", "OSError: disk full"); log.summary().count    # doctest: +SKIP
1
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provlink.private_files import private_dir, private_file

log = logging.getLogger(__name__)

STATUS_FILE = "status.db"
_MAX_ERROR_CHARS = 2000
_SCHEMA = """CREATE TABLE IF NOT EXISTS capture_failures (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    since REAL NOT NULL,
    last_at REAL NOT NULL,
    last_where TEXT NOT NULL,
    last_error TEXT NOT NULL)"""
_UPSERT = """INSERT INTO capture_failures (id, count, since, last_at, last_where, last_error)
    VALUES (1, 1, :now, :now, :where, :error)
    ON CONFLICT (id) DO UPDATE SET count = count + 1, last_at = :now,
        last_where = :where, last_error = :error"""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureSummary:
    """How many capture points failed since ``since`` (epoch seconds), and the last error."""

    count: int
    since: float
    last_at: float
    last_where: str
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FailureLog:
    """The durable failure count of one ``PROVLINK_HOME``; safe across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, where: str, error: str) -> None:
        """Add one failure; raises ``sqlite3.Error``/``OSError`` (callers swallow them)."""
        with self._connect(create=True) as db:
            db.execute(_UPSERT, {"now": time.time(), "where": where,
                                 "error": error[:_MAX_ERROR_CHARS]})

    def summary(self) -> FailureSummary | None:
        """The count so far; None when nothing ever failed here."""
        if not self.path.exists():
            return None
        with self._connect(create=False) as db:
            row = db.execute("SELECT count, since, last_at, last_where, last_error "
                             "FROM capture_failures WHERE id = 1").fetchone()
        if row is None:
            return None
        return FailureSummary(count=row[0], since=row[1], last_at=row[2], last_where=row[3],
                              last_error=row[4])

    def reset(self) -> None:
        """Start counting afresh (after the cause was fixed)."""
        if self.path.exists():
            with self._connect(create=False) as db:
                db.execute("DELETE FROM capture_failures")

    def _connect(self, *, create: bool) -> closing[sqlite3.Connection]:
        if create:
            private_file(private_dir(self.path.parent) / self.path.name)  # 0600, no symlink
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute(_SCHEMA)
        return closing(db)


# -- this process -------------------------------------------------------------------------
_lock = threading.Lock()
_process: dict[str, Any] = {"count": 0, "last": ""}


def note_in_process(where: str, error: str) -> None:
    """Count a failure of this process, for the line at exit."""
    with _lock:
        _process["count"] += 1
        _process["last"] = f"{where}: {error}"[:500]


def failures_in_process() -> int:
    return int(_process["count"])


@contextmanager
def counted_apart() -> Iterator[Callable[[], int]]:
    """Count the failures inside the block apart from this process's, and drop them after:
    for a test that makes capture fail on purpose, so that the test process's line at exit
    reports only lineage really lost. Yields the count inside the block."""
    with _lock:
        saved = dict(_process)
        _process.update(count=0, last="")
    try:
        yield failures_in_process
    finally:
        with _lock:
            _process.update(saved)


def _report_at_exit() -> None:
    """Log the count; at exit a host (pytest, a framework) may have closed the stream a
    logging handler writes to, and logging would print a traceback instead, so the line then
    goes to stderr."""
    count = _process["count"]
    if not count:
        return
    message = (f"provlink: {count} capture step(s) failed in this process, so lineage is "
               f"incomplete; last: {_process['last']}. See `provlink status`.")
    if _handler_streams_open(log):
        log.warning("%s", message)
    elif sys.stderr is not None and not sys.stderr.closed:
        print(message, file=sys.stderr)


def _handler_streams_open(logger: logging.Logger) -> bool:
    """Whether every handler a record of ``logger`` reaches (``lastResort`` when none) can
    still write, as far as a stream says."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    if not handlers and logging.lastResort is not None:
        handlers.append(logging.lastResort)
    return not any(getattr(getattr(h, "stream", None), "closed", False) for h in handlers)


atexit.register(_report_at_exit)  # early, so it runs after the runtime's close at exit
